"""Initialisers shared by the networks.

Bias initialisers are functions of the layer's fan-in (the inputs feeding one output unit:
`in_features` for a dense layer, `kernel_h * kernel_w * in_channels` for a convolution),
because PyTorch's and Torch7's bias bound depends on it and a bias's shape does not say it.
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

BiasInit = Callable[[int], nn.initializers.Initializer]

# PyTorch nn.Linear's kaiming_uniform(a=sqrt(5)) kernel init is exactly U(+-1/sqrt(fan_in)),
# as is Torch7's default for nn.Linear and nn.SpatialConvolution (DQN's Lua code, DQN Zoo).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """PyTorch nn.Linear's bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def zeros_bias_init(fan_in: int) -> nn.initializers.Initializer:
    """Zero biases (Flax's default), whatever the fan-in."""
    del fan_in
    return nn.initializers.zeros
