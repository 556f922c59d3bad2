"""DQN and Double DQN (Mnih et al. 2015; van Hasselt et al. 2016) as pure functions."""

from typing import Literal, NamedTuple, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents import representations
from agents.representations import ValueRepresentation, scalar
from agents.types import Agent, Params, Transition, schedule_count


class DQNState(NamedTuple):
    """Per-seed learner state (a pytree)."""

    params: Params
    target_params: Params
    opt_state: optax.OptState
    update_count: jax.Array  # () int32, number of updates done


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


def epsilon_greedy(q: jax.Array, key: jax.Array, epsilon: jax.Array) -> jax.Array:
    """Per row of q (E, A): the greedy action (ties to the lowest index), or with
    probability epsilon a uniform one; -> (E,) int32."""
    num_envs, num_actions = q.shape
    explore_key, action_key = jax.random.split(key)
    explore = jax.random.uniform(explore_key, (num_envs,)) < epsilon
    random_actions = jax.random.randint(action_key, (num_envs,), 0, num_actions, jnp.int32)
    return jnp.where(explore, random_actions, jnp.argmax(q, axis=-1).astype(jnp.int32))


TargetRule = Literal["max", "double", "per_head", "uniform"]


def bootstrap_actions(
    rule: TargetRule,
    representation: ValueRepresentation,
    out_t: jax.Array,
    online_out_t: jax.Array | None = None,
    key: jax.Array | None = None,
) -> jax.Array:
    """The action each transition bootstraps from, given the target outputs out_t (B, A, m).

    "max": argmax of the target network's Q (DQN, MD3QN); "double": argmax of the online
    network's Q, from online_out_t (B, A, m) (Double DQN); "per_head": for each output
    separately, the argmax of that output (HRA's per-source greedy heads), (B, m);
    "uniform": one uniformly random action per transition, from `key` (policy evaluation of
    the uniform policy). Ties go to the lowest index. Returns (B,) int32, or (B, m).
    """
    if rule == "max":
        return jnp.argmax(representation.q_values(out_t), axis=-1)
    if rule == "double":
        return jnp.argmax(representation.q_values(online_out_t), axis=-1)
    if rule == "per_head":
        return jnp.argmax(out_t, axis=1)
    if rule == "uniform":
        batch_size, num_actions = out_t.shape[:2]
        return jax.random.randint(key, (batch_size,), 0, num_actions, jnp.int32)
    raise _unknown_target_rule(rule)


def _unknown_target_rule(rule: str) -> ValueError:
    return ValueError(f"Unknown target rule {rule!r}: use one of {get_args(TargetRule)}.")


def make_dqn(
    network: nn.Module,
    optimizer: optax.GradientTransformation,
    representation: ValueRepresentation | None = None,
    target_rule: TargetRule = "max",
    target_update_period: int = 1,
    target_update_tau: float = 1.0,
    epsilon: optax.Schedule | float = 0.0,
    eval_epsilon: float = 0.0,
    first_action: int | None = None,
) -> Agent:
    """Builds DQN (Double DQN with target_rule "double") for any value representation.

    Scalar is DQN; C51, HL-Gauss and two-hot are the classification critics of the same
    family; particles are MD3QN (and MMDQN), heads with the "per_head" rule are HRA.

    Args:
      network: maps observations (..., *obs_shape) to outputs (..., A, m), m the
        representation's `num_outputs`.
      optimizer: applied to the gradient of the batch-mean loss.
      representation: the value representation; the scalar MSE critic when None.
      target_rule: how the bootstrap action is picked (`bootstrap_actions`).
      target_update_period: the target moves after every update whose new update count is
        a multiple of this period.
      target_update_tau: target <- tau * online + (1 - tau) * target; 1 is a hard copy
        (exact), e.g. 0.005 with period 1 is Polyak averaging.
      epsilon: training exploration rate, constant or a function of the agent step.
      eval_epsilon: exploration rate of `eval_act`.
      first_action: if set, the action taken on the first observation of every episode,
        in training and evaluation (the policy-evaluation experiment of MD3QN).

    Returns:
      The Agent's pure functions.
    """
    representation = representation or scalar()
    if target_rule not in get_args(TargetRule):
        raise _unknown_target_rule(target_rule)
    epsilon_schedule = epsilon if callable(epsilon) else optax.constant_schedule(epsilon)
    if target_update_period < 1:
        raise ValueError(f"target_update_period must be >= 1, got {target_update_period}.")
    if isinstance(target_update_tau, int | float) and not 0.0 < target_update_tau <= 1.0:
        raise ValueError(f"target_update_tau must be in (0, 1], got {target_update_tau}.")

    def q_values(params: Params, obs: jax.Array) -> jax.Array:
        return representation.q_values(network.apply(params, obs))

    def return_distribution(
        params: Params, obs: jax.Array
    ) -> tuple[np.ndarray | jax.Array, jax.Array]:
        return representations.return_distribution(representation, network.apply(params, obs))

    def init(key: jax.Array, sample_obs: jax.Array) -> DQNState:
        params = network.init(key, sample_obs)
        return DQNState(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),  # own buffers, so donatable
            opt_state=optimizer.init(params),
            update_count=jnp.zeros((), jnp.int32),
        )

    def policy(state: DQNState, obs, key, rate, first) -> jax.Array:
        actions = epsilon_greedy(q_values(state.params, obs), key, rate)
        if first_action is None or first is None:
            return actions
        return jnp.where(first, first_action, actions)

    def act(state: DQNState, obs, key, step, first=None) -> jax.Array:
        return policy(state, obs, key, epsilon_schedule(step), first)

    def eval_act(state: DQNState, obs, key, first=None) -> jax.Array:
        return policy(state, obs, key, eval_epsilon, first)

    def loss_fn(
        params: Params, target_params: Params, batch: Transition, key: jax.Array | None
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        out_t = network.apply(target_params, batch.obs_t)
        online_out_t = network.apply(params, batch.obs_t) if target_rule == "double" else None
        a_t = bootstrap_actions(target_rule, representation, out_t, online_out_t, key)
        transition_losses, q_taken, target = bootstrap_losses(
            representation, network.apply(params, batch.obs_tm1), out_t, batch, a_t
        )
        metrics = {"q_mean": jnp.mean(q_taken), "target_mean": jnp.mean(target)}
        return jnp.mean(transition_losses), metrics

    def update(
        state: DQNState,
        batch: Transition,
        key: jax.Array | None = None,
        update_count: jax.Array | None = None,
    ) -> tuple[DQNState, dict[str, jax.Array]]:
        # Only the "uniform" target rule draws from the key; the others are deterministic.
        (mean_loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.target_params, batch, key
        )
        # Gradients are materialised before the optimiser: XLA:CPU otherwise fuses some of
        # them into the moment updates for one parameter shape and not another, so stacked
        # or vmapped copies of the same computation would round differently.
        grads = jax.lax.optimization_barrier(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target_params = jax.lax.cond(
            schedule_count(state.update_count, update_count) % target_update_period == 0,
            lambda: optax.incremental_update(params, state.target_params, target_update_tau),
            lambda: state.target_params,
        )
        new_state = DQNState(params, target_params, opt_state, state.update_count + 1)
        return new_state, {"loss": mean_loss, **metrics}

    return_particles = None
    if representation.particles is not None:

        def return_particles(params: Params, obs: jax.Array) -> jax.Array:
            return representation.particles(network.apply(params, obs))

    return Agent(init, act, eval_act, update, q_values, return_distribution, return_particles)


def bootstrap_losses(
    representation: ValueRepresentation,
    out_tm1: jax.Array,
    out_t: jax.Array,
    batch: Transition,
    a_t: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-transition losses of Q-learning for any value representation.

    A reward vector (B, N) meets a critic that takes scalar rewards as its sum over sources.

    Args:
      representation: the critic's value representation.
      out_tm1: (B, A, m) online outputs at obs_tm1.
      out_t: (B, A, m) bootstrap (target) network outputs at obs_t.
      batch: transitions (actions, rewards (B, *reward_shape), discounts).
      a_t: bootstrap actions, (B,) or one per output (B, m) (`bootstrap_actions`); None
        picks the argmax of out_t's own Q-values.

    Returns:
      losses (B,), Q of the taken actions (B,), expected targets r + discount Q_t (B,) on
      the scale of Q.
    """
    if a_t is None:
        a_t = bootstrap_actions("max", representation, out_t)
    reward_t = batch.reward_t
    if reward_t.ndim == 2 and not representation.reward_shape:
        reward_t = jnp.sum(reward_t, axis=-1)
    out_tm1_taken = _take_action(out_tm1, batch.action_tm1)
    out_t_selected = jax.lax.stop_gradient(_take_action(out_t, a_t))
    losses = jax.vmap(representation.loss)(
        out_tm1_taken, out_t_selected, reward_t, batch.discount_t
    )
    reward_value = representation.reward_value or (lambda r: r)
    target = reward_value(reward_t) + batch.discount_t * representation.q_values(out_t_selected)
    return losses, representation.q_values(out_tm1_taken), target


def _take_action(values: jax.Array, actions: jax.Array) -> jax.Array:
    """values (B, A, ...) at actions (B,), or per output at actions (B, m) -> (B, ...)."""
    if actions.ndim == 2:
        return jnp.take_along_axis(values, actions[:, None, :], axis=1)[:, 0]
    index = actions.reshape(actions.shape + (1,) * (values.ndim - 1))
    return jnp.take_along_axis(values, index, axis=1)[:, 0]
