"""Value representations: how a critic's outputs encode a return and how they are trained.

A representation turns a network's `num_outputs` outputs per action into a Q-value, and
gives the per-transition loss between the online outputs of the taken action and the target
network's outputs of the bootstrap action. Every Q agent (DQN, i-QN, the TD3 critic) is
written once over this interface, so swapping MSE for C51 or HL-Gauss is one argument.

Members: scalar (squared or Huber TD loss), C51 (categorical, distributional target
projected onto the atoms), HL-Gauss and two-hot (categorical head trained on a scalar target
turned into a distribution), quantile (QR-DQN: the return's quantiles, quantile Huber loss),
particles (MD3QN's joint return in R^N, and MMDQN's with N = 1, trained with a squared MMD;
a reward vector r_t of N sources), heads (HRA: one scalar head per reward source). Losses
are unbatched, in the rlax convention.
"""

import functools
from collections.abc import Callable
from typing import Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from agents import losses


class ValueRepresentation(NamedTuple):
    """A critic's output encoding.

    num_outputs: outputs per action, m (1 for a scalar critic).
    q_values(outputs (..., m)) -> (...): the expected return of each output vector.
    loss(out_tm1 (m,), out_t (m,), r_t (), discount_t ()) -> (): online outputs of the taken
      action, target outputs of the bootstrap action; the target side is held fixed.
    support: (m,) return values the probabilities sit on; None for a scalar critic.
    probabilities(outputs (..., m)) -> (..., m): the predicted return distribution; None for
      a scalar critic.
    reward_shape: () when the loss takes a scalar reward (a reward vector is then summed
      over its sources by the agent), (N,) when it takes a vector of N sources.
    reward_value(r_t (..., *reward_shape)) -> (...): the reward on the scale of q_values
      (for the logged mean target); None is the reward itself.
    particles(outputs (..., m)) -> (..., M, N): the predicted joint-return particles of a
      particle critic; None for the others.
    taus: (m,) the quantile levels of a quantile critic, whose outputs are the return's
      quantiles there; None for the others.
    """

    name: str
    num_outputs: int
    q_values: Callable[[jax.Array], jax.Array]
    loss: Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]
    support: np.ndarray | None = None
    probabilities: Callable[[jax.Array], jax.Array] | None = None
    reward_shape: tuple[int, ...] = ()
    reward_value: Callable[[jax.Array], jax.Array] | None = None
    particles: Callable[[jax.Array], jax.Array] | None = None
    taus: np.ndarray | None = None


def return_distribution(
    representation: ValueRepresentation, outputs: jax.Array
) -> tuple[np.ndarray | jax.Array, jax.Array]:
    """(support, probabilities (..., m)) that a critic's outputs (..., m) predict: a
    categorical critic's fixed support (m,), or a quantile critic's quantiles (..., m), each
    an atom of probability 1/m. A scalar critic has none and raises."""
    if representation.taus is not None:
        return outputs, jnp.full_like(outputs, 1.0 / representation.num_outputs)
    if representation.probabilities is None:
        raise ValueError(
            f"A {representation.name} critic predicts no return distribution; use a "
            "categorical one (c51, hl_gauss, two_hot) or quantile."
        )
    return representation.support, representation.probabilities(outputs)


# Categorical targets ------------------------------------------------------------------


def categorical_projection(atoms_t: jax.Array, probs_t: jax.Array, atoms: jax.Array) -> jax.Array:
    """Projects a distribution on atoms_t onto the fixed atoms (C51's projection Phi).

    m_i = sum_j clip(1 - |clip(atoms_t[j], z_0, z_{N-1}) - z_i| / dz, 0, 1) * probs_t[j].
    Unlike the floor/ceil form, no mass is lost when a target lands exactly on an atom.

    Args:
      atoms_t: (N,) where the target mass sits, e.g. r + discount * z.
      probs_t: (N,) its probabilities.
      atoms: (N,) the evenly spaced support z, increasing.

    Returns:
      (N,) probabilities on `atoms`.
    """
    chex.assert_rank([atoms_t, probs_t, atoms], 1)
    chex.assert_equal_shape([atoms_t, probs_t])
    num_atoms = atoms.shape[0]
    delta_z = (atoms[-1] - atoms[0]) / (num_atoms - 1)
    # |Tz_j - z_i| / dz measured in atom indices, so that the two weights of a target sum
    # to 1 up to an ulp even far from zero.
    position = (jnp.clip(atoms_t, atoms[0], atoms[-1]) - atoms[0]) / delta_z
    index = jnp.arange(num_atoms, dtype=position.dtype)
    weights = jnp.clip(1.0 - jnp.abs(position[None, :] - index[:, None]), 0.0, 1.0)
    # Summed in a fixed order: XLA:CPU's reduce picks its order by shape (e.g. (B, 11, 11)
    # differs once seeds are vmapped), which would break bit-exact seed equivalence.
    contributions = weights * probs_t[None, :]
    return functools.reduce(jnp.add, [contributions[:, j] for j in range(atoms_t.shape[0])])


def hl_gauss_probabilities(y: jax.Array, edges: jax.Array, sigma: float) -> jax.Array:
    """HL-Gauss: the mass a Normal(y, sigma^2) truncated to [e_0, e_m] puts in each bin.

    p_i = (Phi((e_{i+1} - y) / sigma) - Phi((e_i - y) / sigma)) /
          (Phi((e_m - y) / sigma) - Phi((e_0 - y) / sigma)), with Phi from erf.

    Args:
      y: () scalar target (callers clip it into [e_0, e_m]).
      edges: (m + 1,) increasing bin edges.
      sigma: Gaussian scale, > 0.

    Returns:
      (m,) bin probabilities.
    """
    chex.assert_rank([y, edges], [0, 1])
    cdf = jax.scipy.special.erf((edges - y) / (jnp.sqrt(2.0) * sigma))
    return (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])


def two_hot_probabilities(y: jax.Array, atoms: jax.Array) -> jax.Array:
    """Two-hot: y split between its two neighbouring atoms so that sum_i p_i z_i = y.

    For z_i <= y <= z_{i+1}: p_i = (z_{i+1} - y) / dz, p_{i+1} = 1 - p_i. It is the C51
    projection of a point mass at y.

    Args:
      y: () scalar target (clipped into [z_0, z_{N-1}] here).
      atoms: (N,) evenly spaced support, increasing.

    Returns:
      (N,) probabilities with at most two non-zero entries.
    """
    chex.assert_rank([y, atoms], [0, 1])
    return categorical_projection(y[None], jnp.ones((1,), y.dtype), atoms)


def cross_entropy(target_probs: jax.Array, logits: jax.Array) -> jax.Array:
    """-sum_i target_i log softmax(logits)_i, target held fixed; (m,), (m,) -> ()."""
    chex.assert_equal_shape([target_probs, logits])
    target_probs = jax.lax.stop_gradient(target_probs)
    return -jnp.sum(target_probs * jax.nn.log_softmax(logits))


def _expectation(probs: jax.Array, support: jax.Array) -> jax.Array:
    """sum_i probs_i support_i over the last axis. A product and a sum rather than a matmul,
    whose CPU kernel rounds differently once seeds are vmapped."""
    return jnp.sum(probs * jnp.broadcast_to(support, probs.shape), axis=-1)


# Members ------------------------------------------------------------------------------


def scalar(loss: Literal["mse", "huber"] = "mse", huber_delta: float = 1.0) -> ValueRepresentation:
    """One output per action, the Q-value; loss of the TD error r + discount q_t - q_tm1:
    "mse" is td^2 (Dopamine JAX DQN), "huber" Huber with `huber_delta` (Nature DQN)."""
    if loss == "mse":
        transition_loss = losses.squared_loss
    elif loss == "huber":

        def transition_loss(td: jax.Array) -> jax.Array:
            return losses.huber_loss(td, huber_delta)

    else:
        raise ValueError(f"Unknown loss {loss!r}: use 'mse' or 'huber'.")

    def q_values(outputs: jax.Array) -> jax.Array:
        return outputs[..., 0]

    def loss_fn(out_tm1, out_t, r_t, discount_t):
        chex.assert_shape([out_tm1, out_t], (1,))
        target = jax.lax.stop_gradient(r_t + discount_t * out_t[0])
        return transition_loss(target - out_tm1[0])

    return ValueRepresentation("scalar", 1, q_values, loss_fn)


def _check_support(v_min: float, v_max: float, num_atoms: int) -> None:
    if not v_min < v_max:
        raise ValueError(f"v_min must be below v_max, got v_min={v_min}, v_max={v_max}.")
    if num_atoms < 2:
        raise ValueError(f"A categorical critic needs at least 2 atoms or bins, got {num_atoms}.")


def _categorical(
    name: str, support: np.ndarray, target_probs: Callable[..., jax.Array]
) -> ValueRepresentation:
    """A categorical head on `support` whose target distribution is
    target_probs(out_t, r_t, discount_t)."""
    atoms = jnp.asarray(support, jnp.float32)

    def probabilities(outputs: jax.Array) -> jax.Array:
        return jax.nn.softmax(outputs, axis=-1)

    def q_values(outputs: jax.Array) -> jax.Array:
        return _expectation(probabilities(outputs), atoms)

    def loss_fn(out_tm1, out_t, r_t, discount_t):
        chex.assert_shape([out_tm1, out_t], (len(support),))
        return cross_entropy(target_probs(out_t, r_t, discount_t), out_tm1)

    return ValueRepresentation(name, len(support), q_values, loss_fn, support, probabilities)


def c51(v_min: float = -10.0, v_max: float = 10.0, num_atoms: int = 51) -> ValueRepresentation:
    """C51: atoms z_i evenly spaced on [v_min, v_max]; the target distribution puts the
    target network's probabilities on r + discount z and is projected onto the atoms."""
    _check_support(v_min, v_max, num_atoms)
    support = np.linspace(v_min, v_max, num_atoms, dtype=np.float32)
    atoms = jnp.asarray(support)

    def target_probs(out_t, r_t, discount_t):
        return categorical_projection(r_t + discount_t * atoms, jax.nn.softmax(out_t), atoms)

    return _categorical("c51", support, target_probs)


def hl_gauss(
    v_min: float = -10.0, v_max: float = 10.0, num_bins: int = 51, sigma_ratio: float = 0.75
) -> ValueRepresentation:
    """HL-Gauss: `num_bins` equal bins on [v_min, v_max], Q on the bin centres; the scalar
    target r + discount Q_target, clipped into [v_min, v_max], becomes the bin masses of a
    Normal with sigma = sigma_ratio x bin width."""
    _check_support(v_min, v_max, num_bins)
    if not sigma_ratio > 0:
        raise ValueError(f"sigma_ratio must be positive, got {sigma_ratio}.")
    edges_np = np.linspace(v_min, v_max, num_bins + 1, dtype=np.float64)
    support = ((edges_np[:-1] + edges_np[1:]) / 2).astype(np.float32)
    edges = jnp.asarray(edges_np, jnp.float32)
    sigma = sigma_ratio * (v_max - v_min) / num_bins
    centres = jnp.asarray(support)

    def target_probs(out_t, r_t, discount_t):
        y = jnp.clip(r_t + discount_t * _expectation(jax.nn.softmax(out_t), centres), v_min, v_max)
        return hl_gauss_probabilities(y, edges, sigma)

    return _categorical("hl_gauss", support, target_probs)


def two_hot(v_min: float = -10.0, v_max: float = 10.0, num_atoms: int = 51) -> ValueRepresentation:
    """Two-hot: atoms evenly spaced on [v_min, v_max] (ends included, so the clipped target's
    mean is represented exactly); the scalar target r + discount Q_target is split between
    its two neighbouring atoms."""
    _check_support(v_min, v_max, num_atoms)
    support = np.linspace(v_min, v_max, num_atoms, dtype=np.float32)
    atoms = jnp.asarray(support)

    def target_probs(out_t, r_t, discount_t):
        return two_hot_probabilities(
            r_t + discount_t * _expectation(jax.nn.softmax(out_t), atoms), atoms
        )

    return _categorical("two_hot", support, target_probs)


def quantile_midpoints(num_quantiles: int) -> np.ndarray:
    """(N,) float32 quantile levels tau_i = (2i + 1) / (2N), i = 0..N-1: the midpoints of N
    equal slices of (0, 1), where quantile regression puts QR-DQN's outputs."""
    return ((2 * np.arange(num_quantiles) + 1) / (2 * num_quantiles)).astype(np.float32)


def quantile(num_quantiles: int = 200, kappa: float = 1.0) -> ValueRepresentation:
    """QR-DQN (Dabney et al. 2018): the N outputs of an action are its return's quantiles
    at `quantile_midpoints(N)`, Q their mean. The target samples r + discount theta_j(s',
    a') (the bootstrap network's quantiles) train them with the quantile Huber loss
    (`losses.quantile_huber_loss`, threshold kappa; 0 is plain quantile regression)."""
    if num_quantiles < 1:
        raise ValueError(f"num_quantiles={num_quantiles}: a quantile critic needs N >= 1.")
    if not 0 <= kappa < np.inf:
        raise ValueError(f"kappa={kappa}: the quantile Huber threshold must be finite, >= 0.")
    taus = quantile_midpoints(num_quantiles)
    tau = jnp.asarray(taus)

    def q_values(outputs: jax.Array) -> jax.Array:
        return jnp.mean(outputs, axis=-1)

    def loss_fn(out_tm1, out_t, r_t, discount_t):
        chex.assert_shape([out_tm1, out_t], (num_quantiles,))
        chex.assert_rank([r_t, discount_t], 0)
        return losses.quantile_huber_loss(out_tm1, tau, r_t + discount_t * out_t, kappa)

    return ValueRepresentation("quantile", num_quantiles, q_values, loss_fn, taus=taus)


def particles(
    num_particles: int, num_sources: int = 1, kernel: losses.MixtureKernel = losses.MD3QN_KERNEL
) -> ValueRepresentation:
    """MD3QN's joint return (MMDQN's with one source): M deterministic particles in R^N per
    action, outputs (M * N) read row-major as (M, N). Q is the mean over particles and
    sources (the paper's; N times E sum_n Z_n, so the greedy action is the same). The target
    particles are r + discount z_t (r of shape (N,), or () with one source) and the loss is
    their clamped squared MMD under `kernel`."""
    if num_particles < 2:
        raise ValueError(f"num_particles={num_particles}: a particle critic needs M >= 2.")
    if num_sources < 1:
        raise ValueError(f"num_sources={num_sources}: use 1 or more reward sources.")
    if not all(b > 0 for b in kernel.bandwidths):
        raise ValueError(f"kernel bandwidths {kernel.bandwidths} must all be positive.")
    shape = (num_particles, num_sources)

    def q_values(outputs: jax.Array) -> jax.Array:
        return jnp.mean(outputs, axis=-1)

    def loss_fn(out_tm1, out_t, r_t, discount_t):
        chex.assert_shape([out_tm1, out_t], (num_particles * num_sources,))
        chex.assert_rank(discount_t, 0)
        r_t = jnp.broadcast_to(r_t, (1, num_sources))  # a scalar reward for one source
        target = r_t + discount_t * out_t.reshape(shape)
        return losses.squared_mmd(out_tm1.reshape(shape), target, kernel)

    return ValueRepresentation(
        "particles",
        num_particles * num_sources,
        q_values,
        loss_fn,
        reward_shape=(num_sources,) if num_sources > 1 else (),
        reward_value=lambda r_t: jnp.mean(r_t, axis=-1) if num_sources > 1 else r_t,
        particles=lambda outputs: outputs.reshape(*outputs.shape[:-1], *shape),
    )


def heads(num_sources: int) -> ValueRepresentation:
    """HRA (van Seijen et al. 2017): one scalar Q-head per reward source, outputs (N,) per
    action; Q is their sum and the loss sum_n (r_n + discount q_t[n] - q_tm1[n])^2, where
    q_t[n] is head n's value at its bootstrap action (per-head greedy in HRA)."""
    if num_sources < 1:
        raise ValueError(f"num_sources={num_sources}: use 1 or more reward sources.")

    def q_values(outputs: jax.Array) -> jax.Array:
        return jnp.sum(outputs, axis=-1)

    def loss_fn(out_tm1, out_t, r_t, discount_t):
        chex.assert_shape([out_tm1, out_t, r_t], (num_sources,))
        chex.assert_rank(discount_t, 0)
        target = jax.lax.stop_gradient(r_t + discount_t * out_t)
        return jnp.sum(jnp.square(target - out_tm1))

    return ValueRepresentation(
        "heads",
        num_sources,
        q_values,
        loss_fn,
        reward_shape=(num_sources,),
        reward_value=lambda r_t: jnp.sum(r_t, axis=-1),
    )


REPRESENTATIONS = ("scalar", "c51", "hl_gauss", "two_hot", "quantile")
