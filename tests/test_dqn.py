"""DQN: one update against a from-scratch reference, target sync, acting, seed vmap, learning."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents import DQNState, Transition, epsilon_greedy, make_dqn, make_optimizer, representations
from networks import MLP, QNetwork
from tests import numpy_reference

OBS_DIM, NUM_ACTIONS, BATCH = 3, 4, 16


@pytest.fixture(autouse=True)
def _strict_numerics():
    with jax.numpy_rank_promotion("raise"), jax.default_matmul_precision("highest"):
        yield


def _network() -> QNetwork:
    return QNetwork(MLP((16,)), NUM_ACTIONS)


def _batch(seed: int) -> Transition:
    rng = np.random.default_rng(seed)
    discount_t = np.where(rng.random(BATCH) < 0.25, 0.0, 0.99).astype(np.float32)
    return Transition(
        obs_tm1=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
        action_tm1=jnp.asarray(rng.integers(0, NUM_ACTIONS, BATCH), jnp.int32),
        reward_t=jnp.asarray(rng.normal(size=BATCH), jnp.float32),
        discount_t=jnp.asarray(discount_t),
        obs_t=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
    )


def _init_with_distinct_target(agent, seed: int = 0) -> DQNState:
    """A fresh state whose target network differs from the online one."""
    key, target_key = jax.random.split(jax.random.key(seed))
    sample_obs = jnp.zeros(OBS_DIM)
    state = agent.init(key, sample_obs)
    return state._replace(target_params=agent.init(target_key, sample_obs).params)


def _assert_trees_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _take(tree, index: int):
    return jax.tree.map(lambda x: x[index], tree)


def _assert_trees_close(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


# (1) One update against a loss written from scratch.


@pytest.mark.parametrize(
    ("loss", "double_q", "optimizer_name"),
    [
        ("mse", False, "adam"),
        ("mse", True, "adam"),
        ("huber", False, "rmsprop"),
        ("huber", True, "adam"),
    ],
)
def test_update_matches_reference(loss, double_q, optimizer_name):
    net, delta = _network(), 0.5
    optimizer = make_optimizer(optimizer_name, 1e-2, eps=1e-4)
    representation = representations.scalar(loss, delta)
    agent = make_dqn(
        net, optimizer, representation, "double" if double_q else "max", target_update_period=100
    )
    state = _init_with_distinct_target(agent)
    batch = _batch(1)
    rows = jnp.arange(BATCH)

    def reference_targets(params):
        q_t_target = net.apply(state.target_params, batch.obs_t)[..., 0]
        best_online = jnp.argmax(net.apply(params, batch.obs_t)[..., 0], axis=1)
        double = batch.reward_t + batch.discount_t * q_t_target[rows, best_online]
        plain = batch.reward_t + batch.discount_t * q_t_target.max(axis=1)
        return double, plain

    def reference_loss(params):
        double, plain = reference_targets(params)
        target = jax.lax.stop_gradient(double if double_q else plain)
        q_taken = net.apply(params, batch.obs_tm1)[rows, batch.action_tm1, 0]
        td = target - q_taken
        if loss == "mse":
            per_transition = td**2
        else:
            per_transition = jnp.where(
                jnp.abs(td) <= delta, 0.5 * td**2, delta * (jnp.abs(td) - 0.5 * delta)
            )
        return per_transition.mean(), (q_taken.mean(), target.mean(), td)

    @jax.jit
    def reference_update(state):
        (ref_loss, aux), grads = jax.value_and_grad(reference_loss, has_aux=True)(state.params)
        updates, ref_opt_state = optimizer.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), ref_opt_state, ref_loss, aux

    ref_params, ref_opt_state, ref_loss, (ref_q_mean, ref_target_mean, td) = reference_update(state)

    double, plain = reference_targets(state.params)
    assert not np.allclose(double, plain)  # the two target rules are told apart
    if loss == "huber":
        assert np.any(np.abs(td) > delta) and np.any(np.abs(td) < delta)

    new_state, metrics = jax.jit(agent.update)(state, batch, jax.random.key(0))
    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["q_mean"], ref_q_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["target_mean"], ref_target_mean, rtol=1e-5, atol=1e-6)
    _assert_trees_close(new_state.params, ref_params)
    _assert_trees_close(new_state.opt_state, ref_opt_state)
    _assert_trees_equal(new_state.target_params, state.target_params)
    assert new_state.update_count == 1 and new_state.update_count.dtype == jnp.int32


def _numpy_categorical_targets(name, representation, logits_t, selector_q_t, batch):
    """Target distributions (B, m) built in NumPy from the target network's logits."""
    support = representation.support.astype(np.float64)
    probs_t = numpy_reference.softmax(logits_t)  # (B, A, m)
    best = np.argmax(selector_q_t, axis=1)
    rewards, discounts = np.asarray(batch.reward_t), np.asarray(batch.discount_t)
    targets = []
    for i in range(BATCH):
        p_t, r, d = probs_t[i, best[i]], rewards[i], discounts[i]
        if name == "c51":
            targets.append(numpy_reference.c51_projection(r + d * support, p_t, support))
            continue
        y = np.clip(r + d * p_t @ support, -3.0, 3.0)
        if name == "two_hot":
            targets.append(numpy_reference.two_hot(y, support))
        else:
            edges = np.linspace(-3.0, 3.0, len(support) + 1)
            targets.append(numpy_reference.hl_gauss(y, edges, 0.75 * (edges[1] - edges[0])))
    return np.stack(targets).astype(np.float32)


@pytest.mark.parametrize("name", ["c51", "hl_gauss", "two_hot"])
@pytest.mark.parametrize("double_q", [False, True])
def test_categorical_update_matches_reference(name, double_q):
    num_atoms = 11
    representation = getattr(representations, name)(-3.0, 3.0, num_atoms)
    net = QNetwork(MLP((16,)), NUM_ACTIONS, num_atoms)
    optimizer = make_optimizer("adam", 1e-2, eps=1e-4)
    agent = make_dqn(
        net, optimizer, representation, "double" if double_q else "max", target_update_period=100
    )
    state = _init_with_distinct_target(agent)
    batch = _batch(2)._replace(reward_t=2.0 * _batch(2).reward_t)  # some targets clip

    support = representation.support.astype(np.float64)
    logits_t = np.asarray(net.apply(state.target_params, batch.obs_t), np.float64)
    selector_logits = net.apply(state.params, batch.obs_t) if double_q else logits_t
    selector_q_t = numpy_reference.softmax(np.asarray(selector_logits, np.float64)) @ support
    targets = _numpy_categorical_targets(name, representation, logits_t, selector_q_t, batch)
    rows = np.arange(BATCH)

    def reference_loss(params):
        logits = net.apply(params, batch.obs_tm1)[rows, batch.action_tm1]
        return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))

    @jax.jit
    def reference_update(state):
        loss, grads = jax.value_and_grad(reference_loss)(state.params)
        updates, _ = optimizer.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), loss

    ref_params, ref_loss = reference_update(state)
    new_state, metrics = jax.jit(agent.update)(state, batch)
    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-5)
    _assert_trees_close(new_state.params, ref_params)
    q_taken = (
        numpy_reference.softmax(np.asarray(net.apply(state.params, batch.obs_tm1), np.float64))
        @ support
    )[rows, batch.action_tm1]
    np.testing.assert_allclose(metrics["q_mean"], q_taken.mean(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("double_q", [False, True])
def test_quantile_update_matches_reference(double_q):
    """QR-DQN: targets r + discount theta_j(s', a*), a* greedy on the mean of the target
    network's quantiles (of the online network's with double_q), quantile Huber loss at the
    midpoints (written here as Dopamine's agent writes it, and checked against NumPy)."""
    num, kappa = 8, 1.0
    representation = representations.quantile(num, kappa)
    net = QNetwork(MLP((16,)), NUM_ACTIONS, num)
    optimizer = make_optimizer("adam", 1e-2, eps=1e-4)
    agent = make_dqn(
        net, optimizer, representation, "double" if double_q else "max", target_update_period=100
    )
    state = _init_with_distinct_target(agent)
    batch = _batch(3)
    rows = np.arange(BATCH)

    theta_t = np.asarray(net.apply(state.target_params, batch.obs_t), np.float64)
    selector = net.apply(state.params, batch.obs_t) if double_q else theta_t
    best = np.argmax(np.asarray(selector, np.float64).mean(axis=-1), axis=1)
    reward, discount = np.asarray(batch.reward_t), np.asarray(batch.discount_t)
    targets = reward[:, None] + discount[:, None] * theta_t[rows, best]  # (B, N)
    tau = (np.arange(num) + 0.5) / num

    def reference_loss(params):
        theta = net.apply(params, batch.obs_tm1)[rows, batch.action_tm1]  # (B, N)
        u = jnp.asarray(targets, jnp.float32)[:, None, :] - theta[:, :, None]  # (B, i, j)
        huber = jnp.where(jnp.abs(u) <= kappa, 0.5 * u**2, kappa * (jnp.abs(u) - 0.5 * kappa))
        weight = jnp.abs(jnp.asarray(tau, jnp.float32)[None, :, None] - (u < 0))
        return jnp.mean(jnp.sum(jnp.mean(weight * huber / kappa, axis=2), axis=1))

    @jax.jit
    def reference_update(state):
        loss, grads = jax.value_and_grad(reference_loss)(state.params)
        updates, _ = optimizer.update(grads, state.opt_state, state.params)
        return optax.apply_updates(state.params, updates), loss

    ref_params, ref_loss = reference_update(state)
    theta_tm1 = np.asarray(net.apply(state.params, batch.obs_tm1), np.float64)[
        rows, batch.action_tm1
    ]
    numpy_losses = [
        numpy_reference.quantile_huber(theta_tm1[k], tau, targets[k], kappa)[0]
        for k in range(BATCH)
    ]
    np.testing.assert_allclose(ref_loss, np.mean(numpy_losses), rtol=1e-5)
    new_state, metrics = jax.jit(agent.update)(state, batch)
    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-5)
    _assert_trees_close(new_state.params, ref_params)
    np.testing.assert_allclose(metrics["q_mean"], theta_tm1.mean(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(metrics["target_mean"], targets.mean(), rtol=1e-4, atol=1e-5)


def test_rmsprop_is_nature_rmsprop():
    lr, decay, eps = 2.5e-4, 0.95, 0.01
    optimizer = make_optimizer("rmsprop", lr, eps=eps, rmsprop_decay=decay)
    rng = np.random.default_rng(0)
    opt_state = optimizer.init(jnp.zeros(5))
    mean_grad = np.zeros(5, np.float32)
    mean_sq_grad = np.zeros(5, np.float32)
    for _ in range(3):
        grad = rng.normal(scale=0.3, size=5).astype(np.float32)
        updates, opt_state = optimizer.update(jnp.asarray(grad), opt_state)
        mean_grad = decay * mean_grad + (1 - decay) * grad
        mean_sq_grad = decay * mean_sq_grad + (1 - decay) * grad**2
        np.testing.assert_allclose(
            updates, -lr * grad / np.sqrt(mean_sq_grad - mean_grad**2 + eps), rtol=1e-5
        )


def test_adam_matches_optax_adam():
    lr, eps = 1e-3, 1.5e-4
    ours, reference = make_optimizer("adam", lr, eps=eps), optax.adam(lr, eps=eps)
    grads = jax.random.normal(jax.random.key(0), (5, 4, 3))

    @jax.jit
    def run(grads):
        ours_state, reference_state = ours.init(grads[0]), reference.init(grads[0])
        ours_updates, reference_updates = [], []
        for grad in grads:
            update, ours_state = ours.update(grad, ours_state)
            ours_updates.append(update)
            update, reference_state = reference.update(grad, reference_state)
            reference_updates.append(update)
        return ours_updates, reference_updates

    _assert_trees_close(*run(grads), rtol=1e-5, atol=1e-9)


def test_optimizer_clips_global_norm_first():
    clipped = make_optimizer("adam", 0.1, eps=1e-8, max_grad_norm=1.0)
    plain = make_optimizer("adam", 0.1, eps=1e-8)
    params = {"a": jnp.zeros(3), "b": jnp.zeros(2)}
    grads = {"a": jnp.array([3.0, 0.0, 4.0]), "b": jnp.array([0.0, 0.0])}  # norm 5
    scaled = jax.tree.map(lambda g: g / 5.0, grads)

    @jax.jit
    def first_states(grads, scaled):
        _, clipped_state = clipped.update(grads, clipped.init(params))
        _, plain_state = plain.update(scaled, plain.init(params))
        return clipped_state[1], plain_state

    # Adam's first step is scale-invariant, so compare its moments instead of the step.
    _assert_trees_close(*first_states(grads, scaled))


def test_bad_arguments_fail_early():
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("sgd", 0.1, eps=1e-8)
    optimizer = make_optimizer("adam", 0.1, eps=1e-8)
    with pytest.raises(ValueError, match="loss"):
        representations.scalar("l1")
    with pytest.raises(ValueError, match="period"):
        make_dqn(_network(), optimizer, target_update_period=0)
    with pytest.raises(ValueError, match="tau"):
        make_dqn(_network(), optimizer, target_update_tau=1.5)


def test_state_can_be_donated():
    agent = make_dqn(_network(), make_optimizer("adam", 1e-2, 1e-4))
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    new_state, _ = jax.jit(agent.update, donate_argnums=0)(state, _batch(0))
    assert new_state.update_count == 1


# (2) Target network updates.


def test_hard_target_sync_every_period():
    agent = make_dqn(_network(), make_optimizer("adam", 1e-2, 1e-4), target_update_period=3)
    update = jax.jit(agent.update)
    state = _init_with_distinct_target(agent)
    expected_target = state.target_params
    for step in range(1, 7):
        state, _ = update(state, _batch(step))
        if step % 3 == 0:
            expected_target = state.params
        _assert_trees_equal(state.target_params, expected_target)
    assert state.update_count == 6


def test_hard_sync_is_exact_with_traced_tau():
    optimizer = make_optimizer("adam", 1e-2, 1e-4)

    @jax.jit
    def update(tau, state, batch):
        return make_dqn(_network(), optimizer, target_update_tau=tau).update(state, batch)

    agent = make_dqn(_network(), optimizer)
    state, _ = update(jnp.float32(1.0), _init_with_distinct_target(agent), _batch(0))
    _assert_trees_equal(state.target_params, state.params)


def test_polyak_target_update():
    agent = make_dqn(
        _network(),
        make_optimizer("adam", 1e-2, 1e-4),
        target_update_period=1,
        target_update_tau=0.5,
    )
    state = _init_with_distinct_target(agent)
    for step in range(2):
        old_target = state.target_params
        state, _ = jax.jit(agent.update)(state, _batch(step))
        expected = jax.tree.map(lambda o, t: 0.5 * o + 0.5 * t, state.params, old_target)
        _assert_trees_close(state.target_params, expected, rtol=1e-6, atol=1e-7)


# (3) Acting.


class TestAct:
    num_envs = 8000

    @pytest.fixture(scope="class")
    def setup(self):
        # Uniform actions for the first 10 agent steps, then greedy; evaluation at 0.5.
        agent = make_dqn(
            _network(),
            make_optimizer("adam", 1e-3, 1e-4),
            epsilon=lambda step: jnp.where(step < 10, 1.0, 0.0),
            eval_epsilon=0.5,
        )
        state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
        return agent, state

    def test_greedy_after_the_schedule(self, setup):
        agent, state = setup
        obs = jax.random.normal(jax.random.key(1), (256, OBS_DIM))
        actions = jax.jit(agent.act)(state, obs, jax.random.key(2), 10)
        assert actions.shape == (256,) and actions.dtype == jnp.int32
        np.testing.assert_array_equal(actions, jnp.argmax(agent.q_values(state.params, obs), -1))
        assert len(np.unique(actions)) > 1

    def test_uniform_while_epsilon_is_one(self, setup):
        agent, state = setup
        # Every env sees the same observation, so any spread comes from per-env draws.
        obs = jnp.ones((self.num_envs, OBS_DIM))
        actions = jax.jit(agent.act)(state, obs, jax.random.key(3), 9)
        counts = np.bincount(np.asarray(actions), minlength=NUM_ACTIONS)
        expected = self.num_envs / NUM_ACTIONS
        np.testing.assert_array_less(np.abs(counts - expected), 0.1 * expected)

    def test_evaluation_mixes_at_eval_epsilon(self, setup):
        agent, state = setup
        obs = jnp.ones((self.num_envs, OBS_DIM))
        greedy = jnp.argmax(agent.q_values(state.params, obs[0]))
        actions = jax.jit(agent.eval_act)(state, obs, jax.random.key(4))
        greedy_fraction = float(jnp.mean(actions == greedy))
        assert abs(greedy_fraction - (0.5 + 0.5 / NUM_ACTIONS)) < 0.03

    def test_epsilon_greedy_breaks_ties_to_the_lowest_action(self):
        q = jnp.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
        np.testing.assert_array_equal(epsilon_greedy(q, jax.random.key(0), 0.0), [1, 0])


# (4) Seeds as a vmapped axis.


@pytest.fixture
def on_cpu():
    with jax.default_device(jax.devices("cpu")[0]):
        yield


@pytest.mark.parametrize("name", ["scalar", "c51", "hl_gauss", "two_hot", "quantile"])
def test_vmapped_seeds_equal_separate_runs(on_cpu, name):
    """Bit for bit on CPU (the guarantee the seed axis relies on), for every representation."""
    if name == "scalar":
        representation = representations.scalar()
    elif name == "quantile":
        representation = representations.quantile(11)
    else:
        representation = getattr(representations, name)(-3.0, 3.0, 11)
    agent = make_dqn(
        QNetwork(MLP((16,)), NUM_ACTIONS, representation.num_outputs),
        make_optimizer("adam", 1e-2, 1e-4),
        representation,
        target_rule="double",
        target_update_period=2,
        eval_epsilon=0.3,
    )
    num_seeds, sample_obs = 3, jnp.zeros(OBS_DIM)
    keys = jax.random.split(jax.random.key(7), num_seeds)
    batches = [[_batch(10 * seed + step) for seed in range(num_seeds)] for step in range(3)]
    obs = jax.random.normal(jax.random.key(8), (num_seeds, 5, OBS_DIM))
    act_keys = jax.random.split(jax.random.key(9), num_seeds)

    vmapped_states = jax.jit(jax.vmap(agent.init, in_axes=(0, None)))(keys, sample_obs)
    vmapped_update = jax.jit(jax.vmap(agent.update))
    vmapped_metrics = []
    for step_batches in batches:
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *step_batches)
        vmapped_states, metrics = vmapped_update(vmapped_states, stacked)
        vmapped_metrics.append(metrics)
    vmapped_actions = jax.jit(jax.vmap(agent.eval_act))(vmapped_states, obs, act_keys)

    init, update, act = jax.jit(agent.init), jax.jit(agent.update), jax.jit(agent.eval_act)
    for seed in range(num_seeds):
        state = init(keys[seed], sample_obs)
        for step, step_batches in enumerate(batches):
            state, metrics = update(state, step_batches[seed])
            _assert_trees_equal(metrics, _take(vmapped_metrics[step], seed))
        _assert_trees_equal(state, _take(vmapped_states, seed))
        np.testing.assert_array_equal(act(state, obs[seed], act_keys[seed]), vmapped_actions[seed])


def test_learning_rate_can_be_vmapped():
    @jax.jit
    def update(learning_rate, state, batch):
        optimizer = make_optimizer("rmsprop", learning_rate, eps=0.01)
        huber = representations.scalar("huber")
        return make_dqn(_network(), optimizer, huber).update(state, batch)

    agent = make_dqn(_network(), make_optimizer("rmsprop", 0.0, eps=0.01))
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    learning_rates = jnp.array([1e-3, 1e-2])
    swept, _ = jax.jit(jax.vmap(update, in_axes=(0, None, None)))(learning_rates, state, _batch(0))
    for i, learning_rate in enumerate(learning_rates):
        single, _ = update(learning_rate, state, _batch(0))
        _assert_trees_close(_take(swept, i), single)


# (5) Learning a small MDP.


def test_learns_two_state_mdp_fixed_point():
    gamma = 0.5
    # (state, action) -> (next state, reward, continues); (1, 1) terminates.
    dynamics = {(0, 0): (0, 0.0, 1), (0, 1): (1, 1.0, 1), (1, 0): (0, 2.0, 1), (1, 1): (1, -1.0, 0)}
    q_star = np.zeros((2, 2))
    for _ in range(500):
        for (s, a), (s_next, r, cont) in dynamics.items():
            q_star[s, a] = r + gamma * cont * q_star[s_next].max()

    states, actions = zip(*dynamics, strict=True)
    next_states, rewards, continues = zip(*dynamics.values(), strict=True)
    one_hot = functools.partial(jax.nn.one_hot, num_classes=2)
    batch = Transition(
        obs_tm1=one_hot(jnp.array(states)),
        action_tm1=jnp.array(actions, jnp.int32),
        reward_t=jnp.array(rewards, jnp.float32),
        discount_t=gamma * jnp.array(continues, jnp.float32),
        obs_t=one_hot(jnp.array(next_states)),
    )
    agent = make_dqn(
        QNetwork(MLP((32,)), 2),
        make_optimizer("adam", 1e-2, 1e-4),
        target_rule="double",
        target_update_period=10,
    )
    state = agent.init(jax.random.key(0), jnp.zeros(2))

    @jax.jit
    def train(state):
        def step(state, _):
            return agent.update(state, batch)[0], None

        return jax.lax.scan(step, state, length=1500)[0]

    q = agent.q_values(train(state).params, jnp.eye(2))
    np.testing.assert_allclose(q, q_star, atol=0.05)
