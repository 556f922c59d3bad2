"""Schedules decided once for all seeds: every seed of a run has done the same number of
updates, so the runner passes that count unbatched and the agents' target copies, i-QN's
syncs and rolling steps and TD3's delayed actor step stay a lax.cond under the seed vmap
(the skipped branch is not computed) instead of a select of both branches."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.types import Transition
from experiments.config import Config
from experiments.runner import Trainer

SEEDS, BATCH, UPDATES = 3, 16, 6
CONFIGS = {
    "dqn_target_copy": Config(
        seeds=SEEDS, mlp_hidden=(16,), batch_size=BATCH, target_update_period=3
    ),
    "iterated_syncs_and_rolls": Config(
        agent="iterated",
        seeds=SEEDS,
        mlp_hidden=(16,),
        batch_size=BATCH,
        num_networks=2,
        target_sync_period=2,
        target_update_period=4,
    ),
    "td3_policy_delay": Config(
        env="InvertedPendulum-v4",
        agent="td3",
        seeds=SEEDS,
        mlp_hidden=(16,),
        batch_size=BATCH,
        target_update_tau=0.005,
        learning_starts=100,
    ),
}


def _has_cond(jaxpr) -> bool:
    """Whether a jaxpr (nested ones included) holds a lax.cond."""
    return " cond[" in str(jaxpr)


def _setup(name: str):
    """(trainer, the seeds' agent states, one random batch per update and seed)."""
    trainer = Trainer.create(CONFIGS[name])
    states = trainer.init_state().agent
    rng = np.random.default_rng(0)
    obs_shape, spec = trainer.replay.obs_shape, trainer.spec

    def batch() -> Transition:
        if spec.num_actions is None:
            low, high = spec.action_low, spec.action_high
            actions = rng.uniform(low, high, (SEEDS, BATCH, *spec.action_shape))
        else:
            actions = rng.integers(0, spec.num_actions, (SEEDS, BATCH))
        return Transition(
            obs_tm1=jnp.asarray(rng.normal(size=(SEEDS, BATCH, *obs_shape)), jnp.float32),
            action_tm1=jnp.asarray(actions, jnp.float32 if spec.num_actions is None else jnp.int32),
            reward_t=jnp.asarray(rng.normal(size=(SEEDS, BATCH)), jnp.float32),
            discount_t=jnp.asarray(rng.choice([0.0, 0.99], (SEEDS, BATCH)), jnp.float32),
            obs_t=jnp.asarray(rng.normal(size=(SEEDS, BATCH, *obs_shape)), jnp.float32),
        )

    return trainer, states, [batch() for _ in range(UPDATES)]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shared_count_keeps_the_schedule_a_cond_and_equals_each_seed_alone(name):
    trainer, states, batches = _setup(name)
    keys = jax.random.split(jax.random.key(1), (UPDATES, SEEDS))
    shared = jax.jit(jax.vmap(trainer.agent.update, in_axes=(0, 0, 0, None)))
    per_seed_counts = jax.vmap(trainer.agent.update, in_axes=(0, 0, 0, 0))

    # Shared count: the schedule stays a cond. Per-seed counts (the test's control): vmap
    # turns it into a select that computes both branches.
    args = (states, batches[0], keys[0])
    assert _has_cond(jax.make_jaxpr(shared)(*args, jnp.int32(0)))
    assert not _has_cond(jax.make_jaxpr(per_seed_counts)(*args, jnp.zeros(SEEDS, jnp.int32)))

    together = states
    for update in range(UPDATES):
        together, _ = shared(together, batches[update], keys[update], jnp.int32(update))
    update_alone = jax.jit(trainer.agent.update)
    for seed in range(SEEDS):
        alone = jax.tree.map(lambda leaf, seed=seed: leaf[seed], states)
        for update in range(UPDATES):
            batch = jax.tree.map(lambda leaf, seed=seed: leaf[seed], batches[update])
            alone, _ = update_alone(alone, batch, keys[update, seed])  # its own count
        jax.tree.map(
            lambda a, b, seed=seed: np.testing.assert_array_equal(a[seed], b),
            together,
            alone,
        )
    assert np.all(np.asarray(together.update_count) == UPDATES)


def test_td3_update_without_actor_step_computes_no_actor_gradient():
    """The branch an update takes: on odd counts nothing of the actor moves, and the
    runner's update call keeps the cond (one decision for the block of seeds)."""
    trainer, states, batches = _setup("td3_policy_delay")
    key = jax.random.split(jax.random.key(2), SEEDS)
    shared = jax.jit(jax.vmap(trainer.agent.update, in_axes=(0, 0, 0, None)))
    skipped, metrics = shared(states, batches[0], key, jnp.int32(0))  # update 1 of d = 2
    jax.tree.map(np.testing.assert_array_equal, skipped.actor_params, states.actor_params)
    jax.tree.map(np.testing.assert_array_equal, skipped.actor_opt_state, states.actor_opt_state)
    np.testing.assert_array_equal(metrics["actor_loss"], 0.0)
    stepped, metrics = shared(states, batches[0], key, jnp.int32(1))  # update 2: actor step
    assert all(
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(stepped.actor_params), jax.tree.leaves(states.actor_params), strict=True
        )
    )
    assert np.all(np.asarray(metrics["actor_loss"]) != 0.0)

    state = trainer.init_state()
    rows = _rows(trainer, num_rows=1)
    call = trainer.store_and_update(1)
    assert _has_cond(jax.make_jaxpr(call)(state, *rows, np.int32(0)))


def _rows(trainer: Trainer, num_rows: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random transitions (S, K, E, ...) in the layout of the runner's store call."""
    spec, c = trainer.spec, trainer.config
    rng = np.random.default_rng(seed)
    lead = (c.seeds, num_rows, c.envs_per_seed)
    if spec.num_actions is None:
        actions = rng.uniform(spec.action_low, spec.action_high, lead + spec.action_shape)
    else:
        actions = rng.integers(0, spec.num_actions, lead)
    return (
        rng.normal(size=lead + spec.frame_shape).astype(spec.frame_dtype),
        actions.astype(np.float32 if spec.num_actions is None else np.int32),
        rng.normal(size=lead + spec.reward_shape).astype(np.float32),
        rng.random(lead) < 0.1,
        np.zeros(lead, bool),
        np.zeros(lead, bool),
    )


def test_runner_shares_the_seeds_update_count():
    """The count the runner shares is the seeds' own: a DQN run's target copies land on
    every third update, as its target_update_period says."""
    trainer = Trainer.create(dataclasses.replace(CONFIGS["dqn_target_copy"], learning_starts=64))
    state = trainer.init_state()
    rows = _rows(trainer, num_rows=64)
    state = trainer.store_and_update(0)(state, *rows, np.int32(64))
    call = trainer.store_and_update(1)
    for update in range(1, 7):
        before = np.array(jax.tree.leaves(state.agent.target_params)[0])  # the call donates
        state = call(state, *_rows(trainer, num_rows=1, seed=update), np.int32(64 + update))
        moved = not np.array_equal(jax.tree.leaves(state.agent.target_params)[0], before)
        assert moved == (update % 3 == 0), update
        np.testing.assert_array_equal(state.num_updates, update)
