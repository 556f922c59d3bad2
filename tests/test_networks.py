"""Shapes, feature counts, input scaling, parameter counts and initialisers of the
Q-networks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.config import validate
from experiments.families import build_agent
from experiments.presets import PRESETS
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


# The Nature CNN's layers (VALID padding) on Pong (6 actions): kernel shape, fan-in (inputs
# feeding one output unit) and fan-out, written out rather than derived from the shapes.
_NATURE_LAYERS = {
    ("torso", "Conv_0"): ((8, 8, 4, 32), 8 * 8 * 4, 8 * 8 * 32),
    ("torso", "Conv_1"): ((4, 4, 32, 64), 4 * 4 * 32, 4 * 4 * 64),
    ("torso", "Conv_2"): ((3, 3, 64, 64), 3 * 3 * 64, 3 * 3 * 64),
    ("torso", "Dense_0"): ((3136, 512), 3136, 512),
    ("head", "Dense_0"): ((512, 6), 512, 6),
}
_TRUNCATION = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _uniform(bound: float) -> tuple[float, float]:
    return bound, bound**2 / 3  # (largest |value|, variance)


def _truncated_normal(variance: float) -> tuple[float, float]:
    return 2 * np.sqrt(variance) / _TRUNCATION, variance


# network_init -> (fan_in, fan_out -> (kernel bound, kernel variance)), and whether biases
# are drawn U(+-1/sqrt(fan_in)) (else zero).
_INITIALISERS = {
    "lecun_normal": (lambda fi, fo: _truncated_normal(1 / fi), False),
    "uniform_fan_in": (lambda fi, fo: _uniform(np.sqrt(np.sqrt(3) / fi)), False),
    "xavier_uniform": (lambda fi, fo: _uniform(np.sqrt(6 / (fi + fo))), False),
    "xavier_normal": (lambda fi, fo: _truncated_normal(2 / (fi + fo)), False),
    "torch_default": (lambda fi, fo: _uniform(1 / np.sqrt(fi)), True),
}


def _check_layer(kernel, bias, fan_in, fan_out, network_init):
    kernel, bias = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
    formula, uniform_bias = _INITIALISERS[network_init]
    bound, variance = formula(fan_in, fan_out)
    assert np.abs(kernel).max() <= bound * (1 + 1e-6)
    assert np.abs(kernel).max() > 0.9 * bound  # the whole range is used
    assert 0.9 * variance < kernel.var() < 1.1 * variance
    if uniform_bias:
        bias_bound = 1 / np.sqrt(fan_in)
        assert np.abs(bias).max() <= bias_bound * (1 + 1e-6)
        assert np.abs(bias).max() > 0.5 * bias_bound
        assert len(np.unique(bias)) == bias.size
    else:
        np.testing.assert_array_equal(bias, 0.0)


@pytest.mark.parametrize("network_init", list(_INITIALISERS))
def test_network_init_draws_every_layer_from_its_distribution(network_init):
    config = dataclasses.replace(PRESETS["dqn_atari_zoo"].config, network_init=network_init)
    agent = build_agent(config, validate(config))
    params = agent.init(jax.random.key(0), jnp.zeros(ATARI_OBS, jnp.uint8)).params["params"]
    for (module, layer), (shape, fan_in, fan_out) in _NATURE_LAYERS.items():
        kernel, bias = params[module][layer]["kernel"], params[module][layer]["bias"]
        assert kernel.shape == shape
        _check_layer(kernel, bias, fan_in, fan_out, network_init)


def test_network_init_reaches_the_i_qn_heads():
    config = dataclasses.replace(
        PRESETS["idqn_atari"].config, network_init="torch_default", num_networks=2
    )
    agent = build_agent(config, validate(config))
    params = agent.init(jax.random.key(0), jnp.zeros(ATARI_OBS, jnp.uint8)).params["params"]
    heads = params["heads"]["Dense_0"]
    assert heads["kernel"].shape == (2, 512, 6)
    for k in range(2):
        _check_layer(heads["kernel"][k], heads["bias"][k], 512, 6, "torch_default")
    conv = params["torso"]["Conv_0"]
    _check_layer(conv["kernel"], conv["bias"], 256, 2048, "torch_default")
