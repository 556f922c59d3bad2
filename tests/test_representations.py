"""Value representations against NumPy references: scalar TD losses, the C51 projection,
HL-Gauss and two-hot targets, cross-entropy gradients, the quantile Huber loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import losses, representations
from tests import numpy_reference

B = 64


@pytest.fixture(autouse=True)
def _strict_numerics():
    with jax.numpy_rank_promotion("raise"), jax.default_matmul_precision("highest"):
        yield


def _loop(fn):
    """Calls the unbatched `fn` once per transition and stacks the outputs leaf by leaf."""

    def batched(*args):
        outputs = [fn(*(arg[i] for arg in args)) for i in range(args[0].shape[0])]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *outputs)

    return batched


TRANSFORMS = {"loop": _loop, "vmap": jax.vmap, "jit_vmap": lambda fn: jax.jit(jax.vmap(fn))}


@pytest.fixture(params=sorted(TRANSFORMS))
def batch(request):
    return TRANSFORMS[request.param]


def _scalar_inputs(seed: int):
    rng = np.random.default_rng(seed)
    out_tm1 = rng.normal(size=(B, 1)).astype(np.float32)
    out_t = rng.normal(scale=3.0, size=(B, 1)).astype(np.float32)
    r_t = rng.normal(size=B).astype(np.float32)
    discount_t = np.where(rng.random(B) < 0.25, 0.0, 0.99).astype(np.float32)
    return out_tm1, out_t, r_t, discount_t


# Scalar.


@pytest.mark.parametrize(("loss", "delta"), [("mse", 1.0), ("huber", 1.0), ("huber", 0.5)])
def test_scalar_loss_value_and_gradients(batch, loss, delta):
    representation = representations.scalar(loss, delta)
    out_tm1, out_t, r_t, discount_t = _scalar_inputs(1)
    value_and_grad = batch(jax.value_and_grad(representation.loss, argnums=(0, 1)))
    value, (grad_tm1, grad_t) = value_and_grad(out_tm1, out_t, r_t, discount_t)

    td = r_t + discount_t * out_t[:, 0] - out_tm1[:, 0]
    if loss == "mse":
        expected, expected_grad = td**2, -2 * td
    else:
        assert np.any(np.abs(td) > delta) and np.any(np.abs(td) < delta)
        abs_td = np.abs(td)
        expected = np.where(abs_td <= delta, 0.5 * td**2, delta * (abs_td - 0.5 * delta))
        expected_grad = -np.clip(td, -delta, delta)
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_tm1[:, 0], expected_grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grad_t, np.zeros_like(grad_t))  # the target is held fixed
    np.testing.assert_array_equal(representation.q_values(out_t), out_t[:, 0])


def test_losses_reject_batched_input():
    out_tm1, out_t, r_t, discount_t = _scalar_inputs(0)
    with pytest.raises(AssertionError):
        representations.scalar().loss(out_tm1, out_t, r_t, discount_t)
    logits = np.zeros((B, 5), np.float32)
    with pytest.raises(AssertionError):
        representations.c51(-1, 1, 5).loss(logits, logits, r_t, discount_t)
    with pytest.raises(AssertionError):
        representations.quantile(5).loss(logits, logits, r_t, discount_t)


# C51 projection.


def _random_support(rng: np.random.Generator) -> np.ndarray:
    v_min = rng.uniform(-20, 5)
    return np.linspace(v_min, v_min + rng.uniform(1, 30), rng.integers(2, 60))


def test_c51_projection_matches_brute_force_on_random_supports():
    rng = np.random.default_rng(0)
    project = jax.jit(representations.categorical_projection)
    for _ in range(200):
        atoms = _random_support(rng)
        # Rewards well inside, near and far outside the support; some terminals.
        reward = rng.normal(scale=(atoms[-1] - atoms[0]) * rng.choice([0.1, 1.0, 5.0]))
        discount = rng.choice([0.0, 0.5, 0.99, 1.0])
        probs = numpy_reference.softmax(rng.normal(scale=3.0, size=len(atoms)))
        atoms_t = reward + discount * atoms
        expected = numpy_reference.c51_projection(atoms_t, probs, atoms)
        actual = project(*(jnp.asarray(x, jnp.float32) for x in (atoms_t, probs, atoms)))
        assert np.all(np.isfinite(actual))
        np.testing.assert_allclose(actual, expected, atol=2e-5)
        np.testing.assert_allclose(np.sum(actual), 1.0, rtol=1e-5)  # mass conserved


def test_c51_projection_keeps_mass_on_exact_atoms():
    """Targets that land exactly on atoms (where floor == ceil loses mass in the paper's
    pseudo-code), at the ends and beyond them."""
    atoms = np.linspace(-4.0, 4.0, 9)  # dz = 1: every shift by an integer is exact
    probs = numpy_reference.softmax(np.arange(9.0) / 3)
    project = jax.jit(representations.categorical_projection)
    for reward, discount in [(0.0, 1.0), (2.0, 1.0), (-3.0, 1.0), (1.0, 0.0), (4.0, 0.0)]:
        atoms_t = reward + discount * atoms
        actual = project(*(jnp.asarray(x, jnp.float32) for x in (atoms_t, probs, atoms)))
        expected = numpy_reference.c51_projection(atoms_t, probs, atoms)
        np.testing.assert_allclose(actual, expected, atol=1e-6)
        np.testing.assert_allclose(np.sum(actual), 1.0, rtol=1e-6)
    # A terminal target on an atom is a one-hot; beyond the support it sits on the end.
    terminal = project(jnp.full(9, 2.0), jnp.asarray(probs, jnp.float32), jnp.asarray(atoms))
    np.testing.assert_allclose(terminal, np.eye(9)[6], atol=1e-7)
    beyond = project(jnp.full(9, 50.0), jnp.asarray(probs, jnp.float32), jnp.asarray(atoms))
    np.testing.assert_allclose(beyond, np.eye(9)[8], atol=1e-7)


def test_c51_loss_is_cross_entropy_to_the_projected_target(batch):
    representation = representations.c51(-5.0, 5.0, 11)
    atoms = representation.support.astype(np.float64)
    rng = np.random.default_rng(3)
    logits_tm1 = rng.normal(size=(B, 11)).astype(np.float32)
    logits_t = rng.normal(scale=2.0, size=(B, 11)).astype(np.float32)
    r_t = rng.normal(scale=3.0, size=B).astype(np.float32)
    discount_t = np.where(rng.random(B) < 0.25, 0.0, 0.99).astype(np.float32)

    value_and_grad = batch(jax.value_and_grad(representation.loss, argnums=(0, 1)))
    loss, (grad_tm1, grad_t) = value_and_grad(logits_tm1, logits_t, r_t, discount_t)

    targets = np.stack(
        [
            numpy_reference.c51_projection(
                r_t[i] + discount_t[i] * atoms, numpy_reference.softmax(logits_t[i]), atoms
            )
            for i in range(B)
        ]
    )
    probs_tm1 = numpy_reference.softmax(logits_tm1.astype(np.float64))
    np.testing.assert_allclose(loss, -np.sum(targets * np.log(probs_tm1), axis=1), rtol=1e-4)
    np.testing.assert_allclose(grad_tm1, probs_tm1 - targets, atol=1e-5)  # d CE / d logits
    np.testing.assert_array_equal(grad_t, np.zeros_like(grad_t))


# HL-Gauss and two-hot.


def _hl_gauss_edges(v_min: float, v_max: float, num_bins: int) -> np.ndarray:
    return np.linspace(v_min, v_max, num_bins + 1)


@pytest.mark.parametrize("sigma_ratio", [0.75, 0.3, 2.0])
def test_hl_gauss_probabilities_match_reference(sigma_ratio):
    rng = np.random.default_rng(4)
    probabilities = jax.jit(representations.hl_gauss_probabilities, static_argnums=2)
    for _ in range(50):
        edges = _hl_gauss_edges(*sorted(rng.uniform(-20, 20, 2)), int(rng.integers(2, 80)))
        edges = edges.astype(np.float32)  # the reference sees the same rounded inputs
        sigma = sigma_ratio * float(edges[1] - edges[0])
        y = np.float32(rng.uniform(edges[0], edges[-1]))
        actual = probabilities(y, jnp.asarray(edges), sigma)
        expected = numpy_reference.hl_gauss(float(y), edges.astype(np.float64), sigma)
        np.testing.assert_allclose(actual, expected, atol=2e-5)
        np.testing.assert_allclose(np.sum(actual), 1.0, rtol=1e-5)
        assert np.all(np.asarray(actual) >= 0)


def test_hl_gauss_mean_is_the_target_inside_the_support():
    representation = representations.hl_gauss(-10.0, 10.0, 51, 0.75)
    edges = jnp.asarray(_hl_gauss_edges(-10.0, 10.0, 51), jnp.float32)
    width = 20 / 51
    sigma = 0.75 * width
    # Away from the ends (where truncation pulls the mean inwards).
    ys = np.random.default_rng(5).uniform(-10 + 4 * sigma, 10 - 4 * sigma, 500)
    probs = jax.vmap(lambda y: representations.hl_gauss_probabilities(y, edges, sigma))(
        jnp.asarray(ys, jnp.float32)
    )
    means = np.asarray(probs) @ representation.support.astype(np.float64)
    np.testing.assert_allclose(means, ys, atol=0.01 * width)


def test_hl_gauss_concentrates_like_two_hot_as_sigma_vanishes():
    v_min, v_max, num_bins = -3.0, 5.0, 16
    edges = _hl_gauss_edges(v_min, v_max, num_bins)
    centres = (edges[:-1] + edges[1:]) / 2
    rng = np.random.default_rng(6)
    for y in rng.uniform(centres[0], centres[-1], 100):
        sharp = representations.hl_gauss_probabilities(
            jnp.float32(y), jnp.asarray(edges, jnp.float32), 1e-4 * (edges[1] - edges[0])
        )
        two_hot = numpy_reference.two_hot(y, centres)
        # All the mass sits on the two bins around y that two-hot uses (on the one whose
        # bin holds y, unless y is within a hair of an edge).
        np.testing.assert_allclose(np.sum(np.asarray(sharp)[two_hot > 0]), 1.0, atol=1e-4)
        assert np.max(sharp) > 0.99 or np.min(np.abs(edges - y)) < 1e-3


@pytest.mark.parametrize("num_atoms", [2, 7, 51])
def test_two_hot_mean_is_exact_and_clipped(num_atoms):
    atoms = np.linspace(-6.0, 9.0, num_atoms)
    atoms_jax = jnp.asarray(atoms, jnp.float32)
    ys = np.concatenate([np.random.default_rng(7).uniform(-12, 15, 300), atoms])
    probs = np.asarray(
        jax.vmap(lambda y: representations.two_hot_probabilities(y, atoms_jax))(
            jnp.asarray(ys, jnp.float32)
        )
    )
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs @ atoms, np.clip(ys, -6, 9), atol=1e-5)
    assert np.all((probs > 0).sum(axis=1) <= 2)
    for y, p in zip(ys, probs, strict=True):
        np.testing.assert_allclose(p, numpy_reference.two_hot(y, atoms), atol=1e-5)


@pytest.mark.parametrize("name", ["hl_gauss", "two_hot"])
def test_scalar_target_classification_losses(batch, name):
    """HL-Gauss and two-hot: cross-entropy to the distribution of the clipped scalar target
    r + discount * E[target outputs]."""
    v_min, v_max, num = -5.0, 5.0, 21
    representation = getattr(representations, name)(v_min, v_max, num)
    rng = np.random.default_rng(8)
    logits_tm1 = rng.normal(size=(B, num)).astype(np.float32)
    logits_t = rng.normal(scale=2.0, size=(B, num)).astype(np.float32)
    r_t = rng.normal(scale=4.0, size=B).astype(np.float32)
    discount_t = np.where(rng.random(B) < 0.25, 0.0, 0.99).astype(np.float32)

    value_and_grad = batch(jax.value_and_grad(representation.loss, argnums=(0, 1)))
    loss, (grad_tm1, grad_t) = value_and_grad(logits_tm1, logits_t, r_t, discount_t)

    support = representation.support.astype(np.float64)
    y = np.clip(r_t + discount_t * (numpy_reference.softmax(logits_t) @ support), v_min, v_max)
    assert np.any(y == v_min) or np.any(y == v_max)  # some targets were clipped
    if name == "hl_gauss":
        edges = _hl_gauss_edges(v_min, v_max, num)
        sigma = 0.75 * (edges[1] - edges[0])
        targets = np.stack([numpy_reference.hl_gauss(v, edges, sigma) for v in y])
    else:
        targets = np.stack([numpy_reference.two_hot(v, support) for v in y])
    probs_tm1 = numpy_reference.softmax(logits_tm1.astype(np.float64))
    np.testing.assert_allclose(loss, -np.sum(targets * np.log(probs_tm1), axis=1), rtol=1e-4)
    np.testing.assert_allclose(grad_tm1, probs_tm1 - targets, atol=1e-5)
    np.testing.assert_array_equal(grad_t, np.zeros_like(grad_t))


@pytest.mark.parametrize("name", ["c51", "hl_gauss", "two_hot"])
def test_categorical_q_values_and_extreme_logits(name):
    representation = getattr(representations, name)(-10.0, 10.0, 51)
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(3, 4, 51)).astype(np.float32)
    np.testing.assert_allclose(
        representation.q_values(logits),
        numpy_reference.softmax(logits.astype(np.float64)) @ representation.support,
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        representation.probabilities(logits), numpy_reference.softmax(logits), atol=1e-6
    )
    # Saturated logits and far-away targets keep the loss and gradients finite.
    huge = jnp.asarray(rng.normal(scale=1e4, size=51), jnp.float32)
    for reward in (-1e6, 0.0, 1e6):
        loss, grads = jax.value_and_grad(representation.loss)(
            huge, -huge, jnp.float32(reward), jnp.float32(0.99)
        )
        assert np.isfinite(loss) and np.all(np.isfinite(grads))


# Quantiles.


def _quantile_levels(rng: np.random.Generator, name: str, num: int) -> np.ndarray:
    if name == "midpoints":
        return representations.quantile_midpoints(num)
    return np.sort(rng.uniform(0.01, 0.99, num)).astype(np.float32)


@pytest.mark.parametrize("kappa", [1.0, 0.0, 0.3])
@pytest.mark.parametrize(
    ("levels", "num", "num_targets"), [("midpoints", 1, 7), ("midpoints", 8, 8), ("random", 5, 3)]
)
def test_quantile_huber_loss_matches_reference(batch, kappa, levels, num, num_targets):
    rng = np.random.default_rng(10)
    tau = np.stack([_quantile_levels(rng, levels, num) for _ in range(B)])
    dist_tm1 = rng.normal(scale=2.0, size=(B, num)).astype(np.float32)
    dist_target = rng.normal(scale=2.0, size=(B, num_targets)).astype(np.float32)

    def loss(dist_tm1, tau, dist_target):
        return losses.quantile_huber_loss(dist_tm1, tau, dist_target, kappa)

    value, (grad_tm1, grad_target) = batch(jax.value_and_grad(loss, argnums=(0, 2)))(
        dist_tm1, tau, dist_target
    )
    expected = [
        numpy_reference.quantile_huber(
            *(x[k].astype(np.float64) for x in (dist_tm1, tau, dist_target)), kappa
        )
        for k in range(B)
    ]
    u = dist_target[:, None, :] - dist_tm1[:, :, None]
    if kappa > 0:  # both sides of the threshold are covered
        assert np.any(np.abs(u) < kappa) and np.any(np.abs(u) > kappa)
    np.testing.assert_allclose(value, [loss for loss, _ in expected], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_tm1, np.stack([g for _, g in expected]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grad_target, np.zeros_like(grad_target))  # held fixed


def test_quantile_huber_gradient_pulls_each_quantile_towards_its_level():
    """One quantile at 0 with level 1/4 against targets 2 and -1/2 (kappa 1): the target
    above pulls up with weight 1/4 (clipped TD 1), the one below down with weight 3/4 (TD
    -1/2), averaged over the two targets."""
    loss, grad = jax.value_and_grad(losses.quantile_huber_loss)(
        jnp.zeros(1), jnp.array([0.25]), jnp.array([2.0, -0.5]), 1.0
    )
    np.testing.assert_allclose(loss, (0.25 * 1.5 + 0.75 * 0.125) / 2, rtol=1e-6)
    np.testing.assert_allclose(grad, [(-0.25 * 1.0 + 0.75 * 0.5) / 2], rtol=1e-6)
    # Plain quantile regression on targets 0..99: below the 1/4-quantile the gradient
    # pushes the quantile up (negative), above it down, with the fraction of targets each
    # side as its size.
    targets, tau = jnp.arange(100.0), jnp.array([0.25])
    for theta, expected in [(10.5, -(0.25 * 89 - 0.75 * 11) / 100), (24.5, 0.0), (60.5, 0.36)]:
        grad = jax.grad(losses.quantile_huber_loss)(jnp.array([theta]), tau, targets, 0.0)
        np.testing.assert_allclose(grad, [expected], atol=1e-6)


def test_quantile_critic_target_and_loss_by_hand(batch):
    """Levels (1/4, 3/4); quantiles (0, 1); bootstrap quantiles (1, 3), r = 1, discount
    1/2: targets (1.5, 2.5). The low quantile sees TD errors 1.5, 2.5 (Huber/kappa 1, 2;
    weight 1/4), the high one 0.5, 1.5 (1/8, 1; weight 3/4)."""
    representation = representations.quantile(2, kappa=1.0)
    np.testing.assert_array_equal(representation.taus, [0.25, 0.75])
    inputs = [np.array(x, np.float32)[None] for x in ([0.0, 1.0], [1.0, 3.0], 1.0, 0.5)]
    loss, (grad_tm1, grad_t) = batch(jax.value_and_grad(representation.loss, argnums=(0, 1)))(
        *inputs
    )
    np.testing.assert_allclose(loss, [0.25 * 1.5 + 0.75 * 0.5625], rtol=1e-6)
    np.testing.assert_allclose(grad_tm1, [[-0.25, -0.75 * 0.75]], rtol=1e-6)
    np.testing.assert_array_equal(grad_t, np.zeros_like(grad_t))


@pytest.mark.parametrize("kappa", [1.0, 0.0])
def test_quantile_critic_matches_reference(batch, kappa):
    num = 11
    representation = representations.quantile(num, kappa)
    tau = (2 * np.arange(num) + 1) / (2 * num)
    np.testing.assert_allclose(representation.taus, tau, rtol=1e-7)
    rng = np.random.default_rng(11)
    out_tm1 = rng.normal(size=(B, num)).astype(np.float32)
    out_t = rng.normal(scale=2.0, size=(B, num)).astype(np.float32)
    r_t = rng.normal(size=B).astype(np.float32)
    discount_t = np.where(rng.random(B) < 0.25, 0.0, 0.99).astype(np.float32)

    value_and_grad = batch(jax.value_and_grad(representation.loss, argnums=(0, 1)))
    loss, (grad_tm1, grad_t) = value_and_grad(out_tm1, out_t, r_t, discount_t)

    targets = r_t[:, None].astype(np.float64) + discount_t[:, None] * out_t
    expected = [
        numpy_reference.quantile_huber(out_tm1[k].astype(np.float64), tau, targets[k], kappa)
        for k in range(B)
    ]
    np.testing.assert_allclose(loss, [loss for loss, _ in expected], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_tm1, np.stack([g for _, g in expected]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grad_t, np.zeros_like(grad_t))
    np.testing.assert_allclose(
        representation.q_values(out_t), out_t.mean(axis=1), rtol=1e-6, atol=1e-6
    )
    support, probabilities = representations.return_distribution(representation, out_t)
    np.testing.assert_array_equal(support, out_t)  # N atoms of mass 1/N at the quantiles
    np.testing.assert_allclose(probabilities, np.full((B, num), 1 / num), rtol=1e-7)


def test_bad_supports_fail():
    with pytest.raises(ValueError, match="v_min"):
        representations.c51(1.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        representations.two_hot(-1.0, 1.0, 1)
    with pytest.raises(ValueError, match="sigma_ratio"):
        representations.hl_gauss(-1.0, 1.0, 11, 0.0)
    with pytest.raises(ValueError, match="N >= 1"):
        representations.quantile(0)
    for kappa in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="kappa"):
            representations.quantile(5, kappa)
    with pytest.raises(ValueError, match="no return distribution"):
        representations.return_distribution(representations.scalar(), jnp.zeros((2, 1)))
