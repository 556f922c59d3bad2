"""The peers section of experiments.bench: whole training runs with the settings of CleanRL's
single-file JAX scripts, timed from process start to exit, next to CleanRL's own runs when
a CleanRL checkout and its Python are given (CleanRL is not a dependency: install it in a
virtual environment of its own, see README.md).

Both sides pay the same things: interpreter start, imports, compilation, the environment
steps, the updates, and their logs. Ours trains several seeds in one program; CleanRL's
several seeds are as many concurrent processes, one seed each.
"""

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from experiments.config import Config
from experiments.presets import TD3_MUJOCO

REPO_ROOT = Path(__file__).resolve().parents[1]

DQN_CLEANRL = Config(
    env="CartPole-v1",
    seeds=1,
    total_steps=100_000,
    iteration_steps=10_000,
    eval_episodes=0,  # CleanRL evaluates nothing unless it saves the model
    network="mlp",
    mlp_hidden=(120, 84),
    loss="mse",
    optimizer="adam",
    learning_rate=2.5e-4,
    optimizer_eps=1e-8,
    gamma=0.99,
    target_update_period=500,
    target_update_tau=1.0,
    epsilon_start=1.0,
    epsilon_end=0.05,
    epsilon_decay_steps=50_000,
    replay_capacity=10_000,
    batch_size=128,
    learning_starts=9_990,  # below the capacity, as the replay requires; CleanRL: 10k
    update_period=10,
    progress=False,
    checkpoint_every=0,  # CleanRL saves nothing
)
"""CleanRL's dqn_jax.py defaults at 100k steps: MLP 120-84, Adam 2.5e-4, MSE, 10k replay,
batch 128, learning starts 10k, an update every 10 steps, target copied every 500 steps,
epsilon 1 -> 0.05 over 50k steps. Differences: learning starts at 9,990 (our replay needs
it below its capacity), and the decay counts from learning_starts (CleanRL's from step 0)."""

TD3_CLEANRL = dataclasses.replace(
    TD3_MUJOCO,  # the author's later defaults, which CleanRL's script follows
    env="InvertedPendulum-v4",
    seeds=1,
    total_steps=30_000,
    eval_episodes=0,
    learning_starts=25_000,  # CleanRL's default (the preset's is 1k on this task)
    progress=False,
    checkpoint_every=0,
)
"""CleanRL's td3_continuous_action_jax.py defaults at 30k steps: 256-256 networks, Adam 3e-4,
1M replay, batch 256, 25k uniform start steps, one update per step, policy delay 2, tau
0.005, smoothing noise 0.2 clipped at 0.5, exploration noise 0.1."""


class Work(NamedTuple):
    """One comparison: our config and CleanRL's script with its arguments."""

    name: str
    config: Config
    script: str
    arguments: tuple[str, ...]


WORKS = {
    "dqn": Work("DQN CartPole-v1", DQN_CLEANRL, "dqn_jax.py", ("--env-id", "CartPole-v1")),
    "td3": Work(
        "TD3 InvertedPendulum-v4",
        TD3_CLEANRL,
        "td3_continuous_action_jax.py",
        ("--env-id", "InvertedPendulum-v4"),
    ),
}
TARGETS = {  # our wall over CleanRL's (its seeds as concurrent processes), at most
    ("dqn", 1): 1.0,
    ("dqn", 4): 0.6,
    ("td3", 1): 1.0,
    ("td3", 4): 1.0,
}


def scaled(config: Config, fraction: float) -> Config:
    """`config` with its budget and learning start scaled by `fraction` (quick runs)."""
    if fraction == 1.0:
        return config
    period = config.update_period
    iteration_steps = max(period, int(config.iteration_steps * fraction) // period * period)
    return dataclasses.replace(
        config,
        total_steps=iteration_steps * config.iterations,
        iteration_steps=iteration_steps,
        learning_starts=max(config.batch_size, int(config.learning_starts * fraction)),
    )


def train_worker(work: str, seeds: str, fraction: str, run_dir: str) -> None:
    """Trains `seeds` seeds of a work (run in a fresh process by `our_seconds`)."""
    from experiments.runner import train

    config = scaled(WORKS[work].config, float(fraction))
    config = dataclasses.replace(config, seeds=int(seeds))
    train(config, "peers", run_dir)


def our_seconds(work: str, seeds: int, fraction: float) -> float:
    """Wall seconds of a fresh Python process that trains `seeds` seeds in one program."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    call = "import sys; from experiments.peers import train_worker as t; t(*sys.argv[1:])"
    with tempfile.TemporaryDirectory() as run_dir:
        arguments = [work, str(seeds), str(fraction), run_dir]
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", call, *arguments],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - start


def cleanrl_seconds(
    work: str, processes: int, fraction: float, python: str, directory: str
) -> float:
    """Wall seconds until `processes` concurrent CleanRL runs (seeds 1, 2, ...) all exit."""
    spec = WORKS[work]
    config = scaled(spec.config, fraction)
    arguments = [*spec.arguments, "--total-timesteps", str(config.total_steps)]
    arguments += ["--learning-starts", str(config.learning_starts)]
    start = time.perf_counter()
    runs = [
        subprocess.Popen(
            [python, spec.script, *arguments, "--seed", str(seed)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for seed in range(1, processes + 1)
    ]
    codes = [run.wait() for run in runs]
    if any(codes):
        raise RuntimeError(f"CleanRL's {spec.script} exited with {codes} in {directory}.")
    return time.perf_counter() - start


def bench_peers(
    seeds: dict[str, tuple[int, ...]], fraction: float, python: str = "", directory: str = ""
) -> list[dict[str, Any]]:
    """Rows of the peers section: our wall seconds for each work and seed count, and with
    a CleanRL `python` and checkout `directory`, CleanRL's for as many processes."""
    rows = []
    for work, counts in seeds.items():
        for count in counts:
            config = scaled(WORKS[work].config, fraction)
            row = {
                "section": "peers",
                "work": WORKS[work].name,
                "agent_steps": config.total_steps,
                "seeds": count,
                "seconds": our_seconds(work, count, fraction),
            }
            if python:
                theirs = cleanrl_seconds(work, count, fraction, python, directory)
                row |= {"cleanrl_processes": count, "cleanrl_seconds": theirs}
                row["ratio"] = row["seconds"] / theirs
                if (work, count) in TARGETS and fraction == 1.0:
                    row |= {"target": TARGETS[work, count]}
                    row["target_met"] = row["ratio"] <= row["target"]
            rows.append(row)
    return rows
