"""Per-transition losses of a scalar TD error (rlax convention: unbatched, shapes checked
with chex; callers vmap over the batch)."""

import chex
import jax
import jax.numpy as jnp
import optax


def squared_loss(td: jax.Array) -> jax.Array:
    """td^2, no factor 1/2 (the "MSE" of Dopamine's JAX DQN once averaged over the batch).

    Its gradient w.r.t. q_tm1 is -2 td.
    """
    chex.assert_rank(td, 0)
    return jnp.square(td)


def huber_loss(td: jax.Array, delta: float = 1.0) -> jax.Array:
    """Huber loss: 0.5 td^2 if |td| <= delta, else delta (|td| - 0.5 delta).

    Its gradient w.r.t. q_tm1 is -clip(td, -delta, delta): with delta 1 this is Nature DQN's
    TD-error clipping to [-1, 1].
    """
    chex.assert_rank(td, 0)
    return optax.huber_loss(td, delta=delta)
