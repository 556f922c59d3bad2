"""Heads: feature vector -> per-action outputs, and torso+head Q-networks. Kernels
lecun_normal (Flax's default) unless a `kernel_init` is given, zero biases."""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


class QHead(nn.Module):
    """Linear layer from features (..., F) to outputs (..., num_actions, num_outputs) float32:
    one Q-value (num_outputs 1) or the logits of a categorical critic per action."""

    num_actions: int
    num_outputs: int = 1
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        dense = nn.Dense(self.num_actions * self.num_outputs, kernel_init=self.kernel_init)
        outputs = dense(features.astype(jnp.float32))
        return outputs.reshape(*outputs.shape[:-1], self.num_actions, self.num_outputs)


class QNetwork(nn.Module):
    """`torso` then a `QHead`: observations (..., *obs_shape) -> (..., num_actions,
    num_outputs)."""

    torso: nn.Module
    num_actions: int
    num_outputs: int = 1
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        head = QHead(self.num_actions, self.num_outputs, self.kernel_init, name="head")
        return head(self.torso(obs))
