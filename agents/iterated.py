"""Iterated Q-Network (i-QN, Vincent et al., TMLR 2025): K consecutive Bellman iterations
learnt at once, for any value representation (i-DQN is the scalar one).

Online networks Q_1..Q_K are one `QEnsemble` (parameters stacked on a leading axis K, or K
heads on a shared torso). Bootstrap networks: Qbar_0 (the "anchor", frozen between rolling
steps) and Qbar_k = a copy of Q_k, k >= 1, re-synced every D agent steps. Q_k regresses onto
the Bellman target built from Qbar_{k-1}. Every T agent steps the window rolls: Qbar_0 <- Q_1,
Q_k <- Q_{k+1}, the last keeps its weights, and the copies re-sync. With K = 1 this is DQN
with its target copied every T steps.
"""

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents import representations
from agents.dqn import bootstrap_losses, epsilon_greedy
from agents.representations import ValueRepresentation, scalar
from agents.types import Agent, Params, Transition, schedule_count
from networks.ensemble import QEnsemble, apply_ensemble, map_networks


class IteratedState(NamedTuple):
    """Per-seed learner state of i-QN (a pytree)."""

    params: Params  # online Q_1..Q_K
    target_params: Params  # copies of Q_1..Q_K: Qbar_k is network k of it, k = 1..K-1
    anchor_params: Params  # Qbar_0: Q_1 at the last rolling step (a one-network ensemble)
    opt_state: optax.OptState
    update_count: jax.Array  # () int32


def select_networks(params: Params, indices: slice) -> Params:
    """The parameters of networks `indices` of a QEnsemble (shared parts kept)."""
    return map_networks(lambda leaf: leaf[indices], params)


def roll_networks(tree: Params) -> Params:
    """Q_k <- Q_{k+1} along the stacked axis; the last network keeps its weights."""
    return map_networks(lambda leaf: jnp.concatenate([leaf[1:], leaf[-1:]]), tree)


def _crossed(update_count: jax.Array, steps_per_update: int, period: int) -> jax.Array:
    """Whether a multiple of `period` agent steps falls within the agent steps of update
    number `update_count` (the official code checks its periods on every agent step)."""
    before = (update_count - 1) * steps_per_update // period
    return update_count * steps_per_update // period > before


def make_iterated_dqn(
    network: QEnsemble,
    optimizer: optax.GradientTransformation,
    representation: ValueRepresentation | None = None,
    steps_per_update: int = 1,
    target_sync_period: int = 30,
    rolling_period: int = 6_000,
    epsilon: optax.Schedule | float = 0.0,
    eval_epsilon: float = 0.0,
    link_loss_reduction: Literal["sum", "mean"] = "sum",
) -> Agent:
    """Builds i-QN around a K-network ensemble.

    Args:
      network: the online ensemble, observations -> (K, ..., A, m); its `shared_torso` picks
        the layout (independent networks, or the published Atari layout of K heads on one
        torso, Qbar_0 keeping its own frozen torso and head).
      optimizer: applied to the gradient of the sum (or mean, see `link_loss_reduction`)
        over k of each link's batch-mean loss.
      representation: the value representation (scalar MSE when None: i-DQN).
      steps_per_update: agent steps between updates (the periods below are in agent steps).
      target_sync_period: D, agent steps between re-syncs of Qbar_k <- Q_k, k >= 1.
      rolling_period: T, agent steps between rolling steps.
      epsilon: training exploration rate, constant or a function of the agent step.
      eval_epsilon: exploration rate of `eval_act`.
      link_loss_reduction: "sum" of the K links' losses (SPEC.md), or their "mean" (the
        authors' code: the same direction, a gradient K times smaller).

    Acting (training and evaluation) is epsilon-greedy on one of the K online networks drawn
    uniformly for each environment at each step. `q_values` and `return_distribution`
    describe Q_K, the chain's furthest iterate.
    """
    representation = representation or scalar()
    num_networks = network.num_networks
    if num_networks < 1:
        raise ValueError(f"i-QN needs at least one online network, got K={num_networks}.")
    if target_sync_period <= 0 or rolling_period <= 0:
        raise ValueError(
            f"target_sync_period (D={target_sync_period}) and rolling_period "
            f"(T={rolling_period}) must be positive."
        )
    if target_sync_period > rolling_period:
        raise ValueError(
            f"target_sync_period D={target_sync_period} exceeds rolling_period "
            f"T={rolling_period}: the copies would never re-sync between rolling steps."
        )
    if link_loss_reduction not in ("sum", "mean"):
        raise ValueError(f"link_loss_reduction={link_loss_reduction!r}: use 'sum' or 'mean'.")
    reduce_links = jnp.sum if link_loss_reduction == "sum" else jnp.mean
    epsilon_schedule = epsilon if callable(epsilon) else optax.constant_schedule(epsilon)
    single = network.clone(num_networks=1)
    links = network.clone(num_networks=num_networks - 1) if num_networks > 1 else None

    def all_q_values(params: Params, obs: jax.Array) -> jax.Array:
        return representation.q_values(apply_ensemble(network, params, obs))  # (K, ..., A)

    def q_values(params: Params, obs: jax.Array) -> jax.Array:
        return all_q_values(params, obs)[-1]

    def return_distribution(
        params: Params, obs: jax.Array
    ) -> tuple[np.ndarray | jax.Array, jax.Array]:
        outputs = apply_ensemble(network, params, obs)[-1]
        return representations.return_distribution(representation, outputs)

    def init(key: jax.Array, sample_obs: jax.Array) -> IteratedState:
        params = network.init(key, sample_obs)
        return IteratedState(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),
            anchor_params=select_networks(params, slice(0, 1)),
            opt_state=optimizer.init(params),
            update_count=jnp.zeros((), jnp.int32),
        )

    def _act(params: Params, obs: jax.Array, key: jax.Array, rate: jax.Array) -> jax.Array:
        head_key, action_key = jax.random.split(key)
        heads = jax.random.randint(head_key, (obs.shape[0],), 0, num_networks)
        q = all_q_values(params, obs)  # (K, E, A)
        return epsilon_greedy(q[heads, jnp.arange(obs.shape[0])], action_key, rate)

    def act(state: IteratedState, obs: jax.Array, key: jax.Array, step, first=None) -> jax.Array:
        return _act(state.params, obs, key, epsilon_schedule(step))

    def eval_act(state: IteratedState, obs: jax.Array, key: jax.Array, first=None) -> jax.Array:
        return _act(state.params, obs, key, eval_epsilon)

    def bootstrap_outputs(state: IteratedState, obs_t: jax.Array) -> jax.Array:
        """Outputs of Qbar_0..Qbar_{K-1} at obs_t, (K, B, A, m)."""
        anchor = apply_ensemble(single, state.anchor_params, obs_t)
        if links is None:
            return anchor
        copies = select_networks(state.target_params, slice(0, num_networks - 1))
        return jnp.concatenate([anchor, apply_ensemble(links, copies, obs_t)])

    def loss_fn(
        params: Params, out_t: jax.Array, batch: Transition
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        out_tm1 = apply_ensemble(network, params, batch.obs_tm1)
        # One link after another, each computed exactly as DQN's loss.
        per_link = [
            bootstrap_losses(representation, out_tm1[k], out_t[k], batch)
            for k in range(num_networks)
        ]
        link_losses = jnp.stack([jnp.mean(losses) for losses, _, _ in per_link])
        head_q_mean = jnp.stack([jnp.mean(q_taken) for _, q_taken, _ in per_link])
        metrics = {
            "q_mean": jnp.mean(head_q_mean),
            "target_mean": jnp.mean(jnp.stack([jnp.mean(target) for _, _, target in per_link])),
            "link_loss": link_losses,
            "head_q_mean": head_q_mean,
        }
        return reduce_links(link_losses), metrics

    def update(
        state: IteratedState,
        batch: Transition,
        key: jax.Array | None = None,
        update_count: jax.Array | None = None,
    ) -> tuple[IteratedState, dict[str, jax.Array]]:
        del key  # deterministic
        out_t = jax.lax.stop_gradient(bootstrap_outputs(state, batch.obs_t))
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, out_t, batch
        )
        grads = jax.lax.optimization_barrier(grads)  # as DQN's update (see there)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        count = schedule_count(state.update_count, update_count)
        state = IteratedState(
            params, state.target_params, state.anchor_params, opt_state, state.update_count + 1
        )
        return _schedule(state, count), {"loss": loss, **metrics}

    def _schedule(state: IteratedState, count: jax.Array) -> IteratedState:
        """The rolling step and the re-sync due after update number `count`."""
        rolls = _crossed(count, steps_per_update, rolling_period)
        syncs = rolls | _crossed(count, steps_per_update, target_sync_period)

        def roll(state: IteratedState) -> IteratedState:
            return state._replace(
                anchor_params=select_networks(state.params, slice(0, 1)),
                params=roll_networks(state.params),
                opt_state=_roll_moments(state.opt_state, state.params),
            )

        def sync(state: IteratedState) -> IteratedState:
            return state._replace(target_params=state.params)

        state = jax.lax.cond(rolls, roll, lambda state: state, state)
        return jax.lax.cond(syncs, sync, lambda state: state, state)

    return Agent(init, act, eval_act, update, q_values, return_distribution)


def _roll_moments(opt_state: Any, params: Params) -> Any:
    """The optimiser's per-parameter statistics (Adam moments) move with their network.
    Choice: the published schedule does not say what happens to them."""
    structure = jax.tree.structure(params)
    return jax.tree.map(
        lambda node: roll_networks(node) if jax.tree.structure(node) == structure else node,
        opt_state,
        is_leaf=lambda node: jax.tree.structure(node) == structure,
    )
