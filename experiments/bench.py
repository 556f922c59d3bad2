"""Throughput of the training loop's pieces on this machine: a script, not a test.

    python -m experiments.bench [--quick] [--sections env,collect,train,updates,replay]
                                [--output bench.json]

Sections (each a small function returning a list of dict rows):

- env: envpool steps/s with uniform random actions, through `envs.make_env`.
- collect: the runner's loop with its 0-update step function (policy, replay write and
  host<->device copies) on the same pools, for both seed axes, and its ratio to the raw pool.
- train: the runner's loop with updates at the preset's update period (seed axis as the
  runner picks it), once the replay holds `learning_starts` transitions.
- updates: K updates (replay sample + agent update) in one jitted `lax.scan` over a filled
  replay (as the runner runs them), the seed axis computed by vmap or by a sequential
  lax.map; for the Nature CNN also the same K updates unrolled (no loop around them).
- replay: bytes per seed of the 1M-transition Atari replay against frames x 84 x 84 bytes.

The train and updates sections fill the replay with random transitions on device (timings
do not depend on the content) rather than stepping the environment for minutes. Timed loops
stop after `rep_seconds` or `steps`, whichever comes first; figures are medians over `reps`
repetitions that follow a short warm-up. Compile times are the first call minus a
steady-state call of the same jitted function. Every row carries the backend, device kind,
CPU count and JAX version it was measured on, so rows of several machines make one table.
"""

import argparse
import dataclasses
import itertools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs import StepResult, VecEnv, make_env
from experiments.config import Config
from experiments.logger import format_table
from experiments.presets import get_preset
from experiments.replay import ReplayState
from experiments.runner import SeedState, Trainer, over_seeds, seed_axis_mode

Row = dict[str, Any]

SECTIONS = ("env", "collect", "train", "updates", "replay")
ATARI_PRESET = "dqn_atari_dopamine"
MLP_PRESET = "dqn_cartpole"
BENCH_PRESETS = (ATARI_PRESET, MLP_PRESET)
SEED_AXES = ("vmap", "map")
ATARI_FRAME_BYTES = 84 * 84  # one stored uint8 frame: 7056 B
COLLECT_TARGET = 0.8  # Atari collection steps/s over raw pool steps/s, at least
REPLAY_TOLERANCE = 0.1  # Atari replay bytes within 10% of frames x 7056 B
TERMINAL_PROBABILITY = 1 / 500  # chance that an episode ends at a step of the random fill
WARMUP_STEPS = 20  # at most, before any timed loop
WARMUP_SECONDS = 1.0  # at most, once an update (if any) has run
# (seed axis, loop around the K updates) per network in the updates section; "unrolled"
# is measured for the Nature CNN, whose updates are several times slower inside an XLA loop
# on CPU (unrolling K MLP updates only costs compile time).
UPDATE_VARIANTS = {
    "nature_cnn": (("vmap", "scan"), ("map", "scan"), ("vmap", "unrolled")),
    "mlp": (("vmap", "scan"), ("map", "scan")),
}
LABELS = ("backend", "device_kind", "cpu_count", "jax_version")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much to measure; the defaults are the full run (under 10 minutes on 2 cores)."""

    seeds: tuple[int, ...] = (1, 8)
    """Pool sizes (seeds x 1 env) of the env, collect and train sections."""
    update_seeds: tuple[int, ...] = (1, 4, 8)
    """Seed counts of the updates section."""
    capacity: int = 10_000
    """Replay transitions per seed in the collect, train and updates sections."""
    fill: int = 1_000
    """Agent steps per seed in the replay before training (the bench's learning_starts)."""
    steps: int = 1_000
    """Most loop steps of one timed repetition."""
    rep_seconds: float = 3.0
    """A timed repetition stops after this long (at the next update) or after `steps`."""
    reps: int = 3
    """Timed repetitions per figure; figures are medians."""
    cnn_updates: int = 2
    """Updates per jitted call for the Nature CNN (updates section)."""
    mlp_updates: int = 200
    """Updates per jitted call for the MLP (updates section)."""


QUICK = Settings(
    seeds=(2,),
    update_seeds=(2,),
    capacity=2_000,
    fill=200,
    steps=300,
    rep_seconds=1.0,
    reps=2,
    cnn_updates=1,
    mlp_updates=50,
)


def machine_labels() -> dict[str, Any]:
    """What every figure is labelled with."""
    return {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
    }


def bench_config(preset: str, seeds: int, settings: Settings, seed_axis: str = "auto") -> Config:
    """A preset with `seeds` seeds x 1 env, the bench's small replay and learning start."""
    base = get_preset(preset)
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


def first_and_steady(call: Callable[[], Any], settings: Settings) -> tuple[float, float]:
    """(first call, median of the later calls) in seconds of `call`, whose result is waited
    for: `reps` later calls, fewer (at least one) once they took `reps x rep_seconds`."""

    def timed() -> float:
        start = time.perf_counter()
        jax.block_until_ready(call())
        return time.perf_counter() - start

    first, steady = timed(), [timed()]
    while len(steady) < settings.reps and sum(steady) < settings.reps * settings.rep_seconds:
        steady.append(timed())
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
    """Section env: raw pool steps/s for each preset's environment and pool size."""
    rows = []
    for preset, seeds in itertools.product(BENCH_PRESETS, settings.seeds):
        config = bench_config(preset, seeds, settings)
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
    return rows


# The runner's loop -------------------------------------------------------------------------


@dataclasses.dataclass
class Loop:
    """The runner's per-step path on one pool (device puts, jitted step, actions back, env
    step) in timed chunks; `agent_step` counts agent steps per seed."""

    trainer: Trainer
    env: VecEnv
    state: SeedState
    result: StepResult
    collect_fn: Callable
    train_fn: Callable | None = None
    agent_step: int = 0
    update_calls: int = 0

    @classmethod
    def start(cls, trainer: Trainer, env: VecEnv, updates_per_call: int = 0) -> "Loop":
        state = trainer.init_state()
        train_fn = trainer.step_fn(updates_per_call) if updates_per_call else None
        return cls(trainer, env, state, env.reset(), trainer.step_fn(0), train_fn)

    def _call(self, fn: Callable) -> np.ndarray:
        r = self.result
        self.state, actions = fn(
            self.state,
            *self.trainer.to_device(r.obs, r.reward, r.terminated, r.truncated, r.first),
            np.int32(self.agent_step),
        )
        return np.asarray(actions)

    def _update_due(self) -> bool:
        c = self.trainer.config
        loop_every, _ = self.trainer.updates_per_loop_step()
        loop_index = self.agent_step // c.envs_per_seed
        return (
            self.train_fn is not None
            and self.agent_step + c.envs_per_seed >= c.learning_starts
            and (loop_index + 1) % loop_every == 0
        )

    def step(self) -> None:
        """One loop step, with updates where the runner's schedule has them."""
        fn = self.collect_fn
        if self._update_due():
            fn = self.train_fn
            self.update_calls += 1
        self.result = self.env.step(self._call(fn))
        self.agent_step += self.trainer.config.envs_per_seed

    def rates(self, settings: Settings) -> tuple[list[float], list[float]]:
        """(agent steps/s of all seeds, update calls/s) of each timed repetition."""
        every, _ = self.trainer.updates_per_loop_step() if self.train_fn else (1, 0)
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

    def compile_time(self, fn: Callable, settings: Settings) -> tuple[float, float]:
        """(first call minus steady call, steady call) in seconds of `fn` on the current
        observation (no env step; device puts and the actions' copy back included); run
        before any other call of `fn`."""

        def call() -> SeedState:
            self._call(fn)
            return self.state

        first, steady = first_and_steady(call, settings)
        return first - steady, steady


def bench_collect(settings: Settings, raw_rates: dict[tuple[str, int], float]) -> list[Row]:
    """Section collect: loop steps/s with the 0-update step function over the raw pool rate
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
            compile_s, call_s = loop.compile_time(loop.collect_fn, settings)
            rate = _median(loop.rates(settings)[0])
        finally:
            env.close()
        runner_default = seed_axis_mode(dataclasses.replace(config, seed_axis="auto")) == mode
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
            "compile_s": compile_s,
        }
        if preset == ATARI_PRESET:
            row |= {"target": COLLECT_TARGET, "target_met": rate / raw >= COLLECT_TARGET}
        rows.append(row)
    return rows


def random_fill(trainer: Trainer, rows: int) -> Callable[[ReplayState, jax.Array], ReplayState]:
    """Jitted (replay states (S, ...), keys (S,)) -> replay states with `rows` more rows of
    random frames, actions and rewards, episodes ending with probability 1/500 a step."""
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
        action = jax.random.randint(action_key, (e,), 0, spec.num_actions, jnp.int32)
        reward = jax.random.randint(reward_key, (e,), -1, 2).astype(jnp.float32)
        reward = jnp.where(first, 0.0, reward)
        terminated = ~first & (jax.random.uniform(end_key, (e,)) < TERMINAL_PROBABILITY)
        no = jnp.zeros((e,), bool)
        state = replay.add(state, frame, action, reward, terminated, no, first)
        return (state, terminated), None

    def fill(state: ReplayState, key: jax.Array) -> ReplayState:
        start = (state, jnp.ones((e,), bool))
        (state, _), _ = jax.lax.scan(add_random, start, jax.random.split(key, rows))
        return state

    return jax.jit(jax.vmap(fill), donate_argnums=0)


def bench_train(settings: Settings) -> list[Row]:
    """Section train: loop steps/s and updates/s with updates every `update_period` agent
    steps, on a replay holding `learning_starts` transitions."""
    rows = []
    for preset, seeds in itertools.product(BENCH_PRESETS, settings.seeds):
        config = bench_config(preset, seeds, settings)
        trainer = Trainer.create(config)
        _, per_call = trainer.updates_per_loop_step()
        env = bench_env(config)
        try:
            loop = Loop.start(trainer, env, per_call)
            fill = random_fill(trainer, config.learning_starts // config.envs_per_seed)
            loop.state = loop.state._replace(replay=fill(loop.state.replay, loop.state.key))
            loop.agent_step = config.learning_starts
            compile_s, call_s = loop.compile_time(loop.train_fn, settings)
            steps_per_s, calls_per_s = loop.rates(settings)
        finally:
            env.close()
        rows.append(
            {
                "section": "train",
                "env": config.env,
                "seeds": seeds,
                "seed_axis": trainer.mode,
                "update_period": config.update_period,
                "steps_per_s": _median(steps_per_s),
                "updates_per_s": _median(calls_per_s) * per_call * seeds,
                "train_call_ms": call_s * 1e3,
                "compile_s": compile_s,
            }
        )
    return rows


# Updates over a filled replay --------------------------------------------------------------


def updates_fn(trainer: Trainer, num_updates: int, mode: str, loop: str) -> Callable:
    """Jitted (agent states, replay states, keys) -> (agent states, keys, last losses):
    `num_updates` replay samples and agent updates per seed, in a lax.scan (`loop` "scan")
    or one after another without a loop ("unrolled"), the seed axis mapped by `mode`."""
    replay, agent, gamma = trainer.replay, trainer.agent, trainer.config.gamma

    def one_update(carry: tuple[Any, jax.Array], replay_state: ReplayState):
        agent_state, key = carry
        key, sample_key, update_key = jax.random.split(key, 3)
        batch = replay.sample(replay_state, sample_key, gamma)
        agent_state, metrics = agent.update(agent_state, batch, update_key)
        return (agent_state, key), metrics["loss"]

    def per_seed(agent_state: Any, replay_state: ReplayState, key: jax.Array):
        carry = (agent_state, key)
        if loop == "scan":
            body = lambda carry, _: one_update(carry, replay_state)  # noqa: E731
            carry, losses = jax.lax.scan(body, carry, length=num_updates)
            loss = losses[-1]
        else:
            for _ in range(num_updates):
                carry, loss = one_update(carry, replay_state)
        return *carry, loss

    return jax.jit(over_seeds(per_seed, mode, 3), donate_argnums=0)


def time_update_calls(
    run: Callable, agent_state: Any, replay_state: ReplayState, keys: jax.Array, settings: Settings
) -> tuple[float, float]:
    """(first call, steady call) in seconds of `run` (see `first_and_steady`)."""

    def call() -> tuple:
        nonlocal agent_state, keys
        agent_state, keys, loss = run(agent_state, replay_state, keys)
        return agent_state, keys, loss

    return first_and_steady(call, settings)


def bench_updates(settings: Settings) -> list[Row]:
    """Section updates: updates/s of the Nature CNN and the MLP per seed count, seed axis
    and loop form, over a replay filled to capacity."""
    rows = []
    per_call = {ATARI_PRESET: settings.cnn_updates, MLP_PRESET: settings.mlp_updates}
    for preset, seeds in itertools.product(BENCH_PRESETS, settings.update_seeds):
        config = bench_config(preset, seeds, settings)
        trainer = Trainer.create(config)
        state = trainer.init_state()
        keys = state.key
        replay_state = random_fill(trainer, trainer.replay.max_rows)(state.replay, keys)
        for mode, loop in UPDATE_VARIANTS[config.network]:
            run = updates_fn(trainer, per_call[preset], mode, loop)
            agent_state = jax.tree.map(jnp.copy, state.agent)  # donated to `run`
            first, steady = time_update_calls(run, agent_state, replay_state, keys, settings)
            rows.append(
                {
                    "section": "updates",
                    "network": config.network,
                    "batch_size": config.batch_size,
                    "seeds": seeds,
                    "seed_axis": mode,
                    "loop": loop,
                    "updates_per_call": per_call[preset],
                    "updates_per_s": per_call[preset] * seeds / steady,
                    "updates_per_s_per_seed": per_call[preset] / steady,
                    "compile_s": first - steady,
                }
            )
        del state, replay_state
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

SECTION_FUNCTIONS: dict[str, Callable[[Settings], list[Row]]] = {
    "env": bench_envs,
    "train": bench_train,
    "updates": bench_updates,
    "replay": bench_replay,
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
        description="Throughput of envpool, collection, training and updates on this machine.",
    )
    parser.add_argument("--quick", action="store_true", help="a run of about a minute")
    parser.add_argument(
        "--sections",
        type=_sections,
        default=SECTIONS,
        help=f"comma-separated, from {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--output", type=Path, default=Path("bench.json"), help="JSON results")
    parser.add_argument("--seeds", type=_int_tuple, help="pool sizes (seeds x 1 env), e.g. 1,8")
    parser.add_argument("--update-seeds", type=_int_tuple, help="updates section, e.g. 1,4,8")
    parser.add_argument("--capacity", type=int, help="replay transitions per seed")
    parser.add_argument("--reps", type=int, help="timed repetitions per figure")
    args = parser.parse_args(list(argv))
    settings = QUICK if args.quick else Settings()
    overrides = {
        name: getattr(args, name)
        for name in ("seeds", "update_seeds", "capacity", "reps")
        if getattr(args, name) is not None
    }
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
    """An aligned table of one section's rows, without the machine labels."""
    columns = [k for k in rows[0] if k != "section" and k not in LABELS]
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
        rows += [row | labels for row in new]
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
