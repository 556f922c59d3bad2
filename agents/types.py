"""Types shared by agents and the runner that feeds them."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

Params = Any  # the Flax variables dict of a network


class Transition(NamedTuple):
    """A batch of (n-step) transitions, leading axis B.

    `reward_t` is the discounted n-step sum r_{t+1} + ... + gamma^{m-1} r_{t+m} and
    `discount_t` is gamma^m (0 when the episode terminated within the m steps), so the
    bootstrap target is reward_t + discount_t * V(obs_t).
    """

    obs_tm1: jax.Array  # (B, *obs_shape), obs_shape includes the frame stack
    action_tm1: jax.Array  # (B,) int32 for discrete actions, (B, action_dim) otherwise
    reward_t: jax.Array  # (B,) float32, or (B, N) for a reward vector of N sources
    discount_t: jax.Array  # (B,) float32
    obs_t: jax.Array  # (B, *obs_shape)


class Agent(NamedTuple):
    """An agent: a bundle of pure, jit- and vmap-able functions.

    init(key, sample_obs (*obs_shape,)) -> state
    act(state, obs (E, *obs_shape), key, step (), first (E,) bool | None) -> actions
      (E, ...): the training behaviour at agent step `step` (its exploration schedule lives
      in the agent); `first` marks observations that start an episode
    eval_act(state, obs (E, *obs_shape), key, first (E,) bool | None) -> actions (E, ...):
      the evaluation behaviour
    update(state, transitions (batch B), key) -> (state, metrics of () arrays)
    q_values(params, obs (..., *obs_shape)) -> (..., A) float32 (Q agents)
    return_distribution(params, obs (..., *obs_shape)) -> (support (m,), probabilities
      (..., A, m)) for categorical critics; raises for a scalar one
    return_particles(params, obs (..., *obs_shape)) -> (..., A, M, N): the joint-return
      particles of a particle critic (MD3QN, MMDQN); None for other agents
    """

    init: Callable[[jax.Array, jax.Array], Any]
    act: Callable[..., jax.Array]
    eval_act: Callable[..., jax.Array]
    update: Callable[[Any, Transition, jax.Array], tuple[Any, dict[str, jax.Array]]]
    q_values: Callable[[Params, jax.Array], jax.Array] | None = None
    return_distribution: Callable[[Params, jax.Array], tuple[Any, jax.Array]] | None = None
    return_particles: Callable[[Params, jax.Array], jax.Array] | None = None
