"""Heads: feature vector -> per-action outputs, and torso+head Q-networks. Flax default
initialisers (lecun_normal kernel, zero bias)."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class QHead(nn.Module):
    """Linear layer from features (..., F) to Q-values (..., num_actions) float32."""

    num_actions: int

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        return nn.Dense(self.num_actions)(features.astype(jnp.float32))


class QNetwork(nn.Module):
    """`torso` then a `QHead`: observations (..., *obs_shape) -> Q-values (..., num_actions)."""

    torso: nn.Module
    num_actions: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return QHead(self.num_actions, name="head")(self.torso(obs))
