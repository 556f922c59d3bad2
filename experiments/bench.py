"""Throughput of the training loop's pieces on this machine: a script, not a test.

    python -m experiments.bench [--quick] [--output bench.json]
        [--sections env,collect,train,updates,representations,iterated,multireward,td3,devices,
                    checkpoint,replay,peers,tabular] [--cleanrl-python PY --cleanrl-dir DIR]

Sections (each a small function returning a list of dict rows):

- env: envpool steps/s with uniform random actions, through `envs.make_env`; the maze pools
  (vector and 84x84 RGB observations) with their ratio to CartPole's at the same size.
- collect: the runner's loop before learning starts (the acting call each step, and the
  replay writes of an update period in one call) on the same pools, for both seed axes, and
  its ratio to the raw pool; with a raw pool step's milliseconds, the rest of a loop step's
  (policy, replay write, copies), and the ratio that running the rest entirely while the
  pool steps would reach (`overlap_ceiling`).
- train: the runner's loop with updates at the preset's update period (seed axis as the
  runner picks it), once the replay holds `learning_starts` transitions.
- updates: updates/s over a full replay through the runner's own per-seed
  `Trainer.run_updates` (replay sample + agent update; up to 8 written out, a lax.scan above)
  mapped over seeds (`Trainer.store_and_update`, storing nothing): K updates per jitted call
  with the seed axis computed by vmap or by a sequential lax.map, and the runner's own update
  call (one update at the presets' update periods, vmap).
- representations: the same for each value representation (scalar, C51, HL-Gauss, two-hot:
  51 atoms on [-10, 10]; quantile: 51 quantiles) with the Nature CNN, and each one's time per
  update over scalar's: the median of per-round ratios over `ratio_rounds` rounds that call
  each head once.
- iterated: the same for i-DQN (the idqn_atari preset) with K = `iterated_networks`
  (1, 3, 5) as K separate networks and as K heads on a shared torso, and each one's time per
  update over DQN's (dqn_atari_dopamine: the same Nature CNN, replay and batch of 32) at the
  same seeds, in interleaved rounds as for the representations.
- multireward: MD3QN (md3qn_atari, M = 200) and HRA (hra_atari) on decomposed Pong (N = 2)
  and AirRaid (N = 4), each one's time per update over DQN's (the same protocol, Nature CNN
  and replay, learning the sum of the sources), in interleaved rounds; target: MD3QN at most
  1.5x DQN.
- td3: TD3 (td3_mujoco_paper) on HalfCheetah-v4: updates/s over a full replay, and the
  runner's loop with one update per agent step (acting, replay writes, update), timed over
  a few hundred loop steps and extrapolated to seconds per 100k agent steps, with each seed
  count's time over 1 seed's.
- devices: the updates at `device_seeds` seeds on 1 device and sharded over 4 fake CPU
  devices (a subprocess started with --xla_force_host_platform_device_count=4; the fake
  devices share this machine's cores).
- checkpoint: seconds per save and per restore (of the files just written, so likely from
  the page cache) of a whole run state through the runner's `Checkpointer`, and its size on
  disk: CartPole with its preset's replay, Atari with a `checkpoint_capacity` replay,
  extrapolated to the preset's 1M one.
- replay: bytes per seed of the 1M-transition Atari replay against frames x 84 x 84 bytes.
- peers: wall seconds of whole runs (process start to exit) with the settings of CleanRL's
  dqn_jax.py (CartPole-v1, 100k steps) and td3_continuous_action_jax.py
  (InvertedPendulum-v4, 30k steps) at 1 and more seeds in one program, and with
  --cleanrl-python and --cleanrl-dir CleanRL's own wall for as many concurrent processes,
  with the ratio and its target (experiments.peers).
- tabular: exact distributional DP (agents.distributional_dp) on the pit gridworld at
  gamma 1 and 0.9 against the horizon: (time, state, stock) entries solved, seconds of a
  P(G >= 0.5) solve and of a CVaR_0.2 search (experiments.dp_bench).

Replays are filled with random transitions on device (update timings do not depend on the
content) rather than by stepping the environment for minutes. Random frames are
incompressible, so checkpoint sizes are upper bounds: orbax compresses, and real frames
compress well. Timed loops stop after `rep_seconds` or `steps`, whichever comes first;
figures are medians over `reps` repetitions that follow a short warm-up. Compile times are
the first call minus a steady-state call of the same jitted function. Every row carries the
backend, device kind, CPU count and JAX version it was measured on, so rows of several
machines make one table.
"""

import argparse
import dataclasses
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs import StepResult, VecEnv, env_spec, make_env
from experiments import dp_bench, peers, runner
from experiments.checkpoint import CHECKPOINT_DIR, Checkpointer
from experiments.config import Config
from experiments.logger import format_table
from experiments.presets import get_preset
from experiments.replay import ReplayState
from experiments.runner import SeedState, Trainer, seed_axis_mode

Row = dict[str, Any]

SECTIONS = (
    "env",
    "collect",
    "train",
    "updates",
    "representations",
    "iterated",
    "multireward",
    "td3",
    "devices",
    "checkpoint",
    "replay",
    "peers",
    "tabular",
)
ATARI_PRESET = "dqn_atari_dopamine"
MLP_PRESET = "dqn_cartpole"
BENCH_PRESETS = (ATARI_PRESET, MLP_PRESET)
SEED_AXES = ("vmap", "map")
REPRESENTATIONS = ("scalar", "c51", "hl_gauss", "two_hot", "quantile")  # scalar: the reference
ITERATED_PRESET = "idqn_atari"
MULTIREWARD_PRESETS = ("md3qn_atari", "hra_atari")
MULTIREWARD_TARGET = 1.5  # MD3QN's time per update over DQN's, at most
MAZE_ENVS = ("InclusiveMazeVector-v2", "InclusiveMaze-v2")  # vector and pixel observations
TD3_PRESET, TD3_ENV = "td3_mujoco_paper", "HalfCheetah-v4"
TD3_EXTRAPOLATED_STEPS = 100_000  # agent steps per seed of the td3 section's training time
ATARI_ATOMS, ATARI_V_MIN, ATARI_V_MAX = 51, -10.0, 10.0
FAKE_DEVICES = 4
ATARI_FRAME_BYTES = 84 * 84  # one stored uint8 frame: 7056 B
COLLECT_TARGET = 0.8  # Atari collection steps/s over raw pool steps/s, at least
REPRESENTATION_TARGET = 1.15  # a distributional head's time per update over scalar's, at most
REPLAY_TOLERANCE = 0.1  # Atari replay bytes within 10% of frames x 7056 B
TERMINAL_PROBABILITY = 1 / 500  # chance that an episode ends at a step of the random fill
WARMUP_STEPS = 20  # at most, before any timed loop
WARMUP_SECONDS = 1.0  # at most, once an update (if any) has run
LABELS = ("backend", "device_kind", "cpu_count", "jax_version")
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much to measure; the defaults are the full run."""

    seeds: tuple[int, ...] = (1, 8)
    """Pool sizes (seeds x 1 env) of the env, collect and train sections."""
    update_seeds: tuple[int, ...] = (1, 4, 8)
    """Seed counts of the updates section."""
    representation_seeds: tuple[int, ...] = (1, 8)
    """Seed counts of the representations section."""
    iterated_seeds: tuple[int, ...] = (1,)
    """Seed counts of the iterated section; 1 only by default, as 8 seeds of K = 3 separate
    Nature CNNs took 80 s per call of 2 updates on 2 CPU cores (K = 5 is slower still)."""
    iterated_networks: tuple[int, ...] = (1, 3, 5)
    """i-DQN's K (networks or heads) in the iterated section."""
    multireward_seeds: tuple[int, ...] = (1, 8)
    """Seed counts of the multireward section."""
    multireward_games: tuple[str, ...] = ("Pong-v5", "AirRaid-v5")
    """Decomposed games of the multireward section: N = 2 and 4 reward sources."""
    td3_seeds: tuple[int, ...] = (1, 8)
    """Seed counts of the td3 section; the first (1) is the reference of its time ratios."""
    td3_loop_steps: int = 300
    """Loop steps of one timed repetition of the td3 section's training loop (no time limit:
    its time per 100k agent steps is extrapolated from `reps` of them)."""
    device_seeds: int = 8
    """Seeds of the devices section (a multiple of 4)."""
    capacity: int = 10_000
    """Replay transitions per seed in the collect, train, updates, representations and
    devices sections."""
    checkpoint_seeds: int = 8
    """CartPole seeds of the checkpoint section (its Atari state has one seed)."""
    checkpoint_capacity: int = 100_000
    """Atari replay transitions of the checkpoint section."""
    fill: int = 1_000
    """Agent steps per seed in the replay before training (the bench's learning_starts)."""
    steps: int = 1_000
    """Most loop steps of one timed repetition."""
    rep_seconds: float = 3.0
    """A timed repetition stops after this long (at the next update) or after `steps`."""
    reps: int = 3
    """Timed repetitions per figure; figures are medians."""
    cnn_updates: int = 2
    """Updates per jitted call for the Nature CNN (updates, representations, devices)."""
    mlp_updates: int = 200
    """Updates per jitted call for the MLP (updates, devices)."""
    ratio_rounds: int = 15
    """Interleaved rounds (a call of each variant) of the representations and iterated
    sections, whose time ratios are medians of per-round ratios."""
    peer_seeds: tuple[tuple[str, tuple[int, ...]], ...] = (("dqn", (1, 4, 8)), ("td3", (1, 4)))
    """Seed counts of each work of the peers section (experiments.peers)."""
    peer_fraction: float = 1.0
    """The peers section's budgets as a fraction of CleanRL's (1: 100k and 30k steps)."""
    cleanrl_python: str = ""
    """The Python of a CleanRL environment; empty times this library only (peers section)."""
    cleanrl_dir: str = ""
    """The directory holding CleanRL's dqn_jax.py and td3_continuous_action_jax.py."""
    tabular_horizons: tuple[int, ...] = (5, 10, 20, 40)
    """Horizons of the tabular section."""


QUICK = Settings(
    seeds=(2,),
    update_seeds=(2,),
    representation_seeds=(1,),
    multireward_games=("Pong-v5",),
    multireward_seeds=(1,),
    td3_seeds=(1,),
    td3_loop_steps=100,
    device_seeds=4,
    capacity=2_000,
    checkpoint_seeds=2,
    checkpoint_capacity=5_000,
    fill=200,
    steps=300,
    rep_seconds=1.0,
    reps=2,
    mlp_updates=50,
    ratio_rounds=3,
    peer_seeds=(("dqn", (1,)), ("td3", (1,))),
    peer_fraction=0.05,
    tabular_horizons=(3, 6),
)


def machine_labels() -> dict[str, Any]:
    """What every figure is labelled with."""
    return {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
    }


def bench_config(
    preset: str, seeds: int, settings: Settings, seed_axis: str = "auto", env: str | None = None
) -> Config:
    """A preset (for `env` if given) with `seeds` seeds x 1 env, the bench's small replay and
    learning start."""
    base = get_preset(preset, env)
    return dataclasses.replace(
        base,
        seeds=seeds,
        envs_per_seed=1,
        replay_capacity=settings.capacity,
        learning_starts=max(base.batch_size, min(base.learning_starts, settings.fill)),
        seed_axis=seed_axis,
        eval_episodes=0,
        progress=False,
    )


def bench_env(config: Config) -> VecEnv:
    """The training pool the runner would create for `config`."""
    return make_env(
        config.env, config.seeds, config.envs_per_seed, 0, atari_protocol=config.atari_protocol
    )


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def timed_steps(
    step: Callable[[], Any],
    max_steps: int,
    max_seconds: float,
    every: int = 1,
    sync: Callable[[], Any] = lambda: None,
) -> tuple[float, int]:
    """(seconds, steps) of calling `step` up to `max_steps` times; stops early at a multiple
    of `every` steps once `max_seconds` have passed. `sync` waits for pending device work."""
    start = time.perf_counter()
    done = 0
    while done < max_steps:
        step()
        done += 1
        if done % every == 0 and time.perf_counter() - start >= max_seconds:
            break
    sync()
    return time.perf_counter() - start, done


def call_seconds(call: Callable[[], Any]) -> float:
    """Seconds of one call of `call`, its result waited for."""
    start = time.perf_counter()
    jax.block_until_ready(call())
    return time.perf_counter() - start


def first_and_steady(call: Callable[[], Any], settings: Settings) -> tuple[float, float]:
    """(first call, median of the later calls) in seconds of `call`, whose result is waited
    for: `reps` later calls, fewer (at least one) once they took `reps x rep_seconds`."""
    first, steady = call_seconds(call), [call_seconds(call)]
    while len(steady) < settings.reps and sum(steady) < settings.reps * settings.rep_seconds:
        steady.append(call_seconds(call))
    return first, _median(steady)


# Raw environment steps ---------------------------------------------------------------------


def raw_env_rate(config: Config, settings: Settings) -> float:
    """Median agent steps/s (all environments) of the pool of `config`, random actions."""
    env = bench_env(config)
    rng = np.random.default_rng(0)
    shape = (config.seeds, config.envs_per_seed)

    def step() -> None:
        env.step(rng.integers(0, env.spec.num_actions, shape, dtype=np.int32))

    try:
        env.reset()
        timed_steps(step, WARMUP_STEPS, WARMUP_SECONDS)
        rates = []
        for _ in range(settings.reps):
            seconds, steps = timed_steps(step, settings.steps, settings.rep_seconds)
            rates.append(steps * math.prod(shape) / seconds)
    finally:
        env.close()
    return _median(rates)


def bench_envs(settings: Settings) -> list[Row]:
    """Section env: raw pool steps/s for each preset's environment and pool size, and the
    maze pools' (vector and pixel observations) as a ratio to CartPole's at the same size."""
    rows = []
    configs = [
        (bench_config(preset, seeds, settings), seeds)
        for preset, seeds in itertools.product(BENCH_PRESETS, settings.seeds)
    ] + [
        (dataclasses.replace(bench_config(MLP_PRESET, seeds, settings), env=env), seeds)
        for env, seeds in itertools.product(MAZE_ENVS, settings.seeds)
    ]
    for config, seeds in configs:
        rate = raw_env_rate(config, settings)
        rows.append(
            {
                "section": "env",
                "env": config.env,
                "seeds": seeds,
                "envs_per_seed": config.envs_per_seed,
                "steps_per_s": rate,
                "steps_per_s_per_seed": rate / seeds,
            }
        )
    cartpole = {r["seeds"]: r["steps_per_s"] for r in rows if r["env"] == "CartPole-v1"}
    for row in rows:
        if row["env"] in MAZE_ENVS:
            row["over_cartpole"] = row["steps_per_s"] / cartpole[row["seeds"]]
    return rows


# The runner's loop -------------------------------------------------------------------------


@dataclasses.dataclass
class Loop:
    """The runner's per-step path on one pool (`runner.Loop.step`: the acting call, the
    actions back, the env step and meanwhile the store and update call where due) in timed
    chunks;
    `agent_step` counts agent steps per seed."""

    trainer: Trainer
    env: VecEnv
    loop: runner.Loop
    result: StepResult
    agent_step: int = 0
    update_calls: int = 0

    @classmethod
    def start(cls, trainer: Trainer, env: VecEnv) -> "Loop":
        loop = runner.Loop(trainer, trainer.loop_calls(), trainer.init_state())
        return cls(trainer, env, loop, env.reset())

    @property
    def state(self) -> SeedState:
        return self.loop.state

    @state.setter
    def state(self, state: SeedState) -> None:
        self.loop.state = state

    def _device_work(self) -> None:
        actions = self.loop.act(self.result, self.agent_step)
        self.update_calls += self.trainer.update_due(self.agent_step)
        self.loop.record(self.result, actions, self.agent_step)

    def step(self) -> None:
        """One loop step, with updates where the runner's schedule has them."""
        self.update_calls += self.trainer.update_due(self.agent_step)
        self.result = self.loop.step(self.env, self.result, self.agent_step)
        self.agent_step += self.trainer.config.envs_per_seed

    def rates(self, settings: Settings) -> tuple[list[float], list[float]]:
        """(agent steps/s of all seeds, update calls/s) of each timed repetition."""
        every, _ = self.trainer.updates_per_loop_step()
        sync = lambda: jax.block_until_ready(self.state)  # noqa: E731
        timed_steps(self.step, WARMUP_STEPS, WARMUP_SECONDS, every, sync)
        steps_per_s, calls_per_s = [], []
        for _ in range(settings.reps):
            calls = self.update_calls
            seconds, steps = timed_steps(
                self.step, settings.steps, settings.rep_seconds, every, sync
            )
            steps_per_s.append(
                steps * self.env.spec.num_seeds * self.env.spec.envs_per_seed / seconds
            )
            calls_per_s.append((self.update_calls - calls) / seconds)
        return steps_per_s, calls_per_s

    def compile_time(self, settings: Settings) -> tuple[float, float]:
        """(first call minus steady call, steady call) in seconds of the device work of the
        loop step at `agent_step` on the current observation (no env step; device puts, the
        update call if due, and the actions' copy back included); run before any other
        device work of this loop."""

        def call() -> SeedState:
            self._device_work()
            return self.state

        first, steady = first_and_steady(call, settings)
        self.loop.pending = []  # transitions of the repeated calls, not of the run
        return first - steady, steady


def bench_collect(settings: Settings, raw_rates: dict[tuple[str, int], float]) -> list[Row]:
    """Section collect: loop steps/s with the collect call only over the raw pool rate
    (from `raw_rates[(env, seeds)]` when the env section ran, measured here otherwise)."""
    rows = []
    for preset, seeds, mode in itertools.product(BENCH_PRESETS, settings.seeds, SEED_AXES):
        config = bench_config(preset, seeds, settings, mode)
        # Every timed step before learning starts: the runner's collection-only phase.
        config = dataclasses.replace(config, learning_starts=config.replay_capacity - 1)
        raw = raw_rates.get((config.env, seeds)) or raw_env_rate(config, settings)
        trainer = Trainer.create(config)
        env = bench_env(config)
        try:
            loop = Loop.start(trainer, env)
            compile_s, call_s = loop.compile_time(settings)
            rate = _median(loop.rates(settings)[0])
        finally:
            env.close()
        runner_default = seed_axis_mode(dataclasses.replace(config, seed_axis="auto")) == mode
        env_ms = 1e3 * seeds * config.envs_per_seed / raw  # one raw pool step
        rest_ms = 1e3 * seeds * config.envs_per_seed / rate - env_ms  # policy, replay, copies
        row = {
            "section": "collect",
            "env": config.env,
            "seeds": seeds,
            "seed_axis": mode,
            "runner_default": runner_default,
            "steps_per_s": rate,
            "raw_steps_per_s": raw,
            "ratio": rate / raw,
            "call_ms": call_s * 1e3,
            "env_ms": env_ms,
            "rest_ms": rest_ms,
            # The ratio if everything else in a loop step ran while the pool steps.
            "overlap_ceiling": min(1.0, env_ms / rest_ms),
            "compile_s": compile_s,
        }
        if preset == ATARI_PRESET:
            row |= {"target": COLLECT_TARGET, "target_met": rate / raw >= COLLECT_TARGET}
        rows.append(row)
    return rows


def random_fill(trainer: Trainer, rows: int) -> Callable[[ReplayState, jax.Array], ReplayState]:
    """Jitted (replay states (S, ...), keys (S,)) -> replay states with `rows` more rows of
    random frames, actions (continuous ones uniform within their bounds) and rewards (a
    vector of them for a reward vector), episodes ending with probability 1/500 a step."""
    replay, spec = trainer.replay, trainer.spec
    e = replay.num_envs
    frame_shape = (e, *replay.frame_shape)

    def add_random(carry: tuple[ReplayState, jax.Array], key: jax.Array):
        state, first = carry
        frame_key, action_key, reward_key, end_key = jax.random.split(key, 4)
        if jnp.issubdtype(replay.frame_dtype, jnp.integer):
            frame = jax.random.bits(frame_key, frame_shape, replay.frame_dtype)
        else:
            frame = jax.random.normal(frame_key, frame_shape, replay.frame_dtype)
        if spec.num_actions is None:
            action_shape = (e, *spec.action_shape)
            low, high = spec.action_low, spec.action_high
            action = jax.random.uniform(action_key, action_shape, minval=low, maxval=high)
        else:
            action = jax.random.randint(action_key, (e,), 0, spec.num_actions, jnp.int32)
        reward_shape = (e, *replay.reward_shape)
        reward = jax.random.randint(reward_key, reward_shape, -1, 2).astype(jnp.float32)
        reward = jnp.where(first.reshape((e,) + (1,) * len(replay.reward_shape)), 0.0, reward)
        terminated = ~first & (jax.random.uniform(end_key, (e,)) < TERMINAL_PROBABILITY)
        no = jnp.zeros((e,), bool)
        state = replay.add(state, frame, action, reward, terminated, no, first)
        return (state, terminated), None

    def fill(state: ReplayState, key: jax.Array) -> ReplayState:
        start = (state, jnp.ones((e,), bool))
        (state, _), _ = jax.lax.scan(add_random, start, jax.random.split(key, rows))
        return state

    return jax.jit(jax.vmap(fill), donate_argnums=0)


def train_figures(config: Config, settings: Settings) -> Row:
    """Loop steps/s (all seeds) and updates/s of the runner's loop for `config` with updates
    every `update_period` agent steps, on a replay holding `learning_starts` random
    transitions, and its train call's time and compile time."""
    trainer = Trainer.create(config)
    _, per_call = trainer.updates_per_loop_step()
    env = bench_env(config)
    try:
        loop = Loop.start(trainer, env)
        fill = random_fill(trainer, config.learning_starts // config.envs_per_seed)
        loop.state = loop.state._replace(replay=fill(loop.state.replay, loop.state.key))
        # The first loop step that ends with an update call.
        loop.agent_step = config.learning_starts - config.envs_per_seed
        while not trainer.update_due(loop.agent_step):
            loop.agent_step += config.envs_per_seed
        compile_s, call_s = loop.compile_time(settings)
        steps_per_s, calls_per_s = loop.rates(settings)
    finally:
        env.close()
    return {
        "env": config.env,
        "seeds": config.seeds,
        "seed_axis": trainer.mode,
        "update_period": config.update_period,
        "steps_per_s": _median(steps_per_s),
        "updates_per_s": _median(calls_per_s) * per_call * config.seeds,
        "train_call_ms": call_s * 1e3,
        "compile_s": compile_s,
    }


def bench_train(settings: Settings) -> list[Row]:
    """Section train: loop steps/s and updates/s with updates every `update_period` agent
    steps, on a replay holding `learning_starts` transitions."""
    return [
        {"section": "train"} | train_figures(bench_config(preset, seeds, settings), settings)
        for preset, seeds in itertools.product(BENCH_PRESETS, settings.seeds)
    ]


# Updates over a full replay --------------------------------------------------------------


def filled_state(trainer: Trainer) -> SeedState:
    """The trainer's initial state with every seed's replay full of random transitions,
    computed (so that no timing that follows waits for the fill)."""
    state = trainer.init_state()
    fill = random_fill(trainer, trainer.replay.max_rows)
    return jax.block_until_ready(state._replace(replay=fill(state.replay, state.key)))


def updates_per_call(config: Config, settings: Settings) -> int:
    """The bench's updates per jitted call: `cnn_updates` or `mlp_updates`."""
    return settings.cnn_updates if config.network == "nature_cnn" else settings.mlp_updates


def update_call(trainer: Trainer, state: SeedState, num_updates: int) -> Callable[[], SeedState]:
    """A call that runs `num_updates` updates per seed of the trainer's config on a copy of
    `state` (the state of its seeds, placed on its devices; the copy is donated) and returns
    the new state."""
    run = trainer.store_and_update(num_updates)
    (state,) = jax.block_until_ready(trainer.to_device(jax.tree.map(jnp.copy, state)))
    step = np.int32(trainer.config.learning_starts)
    no_rows = _no_rows(trainer)

    def call() -> SeedState:
        nonlocal state
        state = run(state, *no_rows, step)
        return state

    return call


def _no_rows(trainer: Trainer) -> tuple[np.ndarray, ...]:
    """Zero transitions for `Trainer.store_and_update`: a call that only updates."""
    spec, c = trainer.spec, trainer.config
    lead = (trainer.num_members, 0, c.envs_per_seed)
    action_dtype = np.int32 if spec.num_actions is not None else np.float32
    return (
        np.zeros(lead + spec.frame_shape, spec.frame_dtype),
        np.zeros(lead + spec.action_shape, action_dtype),
        np.zeros(lead + spec.reward_shape, np.float32),
        *(np.zeros(lead, bool) for _ in range(3)),
    )


def update_row(config: Config, num_updates: int, seconds_per_call: float, compile_s: float) -> Row:
    """The figures of `num_updates` updates per seed taking `seconds_per_call`."""
    return {
        "network": config.network,
        "batch_size": config.batch_size,
        "seeds": config.seeds,
        "updates_per_call": num_updates,
        "updates_per_s": num_updates * config.seeds / seconds_per_call,
        "updates_per_s_per_seed": num_updates / seconds_per_call,
        "compile_s": compile_s,
    }


def update_figures(trainer: Trainer, state: SeedState, num_updates: int, settings: Settings) -> Row:
    """Updates/s of the trainer's config from a copy of `state`, `num_updates` per jitted
    call, and the call's compile time."""
    call = update_call(trainer, state, num_updates)
    first, steady = first_and_steady(call, settings)
    return update_row(trainer.config, num_updates, steady, first - steady)


def paired_update_figures(configs: Sequence[Config], settings: Settings) -> list[Row]:
    """`update_figures` of each config with `cnn_updates` per call, all on one replay of
    random transitions (filled for the first config), timed in `ratio_rounds` interleaved
    rounds (one call of each config per round, after all have compiled and run once more),
    with `time_ratio`: the median over rounds of a config's time over the first config's in
    the same round. Pairing within rounds cancels the drift of a shared machine's load."""
    trainers = [Trainer.create(config) for config in configs]
    replay = filled_state(trainers[0]).replay
    calls = [
        update_call(trainer, trainer.init_state()._replace(replay=replay), settings.cnn_updates)
        for trainer in trainers
    ]
    del replay  # each call holds its own copy
    compile_s = [call_seconds(call) - call_seconds(call) for call in calls]
    rounds = [[call_seconds(call) for call in calls] for _ in range(settings.ratio_rounds)]
    rows = []
    for i, config in enumerate(configs):
        times = [round_times[i] for round_times in rounds]
        row = update_row(config, settings.cnn_updates, _median(times), compile_s[i])
        ratio = _median([round_times[i] / round_times[0] for round_times in rounds])
        rows.append(row | {"time_ratio": ratio})
    return rows


def bench_updates(settings: Settings) -> list[Row]:
    """Section updates: updates/s of the Nature CNN and the MLP per seed count over a replay
    filled to capacity: the bench's updates per call under each seed axis, and the runner's
    own update call (its updates per call at the preset's update period, its seed axis)."""
    rows = []
    for preset, seeds in itertools.product(BENCH_PRESETS, settings.update_seeds):
        runner = Trainer.create(bench_config(preset, seeds, settings))
        state = filled_state(runner)
        runner_call = (runner.mode, runner.updates_per_loop_step()[1])
        variants = [(mode, updates_per_call(runner.config, settings)) for mode in SEED_AXES]
        for mode, num_updates in dict.fromkeys([*variants, runner_call]):
            trainer = Trainer.create(bench_config(preset, seeds, settings, mode))
            figures = update_figures(trainer, state, num_updates, settings)
            row = {"section": "updates", "seed_axis": mode} | figures
            rows.append(row | {"runner_call": (mode, num_updates) == runner_call})
        del state
    return rows


def bench_representations(settings: Settings) -> list[Row]:
    """Section representations: updates/s of each value representation with the Nature CNN
    (vmap over seeds), and its time per update over the scalar head's at the same seeds,
    timed in interleaved rounds."""
    rows = []
    for seeds in settings.representation_seeds:
        base = dataclasses.replace(
            bench_config(ATARI_PRESET, seeds, settings, "vmap"),
            num_atoms=ATARI_ATOMS,
            v_min=ATARI_V_MIN,
            v_max=ATARI_V_MAX,
        )
        # Scalar first: the reference of the ratios.
        configs = [
            dataclasses.replace(base, value_representation=representation)
            for representation in REPRESENTATIONS
        ]
        with warnings.catch_warnings():
            # Atari returns exceed [-10, 10]; clipping them into the support is the C51 setting.
            warnings.filterwarnings("ignore", "The support", UserWarning)
            figures = paired_update_figures(configs, settings)
        for representation, row in zip(REPRESENTATIONS, figures, strict=True):
            row = {"section": "representations", "representation": representation} | row
            if representation != "scalar":
                met = row["time_ratio"] <= REPRESENTATION_TARGET
                row |= {"target": REPRESENTATION_TARGET, "target_met": met}
            rows.append(row)
    return rows


def bench_iterated(settings: Settings) -> list[Row]:
    """Section iterated: updates/s of i-DQN with K networks or K heads on a shared torso, and
    its time per update over DQN's (the first row) on the same replay at the same seeds,
    timed in interleaved rounds."""
    rows = []
    for seeds in settings.iterated_seeds:
        dqn = bench_config(ATARI_PRESET, seeds, settings)
        base = bench_config(ITERATED_PRESET, seeds, settings)
        configs = [dqn] + [
            dataclasses.replace(base, num_networks=k, shared_torso=shared)
            for shared, k in itertools.product((False, True), settings.iterated_networks)
        ]
        figures = paired_update_figures(configs, settings)
        for config, row in zip(configs, figures, strict=True):
            head = {"section": "iterated", "agent": config.agent}
            if config.agent == "iterated":
                head |= {"num_networks": config.num_networks, "shared_torso": config.shared_torso}
            rows.append(head | row)
    return rows


def bench_multireward(settings: Settings) -> list[Row]:
    """Section multireward: updates/s of MD3QN (M = 200 particles in R^N) and HRA (N heads)
    with the Nature CNN on a decomposed game, and their time per update over DQN's (the first
    row, same protocol and network, learning the sum of the sources) on the same replay,
    timed in interleaved rounds."""
    rows = []
    for game, seeds in itertools.product(settings.multireward_games, settings.multireward_seeds):
        configs = [
            bench_config(preset, seeds, settings, env=game) for preset in MULTIREWARD_PRESETS
        ]
        configs.insert(0, dataclasses.replace(configs[0], agent="dqn"))
        figures = paired_update_figures(configs, settings)
        for config, row in zip(configs, figures, strict=True):
            spec = env_spec(config.env, 1, 1, config.atari_protocol)
            head = {
                "section": "multireward",
                "agent": config.agent,
                "sources": spec.reward_shape[0],
            }
            if config.agent == "md3qn":
                met = row["time_ratio"] <= MULTIREWARD_TARGET
                head |= {"particles": config.num_particles}
                row = row | {"target": MULTIREWARD_TARGET, "target_met": met}
            rows.append(head | row)
    return rows


# TD3 on MuJoCo -------------------------------------------------------------------------------


def bench_td3(settings: Settings) -> list[Row]:
    """Section td3: TD3's updates/s over a full replay, and seconds per 100k agent steps per
    seed of the runner's loop with one update per step, extrapolated from `reps` x
    `td3_loop_steps` timed loop steps; its time ratio is over the first seed count's."""
    loop_settings = dataclasses.replace(
        settings, steps=settings.td3_loop_steps, rep_seconds=math.inf
    )
    rows = []
    for seeds in settings.td3_seeds:
        config = bench_config(TD3_PRESET, seeds, settings, env=TD3_ENV)
        trainer = Trainer.create(config)
        num_updates = updates_per_call(config, settings)
        updates = update_figures(trainer, filled_state(trainer), num_updates, settings)
        train = train_figures(config, loop_settings)
        seconds = TD3_EXTRAPOLATED_STEPS * seeds / train["steps_per_s"]
        rows.append(
            {
                "section": "td3",
                "env": config.env,
                "seeds": seeds,
                "batch_size": config.batch_size,
                "updates_per_call": num_updates,
                "updates_per_s": updates["updates_per_s"],
                "update_compile_s": updates["compile_s"],
                "steps_per_s": train["steps_per_s"],
                "train_call_ms": train["train_call_ms"],
                "train_compile_s": train["compile_s"],
                "s_per_100k_steps": seconds,
                "extrapolated_from": f"{settings.reps} x {settings.td3_loop_steps} loop steps",
                "time_ratio": seconds / rows[0]["s_per_100k_steps"] if rows else 1.0,
            }
        )
    return rows


# Updates on several devices ------------------------------------------------------------------

DEVICES_WORKER = (
    "import sys; from experiments.bench import devices_worker; devices_worker(*sys.argv[1:])"
)


def bench_devices(settings: Settings) -> list[Row]:
    """Section devices: updates/s at `device_seeds` seeds on 1 device and on 4 fake CPU
    devices, measured in a subprocess whose JAX starts with 4 host devices."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    flags = f"--xla_force_host_platform_device_count={FAKE_DEVICES}"
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "rows.json"
        settings_json = json.dumps(dataclasses.asdict(settings))
        command = [sys.executable, "-c", DEVICES_WORKER, settings_json, str(output)]
        subprocess.run(command, env=env, check=True)
        return json.loads(output.read_text())


def devices_worker(settings_json: str, output: str) -> None:
    """The devices section inside its subprocess: writes its rows, with this process's
    machine labels, as JSON to `output`."""
    fields = json.loads(settings_json).items()
    settings = Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields})
    if len(jax.local_devices()) != FAKE_DEVICES:
        raise RuntimeError(f"expected {FAKE_DEVICES} CPU devices, got {jax.local_devices()}")
    rows = []
    for preset in BENCH_PRESETS:
        config = bench_config(preset, settings.device_seeds, settings, "vmap")
        state = filled_state(Trainer.create(dataclasses.replace(config, devices=1)))
        rates = {}
        for devices in (1, FAKE_DEVICES):
            trainer = Trainer.create(dataclasses.replace(config, devices=devices))
            figures = update_figures(trainer, state, updates_per_call(config, settings), settings)
            rates[devices] = figures["updates_per_s"]
            row = {"section": "devices", "devices": devices} | figures
            row["ratio_to_1_device"] = rates[devices] / rates[1]
            row["note"] = f"fake devices sharing {os.cpu_count()} cores" if devices > 1 else ""
            rows.append(row)
        del state
    Path(output).write_text(json.dumps([row | machine_labels() for row in rows]))


# Checkpoints ---------------------------------------------------------------------------------


def directory_bytes(path: Path) -> int:
    """Bytes of all files under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def checkpoint_figures(state: Any, directory: Path, reps: int) -> tuple[float, float, int]:
    """(median seconds per save, median seconds per restore, bytes on disk) of `state`
    through the runner's Checkpointer in `directory`, over `reps` save and restore pairs.
    It keeps 2 checkpoints as a run does by default, so later saves also delete one."""
    checkpointer = Checkpointer(directory, keep=2)
    save_s, restore_s = [], []
    try:
        for step in range(1, reps + 1):
            start = time.perf_counter()
            checkpointer.save(step, state, {})
            save_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            restored = checkpointer.restore_latest(state)
            if restored is None:
                raise RuntimeError(f"the checkpoint just saved in {directory} did not restore")
            jax.block_until_ready(restored[1])
            restore_s.append(time.perf_counter() - start)
            del restored
    finally:
        checkpointer.close()
    size = directory_bytes(directory / CHECKPOINT_DIR / str(reps))
    return _median(save_s), _median(restore_s), size


def bench_checkpoint(settings: Settings) -> list[Row]:
    """Section checkpoint: save and restore seconds and size on disk of a whole run state
    with a full random replay: `checkpoint_seeds` CartPole seeds with the preset's replay, and
    one Atari seed with `checkpoint_capacity` transitions, extrapolated to the preset's."""
    runs = (
        (MLP_PRESET, settings.checkpoint_seeds, get_preset(MLP_PRESET).replay_capacity),
        (ATARI_PRESET, 1, settings.checkpoint_capacity),
    )
    rows = []
    for preset, seeds, capacity in runs:
        config = bench_config(preset, seeds, dataclasses.replace(settings, capacity=capacity))
        state = filled_state(Trainer.create(config))
        with tempfile.TemporaryDirectory() as directory:
            run_dir = Path(directory) / "run"
            save_s, restore_s, size = checkpoint_figures(state, run_dir, settings.reps)
            # Saved once more without the replay: the part that does not grow with capacity.
            without_replay = state._replace(replay=None)
            fixed = checkpoint_figures(without_replay, Path(directory) / "fixed", 1)[2]
        bytes_per_transition = (size - fixed) / (seeds * capacity)
        preset_capacity = get_preset(preset).replay_capacity
        preset_bytes = fixed / seeds + bytes_per_transition * preset_capacity
        memory_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
        rows.append(
            {
                "section": "checkpoint",
                "env": config.env,
                "seeds": seeds,
                "capacity": capacity,
                "save_s": save_s,
                "restore_s": restore_s,
                "mib_per_seed": size / seeds / 2**20,
                "memory_mib_per_seed": memory_bytes / seeds / 2**20,
                "bytes_per_transition": bytes_per_transition,
                "preset_capacity": preset_capacity,
                "gib_per_seed_at_preset_capacity": preset_bytes / 2**30,
            }
        )
        del state
    return rows


# Replay memory -----------------------------------------------------------------------------


def bench_replay(settings: Settings) -> list[Row]:
    """Section replay: bytes per seed of the preset's 1M Atari replay over frames x 7056 B."""
    del settings  # the preset's own capacity, whatever the bench's
    config = dataclasses.replace(get_preset(ATARI_PRESET), seeds=1)
    replay = Trainer.create(config).replay
    frame_bytes = math.prod(replay.frame_shape) * np.dtype(replay.frame_dtype).itemsize
    if frame_bytes != ATARI_FRAME_BYTES:
        raise RuntimeError(f"Atari frames are {replay.frame_shape}, expected 84 x 84 bytes")
    bytes_per_seed = replay.bytes_per_seed()
    ratio = bytes_per_seed / (replay.capacity * ATARI_FRAME_BYTES)
    return [
        {
            "section": "replay",
            "env": config.env,
            "capacity": replay.capacity,
            "bytes_per_seed": bytes_per_seed,
            "gib_per_seed": bytes_per_seed / 2**30,
            "frame_bytes": replay.capacity * ATARI_FRAME_BYTES,
            "ratio": ratio,
            "target_met": abs(ratio - 1.0) <= REPLAY_TOLERANCE,
        }
    ]


# Command line ------------------------------------------------------------------------------


def bench_tabular(settings: Settings) -> list[Row]:
    """Section tabular: exact distributional DP against the horizon (experiments.dp_bench)."""
    rows = dp_bench.bench_tabular(settings.tabular_horizons)
    return [{"section": "tabular"} | row for row in rows]


def bench_peers(settings: Settings) -> list[Row]:
    """Section peers: whole runs with CleanRL's settings (experiments.peers)."""
    s = settings
    return peers.bench_peers(dict(s.peer_seeds), s.peer_fraction, s.cleanrl_python, s.cleanrl_dir)


SECTION_FUNCTIONS: dict[str, Callable[[Settings], list[Row]]] = {
    "env": bench_envs,
    "train": bench_train,
    "updates": bench_updates,
    "representations": bench_representations,
    "iterated": bench_iterated,
    "multireward": bench_multireward,
    "td3": bench_td3,
    "devices": bench_devices,
    "checkpoint": bench_checkpoint,
    "replay": bench_replay,
    "peers": bench_peers,
    "tabular": bench_tabular,
}


def _int_tuple(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 1,8")
    return values


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown sections {unknown}: pick from {SECTIONS}")
    return tuple(s for s in SECTIONS if s in names)


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Settings]:
    """(arguments, settings): the full or --quick settings with any overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench",
        description="Throughput of envpool, collection, training, updates (DQN, its value "
        "representations, i-DQN, TD3) and checkpoints on this machine.",
    )
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes")
    parser.add_argument(
        "--sections",
        type=_sections,
        default=SECTIONS,
        help=f"comma-separated, from {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--output", type=Path, default=Path("bench.json"), help="JSON results")
    parser.add_argument("--seeds", type=_int_tuple, help="pool sizes (seeds x 1 env), e.g. 1,8")
    parser.add_argument("--update-seeds", type=_int_tuple, help="updates section, e.g. 1,4,8")
    parser.add_argument("--iterated-seeds", type=_int_tuple, help="iterated section, e.g. 1,8")
    parser.add_argument("--iterated-networks", type=_int_tuple, help="i-DQN's K, e.g. 1,3,5")
    parser.add_argument(
        "--multireward-seeds", type=_int_tuple, help="multireward section, e.g. 1,8"
    )
    parser.add_argument("--capacity", type=int, help="replay transitions per seed")
    parser.add_argument("--reps", type=int, help="timed repetitions per figure")
    parser.add_argument("--ratio-rounds", type=int, help="rounds of the time-ratio sections")
    parser.add_argument("--cnn-updates", type=int, help="Nature CNN updates per jitted call")
    parser.add_argument("--mlp-updates", type=int, help="MLP updates per jitted call")
    parser.add_argument(
        "--cleanrl-python", help="peers section: the Python of a CleanRL virtual environment"
    )
    parser.add_argument(
        "--cleanrl-dir", help="peers section: the directory of CleanRL's JAX DQN and TD3 scripts"
    )
    args = parser.parse_args(list(argv))
    settings = QUICK if args.quick else Settings()
    names = (
        "seeds",
        "update_seeds",
        "iterated_seeds",
        "iterated_networks",
        "multireward_seeds",
        "capacity",
        "reps",
        "ratio_rounds",
        "cnn_updates",
        "mlp_updates",
        "cleanrl_python",
        "cleanrl_dir",
    )
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return args, dataclasses.replace(settings, **overrides)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_section(rows: list[Row]) -> str:
    """An aligned table of one section's rows (every key any row has, in order of first
    appearance), without the machine labels."""
    keys = dict.fromkeys(k for row in rows for k in row)
    columns = [k for k in keys if k != "section" and k not in LABELS]
    table = format_table(columns, [[_cell(row.get(k, "")) for k in columns] for row in rows])
    return f"[{rows[0]['section']}]\n{table}"


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(sys.argv[1:] if argv is None else argv)
    labels = machine_labels()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in labels.items()))
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for section in args.sections:
        section_start = time.perf_counter()
        if section == "collect":
            raw = {(r["env"], r["seeds"]): r["steps_per_s"] for r in rows if r["section"] == "env"}
            new = bench_collect(settings, raw)
        else:
            new = SECTION_FUNCTIONS[section](settings)
        seconds[section] = time.perf_counter() - section_start
        print(f"\n{format_section(new)}\n({seconds[section]:.0f} s)", flush=True)
        rows += [labels | row for row in new]  # rows of a subprocess carry their own labels
    elapsed = time.perf_counter() - start
    report = {
        "machine": labels,
        "settings": dataclasses.asdict(settings),
        "sections": list(args.sections),
        "seconds": elapsed,
        "section_seconds": seconds,
        "rows": rows,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(rows)} rows in {elapsed:.0f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
