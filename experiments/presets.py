"""Named presets: each reproduces one paper's or library's published settings.

Budgets are agent steps per seed (Atari: 1 agent step = 4 frames). Where a choice had to be
made, the preset's docstring says so.
"""

import dataclasses
import difflib
from typing import NamedTuple

from experiments.config import Config, ConfigError


class Preset(NamedTuple):
    config: Config
    description: str


_ATARI_BASE = Config(
    env="Pong-v5",
    seeds=5,  # Dopamine's baseline data has 5 runs per game
    network="nature_cnn",
    eval_epsilon=0.001,
    gamma=0.99,
    n_step=1,
    batch_size=32,
    replay_capacity=1_000_000,
    update_period=4,
    iteration_steps=250_000,
)

DQN_CARTPOLE = Config(
    env="CartPole-v1",
    seeds=8,
    total_steps=30_000,
    iteration_steps=2_500,
    eval_episodes=10,
    eval_epsilon=0.0,
    network="mlp",
    mlp_hidden=(256, 256),
    loss="mse",
    optimizer="adam",
    learning_rate=2.3e-3,
    optimizer_eps=1e-8,
    target_update_period=10,
    epsilon_start=1.0,
    epsilon_end=0.04,
    epsilon_decay_steps=8_000,
    replay_capacity=50_000,
    batch_size=64,
    learning_starts=1_000,
    update_period=2,
)
DQN_CARTPOLE_DOC = """\
DQN on CartPole-v1 in 30k steps: MLP 256-256, Adam 2.3e-3, MSE, an update every 2 steps,
target copied every 10 steps, epsilon 1 -> 0.04 over 8k steps (close to RL Zoo's tuned
CartPole DQN), greedy evaluation of 10 episodes every 2.5k steps. Measured here: 4 of 4
seeds reach 500 by 15-25k steps."""

DQN_ATARI_DOPAMINE = dataclasses.replace(
    _ATARI_BASE,
    atari_protocol="dopamine",
    total_steps=50_000_000,
    eval_episodes=0,
    cnn_padding="SAME",  # Dopamine's Flax network keeps Flax's default padding
    loss="mse",
    optimizer="adam",
    learning_rate=6.25e-5,
    optimizer_eps=1.5e-4,
    target_update_period=8_000,
    epsilon_start=1.0,
    epsilon_end=0.01,
    epsilon_decay_steps=250_000,
    learning_starts=20_000,
)
DQN_ATARI_DOPAMINE_DOC = """\
Dopamine's JAX DQN (dqn.gin) under the Machado protocol: sticky actions 0.25, Adam 6.25e-5
(eps 1.5e-4), MSE, 1M replay, learning starts 20k, update every 4 steps, target copy every
8k steps, epsilon 1 -> 0.01 over 250k steps after learning starts, 200 iterations of 250k
steps (200M frames). The reported score is the mean training return of each iteration, so
no evaluation pool runs (eval epsilon 0.001 if you turn it on). Choices: SAME padding (as
Dopamine's Flax network); envpool's minimum of one no-op frame at reset; episodes in
progress are cut at iteration boundaries."""

DQN_ATARI_NATURE = dataclasses.replace(
    _ATARI_BASE,
    atari_protocol="nature",
    total_steps=12_500_000,
    eval_episodes=30,
    eval_epsilon=0.05,
    cnn_padding="VALID",
    loss="huber",
    huber_delta=1.0,
    optimizer="rmsprop",
    learning_rate=2.5e-4,
    optimizer_eps=0.01,
    rmsprop_decay=0.95,
    target_update_period=40_000,  # 10k updates x 4 agent steps
    epsilon_start=1.0,
    epsilon_end=0.1,
    epsilon_decay_steps=250_000,  # 1M frames
    learning_starts=50_000,
)
DQN_ATARI_NATURE_DOC = """\
Nature DQN (Mnih et al. 2015): deterministic ALE with 1-30 no-ops, life loss ends the
training episode, sign-clipped rewards, VALID padding, centered RMSProp 2.5e-4 (decay 0.95,
min squared gradient 0.01 inside the square root), Huber (TD error clipped to [-1, 1]),
1M replay, learning starts 50k, update every 4 steps, target every 10k updates, epsilon
1 -> 0.1 over 1M frames after learning starts, 50M frames. Evaluation: 30 episodes at
epsilon 0.05 capped at 18k frames, after every 1M-frame iteration (the paper evaluated the
final network; evaluating each iteration is our choice, for learning curves)."""

DQN_ATARI_ZOO = dataclasses.replace(
    _ATARI_BASE,
    atari_protocol="zoo",
    total_steps=50_000_000,
    eval_episodes=30,
    eval_epsilon=0.05,
    cnn_padding="VALID",
    loss="huber",
    huber_delta=1.0 / 32,
    optimizer="rmsprop",
    learning_rate=2.5e-4,
    optimizer_eps=0.01 / 32**2,
    rmsprop_decay=0.95,
    max_grad_norm=10.0,
    target_update_period=40_000,
    epsilon_start=1.0,
    epsilon_end=0.1,
    epsilon_decay_steps=1_000_000,  # 2% of 200M frames
    learning_starts=50_000,
)
DQN_ATARI_ZOO_DOC = """\
DQN Zoo's DQN (run_atari.py flags; unverified against the source here): 1-30 no-ops, no
sticky actions, life loss gives discount 0 without ending the episode, rewards clipped to
[-1, 1], centered RMSProp 2.5e-4 with eps 0.01/32^2, TD-error gradient clipped to 1/32 (the
gradient of Huber with delta 1/32), global gradient norm 10, learning starts 50k, update
every 4 steps, target every 40k steps, epsilon 1 -> 0.1 over 1M steps, 200 iterations of
1M frames. Choice: evaluation runs 30 episodes at epsilon 0.05 per iteration (DQN Zoo
evaluates 500k frames, averaging the episodes that finish)."""

PRESETS: dict[str, Preset] = {
    "dqn_cartpole": Preset(DQN_CARTPOLE, DQN_CARTPOLE_DOC),
    "dqn_atari_dopamine": Preset(DQN_ATARI_DOPAMINE, DQN_ATARI_DOPAMINE_DOC),
    "dqn_atari_nature": Preset(DQN_ATARI_NATURE, DQN_ATARI_NATURE_DOC),
    "dqn_atari_zoo": Preset(DQN_ATARI_ZOO, DQN_ATARI_ZOO_DOC),
}
DEFAULT_PRESET = "dqn_cartpole"


def get_preset(name: str) -> Config:
    """The preset's config; unknown names raise ConfigError suggesting close ones."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"Unknown preset {name!r}.{hint} Presets: {', '.join(PRESETS)}.")
    return PRESETS[name].config
