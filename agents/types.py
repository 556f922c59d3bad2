"""Types shared by agents and the runner that feeds them."""

from typing import NamedTuple

import jax


class Transition(NamedTuple):
    """A batch of (n-step) transitions, leading axis B.

    `reward_t` is the discounted n-step sum r_{t+1} + ... + gamma^{m-1} r_{t+m} and
    `discount_t` is gamma^m (0 when the episode terminated within the m steps), so the
    bootstrap target is reward_t + discount_t * V(obs_t).
    """

    obs_tm1: jax.Array  # (B, *obs_shape), obs_shape includes the frame stack
    action_tm1: jax.Array  # (B,) int32 for discrete actions, (B, action_dim) otherwise
    reward_t: jax.Array  # (B,) float32
    discount_t: jax.Array  # (B,) float32
    obs_t: jax.Array  # (B, *obs_shape)
