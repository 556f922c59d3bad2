"""Torsos: observation -> feature vector. Flax linen modules; kernels lecun_normal (Flax's
default) unless a `kernel_init` is given, biases from `bias_init` (zero by default)."""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from networks.initializers import BiasInit, zeros_bias_init


class NatureCNN(nn.Module):
    """The Nature DQN torso (Mnih et al. 2015).

    conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1 (ReLU each), flatten,
    dense 512 ReLU. Input: pixel values in [0, 255] (uint8, or any dtype holding the same
    values), shape (..., 84, 84, 4) channels-last with any number of leading batch dims;
    it is cast to float32 and scaled by 1/255 here, once. Output: (..., 512) float32.

    `padding` defaults to "VALID", Nature's choice: on 84x84 the last conv is 7x7x64, i.e.
    3136 features. "SAME" (Flax's default) keeps 11x11x64 = 7744 features.
    """

    padding: str = "VALID"
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: BiasInit = zeros_bias_init

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32) / 255.0
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            conv = nn.Conv(
                features,
                (kernel, kernel),
                strides=(stride, stride),
                padding=self.padding,
                kernel_init=self.kernel_init,
                bias_init=self.bias_init(kernel * kernel * x.shape[-1]),
            )
            x = nn.relu(conv(x))
        x = x.reshape(*x.shape[:-3], -1)
        dense = nn.Dense(512, kernel_init=self.kernel_init, bias_init=self.bias_init(x.shape[-1]))
        return nn.relu(dense(x))


class MLP(nn.Module):
    """Dense + ReLU layers of sizes `hidden_sizes`.

    Input (..., D), cast to float32; output (..., hidden_sizes[-1]) (the input itself, as
    float32, when `hidden_sizes` is empty).
    """

    hidden_sizes: Sequence[int]
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: BiasInit = zeros_bias_init

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32)
        for size in self.hidden_sizes:
            dense = nn.Dense(
                size, kernel_init=self.kernel_init, bias_init=self.bias_init(x.shape[-1])
            )
            x = nn.relu(dense(x))
        return x
