"""Heads: feature vector -> per-action outputs, and torso+head Q-networks. Kernels
lecun_normal (Flax's default) unless a `kernel_init` is given, biases from `bias_init` (zero
by default)."""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from networks.initializers import BiasInit, zeros_bias_init


class QHead(nn.Module):
    """Linear layer from features (..., F) to outputs (..., num_actions, num_outputs) float32:
    one Q-value (num_outputs 1) or the logits of a categorical critic per action."""

    num_actions: int
    num_outputs: int = 1
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: BiasInit = zeros_bias_init

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        dense = nn.Dense(
            self.num_actions * self.num_outputs,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init(features.shape[-1]),
        )
        outputs = dense(features.astype(jnp.float32))
        return outputs.reshape(*outputs.shape[:-1], self.num_actions, self.num_outputs)


class QNetwork(nn.Module):
    """`torso` then a `QHead`: observations (..., *obs_shape) -> (..., num_actions,
    num_outputs)."""

    torso: nn.Module
    num_actions: int
    num_outputs: int = 1
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: BiasInit = zeros_bias_init

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        head = QHead(
            self.num_actions, self.num_outputs, self.kernel_init, self.bias_init, name="head"
        )
        return head(self.torso(obs))
