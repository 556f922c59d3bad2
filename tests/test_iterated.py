"""i-QN: rolling step and target sync against hand-written references, each link's target,
K = 1 == DQN, seed vmap, acting, bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents import make_dqn, make_optimizer, representations
from agents.iterated import make_iterated_dqn, roll_networks, select_networks
from networks import MLP, QNetwork
from networks.ensemble import QEnsemble
from tests.test_dqn import (
    BATCH,
    NUM_ACTIONS,
    OBS_DIM,
    _assert_trees_equal,
    _batch,
    _take,
)


@pytest.fixture(autouse=True)
def _strict_numerics():
    with jax.numpy_rank_promotion("raise"), jax.default_matmul_precision("highest"):
        yield


def _agent(num_networks=3, shared=False, sync=2, rolling=6, steps_per_update=1, lr=1e-2):
    ensemble = QEnsemble(MLP((16,)), num_networks, NUM_ACTIONS, 1, shared)
    optimizer = make_optimizer("adam", lr, 1e-4)
    agent = make_iterated_dqn(ensemble, optimizer, None, steps_per_update, sync, rolling)
    return ensemble, agent


def test_roll_and_select_on_small_trees():
    stacked = np.arange(12.0).reshape(3, 2, 2)
    independent = {"params": {"networks": {"w": stacked, "b": stacked[:, 0]}}}
    rolled = roll_networks(independent)["params"]["networks"]
    np.testing.assert_array_equal(rolled["w"], np.stack([stacked[1], stacked[2], stacked[2]]))
    np.testing.assert_array_equal(
        rolled["b"], np.stack([stacked[1, 0], stacked[2, 0]] * 1 + [stacked[2, 0]])
    )
    shared = {"params": {"torso": {"w": stacked}, "heads": {"w": stacked}}}
    rolled = roll_networks(shared)["params"]
    np.testing.assert_array_equal(rolled["torso"]["w"], stacked)  # shared: never shifted
    np.testing.assert_array_equal(rolled["heads"]["w"][:2], stacked[1:])
    first = select_networks(shared, slice(0, 1))["params"]
    np.testing.assert_array_equal(first["heads"]["w"], stacked[:1])
    np.testing.assert_array_equal(first["torso"]["w"], stacked)


@pytest.mark.parametrize("shared", [False, True])
def test_sync_and_rolling_schedule(shared):
    """After each update: the gradient step (from an agent whose periods never come), then
    the sync every D = 2 updates and the roll every T = 6 updates, written out by hand."""
    _, agent = _agent(shared=shared)
    _, no_events = _agent(shared=shared, sync=10**6, rolling=10**6)
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    update, plain_update = jax.jit(agent.update), jax.jit(no_events.update)
    for count in range(1, 13):
        batch = _batch(count)
        stepped, _ = plain_update(state, batch)  # the gradient step alone
        new, _ = update(state, batch)
        if count % 6 == 0:
            expected_params = roll_networks(stepped.params)
            _assert_trees_equal(new.anchor_params, select_networks(stepped.params, slice(0, 1)))
            _assert_trees_equal(new.params, expected_params)
            _assert_trees_equal(new.target_params, expected_params)
            _assert_trees_equal(new.opt_state[0].mu, roll_networks(stepped.opt_state[0].mu))
        else:
            _assert_trees_equal(new.params, stepped.params)
            _assert_trees_equal(new.anchor_params, state.anchor_params)
            synced = stepped.params if count % 2 == 0 else state.target_params
            _assert_trees_equal(new.target_params, synced)
        state = new


def test_periods_in_agent_steps_that_updates_do_not_divide():
    """D = 30 agent steps with an update every 4: syncs after the updates whose 4 agent
    steps contain a multiple of 30 (updates 8, 15, 23, 30, ...), as the official loop."""
    _, agent = _agent(sync=30, rolling=6000, steps_per_update=4)
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    update = jax.jit(agent.update)
    synced_at = []
    for count in range(1, 31):
        state, _ = update(state, _batch(count))
        leaves = zip(
            jax.tree.leaves(state.params), jax.tree.leaves(state.target_params), strict=True
        )
        if all(np.array_equal(a, b) for a, b in leaves):
            synced_at.append(count)
    assert synced_at == [u for u in range(1, 31) if (4 * u) // 30 > (4 * (u - 1)) // 30]
    assert synced_at[:4] == [8, 15, 23, 30]


def test_each_link_bootstraps_from_the_previous_network():
    ensemble, agent = _agent(num_networks=3)
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    # Distinct anchor and copies, so that a wrong network would give another loss.
    others = [agent.init(jax.random.key(k), jnp.zeros(OBS_DIM)) for k in (1, 2)]
    state = state._replace(anchor_params=others[0].anchor_params, target_params=others[1].params)
    batch = _batch(5)
    _, metrics = jax.jit(agent.update)(state, batch)

    single = QNetwork(MLP((16,)), NUM_ACTIONS)

    def network(params, index):  # network `index` of an ensemble, as a plain QNetwork
        return {"params": jax.tree.map(lambda x: x[index], params["params"]["networks"])}

    def q(params, obs):
        return np.asarray(single.apply(params, obs)[..., 0], np.float64)

    bootstrap = [network(state.anchor_params, 0)] + [
        network(state.target_params, k) for k in (0, 1)
    ]
    rows = np.arange(BATCH)
    reward, discount = np.asarray(batch.reward_t), np.asarray(batch.discount_t)
    for k in range(3):
        target = reward + discount * q(bootstrap[k], batch.obs_t).max(axis=1)
        q_taken = q(network(state.params, k), batch.obs_tm1)[rows, batch.action_tm1]
        np.testing.assert_allclose(
            metrics["link_loss"][k], np.mean((target - q_taken) ** 2), rtol=1e-5
        )
    np.testing.assert_allclose(metrics["loss"], np.sum(metrics["link_loss"]), rtol=1e-6)


def test_the_mean_over_links_is_the_sum_over_k():
    """link_loss_reduction "mean" (the authors' code): the sum's loss and gradient over K."""
    ensemble = QEnsemble(MLP((16,)), 3, NUM_ACTIONS)
    batch = _batch(5)
    steps, metrics = {}, {}
    for reduction in ("sum", "mean"):
        agent = make_iterated_dqn(ensemble, optax.sgd(1e-2), link_loss_reduction=reduction)
        state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
        new_state, metrics[reduction] = jax.jit(agent.update)(state, batch)
        steps[reduction] = jax.tree.map(jnp.subtract, new_state.params, state.params)
    np.testing.assert_allclose(metrics["mean"]["loss"], metrics["sum"]["loss"] / 3, rtol=1e-6)
    for total, mean in zip(
        jax.tree.leaves(steps["sum"]), jax.tree.leaves(steps["mean"]), strict=True
    ):
        np.testing.assert_allclose(mean, total / 3, rtol=1e-4, atol=1e-7)  # float32 new - old


@pytest.mark.parametrize("name", ["scalar", "c51", "quantile"])
def test_one_network_is_dqn(name):
    """K = 1 with rolling period T equals DQN with its target copied every T steps, from the
    same parameters, bit for bit."""
    if name == "scalar":
        representation = representations.scalar()
    elif name == "c51":
        representation = representations.c51(-3.0, 3.0, 11)
    else:
        representation = representations.quantile(11)
    m = representation.num_outputs
    optimizer = make_optimizer("adam", 1e-2, 1e-4)
    iterated = make_iterated_dqn(
        QEnsemble(MLP((16,)), 1, NUM_ACTIONS, m), optimizer, representation, 4, 8, 12
    )
    dqn = make_dqn(
        QNetwork(MLP((16,)), NUM_ACTIONS, m), optimizer, representation, target_update_period=3
    )
    state = iterated.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    network_params = {"params": _take(state.params["params"]["networks"], 0)}
    dqn_state = dqn.init(jax.random.key(1), jnp.zeros(OBS_DIM))._replace(
        params=network_params,
        target_params=network_params,
        opt_state=make_optimizer("adam", 1e-2, 1e-4).init(network_params),
    )
    for step in range(7):
        state, _ = jax.jit(iterated.update)(state, _batch(step))
        dqn_state, _ = jax.jit(dqn.update)(dqn_state, _batch(step))
        _assert_trees_equal(
            {"params": _take(state.params["params"]["networks"], 0)}, dqn_state.params
        )
        _assert_trees_equal(
            {"params": _take(state.anchor_params["params"]["networks"], 0)}, dqn_state.target_params
        )


def test_vmapped_seeds_equal_separate_runs():
    _, agent = _agent(shared=True)
    keys = jax.random.split(jax.random.key(3), 3)
    sample_obs = jnp.zeros(OBS_DIM)
    batches = [[_batch(10 * seed + step) for seed in range(3)] for step in range(7)]
    states = jax.jit(jax.vmap(agent.init, in_axes=(0, None)))(keys, sample_obs)
    vmapped_update = jax.jit(jax.vmap(agent.update))
    for step_batches in batches:
        states, _ = vmapped_update(states, jax.tree.map(lambda *x: jnp.stack(x), *step_batches))
    for seed in range(3):
        state = agent.init(keys[seed], sample_obs)
        for step_batches in batches:
            state, _ = jax.jit(agent.update)(state, step_batches[seed])
        _assert_trees_equal(state, _take(states, seed))


def test_acting_draws_a_head_uniformly():
    ensemble, agent = _agent(num_networks=2, lr=1e-3)
    state = agent.init(jax.random.key(0), jnp.zeros(OBS_DIM))
    candidates = jax.random.normal(jax.random.key(1), (256, OBS_DIM))
    greedy = np.asarray(jnp.argmax(ensemble.apply(state.params, candidates)[..., 0], axis=-1))
    differing = np.nonzero(greedy[0] != greedy[1])[0]
    assert len(differing) > 0
    obs = jnp.repeat(candidates[differing[:1]], 4000, axis=0)
    actions = np.asarray(jax.jit(agent.eval_act)(state, obs, jax.random.key(2)))
    head_0, head_1 = greedy[0, differing[0]], greedy[1, differing[0]]
    assert set(np.unique(actions)) == {head_0, head_1}
    assert abs(np.mean(actions == head_0) - 0.5) < 0.04


def test_bad_arguments_fail_early():
    optimizer = make_optimizer("adam", 1e-3, 1e-4)
    with pytest.raises(ValueError, match="at least one"):
        make_iterated_dqn(QEnsemble(MLP((4,)), 0, 2), optimizer)
    with pytest.raises(ValueError, match="positive"):
        make_iterated_dqn(QEnsemble(MLP((4,)), 2, 2), optimizer, target_sync_period=0)
    with pytest.raises(ValueError, match="positive"):
        make_iterated_dqn(QEnsemble(MLP((4,)), 2, 2), optimizer, rolling_period=-1)
    with pytest.raises(ValueError, match="exceeds"):
        make_iterated_dqn(
            QEnsemble(MLP((4,)), 2, 2), optimizer, target_sync_period=50, rolling_period=40
        )
    with pytest.raises(ValueError, match="link_loss_reduction='max'"):
        make_iterated_dqn(QEnsemble(MLP((4,)), 2, 2), optimizer, link_loss_reduction="max")
