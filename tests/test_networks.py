"""Shapes, feature counts, input scaling and parameter counts of the Q-networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from networks import MLP, NatureCNN, QEnsemble, QHead, QNetwork

ATARI_OBS = (84, 84, 4)


@pytest.fixture(autouse=True)
def _full_precision_matmuls():
    with jax.default_matmul_precision("highest"):
        yield


def _random_frames(shape: tuple[int, ...], seed: int = 0) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(0, 256, size=shape, dtype=np.uint8))


@pytest.mark.parametrize("batch_shape", [(), (5,), (2, 3)])
def test_q_network_cnn_shapes(batch_shape):
    net = QNetwork(NatureCNN(), num_actions=6)
    params = net.init(jax.random.key(0), jnp.zeros(ATARI_OBS, jnp.uint8))
    q = net.apply(params, _random_frames(batch_shape + ATARI_OBS))
    assert q.shape == batch_shape + (6, 1)  # (..., actions, outputs per action)
    assert q.dtype == jnp.float32


@pytest.mark.parametrize("num_outputs", [1, 51])
@pytest.mark.parametrize("batch_shape", [(), (5,), (2, 3)])
def test_q_network_mlp_shapes(batch_shape, num_outputs):
    net = QNetwork(MLP((16, 8)), num_actions=3, num_outputs=num_outputs)
    params = net.init(jax.random.key(0), jnp.zeros((4,)))
    q = net.apply(params, jnp.ones(batch_shape + (4,), jnp.int32))
    assert q.shape == batch_shape + (3, num_outputs)
    assert q.dtype == jnp.float32
    # Outputs of action a are the head's units a * m .. (a + 1) * m - 1.
    head = params["params"]["head"]["Dense_0"]
    assert head["kernel"].shape == (8, 3 * num_outputs)


@pytest.mark.parametrize("shared_torso", [False, True])
def test_q_ensemble_stacks_networks_or_heads(shared_torso):
    ensemble = QEnsemble(MLP((16,)), 3, num_actions=2, num_outputs=5, shared_torso=shared_torso)
    params = ensemble.init(jax.random.key(0), jnp.zeros((4,)))
    obs = jax.random.normal(jax.random.key(1), (7, 4))
    outputs = ensemble.apply(params, obs)
    assert outputs.shape == (3, 7, 2, 5)
    variables = params["params"]
    if shared_torso:
        assert variables["torso"]["Dense_0"]["kernel"].shape == (4, 16)  # one torso
        assert variables["heads"]["Dense_0"]["kernel"].shape == (3, 16, 10)
        torsos = [variables["torso"]] * 3
        heads = [jax.tree.map(lambda x, k=k: x[k], variables["heads"]) for k in range(3)]
    else:
        networks = variables["networks"]
        assert networks["torso"]["Dense_0"]["kernel"].shape == (3, 4, 16)
        torsos = [jax.tree.map(lambda x, k=k: x[k], networks["torso"]) for k in range(3)]
        heads = [jax.tree.map(lambda x, k=k: x[k], networks["head"]) for k in range(3)]
    single = QNetwork(MLP((16,)), 2, 5)
    for k in range(3):
        alone = single.apply({"params": {"torso": torsos[k], "head": heads[k]}}, obs)
        np.testing.assert_allclose(outputs[k], alone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(outputs[0], outputs[1])  # the networks were initialised apart


def test_unbatched_equals_batched_row():
    net = QNetwork(NatureCNN(), num_actions=4)
    frames = _random_frames((3,) + ATARI_OBS)
    params = net.init(jax.random.key(1), frames[0])
    np.testing.assert_allclose(
        net.apply(params, frames[1]), net.apply(params, frames)[1], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(("padding", "num_features"), [("VALID", 3136), ("SAME", 7744)])
def test_nature_cnn_feature_count(padding, num_features):
    params = NatureCNN(padding).init(jax.random.key(0), jnp.zeros(ATARI_OBS, jnp.uint8))
    assert params["params"]["Dense_0"]["kernel"].shape == (num_features, 512)


def test_nature_cnn_scales_uint8_input_once():
    net = QNetwork(NatureCNN(), num_actions=6)
    frames = _random_frames((2,) + ATARI_OBS)
    params = net.init(jax.random.key(0), frames[0])
    q = net.apply(params, frames)

    # Hand-written forward pass on frames / 255 with the same parameters.
    p = params["params"]["torso"]
    x = frames.astype(jnp.float32) / 255.0
    for name, stride in (("Conv_0", 4), ("Conv_1", 2), ("Conv_2", 1)):
        x = jax.lax.conv_general_dilated(
            x,
            p[name]["kernel"],
            window_strides=(stride, stride),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        x = jax.nn.relu(x + p[name]["bias"])
    x = jax.nn.relu(x.reshape(2, -1) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    head = params["params"]["head"]["Dense_0"]
    expected = (x @ head["kernel"] + head["bias"])[..., None]

    np.testing.assert_allclose(q, expected, rtol=1e-4, atol=1e-5)
    # Float input holding pixel values goes through the same path.
    np.testing.assert_array_equal(net.apply(params, frames.astype(jnp.float32)), q)


def test_nature_cnn_q_head_param_count():
    net = QNetwork(NatureCNN(), num_actions=6)
    params = net.init(jax.random.key(0), jnp.zeros(ATARI_OBS, jnp.uint8))
    conv1 = 8 * 8 * 4 * 32 + 32
    conv2 = 4 * 4 * 32 * 64 + 64
    conv3 = 3 * 3 * 64 * 64 + 64
    dense = 7 * 7 * 64 * 512 + 512
    head = 512 * 6 + 6
    count = sum(leaf.size for leaf in jax.tree.leaves(params))
    assert count == conv1 + conv2 + conv3 + dense + head == 1_687_206


def test_default_initialisers():
    params = QHead(5).init(jax.random.key(0), jnp.zeros((64,)))["params"]["Dense_0"]
    np.testing.assert_array_equal(params["bias"], np.zeros(5))
    # lecun_normal: variance 1 / fan_in (truncated normal, so slightly below).
    assert 0.7 / 64 < float(jnp.var(params["kernel"])) < 1.3 / 64
