"""TD3: networks, critic target against NumPy, delayed updates, acting, one update against a
from-scratch reference, HL-Gauss critics, seed vmap, argument checks, a learning check."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents import (
    TD3State,
    Transition,
    make_optimizer,
    make_td3,
    representations,
    target_action,
)
from networks import Actor, Critic, TwinCritic
from tests import numpy_reference

OBS_DIM, ACTION_DIM, BATCH = 3, 2, 32
# Asymmetric bounds, so that the scale (high - low) / 2 = (1, 1.5) is not the bound itself.
LOW, HIGH = (-1.0, -0.5), (1.0, 2.5)
MID, SCALE = np.array([0.0, 1.0]), np.array([1.0, 1.5])
HIDDEN, LEARNING_RATE, GAMMA, START_STEPS = (32, 32), 3e-3, 0.99, 100
ACTOR, CRITIC = Actor(LOW, HIGH, HIDDEN), TwinCritic(HIDDEN)
# Compiled once for the references (op-by-op they take longer than compiling).
ACTOR_APPLY, CRITIC_APPLY = jax.jit(ACTOR.apply), jax.jit(CRITIC.apply)


@pytest.fixture(autouse=True)
def _strict_numerics():
    with jax.numpy_rank_promotion("raise"), jax.default_matmul_precision("highest"):
        yield


def _make(representation=None, critic=CRITIC, **kwargs):
    return make_td3(
        ACTOR,
        critic,
        make_optimizer("adam", LEARNING_RATE, eps=1e-8),
        make_optimizer("adam", LEARNING_RATE, eps=1e-8),
        LOW,
        HIGH,
        representation,
        start_steps=START_STEPS,
        **kwargs,
    )


# One agent (policy delay 2) and its compiled functions, shared by the tests.
AGENT = _make()
INIT, UPDATE = jax.jit(AGENT.init), jax.jit(AGENT.update)
ACT, EVAL_ACT = jax.jit(AGENT.act), jax.jit(AGENT.eval_act)


def _batch(seed: int, batch_size: int = BATCH) -> Transition:
    """Random transitions; a quarter terminate (discount 0), the others continue or are
    truncated, which the learner sees alike (discount gamma)."""
    rng = np.random.default_rng(seed)
    discount_t = np.where(rng.random(batch_size) < 0.25, 0.0, GAMMA)
    return Transition(
        obs_tm1=jnp.asarray(rng.normal(size=(batch_size, OBS_DIM)), jnp.float32),
        action_tm1=jnp.asarray(rng.uniform(LOW, HIGH, (batch_size, ACTION_DIM)), jnp.float32),
        reward_t=jnp.asarray(rng.normal(size=batch_size), jnp.float32),
        discount_t=jnp.asarray(discount_t, jnp.float32),
        obs_t=jnp.asarray(rng.normal(size=(batch_size, OBS_DIM)), jnp.float32),
    )


def _distinct_targets(state: TD3State, seed: int = 1) -> TD3State:
    """The state with target networks that differ from the online ones."""
    other = INIT(jax.random.key(seed), jnp.zeros(OBS_DIM))
    return state._replace(
        actor_target_params=other.actor_params, critic_target_params=other.critic_params
    )


def _state(seed: int = 0) -> TD3State:
    return _distinct_targets(INIT(jax.random.key(seed), jnp.zeros(OBS_DIM)), seed + 100)


def _assert_trees_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _assert_trees_close(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _trees_differ(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True))


def _take(tree, index: int):
    return jax.tree.map(lambda x: x[index], tree)


def _adam_mu(opt_state):
    """First moment of make_optimizer("adam"): 0.1 x the gradient after one step."""
    return opt_state[0].mu


# Networks.


def test_network_shapes():
    obs, action = jnp.zeros((5, OBS_DIM)), jnp.zeros((5, ACTION_DIM))
    critic = TwinCritic(HIDDEN, num_outputs=7)
    params = jax.eval_shape(critic.init, jax.random.key(1), obs[0], action[0])
    outputs = jax.eval_shape(critic.apply, params, obs, action)
    assert outputs.shape == (5, 2, 7) and outputs.dtype == jnp.float32
    for name in ("critic_1", "critic_2"):
        assert params["params"][name]["Dense_2"]["kernel"].shape == (HIDDEN[1], 7)
    actor_params = jax.eval_shape(ACTOR.init, jax.random.key(0), obs[0])
    actions = jax.eval_shape(ACTOR.apply, actor_params, jnp.zeros((4, 5, OBS_DIM)))
    assert actions.shape == (4, 5, ACTION_DIM) and actions.dtype == jnp.float32


def test_pytorch_linear_initialisation():
    """PyTorch nn.Linear's default: kernel and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    state = INIT(jax.random.key(0), jnp.zeros(OBS_DIM))
    critic_fan_ins = {"Dense_0": OBS_DIM + ACTION_DIM, "Dense_1": HIDDEN[0], "Dense_2": HIDDEN[1]}
    actor_fan_ins = {"Dense_0": OBS_DIM, "Dense_1": HIDDEN[0], "Dense_2": HIDDEN[1]}
    kernels = []
    for layers, fan_ins in (
        (state.critic_params["params"]["critic_1"], critic_fan_ins),
        (state.critic_params["params"]["critic_2"], critic_fan_ins),
        (state.actor_params["params"], actor_fan_ins),
    ):
        for name, fan_in in fan_ins.items():
            bound = 1 / np.sqrt(fan_in)
            for leaf in (layers[name]["kernel"], layers[name]["bias"]):
                assert np.all(np.abs(leaf) <= bound)
                if leaf.size > 30:
                    assert np.max(np.abs(leaf)) > 0.8 * bound
            kernels.append(np.asarray(layers[name]["kernel"]) / bound)
    # Uniform on [-1, 1] once scaled: std 1/sqrt(3).
    np.testing.assert_allclose(
        np.concatenate([k.ravel() for k in kernels]).std(), 1 / np.sqrt(3), rtol=0.05
    )
    # The two critics are initialised independently.
    critics = state.critic_params["params"]
    for first, second in zip(
        *map(jax.tree.leaves, (critics["critic_1"], critics["critic_2"])), strict=True
    ):
        assert not np.any(first == second)


def test_actor_maps_tanh_onto_the_bounds():
    obs = jax.random.normal(jax.random.key(0), (64, OBS_DIM))
    params = INIT(jax.random.key(1), jnp.zeros(OBS_DIM)).actor_params
    tanh = Actor((-1.0, -1.0), (1.0, 1.0), HIDDEN).apply(params, obs)
    # Symmetric bounds: exactly max_action * tanh.
    symmetric = Actor((-2.0, -0.5), (2.0, 0.5), HIDDEN).apply(params, obs)
    np.testing.assert_array_equal(symmetric, jnp.array([[2.0, 0.5]]) * tanh)
    # General bounds: low + (tanh + 1) / 2 * (high - low).
    expected = np.asarray(LOW) + (np.asarray(tanh, np.float64) + 1) / 2 * (
        np.asarray(HIGH) - np.asarray(LOW)
    )
    np.testing.assert_allclose(ACTOR_APPLY(params, obs), expected, rtol=1e-6, atol=1e-6)
    saturated = np.asarray(ACTOR_APPLY(params, 1e4 * obs))
    assert np.all(saturated >= np.asarray(LOW)) and np.all(saturated <= np.asarray(HIGH))
    assert np.any(saturated == np.asarray(LOW)) or np.any(saturated == np.asarray(HIGH))


def test_single_critic_concatenates_obs_and_action():
    critic = Critic((8,), num_outputs=3)
    params = jax.eval_shape(critic.init, jax.random.key(0), jnp.zeros(OBS_DIM), jnp.zeros(2))
    assert params["params"]["Dense_0"]["kernel"].shape == (OBS_DIM + ACTION_DIM, 8)
    outputs = jax.eval_shape(critic.apply, params, jnp.ones((4, OBS_DIM)), jnp.ones((4, 2)))
    assert outputs.shape == (4, 3)


# The critic target.


def test_target_action_matches_numpy_and_clips_the_noise():
    rng = np.random.default_rng(0)
    low, high = np.asarray(LOW), np.asarray(HIGH)
    pi_t = rng.uniform(low, high, (4000, ACTION_DIM)).astype(np.float32)
    noise = rng.normal(size=(4000, ACTION_DIM)).astype(np.float32)
    low32, high32 = jnp.asarray(LOW), jnp.asarray(HIGH)
    smoothed = jax.jit(target_action)(pi_t, noise, low32, high32, 0.2, 0.5)
    expected = np.clip(pi_t + np.clip(0.2 * SCALE * noise, -0.5 * SCALE, 0.5 * SCALE), low, high)
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6, atol=1e-6)

    # A huge noise std: every offset is clipped to +-0.5 scale, and the bounds still hold.
    smoothed = np.asarray(jax.jit(target_action)(pi_t, noise, low32, high32, 1e3, 0.5))
    offset = smoothed - pi_t
    assert np.all(np.abs(offset) <= 0.5 * SCALE * (1 + 1e-6))
    assert np.all((smoothed >= low) & (smoothed <= high))
    inside = (pi_t - 0.5 * SCALE > low) & (pi_t + 0.5 * SCALE < high) & (np.abs(noise) > 1e-3)
    np.testing.assert_allclose(
        np.abs(offset[inside]), np.broadcast_to(0.5 * SCALE, offset.shape)[inside], rtol=1e-5
    )
    assert np.any(smoothed == low) and np.any(smoothed == high)


def _numpy_target(state: TD3State, batch: Transition, key: jax.Array):
    """y = r + discount * min(Q1', Q2')(s', a~) (B,) in float64, and which critic was lower."""
    noise = np.asarray(jax.random.normal(key, (BATCH, ACTION_DIM)), np.float64)
    pi_t = np.asarray(ACTOR_APPLY(state.actor_target_params, batch.obs_t), np.float64)
    smoothing = np.clip(0.2 * SCALE * noise, -0.5 * SCALE, 0.5 * SCALE)
    a_t = np.clip(pi_t + smoothing, LOW, HIGH).astype(np.float32)
    q_t = np.asarray(CRITIC_APPLY(state.critic_target_params, batch.obs_t, a_t), np.float64)
    q_t = q_t[..., 0]  # (B, 2)
    reward, discount = np.asarray(batch.reward_t, np.float64), np.asarray(batch.discount_t)
    return reward + discount * q_t.min(axis=1), np.argmin(q_t, axis=1)


def test_critic_target_matches_numpy():
    state, batch, key = _state(), _batch(1), jax.random.key(2)
    # Zero output biases: otherwise the initial bias gap decides which target critic is lower
    # on every transition, and min(Q1', Q2') could not be told from one critic.
    target = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.zeros_like(x) if "Dense_2" in str(path) and "bias" in str(path) else x,
        state.critic_target_params,
    )
    state = state._replace(critic_target_params=target)
    y, lower = _numpy_target(state, batch, key)
    # Both critics are the lower one somewhere; terminations and continuations both occur.
    assert 0 < lower.sum() < BATCH
    discount = np.asarray(batch.discount_t)
    assert np.any(discount == 0.0) and np.any(discount == np.float32(GAMMA))
    np.testing.assert_array_equal(y[discount == 0], np.asarray(batch.reward_t)[discount == 0])

    new_state, metrics = UPDATE(state, batch, key)
    q = np.asarray(CRITIC_APPLY(state.critic_params, batch.obs_tm1, batch.action_tm1))[..., 0]
    expected_loss = np.sum(np.mean((y[:, None] - q) ** 2, axis=0))
    np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["target_mean"], y.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["q_mean"], q[:, 0].mean(), rtol=1e-5, atol=1e-6)

    # Per transition: the critics' gradient weighs each transition by its own y - Q.
    y32 = jnp.asarray(y, jnp.float32)

    def reference_loss(params):
        q = CRITIC.apply(params, batch.obs_tm1, batch.action_tm1)[..., 0]
        return jnp.sum(jnp.mean((y32[:, None] - q) ** 2, axis=0))

    grads = jax.jit(jax.grad(reference_loss))(state.critic_params)
    scaled = jax.tree.map(lambda g: 0.1 * g, grads)
    _assert_trees_close(_adam_mu(new_state.critic_opt_state), scaled, rtol=1e-4, atol=1e-7)


def test_update_matches_reference():
    """An update with an actor step (the second one, d = 2) against a from-scratch version."""
    state = _state()._replace(update_count=jnp.ones((), jnp.int32))
    batch, key, tau = _batch(3), jax.random.key(4), 0.005
    optimizer = make_optimizer("adam", LEARNING_RATE, eps=1e-8)
    low, high = jnp.asarray([LOW]), jnp.asarray([HIGH])  # (1, A)
    scale = (high - low) / 2

    @jax.jit
    def reference_update(state):
        noise = jax.random.normal(key, (BATCH, ACTION_DIM))
        pi_t = ACTOR.apply(state.actor_target_params, batch.obs_t)
        a_t = jnp.clip(pi_t + jnp.clip(0.2 * scale * noise, -0.5 * scale, 0.5 * scale), low, high)
        q_t = CRITIC.apply(state.critic_target_params, batch.obs_t, a_t)
        y = batch.reward_t + batch.discount_t * jnp.minimum(q_t[:, 0, 0], q_t[:, 1, 0])

        def critic_loss(params):
            q = CRITIC.apply(params, batch.obs_tm1, batch.action_tm1)
            return jnp.mean((y - q[:, 0, 0]) ** 2) + jnp.mean((y - q[:, 1, 0]) ** 2)

        loss, grads = jax.value_and_grad(critic_loss)(state.critic_params)
        updates, critic_opt_state = optimizer.update(grads, state.critic_opt_state)
        critic_params = optax.apply_updates(state.critic_params, updates)

        def actor_loss(params):
            actions = ACTOR.apply(params, batch.obs_tm1)
            return -jnp.mean(CRITIC.apply(critic_params, batch.obs_tm1, actions)[:, 0, 0])

        pi_loss, grads = jax.value_and_grad(actor_loss)(state.actor_params)
        updates, actor_opt_state = optimizer.update(grads, state.actor_opt_state)
        actor_params = optax.apply_updates(state.actor_params, updates)

        def polyak(online, target):
            return jax.tree.map(lambda o, t: tau * o + (1 - tau) * t, online, target)

        new_state = TD3State(
            actor_params,
            critic_params,
            polyak(actor_params, state.actor_target_params),
            polyak(critic_params, state.critic_target_params),
            actor_opt_state,
            critic_opt_state,
            state.update_count + 1,
        )
        return new_state, loss, pi_loss

    expected_state, expected_loss, expected_actor_loss = reference_update(state)
    new_state, metrics = UPDATE(state, batch, key)
    np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-5)
    # An actor step reports policy_delay (2) x its loss: the mean over 2 updates is the loss.
    np.testing.assert_allclose(metrics["actor_loss"], 2 * expected_actor_loss, rtol=1e-5, atol=1e-6)
    _assert_trees_close(new_state, expected_state, rtol=1e-5, atol=1e-6)
    assert int(new_state.update_count) == 2 and new_state.update_count.dtype == jnp.int32


# Delayed actor and target updates.


@jax.jit
def _update_with_delay(policy_delay, tau, state, batch, key):
    """The update with traced policy delay and tau: one compiled program for both tests."""
    return _make(policy_delay=policy_delay, tau=tau).update(state, batch, key)


@pytest.mark.parametrize("policy_delay", [2, 3])
def test_actor_and_targets_move_every_policy_delay_updates(policy_delay):
    tau = 0.005
    state = _state()
    for count in range(1, 8):
        old = state
        state, _ = _update_with_delay(
            jnp.int32(policy_delay), jnp.float32(tau), old, _batch(count), jax.random.key(count)
        )
        assert int(state.update_count) == count
        assert int(state.critic_opt_state[0].count) == count
        assert int(state.actor_opt_state[0].count) == count // policy_delay
        assert _trees_differ(state.critic_params, old.critic_params)
        if count % policy_delay == 0:
            assert _trees_differ(state.actor_params, old.actor_params)
            for online, target, old_target in (
                (state.actor_params, state.actor_target_params, old.actor_target_params),
                (state.critic_params, state.critic_target_params, old.critic_target_params),
            ):
                expected = jax.tree.map(
                    lambda o, t: tau * np.asarray(o, np.float64) + (1 - tau) * np.asarray(t),
                    online,
                    old_target,
                )
                _assert_trees_close(target, expected, rtol=1e-6, atol=1e-7)
        else:
            _assert_trees_equal(state.actor_params, old.actor_params)
            _assert_trees_equal(state.actor_opt_state, old.actor_opt_state)
            _assert_trees_equal(state.actor_target_params, old.actor_target_params)
            _assert_trees_equal(state.critic_target_params, old.critic_target_params)


# Acting.


class TestAct:
    num_envs = 4000

    @pytest.fixture
    def state(self):
        # Function-scoped, so that it runs under _strict_numerics like INIT's other calls
        # (the config is part of jit's cache key; outside it INIT would compile again).
        return INIT(jax.random.key(0), jnp.zeros(OBS_DIM))

    def test_uniform_before_start_steps(self, state):
        obs = jnp.ones((self.num_envs, OBS_DIM))  # any spread comes from per-env draws
        actions = np.asarray(ACT(state, obs, jax.random.key(1), jnp.int32(START_STEPS - 1)))
        assert actions.shape == (self.num_envs, ACTION_DIM) and actions.dtype == np.float32
        low, high, width = np.asarray(LOW), np.asarray(HIGH), 2 * SCALE
        assert np.all((actions >= low) & (actions <= high))
        assert np.all(np.abs(actions.mean(axis=0) - MID) < 0.02 * width)
        np.testing.assert_allclose(actions.std(axis=0), width / np.sqrt(12), rtol=0.05)
        assert np.all(actions.min(axis=0) - low < 0.01 * width)
        assert np.all(high - actions.max(axis=0) < 0.01 * width)

    def test_gaussian_noise_after_start_steps(self, state):
        obs = jnp.ones((self.num_envs, OBS_DIM))
        pi = np.asarray(EVAL_ACT(state, obs, jax.random.key(0)))
        # Far enough inside the bounds that clipping is rare.
        assert np.all(np.abs(pi[0] - MID) < 0.5 * SCALE)
        actions = np.asarray(ACT(state, obs, jax.random.key(2), jnp.int32(START_STEPS)))
        assert np.all((actions >= np.asarray(LOW)) & (actions <= np.asarray(HIGH)))
        deviation = actions - pi
        assert np.all(np.abs(deviation.mean(axis=0)) < 0.01 * SCALE)
        np.testing.assert_allclose(deviation.std(axis=0), 0.1 * SCALE, rtol=0.05)

    def test_eval_act_is_the_deterministic_actor(self, state):
        obs = jax.random.normal(jax.random.key(3), (16, OBS_DIM))
        first = EVAL_ACT(state, obs, jax.random.key(4))
        np.testing.assert_array_equal(first, EVAL_ACT(state, obs, jax.random.key(5)))
        np.testing.assert_array_equal(first, ACTOR_APPLY(state.actor_params, obs))


# Classification critics.


def _with_output_layers(state: TD3State, num_outputs: int) -> TD3State:
    """The state of critics with `num_outputs` outputs: the output layers redrawn (PyTorch's
    U(+-1/sqrt(fan_in))), the rest kept. Saves compiling another init."""
    rng, bound = np.random.default_rng(0), 1 / np.sqrt(HIDDEN[-1])

    def widen(params):
        layers = {}
        for name, critic in params["params"].items():
            output = {
                "kernel": rng.uniform(-bound, bound, (HIDDEN[-1], num_outputs)),
                "bias": rng.uniform(-bound, bound, num_outputs),
            }
            output = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), output)
            layers[name] = {**critic, "Dense_2": output}
        return {"params": layers}

    critic_params = widen(state.critic_params)
    return state._replace(
        critic_params=critic_params,
        critic_target_params=widen(state.critic_target_params),
        critic_opt_state=make_optimizer("adam", LEARNING_RATE, eps=1e-8).init(critic_params),
    )


def test_hl_gauss_critic_matches_reference_and_trains():
    num_bins = 11
    representation = representations.hl_gauss(-3.0, 3.0, num_bins)
    critic = TwinCritic(HIDDEN, num_outputs=num_bins)
    agent = _make(representation, critic, policy_delay=1)
    state = _with_output_layers(_state(), num_bins)
    batch, key = _batch(5), jax.random.key(6)
    batch = batch._replace(reward_t=3.0 * batch.reward_t)  # some targets clip
    update = jax.jit(agent.update)
    new_state, metrics = update(state, batch, key)

    # NumPy: the target critic with the lower expected value, its HL-Gauss target.
    critic_apply = jax.jit(critic.apply)
    centres = representation.support.astype(np.float64)
    edges = np.linspace(-3.0, 3.0, num_bins + 1)
    noise = np.asarray(jax.random.normal(key, (BATCH, ACTION_DIM)), np.float64)
    pi_t = np.asarray(ACTOR_APPLY(state.actor_target_params, batch.obs_t), np.float64)
    a_t = np.clip(pi_t + np.clip(0.2 * SCALE * noise, -0.5 * SCALE, 0.5 * SCALE), LOW, HIGH)
    logits_t = critic_apply(state.critic_target_params, batch.obs_t, a_t.astype(np.float32))
    probs_t = numpy_reference.softmax(np.asarray(logits_t, np.float64))  # (B, 2, m)
    q_t = probs_t @ centres
    rows = np.arange(BATCH)
    q_lower = q_t[rows, np.argmin(q_t, axis=1)]
    y = np.clip(np.asarray(batch.reward_t) + np.asarray(batch.discount_t) * q_lower, -3.0, 3.0)
    assert np.any(np.abs(y) == 3.0)
    sigma = 0.75 * (edges[1] - edges[0])
    target = np.stack([numpy_reference.hl_gauss(value, edges, sigma) for value in y])
    logits = np.asarray(critic_apply(state.critic_params, batch.obs_tm1, batch.action_tm1))
    log_probs = np.log(numpy_reference.softmax(logits.astype(np.float64)))
    expected = np.sum(np.mean(-np.sum(target[:, None] * log_probs, axis=-1), axis=0))
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    q_mean = (numpy_reference.softmax(logits.astype(np.float64)) @ centres)[:, 0].mean()
    np.testing.assert_allclose(metrics["q_mean"], q_mean, rtol=1e-4, atol=1e-5)

    for step in range(3):
        new_state, metrics = update(new_state, _batch(10 + step), jax.random.key(step))
        assert all(np.isfinite(value) for value in metrics.values())
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(new_state))
    assert _trees_differ(new_state.actor_params, state.actor_params)


# Seeds as a vmapped axis.


def test_vmapped_seeds_equal_separate_runs():
    """Bit for bit on CPU: init, updates on both sides of the policy delay, act, eval_act."""
    num_seeds, num_updates = 3, 3
    # On a CPU-only host, no default_device context: it is part of jit's cache key, and
    # the single-seed functions compiled by the other tests would all compile again.
    on_cpu = jax.default_backend() == "cpu"
    with contextlib.nullcontext() if on_cpu else jax.default_device(jax.devices("cpu")[0]):
        sample_obs = jnp.zeros(OBS_DIM)
        init_keys = jax.random.split(jax.random.key(7), num_seeds)
        update_keys = jax.random.split(jax.random.key(8), (num_updates, num_seeds))
        batches = [[_batch(10 * s + u) for s in range(num_seeds)] for u in range(num_updates)]
        obs = jax.random.normal(jax.random.key(9), (num_seeds, 5, OBS_DIM))
        act_keys = jax.random.split(jax.random.key(10), num_seeds)
        steps = (jnp.int32(0), jnp.int32(START_STEPS))

        states = jax.jit(jax.vmap(AGENT.init, in_axes=(0, None)))(init_keys, sample_obs)
        vmapped_update = jax.jit(jax.vmap(AGENT.update))
        all_metrics = []
        for u in range(num_updates):
            stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *batches[u])
            states, metrics = vmapped_update(states, stacked, update_keys[u])
            all_metrics.append(metrics)
        vmapped_act = jax.jit(jax.vmap(AGENT.act, in_axes=(0, 0, 0, None)))
        actions = [vmapped_act(states, obs, act_keys, step) for step in steps]
        eval_actions = jax.jit(jax.vmap(AGENT.eval_act))(states, obs, act_keys)

        for s in range(num_seeds):
            state = INIT(init_keys[s], sample_obs)
            for u in range(num_updates):
                state, metrics = UPDATE(state, batches[u][s], update_keys[u, s])
                _assert_trees_equal(metrics, _take(all_metrics[u], s))
            _assert_trees_equal(state, _take(states, s))
            for step, vmapped_actions in zip(steps, actions, strict=True):
                single = ACT(state, obs[s], act_keys[s], step)
                np.testing.assert_array_equal(single, vmapped_actions[s])
            np.testing.assert_array_equal(EVAL_ACT(state, obs[s], act_keys[s]), eval_actions[s])


# Argument checks.


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"policy_delay": 0}, "policy_delay"),
        ({"policy_delay": 1.5}, "policy_delay"),
        ({"target_noise": -0.1}, "target_noise"),
        ({"target_noise_clip": -0.5}, "target_noise_clip"),
        ({"exploration_noise": -0.1}, "exploration_noise"),
        ({"start_steps": -1}, "start_steps"),
        ({"action_low": (-1.0, -np.inf)}, "finite"),
        ({"action_high": (1.0, np.nan)}, "finite"),
        ({"action_low": (-1.0, 2.5)}, "action_low < action_high"),
        ({"action_low": (-1.0, 3.0)}, "action_low < action_high"),
        ({"action_low": (-1.0,)}, "same length"),
        ({"action_low": [[-1.0, -0.5]]}, "1-D"),
        ({"actor": Actor((-2.0, -0.5), HIGH)}, "actor's action_low"),
        ({"representation": representations.hl_gauss()}, "num_outputs"),
    ],
)
def test_bad_arguments_fail_early(kwargs, match):
    arguments = {
        "actor": ACTOR,
        "critic": CRITIC,
        "actor_optimizer": optax.adam(1e-3),
        "critic_optimizer": optax.adam(1e-3),
        "action_low": LOW,
        "action_high": HIGH,
    }
    with pytest.raises(ValueError, match=match):
        make_td3(**{**arguments, **kwargs})


# Learning.


def test_learns_a_continuous_bandit():
    """One step, discount 0, reward -sum |a - f(s)| for uniform random actions (off-policy):
    the actor must learn pi(s) ~ f(s)."""
    # |.| rather than (.)^2: at a quadratic peak a critic error e moves the argmax by
    # sqrt(e), at a kink only by ~e, so a few hundred updates pin the action down.
    weights = jnp.asarray(np.random.default_rng(0).normal(size=(OBS_DIM, ACTION_DIM)) / 2)
    mid, scale = jnp.asarray(MID, jnp.float32)[None], jnp.asarray(SCALE, jnp.float32)[None]
    batch_size, num_updates = 64, 500

    def best_action(obs):
        return mid + 0.8 * scale * jnp.tanh(obs @ weights)

    def sample(key):
        obs_key, action_key = jax.random.split(key)
        obs = jax.random.uniform(obs_key, (batch_size, OBS_DIM), minval=-1.0, maxval=1.0)
        action = mid + scale * jax.random.uniform(
            action_key, (batch_size, ACTION_DIM), minval=-1.0, maxval=1.0
        )
        reward = -jnp.sum(jnp.abs(action - best_action(obs)), axis=-1)
        return Transition(obs, action, reward, jnp.zeros(batch_size), obs)

    @jax.jit
    def train(state, key):
        def step(state, key):
            batch_key, update_key = jax.random.split(key)
            return AGENT.update(state, sample(batch_key), update_key)[0], None

        return jax.lax.scan(step, state, jax.random.split(key, num_updates))[0]

    obs = jax.random.uniform(jax.random.key(2), (512, OBS_DIM), minval=-1.0, maxval=1.0)

    def relative_error(state):
        error = np.abs(np.asarray(EVAL_ACT(state, obs, jax.random.key(3)) - best_action(obs)))
        return error / SCALE

    state = INIT(jax.random.key(0), jnp.zeros(OBS_DIM))
    before = relative_error(state)
    after = relative_error(train(state, jax.random.key(1)))
    np.testing.assert_array_less(after.mean(axis=0), 0.05)
    np.testing.assert_array_less(3 * after.mean(axis=0), before.mean(axis=0))
    np.testing.assert_array_less(after.max(axis=0), 0.2)
