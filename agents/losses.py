"""Per-transition losses (rlax convention: unbatched, shapes checked with chex; callers
vmap over the batch): of a scalar TD error, the quantile Huber loss between quantiles and
target samples, and the squared MMD between particle sets."""

from typing import NamedTuple

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


def quantile_huber_loss(
    dist_tm1: jax.Array, tau: jax.Array, dist_target: jax.Array, kappa: float = 1.0
) -> jax.Array:
    """Quantile regression of predicted quantiles towards target samples (QR-DQN).

    sum_i mean_j rho_i(u_ij) with u_ij = dist_target[j] - dist_tm1[i] and
    rho_i(u) = |tau_i - 1{u < 0}| Huber_kappa(u) / kappa, or |tau_i - 1{u < 0}| |u| (plain
    quantile regression, the limit) when kappa = 0 (Dabney et al. 2018, eq. 10). The sum
    over i and mean over j are Dopamine's JAX quantile agent's; it and rlax leave out the
    division by kappa, which changes nothing at kappa = 1. The targets are held fixed.

    Args:
      dist_tm1: (N,) predicted quantiles, at the levels `tau`.
      tau: (N,) quantile levels in (0, 1).
      dist_target: (N',) target samples, e.g. r + discount * the target network's quantiles.
      kappa: Huber threshold >= 0, a Python float.

    Returns:
      () the loss; its gradient w.r.t. dist_tm1[i] is
      -mean_j |tau_i - 1{u_ij < 0}| clip(u_ij / kappa, -1, 1) (sign(u_ij) at kappa = 0).
    """
    chex.assert_rank([dist_tm1, tau, dist_target], 1)
    chex.assert_equal_shape([dist_tm1, tau])
    dist_target = jax.lax.stop_gradient(dist_target)

    def add_target(total: jax.Array, target: jax.Array) -> tuple[jax.Array, None]:
        """Adds rho_i(target - dist_tm1[i]) of one target sample () to total (N,)."""
        u = target - dist_tm1
        regression = optax.huber_loss(u, delta=kappa) / kappa if kappa > 0 else jnp.abs(u)
        return total + jnp.abs(tau - (u < 0).astype(u.dtype)) * regression, None

    # Target by target in a fixed order rather than a mean over the j axis of an (N, N')
    # array: XLA:CPU orders a reduction by its shape, which changes once seeds are vmapped,
    # and vmapped seeds must stay bit for bit equal to separate runs.
    total, _ = jax.lax.scan(add_target, jnp.zeros_like(dist_tm1), dist_target)
    return jnp.sum(total / dist_target.shape[0])


class MixtureKernel(NamedTuple):
    """k(x, y) = sum_b weight_b exp(-d(x, y) / b) for x, y in R^N, where d is the squared
    distance averaged over the N coordinates."""

    bandwidths: tuple[float, ...]
    weights: tuple[float, ...]


# MD3QN (authors' code): 17 bandwidths 2^-8..2^8, each weighted by its square root.
MD3QN_KERNEL = MixtureKernel(
    tuple(2.0**k for k in range(-8, 9)), tuple(2.0 ** (k / 2) for k in range(-8, 9))
)
# MMDQN (as the MD3QN code runs it): bandwidths 1..10, unweighted.
MMDQN_KERNEL = MixtureKernel(tuple(float(h) for h in range(1, 11)), (1.0,) * 10)


def kernel_matrix(x: jax.Array, y: jax.Array, kernel: MixtureKernel) -> jax.Array:
    """k(x_i, y_j) for particles x (M, N) and y (M', N): (M, M')."""
    chex.assert_rank([x, y], 2)
    chex.assert_equal_shape_suffix([x, y], 1)
    distance = jnp.mean(jnp.square(x[:, None, :] - y[None, :, :]), axis=-1)
    bandwidths = jnp.asarray(kernel.bandwidths, jnp.float32)[None, None]
    weights = jnp.asarray(kernel.weights, jnp.float32)[None, None]
    return jnp.sum(weights * jnp.exp(-distance[..., None] / bandwidths), axis=-1)


def squared_mmd(z_tm1: jax.Array, y_t: jax.Array, kernel: MixtureKernel) -> jax.Array:
    """MMD^2 between predicted particles z_tm1 (M, N) and target particles y_t (M', N):
    the biased V-statistic over all pairs (i = j included), clamped at 0. The targets are
    held fixed (no gradient flows into them)."""
    y_t = jax.lax.stop_gradient(y_t)
    mmd = (
        jnp.mean(kernel_matrix(z_tm1, z_tm1, kernel))
        + jnp.mean(kernel_matrix(y_t, y_t, kernel))
        - 2.0 * jnp.mean(kernel_matrix(z_tm1, y_t, kernel))
    )
    return jnp.maximum(mmd, 0.0)
