"""Reading finished or running runs back for analysis in notebooks: configs, trained
agents and what they predict."""

import json
from pathlib import Path

import jax
import numpy as np

from experiments.checkpoint import Checkpointer
from experiments.config import Config
from experiments.logger import CONFIG_FILE
from experiments.runner import SeedState, Trainer


def load_config(run_dir: str | Path) -> Config:
    """The resolved config a run dir was trained with."""
    stored = json.loads((Path(run_dir) / CONFIG_FILE).read_text())["config"]
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})


def load_run(run_dir: str | Path) -> tuple[Trainer, SeedState, int]:
    """(trainer, state of every member, iterations done) from a run dir's latest readable
    checkpoint. The whole state is restored, replay buffers included."""
    config = load_config(run_dir)
    trainer = Trainer.create(config)
    checkpointer = Checkpointer(Path(run_dir), config.keep_checkpoints)
    try:
        restored = checkpointer.restore_latest(trainer.init_state())
    finally:
        checkpointer.close()
    if restored is None:
        raise FileNotFoundError(f"{run_dir} has no readable checkpoint.")
    iterations, state, _ = restored
    return trainer, state, iterations


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
