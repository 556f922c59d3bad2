"""The agent families the runner can train, one registry entry each (DESIGN principle 12).

An entry says what the runner and the CLI need from a family: the config fields only some
families read, the checks of those fields (run before compiling), whether it acts in a
discrete or continuous action space, its exploration schedule for the logs, and the builder
from (config, env spec) to an `Agent`. The runner and the generic validation never name an
agent: adding one is its file in agents/, an entry here, presets and tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from agents import Agent, make_dqn, make_optimizer, make_td3, representations
from agents.dqn import TargetRule
from agents.iterated import make_iterated_dqn
from agents.losses import MD3QN_KERNEL, MMDQN_KERNEL
from agents.representations import ValueRepresentation
from envs import EnvSpec
from experiments.errors import check
from networks import MLP, Actor, NatureCNN, QNetwork, TwinCritic
from networks.ensemble import QEnsemble
from networks.initializers import BiasInit, torch_bias_init, torch_kernel_init, zeros_bias_init

if TYPE_CHECKING:  # the config module imports this registry
    from experiments.config import Config


class Family(NamedTuple):
    """What the runner needs from one agent family."""

    label: str  # the name in messages and --help, e.g. "i-QN"
    summary: str  # one line for --help
    actions: Literal["discrete", "continuous"]
    fields: tuple[str, ...]  # the config fields this family reads and not every family does
    check: Callable[[Config, EnvSpec], None]  # raises ConfigError, before compiling
    build: Callable[[Config, EnvSpec], Agent]
    exploration: Callable[[Config], optax.Schedule] | None  # logged as "epsilon"


def make_representation(config: Config) -> ValueRepresentation:
    """The value representation a config names."""
    c = config
    if c.value_representation == "scalar":
        return representations.scalar(c.loss, c.huber_delta)
    if c.value_representation == "c51":
        return representations.c51(c.v_min, c.v_max, c.num_atoms)
    if c.value_representation == "hl_gauss":
        return representations.hl_gauss(c.v_min, c.v_max, c.num_atoms, c.sigma_ratio)
    if c.value_representation == "quantile":
        return representations.quantile(c.num_atoms, c.kappa)
    return representations.two_hot(c.v_min, c.v_max, c.num_atoms)


def epsilon_schedule(config: Config) -> optax.Schedule:
    """Training exploration rate by agent step: 1 (uniform actions) before learning starts,
    then a linear decay from epsilon_start to epsilon_end over epsilon_decay_steps."""
    c = config
    decay = optax.linear_schedule(
        c.epsilon_start, c.epsilon_end, max(c.epsilon_decay_steps, 1), c.learning_starts
    )
    return lambda step: jnp.where(step < c.learning_starts, 1.0, decay(step))


def make_optimizer_for(config: Config, steps_per_update: int = 0) -> optax.GradientTransformation:
    """The config's optimiser, with the learning rate in its state (`inject_hyperparams`) so
    that a sweep can set it per agent, scaled by the linear decay of
    `learning_rate_decay_steps` if set; `steps_per_update`: agent steps per update of this
    optimiser (default update_period)."""
    optimizer = optax.inject_hyperparams(
        make_optimizer, static_args=("name", "rmsprop_decay", "max_grad_norm")
    )(
        name=config.optimizer,
        learning_rate=config.learning_rate,
        eps=config.optimizer_eps,
        rmsprop_decay=config.rmsprop_decay,
        max_grad_norm=config.max_grad_norm or None,
    )
    if not config.learning_rate_decay_steps:
        return optimizer
    updates = config.learning_rate_decay_steps // (steps_per_update or config.update_period)
    decay = optax.linear_schedule(1.0, 0.0, max(updates, 1))
    return optax.chain(optimizer, optax.scale_by_schedule(decay))


def _initializers(config: Config) -> tuple[Callable, BiasInit]:
    """The kernel and bias initialisers `network_init` names."""
    kernel_init = {
        "lecun_normal": nn.initializers.lecun_normal(),
        "uniform_fan_in": nn.initializers.variance_scaling(1 / math.sqrt(3), "fan_in", "uniform"),
        "xavier_uniform": nn.initializers.xavier_uniform(),
        "xavier_normal": nn.initializers.xavier_normal(),
        "torch_default": torch_kernel_init,
    }[config.network_init]
    bias_init = torch_bias_init if config.network_init == "torch_default" else zeros_bias_init
    return kernel_init, bias_init


def _torso(config: Config) -> MLP | NatureCNN:
    inits = _initializers(config)
    if config.network == "mlp":
        return MLP(config.mlp_hidden, *inits)
    return NatureCNN(config.cnn_padding, *inits)


def _q_network(config: Config, spec: EnvSpec, representation: ValueRepresentation) -> QNetwork:
    return QNetwork(
        _torso(config), spec.num_actions, representation.num_outputs, *_initializers(config)
    )


def _check_reward_vector(config: Config, spec: EnvSpec, label: str) -> None:
    check(
        spec.num_reward_sources >= 1,
        f"{config.env} returns a scalar reward; {label} learns one value per reward source "
        "and needs a multi-reward task (a maze, e.g. ExclusiveMazeVector-v1, or a decomposed "
        "Atari game with --atari-protocol md3qn): or use --agent mmdqn or dqn.",
    )


# DQN -----------------------------------------------------------------------------------


def _check_dqn(config: Config, spec: EnvSpec) -> None:
    _check_target_period(config)


def _check_target_period(config: Config) -> None:
    c = config
    check(
        c.target_update_period % c.update_period == 0,
        f"target_update_period={c.target_update_period} must be a multiple of "
        f"update_period={c.update_period} (targets sync after a whole number of updates).",
    )


def _build_dqn(config: Config, spec: EnvSpec) -> Agent:
    c = config
    representation = make_representation(c)
    return make_dqn(
        _q_network(c, spec, representation),
        make_optimizer_for(c),
        representation,
        target_rule="double" if c.double_q else "max",
        target_update_period=c.target_update_period // c.update_period,
        target_update_tau=c.target_update_tau,
        epsilon=epsilon_schedule(c),
        eval_epsilon=c.eval_epsilon,
    )


# i-QN ----------------------------------------------------------------------------------


def _check_iterated(config: Config, spec: EnvSpec) -> None:
    c = config
    check(c.num_networks >= 1, f"num_networks={c.num_networks}: i-QN needs K >= 1.")
    check(
        c.target_sync_period > 0,
        f"target_sync_period={c.target_sync_period}: D must be positive.",
    )
    check(
        c.target_sync_period <= c.target_update_period,
        f"target_sync_period={c.target_sync_period} exceeds target_update_period="
        f"{c.target_update_period}: i-QN re-syncs its targets (D) between rolling steps "
        "(T), so D <= T.",
    )
    check(not c.double_q, "double_q: i-QN bootstraps with the max; drop --double-q.")
    check(
        c.target_update_tau == 1.0,
        f"target_update_tau={c.target_update_tau}: i-QN copies its networks; use 1.",
    )


def _build_iterated(config: Config, spec: EnvSpec) -> Agent:
    c = config
    representation = make_representation(c)
    ensemble = QEnsemble(
        _torso(c),
        c.num_networks,
        spec.num_actions,
        representation.num_outputs,
        c.shared_torso,
        *_initializers(c),
    )
    return make_iterated_dqn(
        ensemble,
        make_optimizer_for(c),
        representation,
        steps_per_update=c.update_period,
        target_sync_period=c.target_sync_period,
        rolling_period=c.target_update_period,
        link_loss_reduction=c.link_loss_reduction,
        epsilon=epsilon_schedule(c),
        eval_epsilon=c.eval_epsilon,
    )


# TD3 -----------------------------------------------------------------------------------


def _check_td3(config: Config, spec: EnvSpec) -> None:
    c = config
    bounded = np.all(np.isfinite(spec.action_low)) and np.all(np.isfinite(spec.action_high))
    check(
        bounded and np.all(spec.action_low < spec.action_high),
        f"{c.env}'s action bounds [{spec.action_low}, {spec.action_high}] are not finite "
        "with low < high in every dimension; TD3 needs a bounded action space.",
    )
    check(c.policy_delay >= 1, f"policy_delay={c.policy_delay}: use 1 or more.")
    for name in ("target_noise", "target_noise_clip", "exploration_noise"):
        value = getattr(c, name)
        check(value >= 0 and math.isfinite(value), f"{name}={value}: use a number >= 0.")


def _build_td3(config: Config, spec: EnvSpec) -> Agent:
    c = config
    representation = make_representation(c)
    low, high = spec.action_low, spec.action_high
    return make_td3(
        Actor(low, high, c.mlp_hidden),
        TwinCritic(c.mlp_hidden, representation.num_outputs),
        make_optimizer_for(c, c.update_period * c.policy_delay),  # the actor's
        make_optimizer_for(c),
        low,
        high,
        representation,
        policy_delay=c.policy_delay,
        tau=c.target_update_tau,
        target_noise=c.target_noise,
        target_noise_clip=c.target_noise_clip,
        exploration_noise=c.exploration_noise,
        start_steps=c.learning_starts,
    )


# MD3QN, MMDQN, HRA ----------------------------------------------------------------------


def _multi_reward_family(
    label: str,
    summary: str,
    representation: Callable[[Config, EnvSpec], ValueRepresentation],
    greedy_rule: TargetRule,
    needs_reward_vector: bool,
) -> Family:
    """A DQN-style family of MD3QN's paper: a value representation built from the config and
    the task's reward sources, a bootstrap rule for control, and the shared settings
    (policy evaluation, epsilon schedule, network)."""
    particle_fields = () if label == "HRA" else ("num_particles",)

    def check_fields(config: Config, spec: EnvSpec) -> None:
        c = config
        _check_target_period(c)
        if needs_reward_vector:
            _check_reward_vector(c, spec, label)
        if particle_fields:
            check(
                c.num_particles >= 2,
                f"num_particles={c.num_particles}: {label} needs M >= 2 particles (the "
                "paper: 200).",
            )
        check(
            not c.double_q,
            f"double_q: {label} bootstraps from the target network's greedy action; drop "
            "--double-q.",
        )

    def build(config: Config, spec: EnvSpec) -> Agent:
        c = config
        chosen = representation(c, spec)
        return make_dqn(
            _q_network(c, spec, chosen),
            make_optimizer_for(c),
            chosen,
            target_rule="uniform" if c.policy_evaluation else greedy_rule,
            target_update_period=c.target_update_period // c.update_period,
            target_update_tau=c.target_update_tau,
            epsilon=1.0 if c.policy_evaluation else epsilon_schedule(c),
            eval_epsilon=1.0 if c.policy_evaluation else c.eval_epsilon,
            first_action=0 if c.policy_evaluation else None,
        )

    def exploration(config: Config) -> optax.Schedule:
        return (
            optax.constant_schedule(1.0) if config.policy_evaluation else epsilon_schedule(config)
        )

    return Family(
        label=label,
        summary=summary,
        actions="discrete",
        fields=(
            "network",
            "cnn_padding",
            "network_init",
            *particle_fields,
            "policy_evaluation",
            "target_update_period",
            *_EPSILON_FIELDS,
        ),
        check=check_fields,
        build=build,
        exploration=exploration,
    )


_EPSILON_FIELDS = ("epsilon_start", "epsilon_end", "epsilon_decay_steps", "eval_epsilon")

FAMILIES: dict[str, Family] = {
    "dqn": Family(
        label="DQN",
        summary="one online network and its target (double_q for Double DQN)",
        actions="discrete",
        fields=(
            "network",
            "cnn_padding",
            "network_init",
            "double_q",
            "target_update_period",
            *_EPSILON_FIELDS,
        ),
        check=_check_dqn,
        build=_build_dqn,
        exploration=epsilon_schedule,
    ),
    "iterated": Family(
        label="i-QN",
        summary="a chain of num_networks online networks, each regressing onto the Bellman "
        "target of the previous one",
        actions="discrete",
        fields=(
            "network",
            "cnn_padding",
            "network_init",
            "num_networks",
            "shared_torso",
            "link_loss_reduction",
            "target_sync_period",
            "target_update_period",
            *_EPSILON_FIELDS,
        ),
        check=_check_iterated,
        build=_build_iterated,
        exploration=epsilon_schedule,
    ),
    "td3": Family(
        label="TD3",
        summary="an actor and twin critics for continuous actions (MLPs of mlp_hidden)",
        actions="continuous",
        fields=("policy_delay", "target_noise", "target_noise_clip", "exploration_noise"),
        check=_check_td3,
        build=_build_td3,
        exploration=None,
    ),
    "md3qn": _multi_reward_family(
        "MD3QN",
        "the joint return of N reward sources as num_particles particles in R^N per action, "
        "squared-MMD loss (needs a multi-reward task)",
        lambda c, spec: representations.particles(
            c.num_particles, spec.num_reward_sources, MD3QN_KERNEL
        ),
        greedy_rule="max",
        needs_reward_vector=True,
    ),
    "mmdqn": _multi_reward_family(
        "MMDQN",
        "the return as num_particles scalar particles per action, squared-MMD loss (a reward "
        "vector is summed)",
        lambda c, spec: representations.particles(c.num_particles, 1, MMDQN_KERNEL),
        greedy_rule="max",
        needs_reward_vector=False,
    ),
    "hra": _multi_reward_family(
        "HRA",
        "one scalar Q-head per reward source, Q their sum, per-head greedy targets (needs a "
        "multi-reward task)",
        lambda c, spec: representations.heads(spec.num_reward_sources),
        greedy_rule="per_head",
        needs_reward_vector=True,
    ),
}


def build_agent(config: Config, spec: EnvSpec) -> Agent:
    """The agent of a config, built by its family."""
    return FAMILIES[config.agent].build(config, spec)
