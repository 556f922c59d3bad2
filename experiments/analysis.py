"""Reading finished or running runs back for analysis in notebooks: configs, trained
agents and what they predict."""

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from envs import make_env
from experiments.checkpoint import Checkpointer
from experiments.config import Config
from experiments.logger import CONFIG_FILE, process_dirs
from experiments.runner import SEED_AXIS, SeedState, Trainer

if TYPE_CHECKING:
    import matplotlib.figure


def load_config(run_dir: str | Path) -> Config:
    """The resolved config a run dir was trained with."""
    stored = json.loads((Path(run_dir) / CONFIG_FILE).read_text())["config"]
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})


def load_run(run_dir: str | Path) -> tuple[Trainer, SeedState, int]:
    """(trainer, state of every member, iterations done) from a run dir's latest readable
    checkpoint. The whole state is restored, replay buffers included. A multi-process run
    loads as one run: every process's seeds, at the newest iteration all have saved."""
    run_dir = Path(run_dir)
    trainer = Trainer.create(load_config(run_dir))
    parts = process_dirs(run_dir)
    if not parts:
        iterations, state = _restore(run_dir, trainer)
        return trainer, state, iterations
    blocks = [Trainer.create(load_config(part)) for part in parts]
    labels = [member.label for block in blocks for member in block.members]
    missing = [m.label for m in trainer.members if m.label not in labels]
    if missing:
        raise FileNotFoundError(f"{run_dir} has no process dir with {', '.join(missing)} yet.")
    pairs = list(zip(parts, blocks, strict=True))
    common = min(max(_checkpoint_steps(part, block), default=0) for part, block in pairs)
    restored = [_restore(part, block, common) for part, block in pairs]
    if any(iterations != common for iterations, _ in restored):
        raise FileNotFoundError(
            f"the processes of {run_dir} have no readable checkpoint of one iteration in "
            "common; load the process dirs one by one."
        )
    order = np.array([labels.index(m.label) for m in trainer.members])  # into run order
    state = jax.tree.map(lambda *parts: jnp.concatenate(parts)[order], *(s for _, s in restored))
    return trainer, jax.device_put(state, NamedSharding(trainer.mesh, P(SEED_AXIS))), common


def _checkpoint_steps(run_dir: Path, trainer: Trainer) -> list[int]:
    checkpointer = Checkpointer(run_dir, trainer.config.keep_checkpoints)
    try:
        return checkpointer.steps()
    finally:
        checkpointer.close()


def _restore(run_dir: Path, trainer: Trainer, at_most: int | None = None) -> tuple[int, SeedState]:
    """(iterations, state) of a single-process run dir's newest readable checkpoint."""
    checkpointer = Checkpointer(run_dir, trainer.config.keep_checkpoints)
    try:
        restored = checkpointer.restore_latest(trainer.init_state(), at_most)
    finally:
        checkpointer.close()
    if restored is None:
        raise FileNotFoundError(f"{run_dir} has no readable checkpoint.")
    iterations, state, _ = restored
    return iterations, state


def return_distribution(
    trainer: Trainer, state: SeedState, obs: np.ndarray, member: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The return distribution one member's critic predicts for each action.

    Args:
      trainer, state: as returned by `load_run` (or `train`'s RunResult.state).
      obs: (N, *obs_shape) observations as the agent sees them (Atari: stacked frames).
      member: index of the seed (or sweep point x seed) in the run.

    Returns:
      support and probabilities (N, A, m): a categorical critic's fixed support (m,), or a
      quantile critic's quantiles (N, A, m), each of probability 1/m (so the mean is
      sum(probabilities * support, -1) either way); raises ValueError for a scalar critic.
    """
    params = jax.tree.map(lambda x: x[member], state.agent.params)
    support, probabilities = trainer.agent.return_distribution(params, np.asarray(obs))
    return np.asarray(support), np.asarray(probabilities)


def joint_return_particles(
    trainer: Trainer, state: SeedState, obs: np.ndarray, action: int, member: int = 0
) -> np.ndarray:
    """The joint-return particles a member's particle critic (MD3QN, MMDQN) predicts.

    Args:
      trainer, state: as returned by `load_run` (or `train`'s RunResult.state).
      obs: (*obs_shape) one observation as the agent sees it.
      action: the action whose return is asked for.
      member: index of the seed (or sweep point x seed) in the run.

    Returns:
      (M, N) particles, N reward sources (1 for MMDQN).
    """
    if trainer.agent.return_particles is None:
        raise ValueError(
            f"agent={trainer.config.agent!r} predicts no return particles; use md3qn or mmdqn."
        )
    params = jax.tree.map(lambda x: x[member], state.agent.params)
    particles = trainer.agent.return_particles(params, np.asarray(obs)[None])
    return np.asarray(particles[0, action])


def start_observation(config: Config) -> np.ndarray:
    """(*obs_shape) the first observation of the config's task (deterministic on the mazes),
    for tasks the agent sees one frame at a time."""
    env = make_env(config.env, 1, 1, seed=config.seed, atari_protocol=config.atari_protocol)
    try:
        if env.spec.frame_stack != 1:
            raise ValueError(
                f"{config.env} stacks {env.spec.frame_stack} frames; pass an observation."
            )
        return env.reset().obs[0, 0]
    finally:
        env.close()


def joint_return_figure(
    predicted: np.ndarray,
    monte_carlo: np.ndarray,
    pairs: Sequence[tuple[int, int]] | None = None,
    title: str = "",
) -> "matplotlib.figure.Figure":
    """Scatter plots of predicted joint-return particles (M, N) beside Monte-Carlo joint
    returns (K, N) of the same policy, one panel per pair of sources (all pairs by default;
    the MD3QN paper's Fig. 2)."""
    import matplotlib.pyplot as plt

    num_sources = predicted.shape[1]
    if num_sources < 2 or monte_carlo.shape[1] != num_sources:
        raise ValueError(
            f"need joint returns of the same N >= 2 sources, got {predicted.shape} and "
            f"{monte_carlo.shape}"
        )
    pairs = list(pairs or itertools.combinations(range(num_sources), 2))
    figure, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4), squeeze=False)
    for axis, (i, j) in zip(axes[0], pairs, strict=True):
        axis.scatter(monte_carlo[:, i], monte_carlo[:, j], s=8, alpha=0.5, label="Monte Carlo")
        axis.scatter(predicted[:, i], predicted[:, j], s=8, alpha=0.5, label="particles")
        axis.set_xlabel(f"return of source {i}")
        axis.set_ylabel(f"return of source {j}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def maze_joint_return_figure(
    run_dir: str | Path, output: str | Path, num_episodes: int = 1000, member: int = 0
) -> Path:
    """Writes the paper's Fig. 2 for a maze run: one member's particles at (start, action 0)
    beside `num_episodes` Monte-Carlo joint returns of "action 0, then uniform" (the
    policy md3qn_maze_eval evaluates) at the run's discount. Returns the PNG's path."""
    import matplotlib.pyplot as plt

    from envs.maze import monte_carlo_joint_returns

    trainer, state, iterations = load_run(run_dir)
    config = trainer.config
    predicted = joint_return_particles(trainer, state, start_observation(config), 0, member)
    monte_carlo = monte_carlo_joint_returns(config.env, num_episodes, config.gamma, seed=0)
    title = f"{config.env}, {config.steps_after(iterations):,} steps\nreturn from (start, 0)"
    figure = joint_return_figure(predicted, monte_carlo, title=title)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output


def episode_return_distributions(
    trainer: Trainer, state: SeedState, member: int = 0, max_steps: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One episode of a member's greedy policy (highest predicted mean) and what its
    categorical or quantile critic predicts along it.

    Returns:
      support (m,) (categorical) or (T, m) (the quantiles at each step), probabilities
      (T, m) of the action taken at each of the T steps, and the discounted return that
      followed each step (T,) at the run's gamma; an episode cut by `max_steps` or a time
      limit has truncated returns. Tasks whose agent sees stacked frames are refused (the
      critic needs the stack).
    """
    config = trainer.config
    env = make_env(config.env, 1, 1, seed, config.atari_protocol, evaluation=True)
    try:
        if env.spec.frame_stack != 1:
            raise ValueError(
                f"{config.env} stacks {env.spec.frame_stack} frames; use a task without."
            )
        result = env.reset()
        atoms, predicted, rewards = [], [], []
        for _ in range(max_steps):
            support, probabilities = return_distribution(trainer, state, result.obs[0], member)
            step_atoms = np.broadcast_to(support, probabilities.shape)[0]  # (A, m)
            action = int(np.argmax(np.sum(probabilities[0] * step_atoms, axis=-1)))
            atoms.append(step_atoms[action])
            predicted.append(probabilities[0, action])
            result = env.step(np.full((1, 1), action))
            rewards.append(float(np.sum(result.reward)))
            if result.terminated[0, 0] or result.truncated[0, 0]:
                break
    finally:
        env.close()
    returns = np.zeros(len(rewards))
    following = 0.0
    for t in reversed(range(len(rewards))):
        following = rewards[t] + config.gamma * following
        returns[t] = following
    # A categorical critic's support is fixed; a quantile critic's atoms move step by step.
    support = support if support.ndim == 1 else np.stack(atoms)
    return support, np.stack(predicted), returns


def episode_distributions_figure(
    support: np.ndarray, probabilities: np.ndarray, returns: np.ndarray, title: str = ""
) -> "matplotlib.figure.Figure":
    """The predicted return distribution at every step of an episode (step on x, return on
    y): a categorical critic's (support (m,)) as a heat map, a quantile critic's (support
    (T, m), its quantiles) as one line per quantile; the return that followed over it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    steps = np.arange(len(returns))
    if support.ndim == 1:
        edges = np.concatenate([[support[0]], (support[1:] + support[:-1]) / 2, [support[-1]]])
        mesh = axis.pcolormesh(
            np.arange(len(returns) + 1) - 0.5,
            edges,
            probabilities.T,
            cmap="viridis",
            shading="flat",
        )
        figure.colorbar(mesh, ax=axis, label="probability")
        followed_color = "white"
    else:
        axis.plot(steps, support, color="tab:blue", linewidth=0.5, alpha=0.4)
        axis.plot([], [], color="tab:blue", linewidth=0.5, label="predicted quantiles")
        followed_color = "black"
    axis.plot(
        steps, returns, color=followed_color, linewidth=1.5, label="discounted return that followed"
    )
    mean = np.sum(probabilities * support, axis=-1)
    axis.plot(steps, mean, color="orange", linewidth=1, label="predicted mean")
    axis.set_xlabel("step of the episode")
    axis.set_ylabel("return")
    axis.legend(fontsize=8, loc="upper right")
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure
