"""Heads: feature vector -> per-action outputs, and torso+head Q-networks. Flax default
initialisers (lecun_normal kernel, zero bias)."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class QHead(nn.Module):
    """Linear layer from features (..., F) to outputs (..., num_actions, num_outputs) float32:
    one Q-value (num_outputs 1) or the logits of a categorical critic per action."""

    num_actions: int
    num_outputs: int = 1

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        outputs = nn.Dense(self.num_actions * self.num_outputs)(features.astype(jnp.float32))
        return outputs.reshape(*outputs.shape[:-1], self.num_actions, self.num_outputs)


class QNetwork(nn.Module):
    """`torso` then a `QHead`: observations (..., *obs_shape) -> (..., num_actions,
    num_outputs)."""

    torso: nn.Module
    num_actions: int
    num_outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return QHead(self.num_actions, self.num_outputs, name="head")(self.torso(obs))
