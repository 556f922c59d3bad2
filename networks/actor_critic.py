"""Actor and twin critics for continuous control (TD3, Fujimoto et al. 2018).

Dense layers use PyTorch's nn.Linear default initialisation, as the TD3 author's code does:
weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Flax's own default would be
lecun_normal kernels and zero biases).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from networks.initializers import torch_bias_init, torch_kernel_init


def torch_dense(features: int, x: jax.Array) -> jax.Array:
    """nn.Dense(features) applied to x (..., fan_in), initialised like PyTorch's nn.Linear
    (kernel and bias U(+-1/sqrt(fan_in))); call inside an nn.compact method."""
    x = x.astype(jnp.float32)
    dense = nn.Dense(
        features, kernel_init=torch_kernel_init, bias_init=torch_bias_init(x.shape[-1])
    )
    return dense(x)


class Actor(nn.Module):
    """Deterministic policy pi(s): MLP with ReLU hidden layers, linear, tanh onto the bounds.

    a = mid + half * tanh(x) with mid = (low + high) / 2, half = (high - low) / 2, i.e.
    low + (tanh + 1) / 2 * (high - low), exactly max_action * tanh for symmetric bounds, and
    never outside [low, high].
    Layers are initialised like PyTorch's nn.Linear (U(+-1/sqrt(fan_in)), weights and biases).

    Attributes:
      action_low, action_high: (A,) finite bounds, low < high in every dimension.
      hidden_sizes: ReLU layer sizes; the paper uses (400, 300), the author's later code
        (256, 256).

    Input obs (..., obs_dim); output (..., A) float32.
    """

    action_low: Sequence[float]
    action_high: Sequence[float]
    hidden_sizes: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        low = np.asarray(self.action_low, np.float64)
        high = np.asarray(self.action_high, np.float64)
        x = obs.astype(jnp.float32)
        for size in self.hidden_sizes:
            x = nn.relu(torch_dense(size, x))
        x = jnp.tanh(torch_dense(low.shape[0], x))
        # mid + half * tanh rather than low + (tanh + 1) / 2 * (high - low): the same map,
        # and bit-exactly max_action * tanh when the bounds are symmetric.
        mid = jnp.broadcast_to(jnp.asarray((low + high) / 2, jnp.float32), x.shape)
        half = jnp.broadcast_to(jnp.asarray((high - low) / 2, jnp.float32), x.shape)
        # Clipped because float32 mid + half can pass an asymmetric bound by an ulp; a no-op
        # otherwise (tanh is saturated, with zero gradient, wherever it acts).
        low32 = jnp.broadcast_to(jnp.asarray(low, jnp.float32), x.shape)
        high32 = jnp.broadcast_to(jnp.asarray(high, jnp.float32), x.shape)
        return jnp.clip(mid + half * x, low32, high32)


class Critic(nn.Module):
    """One critic Q(s, a): concatenate obs and action, MLP with ReLU, linear to m outputs.

    Layers are initialised like PyTorch's nn.Linear (U(+-1/sqrt(fan_in)), weights and biases).

    Attributes:
      hidden_sizes: ReLU layer sizes ((400, 300) in the paper, (256, 256) later).
      num_outputs: m, the value representation's outputs (1 for a scalar critic).

    Inputs obs (..., obs_dim), action (..., A) with the same leading shape; output (..., m)
    float32.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    num_outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs.astype(jnp.float32), action.astype(jnp.float32)], axis=-1)
        for size in self.hidden_sizes:
            x = nn.relu(torch_dense(size, x))
        return torch_dense(self.num_outputs, x)


class TwinCritic(nn.Module):
    """`num_critics` independent `Critic`s (TD3's Q1, Q2) evaluated on the same inputs.

    Each critic is its own submodule, "critic_1", "critic_2", ..., independently initialised.
    (Not one nn.vmap over stacked parameters: vmapping seeds over that nested vmap changes
    the shape of XLA:CPU's bias-gradient reductions, and vmapped seeds would drift from
    separate runs by an ulp.)

    Inputs obs (..., obs_dim), action (..., A); output (..., num_critics, m) float32, critic 1
    at index 0.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    num_outputs: int = 1
    num_critics: int = 2

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        outputs = [
            Critic(self.hidden_sizes, self.num_outputs, name=f"critic_{i + 1}")(obs, action)
            for i in range(self.num_critics)
        ]
        return jnp.stack(outputs, axis=-2)
