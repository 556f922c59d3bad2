"""XLA:CPU settings of the training loop.

JAX lowers the threefry hash behind every random draw to a rolled five-round loop on CPU
(fast to compile); a loop step costs several thunk launches, so a step's few small draws
(a key split, epsilon-greedy's uniform and randint) took 150 us of a 180 us acting call on
the 2-core CPU box. The unrolled lowering that JAX uses on GPU and TPU computes the same
bits (tests/test_runner.py checks) without the loops. JAX has no public switch for it, so
it is registered through its internal lowering table; on a JAX without that table the
rolled lowering stays.
"""

import contextlib


def unroll_threefry() -> bool:
    """Lowers threefry unrolled on CPU from now on, as on GPU and TPU; False if this JAX
    does not expose the lowering (the draws are the same either way, only slower)."""
    with contextlib.suppress(ImportError, AttributeError):
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32

        mlir.register_lowering(
            threefry2x32.threefry2x32_p,
            threefry2x32._threefry2x32_lowering_rule,
            platform="cpu",
        )
        return True
    return False
