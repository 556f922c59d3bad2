"""DQN and Double DQN (Mnih et al. 2015; van Hasselt et al. 2016) as pure functions."""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from agents import losses
from agents.types import Transition

Params = Any  # the Flax variables dict of the Q-network


class DQNState(NamedTuple):
    """Per-seed learner state (a pytree)."""

    params: Params
    target_params: Params
    opt_state: optax.OptState
    update_count: jax.Array  # () int32, number of updates done


class Agent(NamedTuple):
    """A DQN agent: a bundle of pure, jit- and vmap-able functions.

    init(key, sample_obs (*obs_shape,)) -> DQNState
    act(state, obs (E, *obs_shape), key, epsilon ()) -> actions (E,) int32
    update(state, transitions (batch B)) -> (state, metrics of () arrays)
    q_values(params, obs (..., *obs_shape)) -> (..., A) float32
    """

    init: Callable[[jax.Array, jax.Array], DQNState]
    act: Callable[[DQNState, jax.Array, jax.Array, jax.Array], jax.Array]
    update: Callable[[DQNState, Transition], tuple[DQNState, dict[str, jax.Array]]]
    q_values: Callable[[Params, jax.Array], jax.Array]


class ScaleByAdamState(NamedTuple):
    """Adam's step count and first and second moments."""

    count: jax.Array  # () int32
    mu: optax.Updates
    nu: optax.Updates


def _scale_by_adam(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """optax.scale_by_adam (eps outside the square root) in a form that vmaps bit-exactly.

    With optax's own form, XLA's algebraic simplifier reassociates the bias-correction
    divisions differently for a scalar step count (one seed) than for a batched one (seeds
    vmapped), so vmapped seeds drift from independent runs by an ulp per step. Here the bias
    corrections are explicit scalar reciprocals and the corrected moments sit behind an
    optimization barrier, which leaves XLA nothing to rewrite. Equal to optax.adam up to
    float rounding.
    """

    def init(params: optax.Params) -> ScaleByAdamState:
        # Two separate trees: a runner may donate the state, and a buffer is donated once.
        mu, nu = optax.tree.zeros_like(params), optax.tree.zeros_like(params)
        return ScaleByAdamState(jnp.zeros((), jnp.int32), mu, nu)

    def update(
        grads: optax.Updates, state: ScaleByAdamState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, ScaleByAdamState]:
        del params
        count = optax.safe_int32_increment(state.count)
        mu = optax.tree.update_moment(grads, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(grads, state.nu, b2, 2)
        mu_scale = 1.0 / (1.0 - b1**count)
        nu_scale = 1.0 / (1.0 - b2**count)
        mu_hat = jax.tree.map(lambda m: m * mu_scale, mu)
        nu_hat = jax.tree.map(lambda v: v * nu_scale, nu)
        mu_hat, nu_hat = jax.lax.optimization_barrier((mu_hat, nu_hat))
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return updates, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def make_optimizer(
    name: Literal["adam", "rmsprop"],
    learning_rate: float | jax.Array,
    eps: float,
    rmsprop_decay: float = 0.95,
    centered: bool = True,
    max_grad_norm: float | None = None,
) -> optax.GradientTransformation:
    """Adam (Dopamine JAX DQN) or RMSProp (Nature DQN), optionally after global-norm clipping.

    "adam" is Adam with b1 0.9, b2 0.999 and `eps` outside the square root, as optax.adam,
    written so that vmapped seeds stay bit-identical to independent runs (see
    `_scale_by_adam`).
    "rmsprop" with the defaults is DeepMind's Nature-DQN RMSProp: g = d g + (1-d) grad,
    n = d n + (1-d) grad^2, step = -lr grad / sqrt(n - g^2 + eps) (eps inside the square
    root; Nature: lr 2.5e-4, d 0.95, eps 0.01). `learning_rate` may be a traced scalar.
    """
    if name == "adam":
        optimizer = optax.chain(
            _scale_by_adam(0.9, 0.999, eps), optax.scale_by_learning_rate(learning_rate)
        )
    elif name == "rmsprop":
        optimizer = optax.rmsprop(
            learning_rate, decay=rmsprop_decay, eps=eps, centered=centered, eps_in_sqrt=True
        )
    else:
        raise ValueError(f"Unknown optimizer {name!r}: use 'adam' or 'rmsprop'.")
    if max_grad_norm is None:
        return optimizer
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optimizer)


def make_dqn(
    network: nn.Module,
    optimizer: optax.GradientTransformation,
    num_actions: int,
    loss: Literal["mse", "huber"] = "mse",
    huber_delta: float = 1.0,
    double_q: bool = False,
    target_update_period: int = 1,
    target_update_tau: float = 1.0,
) -> Agent:
    """Builds DQN (or Double DQN with `double_q`) around a Q-network.

    Args:
      network: maps observations (..., *obs_shape) to Q-values (..., num_actions).
      optimizer: applied to the gradient of the batch-mean loss.
      num_actions: number of discrete actions A.
      loss: per-transition loss of the TD error: "mse" is td^2 (Dopamine JAX DQN),
        "huber" is Huber with `huber_delta` (Nature DQN's clipped TD error for delta 1).
      huber_delta: Huber threshold.
      double_q: select the bootstrap action with the online network.
      target_update_period: the target moves after every update whose new update count is
        a multiple of this period.
      target_update_tau: target <- tau * online + (1 - tau) * target; 1 is a hard copy
        (exact), e.g. 0.005 with period 1 is Polyak averaging.

    Returns:
      The Agent's pure functions.
    """
    if loss == "mse":
        transition_loss = losses.squared_loss
    elif loss == "huber":

        def transition_loss(td: jax.Array) -> jax.Array:
            return losses.huber_loss(td, huber_delta)

    else:
        raise ValueError(f"Unknown loss {loss!r}: use 'mse' or 'huber'.")
    if target_update_period < 1:
        raise ValueError(f"target_update_period must be >= 1, got {target_update_period}.")
    if isinstance(target_update_tau, int | float) and not 0.0 < target_update_tau <= 1.0:
        raise ValueError(f"target_update_tau must be in (0, 1], got {target_update_tau}.")

    def q_values(params: Params, obs: jax.Array) -> jax.Array:
        return network.apply(params, obs)

    def init(key: jax.Array, sample_obs: jax.Array) -> DQNState:
        params = network.init(key, sample_obs)
        return DQNState(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),  # own buffers, so donatable
            opt_state=optimizer.init(params),
            update_count=jnp.zeros((), jnp.int32),
        )

    def act(state: DQNState, obs: jax.Array, key: jax.Array, epsilon: jax.Array) -> jax.Array:
        greedy_actions = jnp.argmax(q_values(state.params, obs), axis=-1).astype(jnp.int32)
        explore_key, action_key = jax.random.split(key)
        num_envs = greedy_actions.shape[0]
        explore = jax.random.uniform(explore_key, (num_envs,)) < epsilon
        random_actions = jax.random.randint(action_key, (num_envs,), 0, num_actions, jnp.int32)
        return jnp.where(explore, random_actions, greedy_actions)

    def loss_fn(
        params: Params, target_params: Params, batch: Transition
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        q_tm1 = q_values(params, batch.obs_tm1)
        q_t_target = q_values(target_params, batch.obs_t)
        if double_q:
            q_t_online = q_values(params, batch.obs_t)
            target = jax.vmap(losses.double_q_learning_target)(
                q_t_target, q_t_online, batch.reward_t, batch.discount_t
            )
        else:
            target = jax.vmap(losses.q_learning_target)(
                q_t_target, batch.reward_t, batch.discount_t
            )
        td = jax.vmap(losses.td_error)(q_tm1, batch.action_tm1, target)
        mean_loss = jnp.mean(jax.vmap(transition_loss)(td))
        q_taken = jnp.take_along_axis(q_tm1, batch.action_tm1[:, None], axis=-1)
        return mean_loss, {"q_mean": jnp.mean(q_taken), "target_mean": jnp.mean(target)}

    def update(state: DQNState, batch: Transition) -> tuple[DQNState, dict[str, jax.Array]]:
        (mean_loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.target_params, batch
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        update_count = state.update_count + 1
        sync = update_count % target_update_period == 0
        moved_target = optax.incremental_update(params, state.target_params, target_update_tau)
        target_params = jax.tree.map(
            lambda moved, old: jnp.where(sync, moved, old), moved_target, state.target_params
        )
        new_state = DQNState(params, target_params, opt_state, update_count)
        return new_state, {"loss": mean_loss, **metrics}

    return Agent(init=init, act=act, update=update, q_values=q_values)
