"""MD3QN, MMDQN and HRA as DQN agents: one update's loss against a NumPy brute force for
each target rule (greedy on the mean particle, per-head greedy, uniformly random), the
policy-evaluation behaviour, reward vectors summed for scalar critics, and vmapped seeds
equal to separate runs bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import Transition, make_dqn, make_optimizer, representations
from agents.dqn import bootstrap_actions
from agents.losses import MD3QN_KERNEL, MMDQN_KERNEL
from networks import MLP, QNetwork
from tests.test_mmd import brute_force_mmd, md3qn_kernel, mmdqn_kernel

OBS_DIM, NUM_ACTIONS, BATCH, NUM_SOURCES, NUM_PARTICLES = 3, 4, 16, 2, 5


@pytest.fixture(autouse=True)
def _strict_numerics():
    with jax.numpy_rank_promotion("raise"), jax.default_matmul_precision("highest"):
        yield


def _batch(seed: int, num_sources: int = NUM_SOURCES) -> Transition:
    rng = np.random.default_rng(seed)
    discount_t = np.where(rng.random(BATCH) < 0.25, 0.0, 0.99).astype(np.float32)
    return Transition(
        obs_tm1=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
        action_tm1=jnp.asarray(rng.integers(0, NUM_ACTIONS, BATCH), jnp.int32),
        reward_t=jnp.asarray(rng.uniform(0, 1, size=(BATCH, num_sources)), jnp.float32),
        discount_t=jnp.asarray(discount_t),
        obs_t=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
    )


def _agent(representation, target_rule: str, first_action=None, epsilon=0.0):
    network = QNetwork(MLP((16,)), NUM_ACTIONS, representation.num_outputs)
    agent = make_dqn(
        network,
        make_optimizer("adam", 1e-2, 1e-4),
        representation,
        target_rule=target_rule,
        target_update_period=2,
        epsilon=epsilon,
        first_action=first_action,
    )
    return agent, network


def _state_with_distinct_target(agent):
    key, target_key = jax.random.split(jax.random.key(0))
    state = agent.init(key, jnp.zeros(OBS_DIM))
    return state._replace(target_params=agent.init(target_key, jnp.zeros(OBS_DIM)).params)


def _outputs(network, params, obs, width: int) -> np.ndarray:
    return np.asarray(network.apply(params, obs), np.float64).reshape(BATCH, NUM_ACTIONS, width)


@pytest.mark.parametrize("target_rule", ["max", "uniform"])
def test_md3qn_loss_is_the_mmd_to_the_target_particles(target_rule):
    representation = representations.particles(NUM_PARTICLES, NUM_SOURCES, MD3QN_KERNEL)
    agent, network = _agent(representation, target_rule)
    state = _state_with_distinct_target(agent)
    batch, key = _batch(1), jax.random.key(5)
    _, metrics = jax.jit(agent.update)(state, batch, key)

    width = NUM_PARTICLES * NUM_SOURCES
    out_tm1 = _outputs(network, state.params, batch.obs_tm1, width)
    out_t = _outputs(network, state.target_params, batch.obs_t, width)
    if target_rule == "max":  # greedy on the mean over particles and sources, target net
        a_t = out_t.mean(axis=-1).argmax(axis=-1)
    else:  # one uniformly random action per transition, drawn from the update's key
        a_t = np.asarray(jax.random.randint(key, (BATCH,), 0, NUM_ACTIONS))
    losses = []
    for i in range(BATCH):
        z = out_tm1[i, batch.action_tm1[i]].reshape(NUM_PARTICLES, NUM_SOURCES)
        z_t = out_t[i, a_t[i]].reshape(NUM_PARTICLES, NUM_SOURCES)
        y = np.asarray(batch.reward_t[i], np.float64) + float(batch.discount_t[i]) * z_t
        losses.append(brute_force_mmd(z, y, md3qn_kernel))
    np.testing.assert_allclose(metrics["loss"], np.mean(losses), rtol=1e-4, atol=1e-6)


def test_mmdqn_learns_the_sum_of_the_reward_vector():
    """A one-source critic meets a reward vector as the sum of its sources."""
    representation = representations.particles(NUM_PARTICLES, 1, MMDQN_KERNEL)
    agent, network = _agent(representation, "max")
    state = _state_with_distinct_target(agent)
    batch = _batch(2)
    _, metrics = jax.jit(agent.update)(state, batch)
    _, summed_metrics = jax.jit(agent.update)(
        state, batch._replace(reward_t=jnp.sum(batch.reward_t, axis=-1))
    )
    np.testing.assert_array_equal(metrics["loss"], summed_metrics["loss"])

    out_tm1 = _outputs(network, state.params, batch.obs_tm1, NUM_PARTICLES)
    out_t = _outputs(network, state.target_params, batch.obs_t, NUM_PARTICLES)
    a_t = out_t.mean(axis=-1).argmax(axis=-1)
    reward = np.asarray(batch.reward_t, np.float64).sum(axis=-1)
    losses = [
        brute_force_mmd(
            out_tm1[i, batch.action_tm1[i]][:, None],
            (reward[i] + float(batch.discount_t[i]) * out_t[i, a_t[i]])[:, None],
            mmdqn_kernel,
        )
        for i in range(BATCH)
    ]
    np.testing.assert_allclose(metrics["loss"], np.mean(losses), rtol=1e-4, atol=1e-6)


def test_hra_heads_bootstrap_from_their_own_greedy_actions():
    representation = representations.heads(NUM_SOURCES)
    agent, network = _agent(representation, "per_head")
    state = _state_with_distinct_target(agent)
    batch = _batch(3)
    _, metrics = jax.jit(agent.update)(state, batch)

    q_tm1 = _outputs(network, state.params, batch.obs_tm1, NUM_SOURCES)
    q_t = _outputs(network, state.target_params, batch.obs_t, NUM_SOURCES)
    expected, targets = 0.0, []
    for i in range(BATCH):
        target = [
            float(batch.reward_t[i, n])
            + float(batch.discount_t[i]) * q_t[i, np.argmax(q_t[i, :, n]), n]
            for n in range(NUM_SOURCES)
        ]
        taken = q_tm1[i, batch.action_tm1[i]]
        expected += sum((target[n] - taken[n]) ** 2 for n in range(NUM_SOURCES)) / BATCH
        targets.append(sum(target))
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["target_mean"], np.mean(targets), rtol=1e-5)
    q_taken = [q_tm1[i, batch.action_tm1[i]].sum() for i in range(BATCH)]
    np.testing.assert_allclose(metrics["q_mean"], np.mean(q_taken), rtol=1e-5)


def test_per_head_actions_differ_from_the_greedy_action_of_the_sum():
    """The rule picks per output: head n's argmax over actions, not the argmax of the sum."""
    out_t = jnp.array([[[3.0, 0.0], [0.0, 2.0], [2.0, 1.5]]])  # (B=1, A=3, N=2)
    heads = representations.heads(2)
    np.testing.assert_array_equal(bootstrap_actions("per_head", heads, out_t), [[0, 1]])
    np.testing.assert_array_equal(bootstrap_actions("max", heads, out_t), [2])


def test_uniform_bootstrap_actions_are_uniform():
    out_t = jnp.zeros((20_000, NUM_ACTIONS, 1))
    scalar = representations.scalar()
    actions = np.asarray(bootstrap_actions("uniform", scalar, out_t, key=jax.random.key(0)))
    frequencies = np.bincount(actions, minlength=NUM_ACTIONS) / actions.size
    # 4 standard errors of a frequency 1/4 over 20k draws: 4 * sqrt(3/16 / 20000) = 0.012.
    np.testing.assert_allclose(frequencies, 0.25, atol=0.012)


def test_policy_evaluation_behaviour_is_action_zero_then_uniform():
    representation = representations.particles(NUM_PARTICLES, NUM_SOURCES)
    agent, _ = _agent(representation, "uniform", first_action=0, epsilon=1.0)
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    num_envs = 4000
    obs = jax.random.normal(jax.random.key(1), (num_envs, OBS_DIM))
    first = jnp.arange(num_envs) % 2 == 0
    actions = np.asarray(jax.jit(agent.act)(state, obs, jax.random.key(2), 10, first))
    assert (actions[::2] == 0).all()
    frequencies = np.bincount(actions[1::2], minlength=NUM_ACTIONS) / (num_envs // 2)
    # 4 standard errors over 2000 draws: 4 * sqrt(3/16 / 2000) = 0.039.
    np.testing.assert_allclose(frequencies, 0.25, atol=0.039)
    eval_actions = np.asarray(jax.jit(agent.eval_act)(state, obs, jax.random.key(3), first))
    assert (eval_actions[::2] == 0).all()


def test_make_dqn_refuses_an_unknown_target_rule():
    with pytest.raises(ValueError, match="target rule"):
        _agent(representations.scalar(), "softmax")


@pytest.fixture
def on_cpu():
    with jax.default_device(jax.devices("cpu")[0]):
        yield


@pytest.mark.parametrize("mode", ["map", "vmap"])
@pytest.mark.parametrize(
    ("name", "target_rule"),
    [("md3qn", "max"), ("md3qn", "uniform"), ("mmdqn", "max"), ("hra", "per_head")],
)
def test_mapped_seeds_equal_separate_runs(on_cpu, name, target_rule, mode):
    """Three seeds mapped together equal each seed mapped alone (as the runner trains one
    seed or many), with reward vectors and (uniform rule) the update keys. With lax.map (the
    runner's bit-exact mode) states and actions are equal bit for bit on CPU; the logged
    metrics, reduced outside the gradient, may differ in the last bit. Vmapped, everything
    agrees to a few ulps: XLA:CPU vectorises the MMD's reductions differently for each batch
    size, which moves single bits for some particle shapes (M = 5, N = 1 here)."""
    representation = {
        "md3qn": lambda: representations.particles(NUM_PARTICLES, NUM_SOURCES, MD3QN_KERNEL),
        "mmdqn": lambda: representations.particles(NUM_PARTICLES, 1, MMDQN_KERNEL),
        "hra": lambda: representations.heads(NUM_SOURCES),
    }[name]()
    agent, _ = _agent(representation, target_rule, epsilon=0.3)
    num_seeds, sample_obs = 3, jnp.zeros(OBS_DIM)
    keys = jax.random.split(jax.random.key(7), num_seeds)
    batches = [[_batch(10 * seed + step) for seed in range(num_seeds)] for step in range(3)]
    update_keys = jax.random.split(jax.random.key(8), (3, num_seeds))
    obs = jax.random.normal(jax.random.key(9), (num_seeds, 5, OBS_DIM))
    act_keys = jax.random.split(jax.random.key(10), num_seeds)

    def over_seeds(fn):
        if mode == "vmap":
            return jax.jit(jax.vmap(fn))
        return jax.jit(lambda *args: jax.lax.map(lambda xs: fn(*xs), args))

    states = over_seeds(lambda key: agent.init(key, sample_obs))(keys)
    mapped_metrics = []
    for step, step_batches in enumerate(batches):
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *step_batches)
        states, metrics = over_seeds(agent.update)(states, stacked, update_keys[step])
        mapped_metrics.append(metrics)
    mapped_actions = over_seeds(lambda *args: agent.act(*args, 5))(states, obs, act_keys)

    if mode == "map":
        assert_equal = np.testing.assert_array_equal
    else:

        def assert_equal(actual, desired):
            np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-6)

    def one(tree, seed):  # seed `seed` alone, with a seed axis of length 1
        return jax.tree.map(lambda x: x[seed : seed + 1], tree)

    for seed in range(num_seeds):
        state = over_seeds(lambda key: agent.init(key, sample_obs))(one(keys, seed))
        for step, step_batches in enumerate(batches):
            batch = jax.tree.map(lambda x: x[None], step_batches[seed])
            state, metrics = over_seeds(agent.update)(state, batch, one(update_keys[step], seed))
            for metric, value in metrics.items():
                np.testing.assert_allclose(
                    value[0], mapped_metrics[step][metric][seed], rtol=1e-6, err_msg=metric
                )
        for leaf, stacked_leaf in zip(jax.tree.leaves(state), jax.tree.leaves(states), strict=True):
            assert_equal(leaf[0], stacked_leaf[seed])
        actions = over_seeds(lambda *args: agent.act(*args, 5))(
            state, one(obs, seed), one(act_keys, seed)
        )
        np.testing.assert_array_equal(actions[0], mapped_actions[seed])
