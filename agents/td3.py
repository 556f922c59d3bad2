"""TD3 (Fujimoto, van Hoof, Meger 2018) as pure functions.

Twin critics, target policy smoothing and delayed actor and target updates, with the critic
written over a `ValueRepresentation` (scalar MSE as in the paper, or HL-Gauss, two-hot, C51).
The details follow the author's reference code (github.com/sfujim/TD3): one optimiser over
both critics, F.mse_loss for each critic (no factor 1/2), the actor step taken after the
critic step of the same update and against the just-updated critic 1, and noise scales
given as fractions of the action bound.
"""

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents.representations import ValueRepresentation, scalar
from agents.types import Agent, Params, Transition, schedule_count


class TD3State(NamedTuple):
    """Per-seed learner state (a pytree)."""

    actor_params: Params
    critic_params: Params  # both critics
    actor_target_params: Params
    critic_target_params: Params
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    update_count: jax.Array  # () int32, number of critic updates done


def _broadcast(values: jax.Array, like: jax.Array) -> jax.Array:
    """(A,) constants broadcast to (..., A), explicitly (rank promotion may be "raise")."""
    return jnp.broadcast_to(values, like.shape)


def _barrier(grads: Params) -> Params:
    """An optimization barrier between gradients and the optimiser.

    Without it XLA:CPU fuses the gradient of a layer with one output (the scalar critic's
    last kernel, (H, 1)) into Adam's moment update for one seed but not for vmapped seeds,
    which rounds 0.9 m + 0.1 g differently, and vmapped seeds drift from separate runs by
    an ulp from the second update on.
    """
    return jax.lax.optimization_barrier(grads)


def target_action(
    pi_t: jax.Array,
    noise: jax.Array,
    action_low: jax.Array,
    action_high: jax.Array,
    target_noise: float | jax.Array,
    target_noise_clip: float | jax.Array,
) -> jax.Array:
    """TD3's smoothed target action, given standard normal draws.

    a~ = clip(pi_t + clip(target_noise * scale * noise, -target_noise_clip * scale,
    target_noise_clip * scale), low, high), with scale = (high - low) / 2 per dimension (the
    action bound for symmetric bounds, as the author scales both by max_action).

    Args:
      pi_t: (..., A) target actor's actions at s'.
      noise: (..., A) standard normal draws.
      action_low, action_high: (A,) bounds.
      target_noise: the smoothing noise's std in units of scale (0.2 in the paper).
      target_noise_clip: its clip in units of scale (0.5 in the paper).

    Returns:
      (..., A) actions within [low, high].
    """
    chex.assert_equal_shape([pi_t, noise])
    low, high = _broadcast(action_low, pi_t), _broadcast(action_high, pi_t)
    scale = (high - low) / 2
    limit = target_noise_clip * scale
    smoothing = jnp.clip(target_noise * scale * noise, -limit, limit)
    return jnp.clip(pi_t + smoothing, low, high)


def lower_critic_outputs(outputs: jax.Array, q: jax.Array) -> jax.Array:
    """Per row, the outputs of the critic with the lower Q-value.

    Args:
      outputs: (B, C, m) outputs of C critics (C = 2 for TD3).
      q: (B, C) their Q-values.

    Returns:
      (B, m); for a scalar critic (m = 1) exactly min over critics of Q. Ties go to the
      first critic.
    """
    chex.assert_rank([outputs, q], [3, 2])
    index = jnp.argmin(q, axis=-1)[:, None, None]
    return jnp.take_along_axis(outputs, index, axis=1)[:, 0]


def _check_bounds(action_low: Sequence[float], action_high: Sequence[float]) -> tuple:
    low = np.asarray(action_low, np.float64)
    high = np.asarray(action_high, np.float64)
    if low.ndim != 1 or low.shape != high.shape or low.size == 0:
        raise ValueError(
            "action_low and action_high must be non-empty 1-D sequences of the same length "
            f"(one entry per action dimension), got shapes {low.shape} and {high.shape}."
        )
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(
            f"Action bounds must be finite, got low={low.tolist()}, high={high.tolist()}; "
            "TD3 needs a bounded action space (tanh actor, uniform start actions)."
        )
    if not np.all(low < high):
        raise ValueError(
            f"Need action_low < action_high in every dimension, got low={low.tolist()}, "
            f"high={high.tolist()}."
        )
    return low, high


def _is_number(value: Any) -> bool:
    """A concrete number (jax arrays, which may be traced hyperparameters, are not checked)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def make_td3(
    actor: nn.Module,
    critic: nn.Module,
    actor_optimizer: optax.GradientTransformation,
    critic_optimizer: optax.GradientTransformation,
    action_low: Sequence[float] | np.ndarray,
    action_high: Sequence[float] | np.ndarray,
    representation: ValueRepresentation | None = None,
    policy_delay: int | jax.Array = 2,
    tau: float | jax.Array = 0.005,
    target_noise: float | jax.Array = 0.2,
    target_noise_clip: float | jax.Array = 0.5,
    exploration_noise: float | jax.Array = 0.1,
    start_steps: int | jax.Array = 25_000,
) -> Agent:
    """Builds TD3 for any value representation of its twin critics.

    Noise scales are in units of scale = (high - low) / 2 per action dimension (the action
    bound max_action for symmetric bounds).

    Args:
      actor: maps obs (..., obs_dim) to actions (..., A) within [low, high] (e.g.
        networks.Actor).
      critic: maps (obs (..., obs_dim), action (..., A)) to outputs (..., 2, m) of the two
        critics, m the representation's `num_outputs` (e.g. networks.TwinCritic).
      actor_optimizer, critic_optimizer: the critic one steps both critics' parameters
        together (one Adam, as the author's code).
      action_low, action_high: (A,) finite bounds with low < high.
      representation: the critics' value representation; the scalar MSE critic when None.
      policy_delay: d; the actor and all targets move on updates whose new update count is a
        multiple of d (the author's total_it % policy_freq == 0, counting from 1).
        policy_delay, tau, the noise scales and start_steps may be traced scalars (a sweep
        axis); only concrete values are validated.
      tau: Polyak rate, target <- tau * online + (1 - tau) * target, in (0, 1].
      target_noise, target_noise_clip: std and clip of the target policy smoothing noise.
      exploration_noise: std of the Gaussian exploration noise of `act`.
      start_steps: `act` draws uniform actions while the agent step is below this (the
        author's later default 25k; the paper 1k, or 10k on HalfCheetah and Ant). When
        updates start is the runner's choice.

    Returns:
      The Agent's pure functions (q_values and return_distribution are None: TD3's critic
      takes an action as input). `update`'s key draws the smoothing noise as
      jax.random.normal(key, (B, A)).
    """
    representation = representation or scalar()
    low_np, high_np = _check_bounds(action_low, action_high)
    action_dim = low_np.shape[0]
    if not isinstance(policy_delay, jax.Array) and not (
        isinstance(policy_delay, numbers.Integral)
        and not isinstance(policy_delay, bool)
        and policy_delay >= 1
    ):
        raise ValueError(f"policy_delay must be an integer >= 1, got {policy_delay!r}.")
    if _is_number(tau) and not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}.")
    for name, value in (
        ("target_noise", target_noise),
        ("target_noise_clip", target_noise_clip),
        ("exploration_noise", exploration_noise),
    ):
        if _is_number(value) and not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value}.")
    if not isinstance(start_steps, jax.Array) and not (
        isinstance(start_steps, numbers.Integral)
        and not isinstance(start_steps, bool)
        and start_steps >= 0
    ):
        raise ValueError(f"start_steps must be an integer >= 0, got {start_steps!r}.")
    for attribute, value in (("action_low", low_np), ("action_high", high_np)):
        network_value = getattr(actor, attribute, None)
        if network_value is not None and not np.array_equal(
            np.asarray(network_value, np.float64), value
        ):
            raise ValueError(
                f"The actor's {attribute} {list(network_value)} differs from make_td3's "
                f"{value.tolist()}; build both from the same bounds."
            )
    critic_outputs = getattr(critic, "num_outputs", None)
    if critic_outputs is not None and critic_outputs != representation.num_outputs:
        raise ValueError(
            f"The critic has num_outputs={critic_outputs} but the {representation.name} "
            f"representation needs {representation.num_outputs}."
        )

    low = jnp.asarray(low_np, jnp.float32)
    high = jnp.asarray(high_np, jnp.float32)
    scale = jnp.asarray((high_np - low_np) / 2, jnp.float32)

    def init(key: jax.Array, sample_obs: jax.Array) -> TD3State:
        """sample_obs (obs_dim,) -> a fresh state; targets are copies of the online nets."""
        actor_key, critic_key = jax.random.split(key)
        actor_params = actor.init(actor_key, sample_obs)
        critic_params = critic.init(critic_key, sample_obs, jnp.zeros(action_dim, jnp.float32))
        return TD3State(
            actor_params=actor_params,
            critic_params=critic_params,
            # Own buffers, so that the state can be donated.
            actor_target_params=jax.tree.map(jnp.copy, actor_params),
            critic_target_params=jax.tree.map(jnp.copy, critic_params),
            actor_opt_state=actor_optimizer.init(actor_params),
            critic_opt_state=critic_optimizer.init(critic_params),
            update_count=jnp.zeros((), jnp.int32),
        )

    def act(state: TD3State, obs: jax.Array, key: jax.Array, step, first=None) -> jax.Array:
        """obs (E, obs_dim) -> (E, A) float32: uniform in [low, high] while step <
        start_steps, else clip(pi(s) + N(0, (exploration_noise * scale)^2), low, high)."""
        uniform_key, noise_key = jax.random.split(key)
        pi = actor.apply(state.actor_params, obs)
        low_b, high_b, scale_b = _broadcast(low, pi), _broadcast(high, pi), _broadcast(scale, pi)
        noise = exploration_noise * scale_b * jax.random.normal(noise_key, pi.shape, pi.dtype)
        noisy = jnp.clip(pi + noise, low_b, high_b)
        u = jax.random.uniform(uniform_key, pi.shape, pi.dtype)
        # Clipped: low + u (high - low) may round up past high by an ulp.
        uniform = jnp.clip(low_b + u * (high_b - low_b), low_b, high_b)
        return jnp.where(step < start_steps, uniform, noisy)

    def eval_act(state: TD3State, obs: jax.Array, key: jax.Array, first=None) -> jax.Array:
        """obs (E, obs_dim) -> pi(s) (E, A), without noise (the paper's evaluation)."""
        del key, first
        return actor.apply(state.actor_params, obs)

    def critic_loss_fn(
        critic_params: Params, batch: Transition, out_t: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Sum over the two critics of the batch-mean representation loss; out_t (B, m)."""
        out_tm1 = critic.apply(critic_params, batch.obs_tm1, batch.action_tm1)
        chex.assert_shape(out_tm1, (out_t.shape[0], 2, representation.num_outputs))
        # One (B,) mean per critic, as DQN's loss, rather than a mean over a (B, 2) array:
        # XLA:CPU picks a reduction's order by its shape, and the seed vmap must stay exact.
        loss_1, loss_2 = (
            jnp.mean(
                jax.vmap(representation.loss)(
                    out_tm1[:, k], out_t, batch.reward_t, batch.discount_t
                )
            )
            for k in range(2)
        )
        return loss_1 + loss_2, out_tm1

    def actor_loss_fn(actor_params: Params, critic_params: Params, obs: jax.Array) -> jax.Array:
        """-mean over the batch of Q1(s, pi(s)); Q1 is the representation's Q of critic 1."""
        outputs = critic.apply(critic_params, obs, actor.apply(actor_params, obs))
        return -jnp.mean(representation.q_values(outputs[:, 0]))

    def update(
        state: TD3State,
        batch: Transition,
        key: jax.Array,
        update_count: jax.Array | None = None,
    ) -> tuple[TD3State, dict[str, jax.Array]]:
        """One critic step; on every policy_delay-th update also an actor step and a Polyak
        step of all targets (the others compute neither, nor the actor's loss). batch: obs
        (B, obs_dim), actions (B, A), rewards and discounts (B,). Metrics: loss (critic
        loss), q_mean (mean Q1(s, a)), target_mean, and actor_loss: on actor steps
        policy_delay x (-mean Q1(s, pi(s)) under the new critics, before the step), 0 on the
        others, so that its mean over policy_delay consecutive updates is the actor loss."""
        chex.assert_shape(batch.action_tm1, (batch.reward_t.shape[0], action_dim))
        # Targets: the target actor with clipped smoothing noise, then the target critic
        # with the lower Q at (s', a~).
        pi_t = actor.apply(state.actor_target_params, batch.obs_t)
        noise = jax.random.normal(key, pi_t.shape, pi_t.dtype)
        a_t = target_action(pi_t, noise, low, high, target_noise, target_noise_clip)
        outputs_t = critic.apply(state.critic_target_params, batch.obs_t, a_t)
        q_t = representation.q_values(outputs_t)
        out_t = jax.lax.stop_gradient(lower_critic_outputs(outputs_t, q_t))

        (critic_loss, out_tm1), critic_grads = jax.value_and_grad(critic_loss_fn, has_aux=True)(
            state.critic_params, batch, out_t
        )
        # Gradients are materialised before the optimiser (see `_barrier`).
        critic_grads = _barrier(critic_grads)
        updates, critic_opt_state = critic_optimizer.update(
            critic_grads, state.critic_opt_state, state.critic_params
        )
        critic_params = optax.apply_updates(state.critic_params, updates)

        # As the author's code: the actor step uses the critic just updated, then all
        # targets move towards the new online networks.
        def actor_step():
            actor_loss, grads = jax.value_and_grad(actor_loss_fn)(
                state.actor_params, critic_params, batch.obs_tm1
            )
            grads = _barrier(grads)
            updates, actor_opt_state = actor_optimizer.update(
                grads, state.actor_opt_state, state.actor_params
            )
            actor_params = optax.apply_updates(state.actor_params, updates)
            return (
                actor_params,
                actor_opt_state,
                optax.incremental_update(actor_params, state.actor_target_params, tau),
                optax.incremental_update(critic_params, state.critic_target_params, tau),
                policy_delay * actor_loss,
            )

        def no_actor_step():
            return (
                state.actor_params,
                state.actor_opt_state,
                state.actor_target_params,
                state.critic_target_params,
                jnp.zeros((), jnp.float32),
            )

        # With a shared update_count the predicate is unbatched under the seed vmap and the
        # other updates skip the actor; a per-seed count makes it a select of both branches.
        count = schedule_count(state.update_count, update_count)
        actor_params, actor_opt_state, actor_target, critic_target, actor_loss = jax.lax.cond(
            count % policy_delay == 0, actor_step, no_actor_step
        )
        new_state = TD3State(
            actor_params=actor_params,
            critic_params=critic_params,
            actor_target_params=actor_target,
            critic_target_params=critic_target,
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_opt_state,
            update_count=state.update_count + 1,
        )
        target = batch.reward_t + batch.discount_t * representation.q_values(out_t)
        metrics = {
            "loss": critic_loss,
            "q_mean": jnp.mean(representation.q_values(out_tm1[:, 0])),
            "actor_loss": actor_loss,
            "target_mean": jnp.mean(target),
        }
        return new_state, metrics

    return Agent(init, act, eval_act, update)
