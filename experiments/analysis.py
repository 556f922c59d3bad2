"""Reading finished or running runs back for analysis in notebooks: configs, trained
agents and what they predict."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from experiments.checkpoint import Checkpointer
from experiments.config import Config
from experiments.logger import CONFIG_FILE, process_dirs
from experiments.runner import SEED_AXIS, SeedState, Trainer


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
    """The return distribution one member's categorical critic predicts for each action.

    Args:
      trainer, state: as returned by `load_run` (or `train`'s RunResult.state).
      obs: (N, *obs_shape) observations as the agent sees them (Atari: stacked frames).
      member: index of the seed (or sweep point x seed) in the run.

    Returns:
      support (m,) and probabilities (N, A, m); raises ValueError for a scalar critic.
    """
    params = jax.tree.map(lambda x: x[member], state.agent.params)
    support, probabilities = trainer.agent.return_distribution(params, np.asarray(obs))
    return np.asarray(support), np.asarray(probabilities)
