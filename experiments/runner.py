"""The training loop: one host loop steps an envpool pool for all seeds; every seed acts in
one jitted call per step, and one call per update period writes the period's transitions to
every seed's replay and runs the updates."""

import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.extend.core import Var
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from agents import Agent
from envs import EnvSpec, StepResult, VecEnv, make_env
from experiments.checkpoint import Checkpointer, nan_to_none, none_to_nan
from experiments.config import Config, Member, validate
from experiments.errors import check
from experiments.families import FAMILIES, build_agent
from experiments.logger import (
    CONFIG_FILE,
    RunLogger,
    check_run_dir,
    check_writable,
    plot_learning_curves,
    run_record,
)
from experiments.replay import Replay, ReplayState, stack_frames
from experiments.report import format_report
from experiments.results import load_runs
from experiments.xla_cpu import unroll_threefry

SEED_AXIS = "seeds"
STORE_CHUNK = 64  # loop steps whose transitions one replay write takes, without updates
_EVAL_STREAM = 1  # key and environment-seed stream of evaluation (training uses 0)
unroll_threefry()  # the loop's small random draws, without loops on CPU


class NonFiniteLossError(FloatingPointError):
    """The loss of some seed became NaN or infinite."""


class SeedState(NamedTuple):
    """Everything one seed carries on device; the runner stacks it along a seed axis."""

    agent: Any  # the agent's state (DQNState, IteratedState, TD3State)
    replay: ReplayState
    obs_stack: jax.Array  # (E, *obs_shape): the stacked observation the agent acts on
    key: jax.Array
    gamma: jax.Array  # this agent's discount (a sweep may vary it)
    metric_sums: dict[str, jax.Array]  # the agent's update metrics summed since the last log
    num_updates: jax.Array
    nonfinite_step: jax.Array  # first agent step with a non-finite loss, -1 if none


def make_replay(config: Config, spec: EnvSpec) -> Replay:
    return Replay(
        capacity=config.replay_capacity,
        num_envs=config.envs_per_seed,
        frame_shape=spec.frame_shape,
        frame_dtype=spec.frame_dtype,
        action_shape=spec.action_shape,
        action_dtype=jnp.int32 if spec.num_actions is not None else jnp.float32,
        frame_stack=spec.frame_stack,
        n_step=config.n_step,
        batch_size=config.batch_size,
        reward_shape=spec.reward_shape,
        restart_stack_at_termination=spec.restart_stack_at_termination,
    )


def seed_axis_mode(config: Config) -> str:
    """The seed mapping "auto" stands for: vmap everywhere for now. The sequential map was
    meant for the Nature CNN on CPU, but experiments.bench measured it copying every seed's
    replay on each step (257 ms vs 13.5 ms per step at 8 seeds with a 10k replay)."""
    return "vmap" if config.seed_axis == "auto" else config.seed_axis


def over_seeds(
    fn: Callable,
    mode: str,
    num_per_seed: int,
    mesh: Mesh | None = None,
    lockstep: Callable[..., tuple] | None = None,
) -> Callable:
    """Maps `fn` over the leading seed axis of its first `num_per_seed` arguments; the
    remaining arguments are shared by all seeds. With a mesh of several devices, each
    device maps over its own block of seeds (shard_map; seeds never communicate).

    `lockstep`, if given, reads values that every seed of a block holds alike (the seeds'
    common update count) from the block's per-seed arguments; they reach `fn` after the
    shared arguments, unbatched, so that decisions on them are taken once for all seeds.
    """

    def mapped(*args):
        if lockstep is not None:
            args = (*args, *lockstep(*args[:num_per_seed]))
        per_seed, shared = args[:num_per_seed], args[num_per_seed:]
        if mode == "vmap":
            axes = (0,) * num_per_seed + (None,) * len(shared)
            return jax.vmap(fn, in_axes=axes)(*args)
        return jax.lax.map(lambda xs: fn(*xs, *shared), per_seed)

    if mesh is None or mesh.size == 1:
        return mapped

    def sharded(*args):
        specs = (P(SEED_AXIS),) * num_per_seed + (P(),) * (len(args) - num_per_seed)
        # No varying-axis checks: seeds use no collectives, and a schedule's lax.cond may
        # pass a per-device constant (a fresh zero bias) on one branch, a value on the other.
        return jax.shard_map(
            mapped, mesh=mesh, in_specs=specs, out_specs=P(SEED_AXIS), check_vma=False
        )(*args)

    return sharded


def seed_mesh(config: Config) -> Mesh:
    """A one-axis mesh over the local devices that share the seed axis."""
    devices = jax.local_devices()[: config.devices or None]
    return Mesh(np.array(devices), (SEED_AXIS,))


def derive_env_seed(run_seed: int, iteration: int, stream: int) -> int:
    """Environment seed of an iteration's pool, derived from the run seed only."""
    return int(np.random.SeedSequence([run_seed, iteration, stream]).generate_state(1)[0])


def seed_keys(run_seed: int, seed_indices: np.ndarray) -> jax.Array:
    """One key per seed: seed i of a run is the same stream whatever the number of seeds."""
    base = jax.random.key(run_seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(seed_indices))


class LoopCalls(NamedTuple):
    """The jitted calls of the training loop (`Trainer.loop_calls`)."""

    act: Callable  # `Trainer.act`
    store: Callable  # `Trainer.store_and_update(0)`
    store_and_update: Callable  # `Trainer.store_and_update(updates per call)`


@dataclasses.dataclass
class Trainer:
    """Builds the jitted per-step functions of a config and runs its loop."""

    config: Config
    spec: EnvSpec
    agent: Agent
    replay: Replay
    mode: str
    mesh: Mesh
    members: list[Member]

    @classmethod
    def create(cls, config: Config) -> "Trainer":
        spec = validate(config)
        return cls(
            config,
            spec,
            build_agent(config, spec),
            make_replay(config, spec),
            seed_axis_mode(config),
            seed_mesh(config),
            config.members(),
        )

    @property
    def num_members(self) -> int:
        """Agents trained side by side: sweep points x seeds (the mapped axis)."""
        return len(self.members)

    @property
    def seed_indices(self) -> list[int]:
        return [member.seed for member in self.members]

    def init_state(self) -> SeedState:
        """The initial state of every member, stacked along the mapped axis."""
        keys = seed_keys(self.config.seed, np.asarray(self.seed_indices))
        learning_rates, gammas = (
            np.array([m.hyperparameters[name] for m in self.members], np.float32)
            for name in ("learning_rate", "gamma")
        )
        return self.init(keys, learning_rates, gammas)

    # Per-seed pure functions ---------------------------------------------------------

    def _init_seed(self, key: jax.Array, learning_rate: jax.Array, gamma: jax.Array) -> SeedState:
        init_key, run_key = jax.random.split(key)
        obs_shape = self.replay.obs_shape
        sample_obs = jnp.zeros(obs_shape, self.spec.frame_dtype)
        agent = self.agent.init(init_key, sample_obs)
        _set_learning_rate(agent, learning_rate)
        replay = self.replay.init()
        batch = jax.eval_shape(self.replay.sample, replay, run_key, gamma)
        _, metrics = jax.eval_shape(self.agent.update, agent, batch, run_key)
        return SeedState(
            agent=agent,
            replay=replay,
            obs_stack=jnp.zeros((self.config.envs_per_seed, *obs_shape), self.spec.frame_dtype),
            key=run_key,
            gamma=gamma,
            metric_sums=jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metrics),
            num_updates=jnp.zeros((), jnp.int32),
            nonfinite_step=jnp.full((), -1, jnp.int32),
        )

    def _act(self, acting_leaves, obs_stack, key, frame, stack_starts, first, step):
        leaves = iter(acting_leaves)
        mask, treedef = self._acting_mask
        agent_state = treedef.unflatten([next(leaves) if read else None for read in mask])
        obs_stack = stack_frames(obs_stack, frame, stack_starts)
        key, act_key = jax.random.split(key)
        action = self.agent.act(agent_state, obs_stack, act_key, step, first)
        return obs_stack, key, action

    @functools.cached_property
    def _acting_mask(self) -> tuple[tuple[bool, ...], Any]:
        """(which leaves of an agent state `Agent.act` reads, the state's tree structure),
        found by tracing act once (DQN reads its online parameters, not its target or
        optimiser state)."""
        key = jax.random.key(0)
        sample_obs = jnp.zeros(self.replay.obs_shape, self.spec.frame_dtype)
        agent_state = jax.eval_shape(self.agent.init, key, sample_obs)
        leaves, treedef = jax.tree.flatten(agent_state)
        obs = jnp.zeros((self.config.envs_per_seed, *self.replay.obs_shape), self.spec.frame_dtype)
        first = jnp.zeros(self.config.envs_per_seed, bool)

        def act(leaves):
            return self.agent.act(treedef.unflatten(leaves), obs, key, jnp.int32(0), first)

        jaxpr = jax.make_jaxpr(act)(leaves).jaxpr
        used = [var for eqn in jaxpr.eqns for var in eqn.invars] + list(jaxpr.outvars)
        read = {var for var in used if isinstance(var, Var)}  # not literals
        return tuple(var in read for var in jaxpr.invars), treedef

    def acting_leaves(self, agent_states: Any) -> list[jax.Array]:
        """The leaves of the agent states (any leading axes) that `Agent.act` reads: all
        that crosses the jit boundary from them at each loop step."""
        mask, _ = self._acting_mask
        return [
            leaf for leaf, read in zip(jax.tree.leaves(agent_states), mask, strict=True) if read
        ]

    def _store(self, replay: ReplayState, rows: tuple[jax.Array, ...]) -> ReplayState:
        """Writes rows (frames, actions, rewards, terminated, truncated, first), each with a
        leading axis of the loop steps they come from, in order."""

        def add(replay: ReplayState, row: tuple[jax.Array, ...]) -> tuple[ReplayState, None]:
            return self.replay.add(replay, *row), None

        # A scan, even for a few rows: unrolled writes let XLA fuse the last one into the
        # sampling gather, which then copies the whole frame buffer (2 copies per call, +70%
        # on a 1-seed Pong update with a 10k replay).
        return jax.lax.scan(add, replay, rows)[0]

    def run_updates(
        self, state: SeedState, step, num_updates: int, update_count: jax.Array
    ) -> SeedState:
        """One seed's `num_updates` gradient steps on batches from its replay; `step` (the
        agent step) is recorded if a loss turns non-finite. `update_count`, the updates done
        before, is the count every seed shares (see `Agent.update`)."""

        def one_update(state: SeedState, count: jax.Array) -> tuple[SeedState, None]:
            key, sample_key, update_key = jax.random.split(state.key, 3)
            batch = self.replay.sample(state.replay, sample_key, state.gamma)
            agent, metrics = self.agent.update(state.agent, batch, update_key, count)
            loss = metrics["loss"]
            nonfinite = (state.nonfinite_step < 0) & ~jnp.isfinite(loss)
            return state._replace(
                agent=agent,
                key=key,
                metric_sums=jax.tree.map(jnp.add, state.metric_sums, metrics),
                num_updates=state.num_updates + 1,
                nonfinite_step=jnp.where(nonfinite, step, state.nonfinite_step),
            ), None

        if num_updates > 8:
            counts = update_count + jnp.arange(num_updates, dtype=jnp.int32)
            return jax.lax.scan(one_update, state, counts)[0]
        # A few updates are written out: in a scan (even a fully unrolled one) XLA:CPU ran
        # one Nature-CNN update 5-9x slower (experiments.bench, runner_call row).
        for index in range(num_updates):
            state, _ = one_update(state, update_count + index)
        return state

    def _eval_act(self, agent_state, obs_stack, frame, first, key, counter):
        obs_stack = stack_frames(obs_stack, frame, first)
        action = self.agent.eval_act(
            agent_state, obs_stack, jax.random.fold_in(key, counter), first
        )
        return obs_stack, action

    # Jitted, seed-mapped functions ----------------------------------------------------

    def _seed_jit(
        self,
        fn: Callable,
        num_per_seed: int,
        num_shared: int,
        lockstep: Callable[..., tuple] | None = None,
        **jit_kwargs,
    ) -> Callable:
        """jax.jit of `fn` mapped over seeds (`over_seeds`), whose per-seed arguments live on
        the devices that own the seeds and shared ones on every device. Host (NumPy)
        arguments are passed as they are: the call places them, far faster per step than a
        separate device_put."""
        seeds, shared = NamedSharding(self.mesh, P(SEED_AXIS)), NamedSharding(self.mesh, P())
        return jax.jit(
            over_seeds(fn, self.mode, num_per_seed, self.mesh, lockstep),
            in_shardings=(seeds,) * num_per_seed + (shared,) * num_shared,
            **jit_kwargs,
        )

    @property
    def init(self) -> Callable[[jax.Array, jax.Array, jax.Array], SeedState]:
        """(keys, learning rates, gammas), each (members,) -> stacked state."""
        return self._seed_jit(self._init_seed, 3, 0)

    @property
    def act(self) -> Callable:
        """(acting leaves of the agent states (`acting_leaves`), frame stacks, keys, frame,
        stack starts, first, agent step) -> (frame stacks, keys, actions (S, E, ...)): the
        training behaviour at the agent step of this loop step; its only inputs from the
        pool are the frame and the flags."""
        return self._seed_jit(self._act, 6, 1)

    def store_and_update(self, num_updates: int) -> Callable:
        """(state, rows (frames, actions, rewards, terminated, truncated, first), each (S, K,
        E, ...) for K loop steps, agent step) -> state with the rows in the replays, after
        `num_updates` gradient steps per seed. Every seed has done the same number of updates:
        that count is read once per device and shared, so the agents' schedules are decided
        once (`Agent.update`)."""

        def per_seed(state: SeedState, *rows_step_count) -> SeedState:
            *rows, step, update_count = rows_step_count
            # The rows arrive step-major per seed: (K, E, ...).
            state = state._replace(replay=self._store(state.replay, tuple(rows)))
            return self.run_updates(state, step, num_updates, update_count)

        def update_count(state: SeedState, *rows) -> tuple[jax.Array]:
            return (state.num_updates[0],)

        return self._seed_jit(per_seed, 7, 1, lockstep=update_count, donate_argnums=0)

    def loop_calls(self) -> LoopCalls:
        """The jitted calls of the training loop, with the config's updates per call."""
        return LoopCalls(
            self.act,
            self.store_and_update(0),
            self.store_and_update(self.updates_per_loop_step()[1]),
        )

    @property
    def eval_act(self) -> Callable:
        """(agent states, frame stacks, frame, first, keys, counter) -> (frame stacks,
        actions (S, E)): the evaluation policy."""
        return self._seed_jit(self._eval_act, 5, 1)

    def to_device(self, *arrays: np.ndarray) -> tuple[jax.Array, ...]:
        """Host arrays with a leading seed axis, placed on the devices that own the seeds."""
        return jax.device_put(arrays, NamedSharding(self.mesh, P(SEED_AXIS)))

    # Schedules --------------------------------------------------------------------------

    def updates_per_loop_step(self) -> tuple[int, int]:
        """(loop steps between update calls, updates per call): an update every
        `update_period` agent steps, each loop step being `envs_per_seed` agent steps."""
        c = self.config
        if c.envs_per_seed >= c.update_period:
            return 1, c.envs_per_seed // c.update_period
        return c.update_period // c.envs_per_seed, 1

    def stores_due(self, agent_step: int) -> bool:
        """Whether the loop step that starts at `agent_step` ends with a call that writes the
        transitions kept on the host to the replays (with the updates where due)."""
        loop_every, _ = self.updates_per_loop_step()
        return (agent_step // self.config.envs_per_seed + 1) % loop_every == 0

    def update_due(self, agent_step: int) -> bool:
        """Whether the loop step that starts at `agent_step` ends with an update call."""
        steps_after = agent_step + self.config.envs_per_seed
        return steps_after >= self.config.learning_starts and self.stores_due(agent_step)

    def epsilon(self, agent_step: int) -> float | None:
        """The training exploration rate at an agent step, for the logs; None for a family
        that explores otherwise."""
        exploration = FAMILIES[self.config.agent].exploration
        return None if exploration is None else float(exploration(self.config)(agent_step))


@dataclasses.dataclass
class Loop:
    """The host side of the training loop on one pool: acts on each of the pool's results
    and keeps the transitions on the host until the call that brings the next updates (or,
    before learning starts, a call per `STORE_CHUNK` loop steps, and `flush`) writes them
    to the replays, so that a loop step without updates crosses the jit boundary once, with
    only what acting needs. The replays and every key are as if each transition were
    written at its own step."""

    trainer: Trainer
    calls: LoopCalls
    state: SeedState
    pending: list[tuple[np.ndarray, ...]] = dataclasses.field(default_factory=list)
    # (agent states, their `Trainer.acting_leaves`), found again when a call replaces them.
    _acting: tuple[Any, list[jax.Array]] | None = None

    def step(self, env: VecEnv, result: StepResult, agent_step: int) -> StepResult:
        """One loop step at `agent_step`: acts on `result` (the pool's last step), sends the
        actions to the pool and, while it steps, keeps the transition and dispatches the
        stores and updates where the schedule has them; returns the pool's next result."""
        actions = self.act(result, agent_step)
        env.send(actions)
        self.record(result, actions, agent_step)
        return env.recv()

    def act(self, result: StepResult, agent_step: int) -> np.ndarray:
        """The actions (S, E, ...) for the pool on `result` at `agent_step`."""
        trainer = self.trainer
        stack_starts = result.first
        if trainer.spec.restart_stack_at_termination:
            stack_starts = result.first | result.terminated
        agent = self.state.agent
        if self._acting is None or self._acting[0] is not agent:
            self._acting = (agent, trainer.acting_leaves(agent))
        obs_stack, key, actions = self.calls.act(
            self._acting[1],
            self.state.obs_stack,
            self.state.key,
            result.obs,
            stack_starts,
            result.first,
            np.int32(agent_step),
        )
        self.state = self.state._replace(obs_stack=obs_stack, key=key)
        return np.asarray(actions)

    def record(self, result: StepResult, actions: np.ndarray, agent_step: int) -> None:
        """Keeps the transition that `actions` start from `result` and dispatches the store
        and update call where due (not waited for)."""
        trainer = self.trainer
        self.pending.append(
            (
                result.obs,
                actions,
                result.reward,
                result.terminated,
                result.truncated,
                result.first,
            )
        )
        if trainer.update_due(agent_step):
            # The update call always brings one period's rows: one compiled shape.
            period = trainer.updates_per_loop_step()[0]
            self.flush(agent_step, len(self.pending) - period)
            self.flush(agent_step, update=True)
        elif trainer.stores_due(agent_step) and len(self.pending) >= STORE_CHUNK:
            self.flush(agent_step)

    def flush(self, agent_step: int, num_rows: int | None = None, update: bool = False) -> None:
        """Writes the oldest `num_rows` pending transitions (all if None; the last is from
        the loop step at `agent_step`) to the replays, then the updates of one update call
        if `update`; not waited for."""
        num_rows = len(self.pending) if num_rows is None else num_rows
        if num_rows <= 0:
            return
        written, self.pending = self.pending[:num_rows], self.pending[num_rows:]
        rows = tuple(np.stack(field, axis=1) for field in zip(*written, strict=True))
        call = self.calls.store_and_update if update else self.calls.store
        step_after = np.int32(agent_step + self.trainer.config.envs_per_seed)
        self.state = call(self.state, *rows, step_after)


def _set_learning_rate(agent_state: Any, learning_rate: jax.Array) -> None:
    """Sets the learning rate of every optimiser in an agent's state (TD3 has two)."""

    def is_injected(node: Any) -> bool:
        return isinstance(node, optax.InjectStatefulHyperparamsState)

    for node in jax.tree.leaves(agent_state, is_leaf=is_injected):
        if is_injected(node):
            node.hyperparams["learning_rate"] = learning_rate


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    state: Any
    eval_returns: np.ndarray  # (iterations, seeds); NaN where no evaluation ran
    train_returns: np.ndarray  # (iterations, seeds); NaN where no episode ended


def evaluate(trainer: Trainer, state: SeedState, iteration: int, eval_act: Callable) -> np.ndarray:
    """Mean return of `eval_episodes` episodes per seed on a fresh pool, (seeds,)."""
    c = trainer.config
    num_members = trainer.num_members
    env = make_env(
        c.env,
        num_members,
        c.eval_episodes,
        derive_env_seed(c.seed, iteration, _EVAL_STREAM),
        atari_protocol=c.atari_protocol,
        evaluation=True,  # the protocol's evaluation cap, no life-loss terminals
        seed_indices=trainer.seed_indices,
    )
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(k, _EVAL_STREAM), iteration))(
        seed_keys(c.seed, np.asarray(trainer.seed_indices))
    )
    obs_stack = jnp.zeros(
        (num_members, c.eval_episodes, *trainer.replay.obs_shape), trainer.spec.frame_dtype
    )
    result = env.reset()
    finished = np.zeros((num_members, c.eval_episodes), bool)
    returns = np.zeros((num_members, c.eval_episodes), np.float64)
    counter = 0
    while not finished.all():
        obs_stack, actions = eval_act(
            state.agent,
            obs_stack,
            result.obs,
            result.first,
            keys,
            counter,
        )
        result = env.step(np.asarray(actions))
        newly = result.episode_done & ~finished
        returns[newly] = result.episode_return[newly]
        finished |= result.episode_done
        counter += 1
    env.close()
    return returns.mean(axis=1)


def _train_iteration(
    trainer: Trainer,
    state: SeedState,
    iteration: int,
    logger: RunLogger,
    bar: tqdm,
    calls: LoopCalls,
) -> tuple[SeedState, list[list[float]], float]:
    """One iteration on a freshly created pool: (state, episode returns per seed, seconds)."""
    c = trainer.config
    first_step = iteration * c.iteration_steps
    loops = (c.steps_after(iteration + 1) - first_step) // c.envs_per_seed
    env = make_env(
        c.env,
        trainer.num_members,
        c.envs_per_seed,
        derive_env_seed(c.seed, iteration, 0),
        atari_protocol=c.atari_protocol,
        seed_indices=trainer.seed_indices,
    )
    result = env.reset()
    loop = Loop(trainer, calls, state)
    episode_returns: list[list[float]] = [[] for _ in range(trainer.num_members)]
    start_time = time.perf_counter()
    for loop_index in range(loops):
        agent_step = first_step + loop_index * c.envs_per_seed
        steps_after = agent_step + c.envs_per_seed
        result = loop.step(env, result, agent_step)
        for seed_index, env_index in zip(*np.nonzero(result.episode_done), strict=True):
            value = float(result.episode_return[seed_index, env_index])
            episode_returns[seed_index].append(value)
            logger.write(seed_index, steps_after, "episode_return", value)
            length = result.episode_length[seed_index, env_index]
            logger.write(seed_index, steps_after, "episode_length", length)
            for source, value in enumerate(result.episode_source_return[seed_index, env_index]):
                logger.write(seed_index, steps_after, f"episode_return/source_{source}", value)
        if (loop_index + 1) % 100 == 0 or loop_index + 1 == loops:
            bar.update(steps_after - bar.n)
            recent = [r for returns in episode_returns for r in returns[-5:]]
            if recent:
                bar.set_postfix(ret=f"{np.mean(recent):.1f}", refresh=False)
    env.close()
    loop.flush(agent_step)  # an iteration that ends between update calls
    jax.block_until_ready(loop.state)
    return loop.state, episode_returns, time.perf_counter() - start_time


def train(config: Config, preset: str = "custom", run_dir: str | Path | None = None) -> RunResult:
    """Trains `config.seeds` seeds in one program, logging to the run dir and saving a
    checkpoint every `checkpoint_every` iterations. A run dir that holds this run (same
    config; `total_steps` may grow) is resumed from its latest readable checkpoint."""
    run_dir = Path(run_dir or config.run_dir or default_run_dir(config))
    resuming = check_run_dir(run_dir, config)
    check_writable(run_dir)
    trainer = Trainer.create(config)
    c, spec = trainer.config, trainer.spec
    state = trainer.init_state()
    checkpointer = Checkpointer(run_dir, c.keep_checkpoints)
    eval_returns = np.full((c.iterations, trainer.num_members), np.nan)
    train_returns = np.full((c.iterations, trainer.num_members), np.nan)
    start_iteration, resume_at = 0, None
    restored = checkpointer.restore_latest(state) if resuming else None
    if restored is not None:
        start_iteration, state, metadata = restored
        steps_done = _check_resumable(run_dir, c, start_iteration, metadata)
        eval_returns[:start_iteration] = none_to_nan(metadata["eval_returns"])
        train_returns[:start_iteration] = none_to_nan(metadata["train_returns"])
        resume_at = (steps_done, metadata["metrics_bytes"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(run_record(c, preset), indent=2) + "\n")
    _print_header(trainer, preset, start_iteration)
    logger = RunLogger(run_dir, trainer.members, resume_at)
    calls = trainer.loop_calls()
    eval_act = trainer.eval_act
    redraw = c.progress and sys.stderr.isatty()  # else one line per iteration (logs, nohup)
    bar = tqdm(
        total=c.total_steps,
        initial=c.steps_after(start_iteration),
        unit="step",
        disable=not redraw,
        dynamic_ncols=True,
    )
    try:
        for iteration in range(start_iteration, c.iterations):
            updates_before = int(np.asarray(state.num_updates).sum())
            state, episode_returns, elapsed = _train_iteration(
                trainer, state, iteration, logger, bar, calls
            )
            step = c.steps_after(iteration + 1)
            steps_per_s = (step - c.steps_after(iteration)) / elapsed
            _log_iteration(
                logger, trainer, state, step, elapsed, steps_per_s, updates_before, episode_returns
            )
            train_returns[iteration] = [np.mean(r) if r else np.nan for r in episode_returns]
            state = state._replace(metric_sums=jax.tree.map(jnp.zeros_like, state.metric_sums))
            _check_finite(state, trainer.members)  # before saving: the last good checkpoint stays
            if c.eval_episodes:
                eval_returns[iteration] = evaluate(trainer, state, iteration, eval_act)
                logger.write_all(step, "eval_return", eval_returns[iteration])
                bar.set_postfix(eval=f"{np.mean(eval_returns[iteration]):.1f}", refresh=False)
            metrics_bytes = logger.flush()
            done = iteration + 1
            if c.progress and not redraw:
                returns = (train_returns[iteration], eval_returns[iteration])
                print(_progress_line(c, done, steps_per_s, *returns), flush=True)
            if c.checkpoint_every and (done % c.checkpoint_every == 0 or done == c.iterations):
                metadata = {
                    "steps": step,
                    "metrics_bytes": metrics_bytes,
                    "eval_returns": nan_to_none(eval_returns[:done]),
                    "train_returns": nan_to_none(train_returns[:done]),
                }
                checkpointer.save(done, state, metadata)
    finally:
        bar.close()
        logger.close()
        checkpointer.close()
    summarise(run_dir, c, spec)
    return RunResult(run_dir, state, eval_returns, train_returns)


def _check_resumable(run_dir: Path, config: Config, iterations: int, metadata: dict) -> int:
    """Agent steps per seed of a checkpoint after `iterations` iterations, checked against
    this run's budget (a resumed run may grow total_steps)."""
    steps = metadata.get("steps", iterations * config.iteration_steps)  # older checkpoints
    check(
        iterations <= config.iterations,
        f"{run_dir} has a checkpoint after {steps:,} steps, more than total_steps="
        f"{config.total_steps} allows; pass --total-steps {steps} or more.",
    )
    check(
        steps == config.steps_after(iterations),
        f"{run_dir} ended with a short last iteration ({steps:,} steps, not a multiple of "
        f"iteration_steps={config.iteration_steps}); a longer run trains that iteration in "
        "full, so this one cannot be extended exactly. Train the longer budget in a new "
        "--run-dir.",
    )
    return steps


def _progress_line(
    config: Config,
    done: int,
    steps_per_s: float,
    train_returns: np.ndarray,
    eval_returns: np.ndarray,
) -> str:
    """One iteration's progress: steps, mean train and eval returns over members, speed."""

    def mean(values: np.ndarray) -> str:
        return f"{np.nanmean(values):.1f}" if np.isfinite(values).any() else "-"

    return (
        f"iteration {done}/{config.iterations}: {config.steps_after(done):,} steps, "
        f"train return {mean(train_returns)}, eval return {mean(eval_returns)}, "
        f"{steps_per_s:,.0f} steps/s per seed"
    )


def _print_header(trainer: Trainer, preset: str, start_iteration: int) -> None:
    c, frames = trainer.config, trainer.spec.frames_per_step
    print(
        f"{preset}: {c.env}, {c.seeds} seeds x {c.envs_per_seed} envs"
        + "".join(f" x {len(v)} values of {k}" for k, v in c.sweep.items())
        + ", "
        f"{c.total_steps:,} agent steps per seed"
        + (f" ({c.total_steps * frames:,} frames)" if frames > 1 else "")
        + f", seed axis: {trainer.mode} on {jax.default_backend()}"
    )
    print(
        f"replay: {c.replay_capacity:,} transitions per seed, "
        f"{trainer.replay.bytes_per_seed() / 2**20:,.1f} MiB per seed "
        f"({trainer.replay.bytes_per_seed() * trainer.num_members / 2**30:.2f} GiB for all)"
    )
    if start_iteration:
        print(f"resuming after iteration {start_iteration} of {c.iterations}")


def default_run_dir(config: Config) -> Path:
    return Path("runs") / f"{config.env}-{time.strftime('%Y%m%d-%H%M%S')}"


def _log_iteration(
    logger: RunLogger,
    trainer: Trainer,
    state: SeedState,
    step: int,
    elapsed: float,
    steps_per_s: float,
    updates_before: int,
    episode_returns: list[list[float]],
) -> None:
    updates = int(np.asarray(state.num_updates).sum()) - updates_before
    num_members = trainer.num_members
    updates_per_seed = updates // num_members
    if updates_per_seed:
        for name, total in state.metric_sums.items():
            means = np.asarray(total) / updates_per_seed  # (members, ...)
            if means.ndim == 1:
                logger.write_all(step, name, means)
            else:  # one value per network of an ensemble: name/1, name/2, ...
                for index in range(means.shape[1]):
                    logger.write_all(step, f"{name}/{index + 1}", means[:, index])
    for seed_index, returns in enumerate(episode_returns):
        if returns:
            logger.write(seed_index, step, "train_return", float(np.mean(returns)))
    epsilon = trainer.epsilon(step - 1)
    if epsilon is not None:
        logger.write_all(step, "epsilon", [epsilon] * num_members)
    logger.write_all(step, "env_steps_per_s", [steps_per_s * num_members] * num_members)
    logger.write_all(step, "updates_per_s", [updates / elapsed] * num_members)


def _check_finite(state: SeedState, members: list[Member]) -> None:
    bad = np.asarray(state.nonfinite_step)
    if (bad >= 0).any():
        details = ", ".join(
            f"{members[i].label} at agent step {bad[i]}" for i in np.nonzero(bad >= 0)[0]
        )
        raise NonFiniteLossError(
            f"The loss became NaN or infinite ({details}); the run stopped. Lower the "
            "learning rate, clip gradients (--max-grad-norm) or check the rewards."
        )


def summarise(run_dir: Path, config: Config, spec: EnvSpec) -> None:
    """Prints the run's report (experiments.report: per-seed final scores, IQM with an
    interval at 4+ seeds) and writes learning_curve.png."""
    try:
        print(format_report(load_runs(run_dir)))
    except ValueError as error:  # a budget too small to end an episode or evaluate
        print(f"no report: {error}")
    metric = "eval_return" if config.eval_episodes else "train_return"
    output = run_dir / "learning_curve.png"
    plot_learning_curves(run_dir, metric, f"{config.env}: {metric}", spec.frames_per_step, output)
    print(f"logs: {run_dir} (tensorboard --logdir {run_dir}); curve: {output}")
