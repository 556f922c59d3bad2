"""Throughput of the training loop's pieces on this machine: a script, not a test.

    python -m experiments.bench [--quick] [--sections env,collect,train,updates,replay]
                                [--output bench.json]

Sections (each one small function returning a list of dict rows):

- env: envpool steps/s with uniform random actions, through `envs.make_env`.
- collect: the runner's loop with its 0-update step function (policy, replay write and
  host<->device copies) on the same pools, and its ratio to the raw pool.
- train: the runner's loop with updates at the preset's update period, once the replay
  holds `learning_starts` transitions.
- updates: K updates (replay sample + agent update) in one jitted `lax.scan`, with the seed
  axis computed by vmap and by a sequential lax.map, over a replay filled with random data.
- replay: bytes per seed of the 1M-transition Atari replay against frames x 84 x 84 bytes.

Compile times are the first call minus a steady-state call of the same jitted function.
Every row carries the backend, device kind, CPU count and JAX version it was measured on,
so that rows of several machines can be concatenated into one table.
"""

import argparse
import dataclasses
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
from experiments.runner import SeedState, Trainer, over_seeds, seed_keys

Row = dict[str, Any]

SECTIONS = ("env", "collect", "train", "updates", "replay")
ATARI_PRESET = "dqn_atari_dopamine"
MLP_PRESET = "dqn_cartpole"
BENCH_PRESETS = (ATARI_PRESET, MLP_PRESET)
SEED_AXES = ("vmap", "map")
ATARI_FRAME_BYTES = 84 * 84  # one stored uint8 frame: 7056 B
COLLECT_TARGET = 0.8  # Atari collection steps/s over raw pool steps/s, at least
REPLAY_TOLERANCE = 0.1  # Atari replay bytes within 10% of frames x 7056 B
TERMINAL_PROBABILITY = 1 / 500  # episode ends in the random replay fill
WARMUP_STEPS = 50  # loop steps run before any timed loop


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much to measure; the defaults are the full run (about 10 minutes on 2 cores)."""

    seeds: tuple[int, ...] = (1, 8)
    """Pool sizes (seeds x 1 env) of the env, collect and train sections."""
    update_seeds: tuple[int, ...] = (1, 4, 8)
    """Seed counts of the updates section."""
    capacity: int = 10_000
    """Replay transitions per seed of the collect, train and updates sections."""
    steps: int = 1_000
    """Loop steps per repetition in the env and collect sections."""
    train_steps: int = 200
    """Loop steps per repetition in the train section."""
    fill: int = 1_000
    """Agent steps collected before training starts (the bench's learning_starts)."""
    reps: int = 3
    """Timed repetitions; figures are medians."""
    cnn_updates: int = 10
    """Updates per jitted call for the Nature CNN (updates section)."""
    mlp_updates: int = 200
    """Updates per jitted call for the MLP (updates section)."""


QUICK = Settings(
    seeds=(1, 2),
    update_seeds=(1, 2),
    capacity=2_000,
    steps=200,
    train_steps=40,
    fill=200,
    reps=2,
    cnn_updates=3,
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


# Raw environment steps ---------------------------------------------------------------------


def _random_steps(env: VecEnv, steps: int, rng: np.random.Generator) -> float:
    """Seconds for `steps` pool steps with uniform random actions."""
    shape = (env.spec.num_seeds, env.spec.envs_per_seed)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.integers(0, env.spec.num_actions, shape, dtype=np.int32))
    return time.perf_counter() - start


def raw_env_rate(config: Config, settings: Settings) -> float:
    """Median agent steps/s (all environments) of the pool of `config`, random actions."""
    env = bench_env(config)
    rng = np.random.default_rng(0)
    try:
        env.reset()
        _random_steps(env, WARMUP_STEPS, rng)
        seconds = [_random_steps(env, settings.steps, rng) for _ in range(settings.reps)]
    finally:
        env.close()
    return settings.steps * config.seeds * config.envs_per_seed / _median(seconds)


def bench_envs(settings: Settings) -> list[Row]:
    """Section env: raw pool steps/s for each preset's environment and pool size."""
    rows = []
    for preset in BENCH_PRESETS:
        for seeds in settings.seeds:
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
    """The runner's per-step path on one pool (device puts, jitted step, env step), run in
    timed chunks; `agent_step` counts agent steps per seed."""

    trainer: Trainer
    env: VecEnv
    state: SeedState
    result: StepResult
    collect_fn: Callable
    train_fn: Callable | None = None
    agent_step: int = 0

    @classmethod
    def start(cls, trainer: Trainer, env: VecEnv, updates_per_call: int = 0) -> "Loop":
        seeds = trainer.config.seeds
        state = trainer.init(seed_keys(trainer.config.seed, np.arange(seeds)))
        train_fn = trainer.step_fn(updates_per_call) if updates_per_call else None
        return cls(trainer, env, state, env.reset(), trainer.step_fn(0), train_fn)

    def _call(self, fn: Callable) -> np.ndarray:
        r = self.result
        inputs = (r.obs, r.reward, r.terminated, r.truncated, r.first)
        self.state, actions = fn(
            self.state,
            *(jnp.asarray(x) for x in inputs),
            jnp.float32(self.trainer.epsilon(self.agent_step)),
            jnp.int32(self.agent_step + self.trainer.config.envs_per_seed),
        )
        return np.asarray(actions)

    def _update_due(self) -> bool:
        c = self.trainer.config
        loop_every, _ = self.trainer.updates_per_loop_step()
        steps_after = self.agent_step + c.envs_per_seed
        loop_index = self.agent_step // c.envs_per_seed
        return steps_after >= c.learning_starts and (loop_index + 1) % loop_every == 0

    def run(self, steps: int, train: bool = False) -> tuple[float, int]:
        """(seconds, update calls) of `steps` loop steps; updates only if `train`."""
        calls = 0
        start = time.perf_counter()
        for _ in range(steps):
            fn = self.collect_fn
            if train and self.train_fn is not None and self._update_due():
                fn, calls = self.train_fn, calls + 1
            self.result = self.env.step(self._call(fn))
            self.agent_step += self.trainer.config.envs_per_seed
        jax.block_until_ready(self.state)
        return time.perf_counter() - start, calls

    def time_call(self, fn: Callable) -> float:
        """Seconds of one step-function call on the current observation (no env step),
        device puts and the actions' copy back included."""
        start = time.perf_counter()
        self._call(fn)
        jax.block_until_ready(self.state)
        return time.perf_counter() - start

    def compile_time(self, fn: Callable, calls: int = 3) -> tuple[float, float]:
        """(first call minus steady call, steady call) in seconds; call before any other
        call of `fn`."""
        first = self.time_call(fn)
        steady = _median([self.time_call(fn) for _ in range(calls)])
        return first - steady, steady


def bench_collect(settings: Settings, raw_rates: dict[tuple[str, int], float]) -> list[Row]:
    """Section collect: loop steps/s with the 0-update step function, over the raw pool rate
    (taken from `raw_rates` (env, seeds) when the env section ran, measured otherwise)."""
    rows = []
    for preset in BENCH_PRESETS:
        for seeds in settings.seeds:
            config = bench_config(preset, seeds, settings)
            # All collection before learning starts, as in the runner's first phase.
            config = dataclasses.replace(config, learning_starts=config.replay_capacity - 1)
            raw = raw_rates.get((config.env, seeds)) or raw_env_rate(config, settings)
            trainer = Trainer.create(config)
            env = bench_env(config)
            try:
                loop = Loop.start(trainer, env)
                compile_s, call_s = loop.compile_time(loop.collect_fn)
                loop.run(WARMUP_STEPS)
                seconds = [loop.run(settings.steps)[0] for _ in range(settings.reps)]
            finally:
                env.close()
            rate = settings.steps * seeds / _median(seconds)
            row = {
                "section": "collect",
                "env": config.env,
                "seeds": seeds,
                "seed_axis": trainer.mode,
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


def bench_train(settings: Settings) -> list[Row]:
    """Section train: loop steps/s and updates/s with updates every `update_period` agent
    steps, after `learning_starts` steps of collection."""
    rows = []
    for preset in BENCH_PRESETS:
        for seeds in settings.seeds:
            config = bench_config(preset, seeds, settings)
            trainer = Trainer.create(config)
            loop_every, per_call = trainer.updates_per_loop_step()
            steps = max(settings.train_steps // loop_every, 1) * loop_every
            env = bench_env(config)
            try:
                loop = Loop.start(trainer, env, per_call)
                loop.run(config.learning_starts // config.envs_per_seed, train=True)
                compile_s, call_s = loop.compile_time(loop.train_fn)
                loop.run(loop_every, train=True)
                timed = [loop.run(steps, train=True) for _ in range(settings.reps)]
            finally:
                env.close()
            seconds = _median([t for t, _ in timed])
            calls = timed[0][1]
            rows.append(
                {
                    "section": "train",
                    "env": config.env,
                    "seeds": seeds,
                    "seed_axis": trainer.mode,
                    "update_period": config.update_period,
                    "steps_per_s": steps * seeds / seconds,
                    "updates_per_s": calls * per_call * seeds / seconds,
                    "train_call_ms": call_s * 1e3,
                    "compile_s": compile_s,
                }
            )
    return rows


# Updates over a filled replay --------------------------------------------------------------


def random_fill(trainer: Trainer) -> Callable[[ReplayState, jax.Array], ReplayState]:
    """Jitted (replay states (S, ...), keys (S,)) -> replay states, every row written with
    random frames, actions and rewards and episode ends of probability 1/500 per step."""
    replay, spec = trainer.replay, trainer.spec
    e = replay.num_envs
    frame_shape = (e, *replay.frame_shape)

    def fill(state: ReplayState, key: jax.Array) -> ReplayState:
        def add(carry: tuple[ReplayState, jax.Array], key: jax.Array):
            state, first = carry
            frame_key, action_key, reward_key, end_key = jax.random.split(key, 4)
            if jnp.issubdtype(replay.frame_dtype, jnp.integer):
                frame = jax.random.bits(frame_key, frame_shape, replay.frame_dtype)
            else:
                frame = jax.random.normal(frame_key, frame_shape, replay.frame_dtype)
            action = jax.random.randint(action_key, (e,), 0, spec.num_actions, jnp.int32)
            reward = jax.random.randint(reward_key, (e,), -1, 2).astype(jnp.float32)
            terminated = ~first & (jax.random.uniform(end_key, (e,)) < TERMINAL_PROBABILITY)
            reward = jnp.where(first, 0.0, reward)
            no = jnp.zeros((e,), bool)
            state = replay.add(state, frame, action, reward, terminated, no, first)
            return (state, terminated), None

        keys = jax.random.split(key, replay.max_rows)
        (state, _), _ = jax.lax.scan(add, (state, jnp.ones((e,), bool)), keys)
        return state

    return jax.jit(jax.vmap(fill), donate_argnums=0)


def update_scan(trainer: Trainer, num_updates: int, mode: str) -> Callable:
    """Jitted (agent states, replay states, keys) -> (agent states, keys, last losses):
    `num_updates` replay samples and agent updates per seed in one lax.scan, the seed axis
    mapped by `mode`."""
    replay, agent, gamma = trainer.replay, trainer.agent, trainer.config.gamma

    def per_seed(agent_state: Any, replay_state: ReplayState, key: jax.Array):
        def one_update(carry: tuple[Any, jax.Array], _):
            agent_state, key = carry
            key, sample_key = jax.random.split(key)
            batch = replay.sample(replay_state, sample_key, gamma)
            agent_state, metrics = agent.update(agent_state, batch)
            return (agent_state, key), metrics["loss"]

        (agent_state, key), losses = jax.lax.scan(
            one_update, (agent_state, key), length=num_updates
        )
        return agent_state, key, losses[-1]

    return jax.jit(over_seeds(per_seed, mode, 3), donate_argnums=(0, 2))


def _time_update_calls(
    run: Callable, agent_state: Any, replay_state: ReplayState, keys: jax.Array, reps: int
) -> tuple[float, float]:
    """(first call, median of `reps` later calls) in seconds."""
    seconds = []
    for _ in range(reps + 1):
        start = time.perf_counter()
        agent_state, keys, loss = run(agent_state, replay_state, keys)
        jax.block_until_ready((agent_state, keys, loss))
        seconds.append(time.perf_counter() - start)
    return seconds[0], _median(seconds[1:])


def bench_updates(settings: Settings) -> list[Row]:
    """Section updates: updates/s of the Nature CNN and the MLP per seed count and seed axis."""
    rows = []
    for preset, num_updates in (
        (ATARI_PRESET, settings.cnn_updates),
        (MLP_PRESET, settings.mlp_updates),
    ):
        for seeds in settings.update_seeds:
            for mode in SEED_AXES:
                config = bench_config(preset, seeds, settings, seed_axis=mode)
                trainer = Trainer.create(config)
                keys = seed_keys(config.seed, np.arange(seeds))
                state = trainer.init(keys)
                replay_state = random_fill(trainer)(state.replay, keys)
                keys = jax.vmap(jax.random.fold_in, (0, None))(keys, 1)
                run = update_scan(trainer, num_updates, mode)
                first, steady = _time_update_calls(
                    run, state.agent, replay_state, keys, settings.reps
                )
                del state, replay_state
                rows.append(
                    {
                        "section": "updates",
                        "network": config.network,
                        "batch_size": config.batch_size,
                        "seeds": seeds,
                        "seed_axis": mode,
                        "updates_per_call": num_updates,
                        "updates_per_s": num_updates * seeds / steady,
                        "updates_per_s_per_seed": num_updates / steady,
                        "compile_s": first - steady,
                    }
                )
    return rows


# Replay memory -----------------------------------------------------------------------------


def bench_replay(settings: Settings) -> list[Row]:
    """Section replay: bytes per seed of the preset's 1M Atari replay over frames x 7056 B."""
    del settings
    config = dataclasses.replace(get_preset(ATARI_PRESET), seeds=1)
    trainer = Trainer.create(config)
    replay = trainer.replay
    frame_bytes = math.prod(replay.frame_shape) * np.dtype(replay.frame_dtype).itemsize
    assert frame_bytes == ATARI_FRAME_BYTES, replay.frame_shape
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
    return names


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a run of about a minute")
    parser.add_argument(
        "--sections", type=_sections, default=SECTIONS, help=f"comma-separated, of {SECTIONS}"
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
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_section(rows: list[Row]) -> None:
    """One aligned table of a section's rows, without the machine labels."""
    columns = [k for k in rows[0] if k != "section" and k not in machine_labels()]
    print(f"\n[{rows[0]['section']}]")
    print(format_table(columns, [[_cell(row.get(k, "")) for k in columns] for row in rows]))


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(sys.argv[1:] if argv is None else argv)
    labels = machine_labels()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in labels.items()))
    rows: list[Row] = []
    start = time.perf_counter()
    for section in (s for s in SECTIONS if s in args.sections):
        if section == "env":
            new = bench_envs(settings)
        elif section == "collect":
            raw = {(r["env"], r["seeds"]): r["steps_per_s"] for r in rows if r["section"] == "env"}
            new = bench_collect(settings, raw)
        elif section == "train":
            new = bench_train(settings)
        elif section == "updates":
            new = bench_updates(settings)
        else:
            new = bench_replay(settings)
        print_section(new)
        rows += [row | labels for row in new]
    elapsed = time.perf_counter() - start
    report = {
        "machine": labels,
        "settings": dataclasses.asdict(settings),
        "sections": [s for s in SECTIONS if s in args.sections],
        "seconds": elapsed,
        "rows": rows,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(rows)} rows in {elapsed:.0f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
