"""Checkpoints of a whole run at iteration boundaries (orbax): device state and host metadata.

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a
stopped save never looks finished. A save that fails (a full disk, say) removes what it
wrote and stops the run with `CheckpointSaveError`, the previous checkpoint intact. A
finished checkpoint that cannot be read (a truncated file, say) is moved aside and the
previous one is used.
"""

import shutil
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
UNREADABLE_DIR = "checkpoints_unreadable"


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _to_storable(tree: Any) -> Any:
    """Typed PRNG keys become their raw uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _from_storable(stored: Any, like: Any) -> Any:
    return jax.tree.map(
        lambda s, x: jax.random.wrap_key_data(s, impl=jax.random.key_impl(x)) if _is_key(x) else s,
        stored,
        like,
    )


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written; the message names the one kept."""


class Checkpointer:
    """Saves and restores (state pytree, JSON metadata) pairs under run_dir/checkpoints."""

    def __init__(self, run_dir: Path, keep: int):
        self._run_dir = Path(run_dir)
        self._manager = ocp.CheckpointManager(
            self._run_dir.resolve() / CHECKPOINT_DIR,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, enable_async_checkpointing=False, create=True
            ),
        )

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, metadata: dict) -> None:
        """Writes the checkpoint of `step` (an iteration count) and prunes old ones; raises
        CheckpointSaveError, leaving no part of it behind, if the write fails."""
        try:
            self._manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(_to_storable(state)),
                    metadata=ocp.args.JsonSave(metadata),
                ),
            )
            self._manager.wait_until_finished()
        except Exception as error:  # whatever the storage raised: stop with the last good one
            for partial in (self._run_dir / CHECKPOINT_DIR).glob(f"{step}.orbax-checkpoint-tmp*"):
                shutil.rmtree(partial, ignore_errors=True)
            self._manager.reload()
            kept = [s for s in self.steps() if s < step]
            previous = f"the checkpoint of iteration {kept[-1]}" if kept else "no checkpoint"
            raise CheckpointSaveError(
                f"saving the checkpoint of iteration {step} failed ({error}); {previous} is "
                "kept. Free space (or fix the storage), then run the same command to resume."
            ) from error

    def restore_latest(self, like: Any, at_most: int | None = None) -> tuple[int, Any, dict] | None:
        """(step, state, metadata) of the newest readable checkpoint (of a step <= `at_most`
        if given), None if there is none.

        `like` is a state with the right structure, shapes and dtypes. Unreadable
        checkpoints are moved to run_dir/checkpoints_unreadable with a message.
        """
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
            _to_storable(like),
        )
        for step in reversed([s for s in self.steps() if at_most is None or s <= at_most]):
            try:
                restored = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract),
                        metadata=ocp.args.JsonRestore(),
                    ),
                )
                state = _from_storable(restored["state"], like)
                _check_shapes(state, like)
            except Exception as error:  # any failure to read means: use the previous one
                self._set_aside(step, error)
                continue
            return step, state, restored["metadata"]
        return None

    def _set_aside(self, step: int, error: Exception) -> None:
        destination = self._run_dir / UNREADABLE_DIR / str(step)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self._run_dir / CHECKPOINT_DIR / str(step)), destination)
        self._manager.reload()
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        print(
            f"warning: checkpoint of iteration {step} is unreadable ({message}); moved it to "
            f"{destination} and falling back to the previous checkpoint.",
            file=sys.stderr,
        )

    def close(self) -> None:
        self._manager.close()


def _check_shapes(state: Any, like: Any) -> None:
    for restored, expected in zip(jax.tree.leaves(state), jax.tree.leaves(like), strict=True):
        if restored.shape != expected.shape or restored.dtype != expected.dtype:
            raise ValueError(
                f"stored array {restored.shape} {restored.dtype} does not match "
                f"{expected.shape} {expected.dtype}"
            )


def nan_to_none(values: np.ndarray) -> list:
    """A float array as JSON-ready nested lists with None for NaN."""
    return [nan_to_none(v) if np.ndim(v) else (None if np.isnan(v) else float(v)) for v in values]


def none_to_nan(values: list) -> np.ndarray:
    return np.array(values, dtype=np.float64)
