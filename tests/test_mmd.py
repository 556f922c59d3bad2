"""The squared MMD of MD3QN and MMDQN, and the particle value representation built on it,
against a plain NumPy brute force over all pairs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import representations
from agents.losses import MD3QN_KERNEL, MMDQN_KERNEL, kernel_matrix, squared_mmd


def md3qn_kernel(x: np.ndarray, y: np.ndarray) -> float:
    """The authors' kernel written out: sum over b = 2^-8..2^8 of sqrt(b) exp(-|x-y|^2/(N b))."""
    distance = float(np.sum((x - y) ** 2)) / len(x)
    return sum(math.sqrt(2.0**k) * math.exp(-distance / 2.0**k) for k in range(-8, 9))


def mmdqn_kernel(x: np.ndarray, y: np.ndarray) -> float:
    """The 1-D kernel: sum over h = 1..10 of exp(-(x - y)^2 / h)."""
    (difference,) = x - y
    return sum(math.exp(-(difference**2) / h) for h in range(1, 11))


def brute_force_mmd(z: np.ndarray, y: np.ndarray, kernel) -> float:
    """Mean over every ordered pair, i = j included, of each of the three kernel terms."""
    zz = np.mean([[kernel(a, b) for b in z] for a in z])
    yy = np.mean([[kernel(a, b) for b in y] for a in y])
    zy = np.mean([[kernel(a, b) for b in y] for a in z])
    return max(zz + yy - 2 * zy, 0.0)


@pytest.mark.parametrize("num_sources", [1, 2, 3, 4])
def test_md3qn_mmd_matches_brute_force(num_sources):
    rng = np.random.default_rng(num_sources)
    for m, m_target, scale in [(5, 5, 1.0), (6, 9, 0.3), (4, 3, 3.0)]:
        z = rng.normal(size=(m, num_sources)).astype(np.float32)
        y = (rng.normal(size=(m_target, num_sources)) * scale + 0.5).astype(np.float32)
        expected = brute_force_mmd(z.astype(np.float64), y.astype(np.float64), md3qn_kernel)
        np.testing.assert_allclose(squared_mmd(z, y, MD3QN_KERNEL), expected, rtol=2e-5)
        matrix = np.array([[md3qn_kernel(a, b) for b in y] for a in z])
        np.testing.assert_allclose(kernel_matrix(z, y, MD3QN_KERNEL), matrix, rtol=2e-5)


def test_mmdqn_mmd_matches_brute_force():
    rng = np.random.default_rng(7)
    z, y = rng.normal(size=(8, 1)), rng.normal(size=(8, 1)) * 2 + 1
    expected = brute_force_mmd(z, y, mmdqn_kernel)
    actual = squared_mmd(z.astype(np.float32), y.astype(np.float32), MMDQN_KERNEL)
    np.testing.assert_allclose(actual, expected, rtol=2e-5)


def test_equal_particle_sets_clamp_at_zero():
    """Rounding can push the V-statistic of equal sets below 0; the loss never goes there."""
    rng = np.random.default_rng(3)
    negative = 0
    for _ in range(20):
        z = rng.normal(size=(7, 3)).astype(np.float32) * 10
        shuffled = z[rng.permutation(7)]
        unclamped = (
            jnp.mean(kernel_matrix(z, z, MD3QN_KERNEL))
            + jnp.mean(kernel_matrix(shuffled, shuffled, MD3QN_KERNEL))
            - 2 * jnp.mean(kernel_matrix(z, shuffled, MD3QN_KERNEL))
        )
        loss = squared_mmd(z, shuffled, MD3QN_KERNEL)
        assert float(loss) == max(float(unclamped), 0.0) and float(loss) >= 0.0
        assert abs(float(unclamped)) < 1e-4
        negative += float(unclamped) < 0
    assert negative > 0  # the clamp was exercised


def test_gradients_reach_the_predictions_only():
    rng = np.random.default_rng(5)
    z = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(6, 2)) + 1.0, jnp.float32)
    grad_z, grad_y = jax.grad(squared_mmd, argnums=(0, 1))(z, y, MD3QN_KERNEL)
    np.testing.assert_array_equal(grad_y, 0.0)
    # Central differences of the float64 brute force, one coordinate at a time.
    z64, y64, eps = np.asarray(z, np.float64), np.asarray(y, np.float64), 1e-4
    for i, n in [(0, 0), (3, 1), (5, 0)]:
        up, down = z64.copy(), z64.copy()
        up[i, n] += eps
        down[i, n] -= eps
        slope = brute_force_mmd(up, y64, md3qn_kernel) - brute_force_mmd(down, y64, md3qn_kernel)
        np.testing.assert_allclose(grad_z[i, n], slope / (2 * eps), rtol=2e-3, atol=1e-5)


@pytest.mark.parametrize("num_sources", [1, 2, 4])
def test_particle_representation_targets_and_q(num_sources):
    """Outputs (M * N) are (M, N) particles, Q their mean, the loss the MMD^2 between them
    and r + discount z_t (brute force), with a reward vector or, for one source, a scalar."""
    m = 5
    representation = representations.particles(m, num_sources)
    rng = np.random.default_rng(num_sources)
    out_tm1, out_t = rng.normal(size=(2, m * num_sources)).astype(np.float32)
    r_t = rng.normal(size=num_sources).astype(np.float32)
    reward = r_t[0] if num_sources == 1 else r_t
    discount = np.float32(0.9)
    z = out_tm1.reshape(m, num_sources).astype(np.float64)
    y = r_t + 0.9 * out_t.reshape(m, num_sources).astype(np.float64)
    expected = brute_force_mmd(z, y, md3qn_kernel)
    np.testing.assert_allclose(
        representation.loss(out_tm1, out_t, reward, discount), expected, rtol=1e-4, atol=1e-6
    )
    outputs = rng.normal(size=(3, 2, m * num_sources)).astype(np.float32)  # (..., A, M * N)
    np.testing.assert_allclose(
        representation.q_values(outputs), outputs.reshape(3, 2, -1).mean(-1), rtol=1e-6
    )


def test_particle_representation_refuses_bad_settings():
    with pytest.raises(ValueError, match="M >= 2"):
        representations.particles(1, 2)
    with pytest.raises(ValueError, match="positive"):
        representations.particles(4, 2, MMDQN_KERNEL._replace(bandwidths=(1.0, 0.0)))
