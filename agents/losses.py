"""Scalar value losses in the rlax convention.

Every function here works on ONE transition (no batch axis) and checks its input shapes with
chex; callers `jax.vmap` over the batch. Names: `_tm1` for the step the action was taken in,
`_t` for the step bootstrapped from.
"""

import chex
import jax
import jax.numpy as jnp
import optax


def q_learning_target(q_t: jax.Array, r_t: jax.Array, discount_t: jax.Array) -> jax.Array:
    """Q-learning target r_t + discount_t * max_a q_t[a], gradient stopped.

    Args:
      q_t: (A,) Q-values of the next observation (target network).
      r_t: () reward (n-step discounted sum).
      discount_t: () full bootstrap discount (gamma^n, 0 at termination).

    Returns:
      () target, wrapped in stop_gradient.
    """
    chex.assert_rank([q_t, r_t, discount_t], [1, 0, 0])
    chex.assert_type([q_t, r_t, discount_t], float)
    return jax.lax.stop_gradient(r_t + discount_t * jnp.max(q_t))


def double_q_learning_target(
    q_t_target: jax.Array, q_t_online: jax.Array, r_t: jax.Array, discount_t: jax.Array
) -> jax.Array:
    """Double Q-learning target r_t + discount_t * q_t_target[argmax_a q_t_online[a]].

    The online network selects the action (ties to the lowest index), the target network
    evaluates it.

    Args:
      q_t_target: (A,) target-network Q-values of the next observation.
      q_t_online: (A,) online-network Q-values of the next observation.
      r_t: () reward (n-step discounted sum).
      discount_t: () full bootstrap discount.

    Returns:
      () target, wrapped in stop_gradient.
    """
    chex.assert_rank([q_t_target, q_t_online, r_t, discount_t], [1, 1, 0, 0])
    chex.assert_equal_shape([q_t_target, q_t_online])
    chex.assert_type([q_t_target, q_t_online, r_t, discount_t], float)
    best_action_t = jnp.argmax(q_t_online)
    return jax.lax.stop_gradient(r_t + discount_t * q_t_target[best_action_t])


def td_error(q_tm1: jax.Array, a_tm1: jax.Array, target: jax.Array) -> jax.Array:
    """TD error target - q_tm1[a_tm1].

    Args:
      q_tm1: (A,) online Q-values of the observation the action was taken in.
      a_tm1: () int action taken.
      target: () bootstrap target (held fixed by the target functions above).

    Returns:
      () TD error.
    """
    chex.assert_rank([q_tm1, a_tm1, target], [1, 0, 0])
    chex.assert_type([q_tm1, a_tm1, target], [float, int, float])
    return target - q_tm1[a_tm1]


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
