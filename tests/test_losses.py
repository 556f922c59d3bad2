"""Scalar value losses against plain NumPy references, called unbatched, vmapped and jitted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import losses

B, A = 64, 5


@pytest.fixture(autouse=True)
def _strict_rank_promotion():
    with jax.numpy_rank_promotion("raise"):
        yield


def _loop(fn):
    """Calls the unbatched `fn` once per transition and stacks the outputs leaf by leaf."""

    def batched(*args):
        outputs = [fn(*(arg[i] for arg in args)) for i in range(args[0].shape[0])]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *outputs)

    return batched


TRANSFORMS = {
    "loop": _loop,
    "vmap": jax.vmap,
    "jit_vmap": lambda fn: jax.jit(jax.vmap(fn)),
}


@pytest.fixture(params=sorted(TRANSFORMS))
def batch(request):
    return TRANSFORMS[request.param]


def _random_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    q_tm1 = rng.normal(size=(B, A)).astype(np.float32)
    q_t = rng.normal(scale=3.0, size=(B, A)).astype(np.float32)
    q_t_online = rng.normal(size=(B, A)).astype(np.float32)
    q_t_online[:4, :2] = 1e3  # ties: the lowest index wins
    a_tm1 = rng.integers(0, A, size=B).astype(np.int32)
    r_t = rng.normal(size=B).astype(np.float32)
    discount_t = np.where(rng.random(B) < 0.25, 0.0, 0.99).astype(np.float32)
    discount_t[:2] = 0.0
    return q_tm1, q_t, q_t_online, a_tm1, r_t, discount_t


def _np_huber(x: np.ndarray, delta: float) -> np.ndarray:
    abs_x = np.abs(x)
    return np.where(abs_x <= delta, 0.5 * x**2, delta * (abs_x - 0.5 * delta))


def test_q_learning_target(batch):
    _, q_t, _, _, r_t, discount_t = _random_inputs()
    expected = r_t + discount_t * q_t.max(axis=1)
    target = batch(losses.q_learning_target)(q_t, r_t, discount_t)
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    np.testing.assert_array_equal(target[discount_t == 0], r_t[discount_t == 0])


def test_double_q_learning_target(batch):
    _, q_t, q_t_online, _, r_t, discount_t = _random_inputs()
    best = np.argmax(q_t_online, axis=1)
    expected = r_t + discount_t * q_t[np.arange(B), best]
    target = batch(losses.double_q_learning_target)(q_t, q_t_online, r_t, discount_t)
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    # The online network selects, so it differs from the max over the target network.
    plain = r_t + discount_t * q_t.max(axis=1)
    assert not np.allclose(target, plain)


def test_td_error(batch):
    q_tm1, _, _, a_tm1, r_t, _ = _random_inputs()
    expected = r_t - q_tm1[np.arange(B), a_tm1]
    td = batch(losses.td_error)(q_tm1, a_tm1, r_t)
    np.testing.assert_allclose(td, expected, rtol=1e-6)


@pytest.mark.parametrize("delta", [1.0, 0.5])
def test_huber_loss_value_and_gradient(batch, delta):
    q_tm1, q_t, _, a_tm1, r_t, discount_t = _random_inputs(1)

    def loss(q_tm1, q_t, a_tm1, r_t, discount_t):
        target = losses.q_learning_target(q_t, r_t, discount_t)
        return losses.huber_loss(losses.td_error(q_tm1, a_tm1, target), delta)

    value_and_grad = batch(jax.value_and_grad(loss))
    value, grad_q_tm1 = value_and_grad(q_tm1, q_t, a_tm1, r_t, discount_t)

    td = r_t + discount_t * q_t.max(axis=1) - q_tm1[np.arange(B), a_tm1]
    assert np.any(np.abs(td) > delta) and np.any(np.abs(td) < delta)
    expected_grad = np.zeros_like(q_tm1)
    expected_grad[np.arange(B), a_tm1] = -np.clip(td, -delta, delta)
    np.testing.assert_allclose(value, _np_huber(td, delta), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_q_tm1, expected_grad, rtol=1e-5, atol=1e-6)


def test_squared_loss_value_and_gradient(batch):
    q_tm1, q_t, q_t_online, a_tm1, r_t, discount_t = _random_inputs(2)

    def loss(q_tm1, q_t, q_t_online, a_tm1, r_t, discount_t):
        target = losses.double_q_learning_target(q_t, q_t_online, r_t, discount_t)
        return losses.squared_loss(losses.td_error(q_tm1, a_tm1, target))

    value_and_grad = batch(jax.value_and_grad(loss))
    value, grad_q_tm1 = value_and_grad(q_tm1, q_t, q_t_online, a_tm1, r_t, discount_t)

    best = np.argmax(q_t_online, axis=1)
    td = r_t + discount_t * q_t[np.arange(B), best] - q_tm1[np.arange(B), a_tm1]
    expected_grad = np.zeros_like(q_tm1)
    expected_grad[np.arange(B), a_tm1] = -2.0 * td
    np.testing.assert_allclose(value, td**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_q_tm1, expected_grad, rtol=1e-5, atol=1e-6)


def test_targets_stop_gradient():
    _, q_t, q_t_online, _, r_t, discount_t = _random_inputs()
    grads = jax.grad(losses.q_learning_target, argnums=(0, 1, 2))(q_t[0], r_t[0], discount_t[0])
    for g in grads:
        np.testing.assert_array_equal(g, np.zeros_like(g))
    grads = jax.grad(losses.double_q_learning_target, argnums=(0, 1, 2, 3))(
        q_t[0], q_t_online[0], r_t[0], discount_t[0]
    )
    for g in grads:
        np.testing.assert_array_equal(g, np.zeros_like(g))


def test_batched_input_is_rejected():
    _, q_t, _, _, r_t, discount_t = _random_inputs()
    with pytest.raises(AssertionError):
        losses.q_learning_target(q_t, r_t, discount_t)
