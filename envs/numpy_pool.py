"""What the pure-NumPy pools (the MD3QN mazes, the finite MDPs) share behind VecEnv's
interface: the split send/recv step, the reset guard and the check of the actions. A pool
subclasses `NumpyPool` and implements `reset` and `_step`."""

from __future__ import annotations

import numpy as np

from envs.factory import EnvSpec, StepResult


class NumpyPool:
    """A host-side pool of ``num_seeds * envs_per_seed`` environments without threads:
    ``recv`` does the step that ``send`` was given. ``env_seeds`` (S, E) holds each
    environment's seed."""

    def __init__(self, spec: EnvSpec, env_seeds: np.ndarray) -> None:
        self.spec = spec
        self.env_seeds = env_seeds
        self._batch_shape = (spec.num_seeds, spec.envs_per_seed)
        self._num_envs = spec.num_seeds * spec.envs_per_seed
        self._was_reset = False  # set by the subclass's reset()
        self._sent: np.ndarray | None = None  # actions of the step that recv() takes

    def reset(self) -> StepResult:
        raise NotImplementedError

    def send(self, actions: np.ndarray) -> None:
        """VecEnv's split step: this pool has no threads, so ``recv`` does the step."""
        if not self._was_reset:
            raise RuntimeError("call reset() before step()")
        self._sent = self._flat_actions(actions)

    def recv(self) -> StepResult:
        """The result of the step that ``send`` started."""
        if self._sent is None:
            raise RuntimeError("call send() before recv()")
        action, self._sent = self._sent, None
        return self._step(action)

    def step(self, actions: np.ndarray) -> StepResult:
        """Steps every environment with ``actions`` (S, E) int in [0, num_actions)."""
        self.send(actions)
        return self.recv()

    def close(self) -> None:
        """Nothing to release; kept for VecEnv's interface."""

    def _step(self, action: np.ndarray) -> StepResult:
        """Steps every environment with its action, flat (S * E,) int64."""
        raise NotImplementedError

    def _flat_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != self._batch_shape:
            raise ValueError(f"actions must have shape {self._batch_shape}, got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integers, got dtype {actions.dtype}")
        num_actions = self.spec.num_actions
        if actions.min() < 0 or actions.max() >= num_actions:
            raise ValueError(
                f"discrete actions must lie in [0, {num_actions}), got "
                f"[{actions.min()}, {actions.max()}]"
            )
        return actions.reshape(-1).astype(np.int64)
