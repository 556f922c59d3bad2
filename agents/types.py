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
    update(state, transitions (batch B), key, update_count () int32 | None) -> (state,
      metrics of () arrays): one gradient step; `update_count`, the updates done before
      this one, is shared by all seeds trained in lockstep (unbatched under the seed vmap),
      so that schedule decisions (target copies, delayed actor steps) are taken once with
      lax.cond and skipped work is not computed; None reads the state's own count
    q_values(params, obs (..., *obs_shape)) -> (..., A) float32 (Q agents)
    return_distribution(params, obs (..., *obs_shape)) -> (support, probabilities
      (..., A, m)): a categorical critic's fixed support (m,), or a quantile critic's
      quantiles (..., A, m) each of probability 1/m; raises for a scalar critic
    return_particles(params, obs (..., *obs_shape)) -> (..., A, M, N): the joint-return
      particles of a particle critic (MD3QN, MMDQN); None for other agents
    """

    init: Callable[[jax.Array, jax.Array], Any]
    act: Callable[..., jax.Array]
    eval_act: Callable[..., jax.Array]
    update: Callable[..., tuple[Any, dict[str, jax.Array]]]
    q_values: Callable[[Params, jax.Array], jax.Array] | None = None
    return_distribution: Callable[[Params, jax.Array], tuple[Any, jax.Array]] | None = None
    return_particles: Callable[[Params, jax.Array], jax.Array] | None = None


def schedule_count(own_count: jax.Array, shared_count: jax.Array | None) -> jax.Array:
    """The number (counting from 1) of the update being made, which schedules are decided
    on: from the count shared by seeds in lockstep if given (so an unbatched lax.cond
    predicate under the seed vmap), else from the state's own count."""
    return (own_count if shared_count is None else shared_count) + 1
