"""Named presets: each reproduces one paper's or library's published settings.

Budgets are agent steps per seed (Atari: 1 agent step = 4 frames). Where a choice had to be
made, the preset's docstring says so, and its last line ("Source: ...") names the public
configuration each setting comes from (repository@commit and file, or the paper) and every
deviation from it.
"""

import dataclasses
import difflib
from typing import Any, NamedTuple

from experiments.config import Config, ConfigError


class Preset(NamedTuple):
    """A named config. `env_overrides` maps an environment-name prefix to fields that the
    paper set per task (e.g. TD3's start steps); they apply when the preset is built for a
    matching --env, before any field given on the command line."""

    config: Config
    description: str
    env_overrides: dict[str, dict[str, Any]] = {}


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
    total_steps=50_000,
    iteration_steps=2_500,
    eval_episodes=10,
    eval_epsilon=0.0,
    network="mlp",
    mlp_hidden=(256, 256),
    loss="mse",
    optimizer="adam",
    learning_rate=2.3e-3,
    optimizer_eps=1e-8,
    learning_rate_decay_steps=49_000,  # to 0 at the end of the budget
    target_update_period=100,
    epsilon_start=1.0,
    epsilon_end=0.04,
    epsilon_decay_steps=8_000,
    replay_capacity=50_000,
    batch_size=64,
    learning_starts=1_000,
    update_period=2,
)
DQN_CARTPOLE_DOC = """\
DQN on CartPole-v1 in 50k steps: MLP 256-256, Adam 2.3e-3 decayed linearly to 0 from
learning starts to the end of the budget, MSE, an update every 2 steps, target copied every
100 steps, epsilon 1 -> 0.04 over 8k steps, greedy evaluation of 10 episodes every 2.5k
steps. The decay and the 100-step target period keep the policy a user keeps: with a copy
every 10 steps and a constant rate the Q-values diverged (10^3-10^4 against the 99.3 a
discounted CartPole return can reach) and 3 of 8 seeds ended below 400 after 30k steps.
Measured here (seeds 0-7): final evaluations 500, 500, 500, 330, 500, 483, 500, 500.
Source: DLR-RM/rl-baselines3-zoo@22e3ff2 hyperparams/dqn.yml (CartPole-v1) run by SB3 DQN;
deviations: MSE instead of SB3's Huber (Huber with delta 1 diverged here), no gradient clip
(SB3 10), target every 100 steps (Zoo 10, which SB3 applies between bursts of 128
updates), the learning-rate decay, 1 update every 2 steps (Zoo 128 every 256), 50k replay,
epsilon decay counted from learning_starts, 10 greedy evaluation episodes every 2.5k
steps."""

DQN_ATARI_DOPAMINE = dataclasses.replace(
    _ATARI_BASE,
    atari_protocol="dopamine",
    total_steps=50_000_000,
    eval_episodes=0,
    cnn_padding="SAME",  # Dopamine's Flax network keeps Flax's default padding
    network_init="xavier_uniform",
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
no evaluation pool runs (eval epsilon 0.001 if you turn it on). Network as Dopamine's Flax
NatureDQNNetwork: SAME padding, xavier_uniform kernels, zero biases. Choices: envpool's
minimum of one no-op frame at reset; episodes in progress are cut at iteration boundaries.
Source: google/dopamine@5873f54 dopamine/jax/agents/dqn/configs/dqn.gin (with JaxDQNAgent,
NatureDQNNetwork and atari_lib defaults); deviations: episodes cut at iteration boundaries,
one no-op frame at reset (envpool's minimum)."""

DQN_ATARI_NATURE = dataclasses.replace(
    _ATARI_BASE,
    atari_protocol="nature",
    total_steps=12_500_000,
    eval_episodes=30,
    eval_epsilon=0.05,
    cnn_padding="VALID",
    network_init="torch_default",
    loss="huber",
    huber_delta=1.0,
    optimizer="rmsprop",
    learning_rate=2.5e-4,
    optimizer_eps=0.01 / 32**2,  # the code's 0.01 on the batch-summed gradient
    rmsprop_decay=0.95,
    target_update_period=40_000,  # 10k updates x 4 agent steps
    epsilon_start=1.0,
    epsilon_end=0.1,
    epsilon_decay_steps=250_000,  # 1M frames
    learning_starts=50_000,
)
DQN_ATARI_NATURE_DOC = """\
Nature DQN (Mnih et al. 2015): deterministic ALE with 1-30 no-ops, life loss ends the
training episode, sign-clipped rewards, VALID padding, Torch7's default initialisation as
the released code (U(+-1/sqrt(fan_in)) weights and biases), centered RMSProp 2.5e-4 (decay
0.95, min squared gradient inside the square root), Huber (TD error clipped to [-1, 1]),
1M replay, learning starts 50k, update every 4 steps, target every 10k updates, epsilon
1 -> 0.1 over 1M frames after learning starts, 50M frames. RMSProp's eps is 0.01/32^2: the
released code adds 0.01 to the statistics of the batch-summed gradient, and this library's
loss is the batch mean, so the same update needs 0.01/32^2 (DQN Zoo uses the same value).
The target period and the epsilon decay follow the paper's table as SPEC.md reads it (10k
updates = 40k agent steps, 1M frames = 250k agent steps); the released code, Dopamine's
dqn_nature.gin and DQN Zoo count both in agent steps (10k and 1M), and the code runs 200M
frames where the paper (and this preset) says 50M. Evaluation: 30 episodes at epsilon 0.05
capped at 18k frames, after every 1M-frame iteration (the paper evaluated the final
network; evaluating each iteration is our choice, for learning curves).
Source: Mnih et al. 2015 (Methods, Extended Data Table 1) and DeepMind's released DQN 3.0
code (mirror kuz/DeepMind-Atari-Deep-Q-Learner@54978fa run_gpu, dqn/NeuralQLearner.lua);
deviations: the target period and the epsilon decay in the table's units (the code's
period is 4 times shorter and its decay 4 times longer); 50M frames (the code: 200M);
evaluation after every iteration; greedy ties go to the lowest action (the code draws among
them); the first convolution unpadded (the code pads it by one pixel, to the same 20x20
output)."""

DQN_ATARI_ZOO = dataclasses.replace(
    _ATARI_BASE,
    atari_protocol="zoo",
    total_steps=50_000_000,
    eval_episodes=30,
    eval_epsilon=0.05,
    cnn_padding="VALID",
    network_init="torch_default",
    loss="huber",
    huber_delta=1.0,
    optimizer="rmsprop",
    learning_rate=2.5e-4,
    optimizer_eps=0.01 / 32**2,
    rmsprop_decay=0.95,
    target_update_period=10_000,  # 40k frames
    epsilon_start=1.0,
    epsilon_end=0.1,
    epsilon_decay_steps=1_000_000,  # 2% of 200M frames
    learning_starts=50_000,
)
DQN_ATARI_ZOO_DOC = """\
DQN Zoo's DQN (dqn/run_atari.py, whose flags count frames: a quarter as many agent steps):
1-30 no-ops, no sticky actions, life loss gives discount 0 without ending the episode,
rewards clipped to [-1, 1], VALID padding, U(+-1/sqrt(fan_in)) weights and biases (DQN Zoo's
legacy initialiser), centered RMSProp 2.5e-4 with eps 0.01/32^2 inside the square root,
Huber with delta 1 (DQN Zoo clips the gradient of the batch-mean loss at 1/32 = 1/batch,
which is the TD error clipped at 1 per transition), no global-norm clip (only DQN Zoo's
C51, QR-DQN and Rainbow scripts have one), learning starts 50k, update every 4 steps,
target every 10k steps (the flag's 40k frames), epsilon 1 -> 0.1 over 1M steps after
learning starts, 200 iterations of 1M frames. Choice: evaluation runs 30 episodes at
epsilon 0.05 per iteration (DQN Zoo evaluates 500k frames, averaging the episodes that
finish).
Source: google-deepmind/dqn_zoo@45061f4 dqn_zoo/dqn/run_atari.py with dqn/agent.py,
networks.py, processors.py, gym_atari.py; deviations: 30 evaluation episodes per iteration;
envpool's palette greyscale and cv2 bilinear resize (DQN Zoo: RGB luminance, PIL bilinear);
no evaluation-only iteration 0."""

_CATEGORICAL_CARTPOLE = dataclasses.replace(
    DQN_CARTPOLE, num_atoms=51, v_min=0.0, v_max=100.0, sigma_ratio=0.75
)
_CARTPOLE_SUPPORT_DOC = """The support [0, 100] holds every discounted CartPole return
(rewards of 1 per step, gamma 0.99: at most 99.3)."""

C51_CARTPOLE = dataclasses.replace(_CATEGORICAL_CARTPOLE, value_representation="c51")
C51_CARTPOLE_DOC = f"""\
C51 on CartPole-v1: dqn_cartpole's settings with a 51-atom categorical head.
{_CARTPOLE_SUPPORT_DOC} Measured here (seeds 0-7): final evaluations 500, 500, 500, 236, 500,
500, 500, 500.
Source: dqn_cartpole (RL Zoo CartPole-v1) plus this project's own head settings, chosen and
measured here; no public configuration."""

HLGAUSS_CARTPOLE = dataclasses.replace(_CATEGORICAL_CARTPOLE, value_representation="hl_gauss")
HLGAUSS_CARTPOLE_DOC = f"""\
HL-Gauss on CartPole-v1: dqn_cartpole's settings with 51 bins, sigma 0.75 bin widths.
{_CARTPOLE_SUPPORT_DOC} Measured here (seeds 0-7): final evaluations 500, 500, 327, 500, 500,
500, 500, 500.
Source: dqn_cartpole (RL Zoo CartPole-v1) plus this project's own head settings, chosen and
measured here; no public configuration."""

TWOHOT_CARTPOLE = dataclasses.replace(_CATEGORICAL_CARTPOLE, value_representation="two_hot")
TWOHOT_CARTPOLE_DOC = f"""\
Two-hot on CartPole-v1: dqn_cartpole's settings with 51 atoms.
{_CARTPOLE_SUPPORT_DOC} Measured here (seeds 0-7): final evaluations 500 on all 8 (after 30k
steps, 5 of 8 were at 400 or more).
Source: dqn_cartpole (RL Zoo CartPole-v1) plus this project's own head settings, chosen and
measured here; no public configuration."""

QRDQN_CARTPOLE = dataclasses.replace(
    DQN_CARTPOLE, value_representation="quantile", num_atoms=51, kappa=1.0
)
QRDQN_CARTPOLE_DOC = """\
QR-DQN on CartPole-v1: dqn_cartpole's settings with 51 quantiles per action and the
quantile Huber loss with kappa 1. With dqn_cartpole's former target copy every 10 steps the
Q-values diverged (beyond 1e4 within 2.5k steps, as they do for the scalar Huber loss).
Measured here (seeds 0-7): final evaluations 500, 500, 470, 492, 500, 216, 500, 488.
Source: dqn_cartpole (RL Zoo CartPole-v1) plus this project's own head settings, chosen and
measured here; no public configuration."""

C51_ATARI_DOPAMINE = dataclasses.replace(
    DQN_ATARI_DOPAMINE,
    value_representation="c51",
    num_atoms=51,
    v_min=-10.0,
    v_max=10.0,
    learning_rate=2.5e-4,
    optimizer_eps=3.125e-4,  # 0.01 / 32
    network_init="uniform_fan_in",  # Dopamine's RainbowNetwork
)
C51_ATARI_DOPAMINE_DOC = """\
Dopamine's JAX C51 (c51.gin, a Rainbow agent with uniform replay and 1-step returns) under
the Machado protocol: 51 atoms on [-10, 10], greedy next action from the target network,
Adam 2.5e-4 (eps 0.01/32), otherwise as dqn_atari_dopamine (1M replay, learning starts 20k,
update every 4 steps, target every 8k steps, epsilon 1 -> 0.01 over 250k steps, 200
iterations of 250k steps, training returns reported). Network as Dopamine's Flax
RainbowNetwork: SAME padding, VarianceScaling(1/sqrt(3), fan_in, uniform) kernels, zero
biases. Same choices as dqn_atari_dopamine (one no-op frame at reset, episodes cut at
iteration boundaries).
Source: google/dopamine@5873f54 dopamine/jax/agents/rainbow/configs/c51.gin (with
JaxRainbowAgent and RainbowNetwork defaults); deviations: episodes cut at iteration
boundaries, one no-op frame at reset (envpool's minimum)."""

C51_ATARI_PAPER = dataclasses.replace(
    DQN_ATARI_ZOO,
    value_representation="c51",
    num_atoms=51,
    v_min=-10.0,
    v_max=10.0,
    optimizer="adam",
    learning_rate=2.5e-4,
    optimizer_eps=3.125e-4,  # 0.01 / 32
    max_grad_norm=0.0,  # c51_icml.gin has no clip; DQN Zoo's c51 clips at 10
    epsilon_end=0.01,
    eval_epsilon=0.001,
)
C51_ATARI_PAPER_DOC = """\
C51 (Bellemare, Dabney, Munos 2017): 51 atoms on [-10, 10], Adam 2.5e-4 (eps 0.01/32),
the rest as the paper's DQN setup: 1-30 no-ops, rewards clipped to [-1, 1], 1M replay,
learning starts 50k, update every 4 steps, target every 10k agent steps (c51_icml.gin;
DQN Zoo's c51: 40k frames), epsilon 1 -> 0.01 over 1M steps, evaluation at epsilon 0.001
after every 1M-frame iteration, 200M frames. No gradient-norm clip: c51_icml.gin, Dopamine's
record of the paper's settings, has none (DQN Zoo's c51 clips the global norm at 10).
Choices (the paper does not fix them): DQN Zoo's protocol (life loss gives discount 0) and
network (VALID padding, U(+-1/sqrt(fan_in)) weights and biases), 30 evaluation episodes.
Source: Bellemare et al. 2017 as encoded by google/dopamine@5873f54
dopamine/tf/agents/rainbow/configs/c51_icml.gin and google-deepmind/dqn_zoo@45061f4
dqn_zoo/c51/run_atari.py; deviations: DQN Zoo's protocol (c51_icml: no no-ops, life loss
terminal), no gradient-norm clip (DQN Zoo: 10), 30 evaluation episodes per iteration."""

HLGAUSS_ATARI = dataclasses.replace(
    DQN_ATARI_DOPAMINE,
    value_representation="hl_gauss",
    num_atoms=51,
    v_min=-10.0,
    v_max=10.0,
    sigma_ratio=0.75,
)
HLGAUSS_ATARI_DOC = """\
HL-Gauss (Farebrother et al. 2024, online Atari; settings unverified against the paper's
text): dqn_atari_dopamine (Adam 6.25e-5, eps 1.5e-4, Machado protocol) with the head
swapped for 51 bins on [-10, 10], sigma 0.75 bin widths, cross-entropy to the clipped
scalar target's Gaussian-smoothed histogram. The network is dqn_atari_dopamine's, its
xavier_uniform initialisation included (the authors' network code is not public).
Source: Farebrother et al. 2024 (its appendix is not available offline) on
google/dopamine@5873f54 dopamine/jax/agents/dqn/configs/dqn.gin; 51 bins on [-10, 10] and
sigma 0.75 bin widths match the authors' public Dopamine offline agent
(dopamine/labs/offline_rl/jax/offline_classy_cql_agent.py); deviations: as
dqn_atari_dopamine."""

TWOHOT_ATARI = dataclasses.replace(HLGAUSS_ATARI, value_representation="two_hot")
TWOHOT_ATARI_DOC = """\
Two-hot (the Stop-Regressing baseline): hlgauss_atari with the scalar target split between
its two neighbouring atoms instead of smoothed. Choice: 51 atoms on [-10, 10] including the
ends (HL-Gauss puts its 51 bin centres inside the range), so every clipped target is
represented exactly.
Source: as hlgauss_atari (the authors' two-hot support convention is not public);
deviations: as dqn_atari_dopamine."""

QRDQN_ATARI = dataclasses.replace(
    DQN_ATARI_DOPAMINE,
    value_representation="quantile",
    num_atoms=200,
    kappa=1.0,
    n_step=3,
    network_init="uniform_fan_in",  # Dopamine's QuantileNetwork initialiser
    learning_rate=5e-5,
    optimizer_eps=3.125e-4,  # 0.01 / 32
)
QRDQN_ATARI_DOC = """\
QR-DQN as Dopamine's JAX quantile agent (quantile.gin) under the Machado protocol: N = 200
quantiles at the levels (2i + 1) / 400, quantile Huber loss with kappa 1 (summed over the
quantiles, averaged over the target samples), greedy next action from the target network's
mean (no double Q), 3-step returns, Adam 5e-5 (eps 0.01/32), 1M replay, batch 32, learning
starts 20k, update every 4 steps, target copy every 8k steps, epsilon 1 -> 0.01 over 250k
steps after learning starts, 200 iterations of 250k steps, training returns reported (eval
epsilon 0.001 if turned on). Network: the Nature CNN with SAME padding and the initialiser
of Dopamine's QuantileNetwork, VarianceScaling(1/sqrt(3), fan_in, uniform) with zero biases
(network_init uniform_fan_in; Dopamine's DQN network uses Xavier uniform).
Source: google/dopamine@5873f5494ee0c2d7c016d0ab2ad530354fec59d0
dopamine/jax/agents/quantile/configs/quantile.gin and quantile_agent.py; deviations: uniform
replay, where Dopamine samples in proportion to the square root of each transition's loss
(prioritized, without importance weights in the gradient: it applies them only to the
logged loss); the loss is divided by kappa as in the paper (Dopamine does not: the same at
kappa 1); and dqn_atari_dopamine's choices (one no-op frame at reset, episodes cut at
iteration boundaries)."""

IDQN_ATARI = dataclasses.replace(
    DQN_ATARI_DOPAMINE,
    agent="iterated",
    num_networks=5,
    shared_torso=True,
    target_sync_period=30,
    target_update_period=6_000,  # T, the rolling period
    link_loss_reduction="mean",
    network_init="xavier_normal",
)
IDQN_ATARI_DOC = """\
i-DQN (Vincent et al., TMLR 2025) on Atari: K = 5 online heads on one shared Nature-CNN
torso plus a frozen torso and head for Qbar_0, target copies re-synced every D = 30 agent
steps, a rolling step every T = 6000 agent steps, Adam 6.25e-5 (eps 1.5e-4), MSE averaged
over the K links as the authors' code (SPEC.md writes the sum: the same direction, a
gradient K times larger, which matters through Adam's eps), VarianceScaling(1, fan_avg,
truncated_normal) kernels with zero biases (the authors' "dqn" initialiser), and otherwise
dqn_atari_dopamine (Machado protocol, SAME padding, 1M replay, learning starts 20k, an
update every 4 steps, epsilon 1 -> 0.01 over 250k steps, training returns reported). D and
T count agent steps as in the official loop, so a sync lands after the update whose 4
agent steps hold a multiple of 30.
Source: theovincent/i-DQN@d92ed3d (branch experiments) experiments/atari/parameters.json,
K = 5 from its README; deviations: the shared torso includes the dense 512 layer and the
heads are linear (the authors share only the three convolutions, each head has its own
dense 512 layer); the behaviour head is drawn per environment among the K online heads
(the authors' shared-torso code draws among all K + 1, the frozen head included); Adam's
moments move with their network at a rolling step (the authors' stay in place); the 20k
random steps count inside the 50M-step budget (the authors collect them first); episodes
cut at iteration boundaries; one no-op frame at reset."""

IDQN_CARTPOLE = dataclasses.replace(
    DQN_CARTPOLE,
    agent="iterated",
    num_networks=3,
    shared_torso=False,
    target_sync_period=10,
    target_update_period=100,
)
IDQN_CARTPOLE_DOC = """\
i-DQN on CartPole-v1: dqn_cartpole's settings with K = 3 independent MLPs, target copies
re-synced every 10 steps and a rolling step every 100 (dqn_cartpole's target period).
Measured here (seeds 0-7): final evaluations 500, 500, 500, 500, 500, 500, 500, 443 (with
a constant learning rate, a rolling step every 30 or 200 steps reached 400 on only 2-3 of 4
seeds).
Source: dqn_cartpole (RL Zoo CartPole-v1) plus this project's own i-QN settings, chosen and
measured here; no public configuration."""

IHLGAUSS_CARTPOLE = dataclasses.replace(
    IDQN_CARTPOLE,
    value_representation="hl_gauss",
    num_atoms=51,
    v_min=0.0,
    v_max=100.0,
    sigma_ratio=0.75,
)
IHLGAUSS_CARTPOLE_DOC = f"""\
i-HL-Gauss on CartPole-v1 (this project's extension): idqn_cartpole with 51 HL-Gauss bins,
sigma 0.75 bin widths. {_CARTPOLE_SUPPORT_DOC} Measured here (seeds 0-7): final evaluations
500, 398, 500, 500, 500, 485, 500, 500.
Source: dqn_cartpole (RL Zoo CartPole-v1) plus this project's own i-QN and head settings,
chosen and measured here; no public configuration."""

TD3_MUJOCO_PAPER = Config(
    env="HalfCheetah-v4",
    agent="td3",
    seeds=8,
    total_steps=1_000_000,
    iteration_steps=5_000,
    eval_episodes=10,
    network="mlp",
    mlp_hidden=(400, 300),
    optimizer="adam",
    learning_rate=1e-3,
    optimizer_eps=1e-8,
    gamma=0.99,
    n_step=1,
    target_update_tau=0.005,
    policy_delay=2,
    target_noise=0.2,
    target_noise_clip=0.5,
    exploration_noise=0.1,
    replay_capacity=1_000_000,
    batch_size=100,
    learning_starts=1_000,
    update_period=1,
)
_TD3_PAPER_OVERRIDES = {
    "HalfCheetah": {"learning_starts": 10_000},
    "Ant": {"learning_starts": 10_000},
}
TD3_MUJOCO_PAPER_DOC = """\
TD3 as in the paper (Fujimoto et al. 2018): actor and twin critics 400-300 ReLU, Adam 1e-3
for both, batch 100, gamma 0.99, tau 0.005, policy delay 2, target smoothing noise 0.2
clipped at 0.5, exploration noise 0.1, uniform random actions for the first 10k steps on
HalfCheetah and Ant and 1k on other tasks, 1M replay, 1M steps; evaluation every 5000
steps, 10 episodes without noise on a separate pool. Choices: one update per environment
step once the random steps end, as the author's current code (the 2018 code ran, at the
end of every episode from the first on, as many updates as the episode had steps); noise
in units of the action bound (the 2018 code's was absolute: the same wherever the bound is
1, i.e. except InvertedPendulum); PyTorch's default initialisation as the author's code;
Adam eps 1e-8 (PyTorch's default); MuJoCo v4 tasks (the paper used v1); 8 seeds (the
author's script ran 10).
Source: Fujimoto et al. 2018 with sfujim/TD3@bc98e62 (camera-ready) main.py, TD3.py,
run_experiments.sh; deviations: one update per step after the start steps, noise scaled by
the action bound, 8 seeds, MuJoCo v4, a separate evaluation pool (all above)."""

TD3_MUJOCO = dataclasses.replace(
    TD3_MUJOCO_PAPER,
    mlp_hidden=(256, 256),
    learning_rate=3e-4,
    batch_size=256,
    learning_starts=25_000,
)
_TD3_SHORT_START = {"learning_starts": 1_000}
_TD3_OVERRIDES = {
    "InvertedPendulum": _TD3_SHORT_START,
    "InvertedDoublePendulum": _TD3_SHORT_START,
    "Reacher": _TD3_SHORT_START,
}
TD3_MUJOCO_DOC = """\
TD3 with the author's later defaults (github.com/sfujim/TD3): 256-256 networks, Adam 3e-4,
batch 256, 25k start steps (1k for InvertedPendulum, InvertedDoublePendulum and Reacher, as
in the author's run scripts); otherwise td3_mujoco_paper.
Source: sfujim/TD3@34770cc main.py, TD3.py, run_experiments.sh; deviations: 8 seeds (10),
MuJoCo v4 (v3/v2)."""

MD3QN_ATARI = dataclasses.replace(
    _ATARI_BASE,
    env="MsPacman-v5",
    seeds=3,  # the paper's curves average 3 seeds
    agent="md3qn",
    atari_protocol="md3qn",
    cnn_padding="SAME",  # the authors' TF network pads SAME
    network_init="uniform_fan_in",
    num_particles=200,
    optimizer="adam",
    learning_rate=5e-5,
    optimizer_eps=3.125e-4,  # 0.01 / 32
    target_update_period=10_000,
    learning_starts=50_000,
    epsilon_start=1.0,
    epsilon_end=0.01,
    epsilon_decay_steps=1_000_000,
    eval_epsilon=0.001,
    total_steps=50_000_000,  # 200 iterations of 250k agent steps
    eval_episodes=10,  # Dopamine's evaluation phase is 125k steps; a count of episodes here
)
MD3QN_ATARI_DOC = """\
MD3QN (Zhang et al. 2021, the authors' mmdqn_nd.gin) on one of the paper's six decomposed
games, AirRaid, Asteroids, Gopher, MsPacman, Pong, UpNDown (pick with --env, e.g. Pong-v5):
the md3qn protocol (no sticky actions, life loss terminal for the agent, rewards split into
sources and clipped per source), M = 200 particles in R^N, the 17-bandwidth kernel, Adam
5e-5 (eps 0.01/32), 1M replay, batch 32, learning starts 50k, update every 4 steps, target
copy every 10k steps, epsilon 1 -> 0.01 over 1M steps, 200 iterations of 250k steps, eval
epsilon 0.001 on the raw game score. Choices: envpool's minimum of one no-op frame at
reset; 10 evaluation episodes per iteration (Dopamine evaluates for 125k steps); SAME
padding and the TF uniform fan-in initialiser of the authors' network; greedy ties go to the
lowest action (the authors draw among tied actions; float outputs practically never tie).
Source: zpschang/MD3QN@c521d32 dopamine/agents/mmdqn_nd/configs/mmdqn_nd.gin with the
README's Fig. 3 options (scripts/batch_general.py: icml_setting, network v21, bandwidth v3,
kscale v11); deviations: 10 evaluation episodes per iteration (125k steps), one no-op frame
at reset, greedy ties to the lowest action, episodes cut at iteration boundaries."""

HRA_ATARI = dataclasses.replace(MD3QN_ATARI, agent="hra")
HRA_ATARI_DOC = """\
HRA (van Seijen et al. 2017) as the MD3QN paper's baseline: one scalar Q-head per reward
source on the Nature CNN, Q their sum, each head regressed (squared error) onto its own
greedy target. The authors' HRA code is not public: the MD3QN schedule, protocol and Adam
settings of md3qn_atari are used, as the SPEC prescribes.
Source: none public (MD3QN's scripts/HRArun.sh names dopamine/agents/hadqn/configs/hra.gin,
absent from zpschang/MD3QN@c521d32); md3qn_atari's settings, as above."""

MMDQN_ATARI = dataclasses.replace(MD3QN_ATARI, agent="mmdqn")
MMDQN_ATARI_DOC = """\
MMDQN (Nguyen et al. 2021) as the MD3QN code runs it: M = 200 scalar particles, kernel sum
over bandwidths 1..10, trained on the sum of the clipped reward components (one step may be
worth up to N), otherwise md3qn_atari (same protocol, optimiser and schedule).
Source: zpschang/MD3QN@c521d32 dopamine/agents/mmdqn/configs/mmdqn.gin run by
scripts/MMDQNrun.sh with the README's icml_setting; deviations: as md3qn_atari."""

MD3QN_MAZE_EVAL = dataclasses.replace(
    MD3QN_ATARI,
    env="ExclusiveMaze-v1",
    seeds=1,
    policy_evaluation=True,
    learning_starts=20_000,
    total_steps=2_500_000,  # 10 iterations of 250k agent steps
    eval_episodes=0,
)
MD3QN_MAZE_EVAL_DOC = """\
MD3QN's policy-evaluation experiment (the paper's Fig. 2; the authors' mmdqn_nd_ev.gin) on
a maze (--env ExclusiveMaze-v1, InclusiveMaze-v2 or MultiRewardMaze-v0): behaviour action 0
first, then uniform random actions; each transition bootstraps from one uniformly random
action; M = 200 particles at (start, action 0) are compared with Monte-Carlo joint returns
(experiments.analysis.joint_return_figure). Nature CNN on the 84x84 RGB maze, Adam 5e-5 (eps
0.01/32), 1M replay, batch 32, learning starts 20k, update every 4 steps, target every 10k,
10 iterations of 250k steps. The authors' mmdqn_nd_ev.gin cannot run as published (it
imports mmdqn_nd_ev_agent, a module missing from the repository); the README's runnable
route (mmdqn_nd.gin with evaluation_setting=True and maze_env=True) uses learning starts
50k and 20 iterations. Choice: the _ev gin's 20k and 10 iterations, the authors' own
settings for this experiment (the paper draft trained 5 iterations).
Source: zpschang/MD3QN@c521d32 dopamine/agents/mmdqn_nd/configs/mmdqn_nd_ev.gin and the
README's Fig. 2 route (mmdqn_nd.gin); deviations: learning starts 20k and 10 iterations
(the README's route: 50k and 20), as the _ev gin."""

MD3QN_MAZE_EVAL_SMALL = dataclasses.replace(
    MD3QN_MAZE_EVAL,
    env="ExclusiveMazeVector-v1",
    seeds=2,
    network="mlp",
    mlp_hidden=(128, 128),
    num_particles=32,
    learning_rate=1e-3,
    replay_capacity=50_000,
    learning_starts=1_000,
    update_period=2,
    target_update_period=200,
    total_steps=10_000,
    iteration_steps=5_000,
)
MD3QN_MAZE_EVAL_SMALL_DOC = """\
md3qn_maze_eval at CI size: the vector observation (agent cell and visited cells), an MLP
128-128, M = 32 particles, Adam 1e-3, 50k replay, learning starts 1k, an update every 2
steps, target every 200 steps, 10k steps (about 70 s on the 2-core CPU box). Its particles
at (start, action 0) match the Monte-Carlo joint returns of the uniform policy on
ExclusiveMazeVector-v1 and InclusiveMazeVector-v2 (tests/test_multi_reward_learning.py).
Source: this project (CI-size, measured here), derived from md3qn_maze_eval on the MD3QN
maze tasks (zpschang/MD3QN@c521d32 dopamine/environment/maze.py)."""

MD3QN_MAZE = Config(
    env="InclusiveMazeVector-v2",
    seeds=4,
    agent="md3qn",
    network="mlp",
    mlp_hidden=(64, 64),
    num_particles=32,
    gamma=0.9,  # an illegal move keeps the state, so it trails the best move by (1 - gamma) V
    optimizer="adam",
    learning_rate=1e-3,
    replay_capacity=50_000,
    batch_size=32,
    learning_starts=1_000,
    update_period=1,
    target_update_period=100,
    epsilon_start=1.0,
    epsilon_end=0.05,
    epsilon_decay_steps=2_000,
    eval_epsilon=0.05,
    eval_episodes=20,
    total_steps=4_000,
    iteration_steps=2_000,
)
MD3QN_MAZE_DOC = """\
MD3QN controlling a maze at CI size (InclusiveMazeVector-v2: collect the most reward before
leaving): vector observation, MLP 64-64, M = 32 particles, Adam 1e-3, gamma 0.9, an update
every step, target every 100 steps, epsilon 1 -> 0.05 over 2k steps, 4k steps, 20
evaluation episodes at epsilon 0.05. Measured here: MD3QN and HRA at 2.8-3.3 on all 4
seeds from 2k steps on, with a 4k-step decay (the uniform policy averages 1.57). Choices:
gamma 0.9, because an illegal move leaves the state unchanged and so trails the best move by
only (1 - gamma) V (at 0.99 greedy policies stall against walls until the 150-step cap);
evaluation epsilon 0.05 for the same reason.
Source: this project (CI-size, measured here) on the MD3QN maze tasks
(zpschang/MD3QN@c521d32 dopamine/environment/maze.py)."""

HRA_MAZE = dataclasses.replace(MD3QN_MAZE, agent="hra")
HRA_MAZE_DOC = """\
HRA controlling a maze at CI size: md3qn_maze's settings with one scalar head per source
(per-head greedy targets) instead of particles.
Source: this project (CI-size, measured here), as md3qn_maze."""

DQN_PIT_GRIDWORLD = Config(
    env="PitGridworld-v0",
    seeds=4,
    gamma=1.0,  # the task's discount, at which agents.distributional_dp gives the optimum
    network="mlp",
    mlp_hidden=(64, 64),
    loss="mse",
    optimizer="adam",
    learning_rate=1e-3,
    learning_rate_decay_steps=9_500,
    target_update_period=100,
    epsilon_start=1.0,
    epsilon_end=0.05,
    epsilon_decay_steps=3_000,
    replay_capacity=20_000,
    batch_size=64,
    learning_starts=500,
    update_period=1,
    total_steps=10_000,
    iteration_steps=1_000,
    eval_episodes=200,
)
DQN_PIT_GRIDWORLD_DOC = """\
DQN on the pit gridworld (envs.finite_mdp.pit_gridworld, one-hot states, 50-step cap) at CI
size, to compare with the exact optimum: MLP 64-64, Adam 1e-3 decayed linearly to 0 by the
end of the 10k steps, MSE, gamma 1 (the task's), an update every step, target every 100
steps, epsilon 1 -> 0.05 over 3k steps, 200 greedy evaluation episodes every 1k steps (their
mean has a standard error of 0.036 at the optimum). About 30 s for 4 seeds on the 2-core CPU
box. Measured here (run seeds 0, 1, 2, 4 seeds each): the mean of the last two evaluations
lies within 0.06 of the exact optimal mean return -0.0635 on 12 of 12 seeds, and the final
greedy policies are the optimal one (7 seeds) or within 0.016 of it (exactly evaluated; the
short route along the pit scores -0.110, the uniform policy about -1.7). Without the
learning-rate decay (constant 1e-3, 8k steps) the last two evaluations lay 0.02-0.11 below
the optimum and 3 of 4 final greedy policies were not optimal.
Source: this project (CI-size, measured here) on the task of envs.finite_mdp."""

PRESETS: dict[str, Preset] = {
    "dqn_cartpole": Preset(DQN_CARTPOLE, DQN_CARTPOLE_DOC),
    "dqn_atari_dopamine": Preset(DQN_ATARI_DOPAMINE, DQN_ATARI_DOPAMINE_DOC),
    "dqn_atari_nature": Preset(DQN_ATARI_NATURE, DQN_ATARI_NATURE_DOC),
    "dqn_atari_zoo": Preset(DQN_ATARI_ZOO, DQN_ATARI_ZOO_DOC),
    "c51_cartpole": Preset(C51_CARTPOLE, C51_CARTPOLE_DOC),
    "hlgauss_cartpole": Preset(HLGAUSS_CARTPOLE, HLGAUSS_CARTPOLE_DOC),
    "twohot_cartpole": Preset(TWOHOT_CARTPOLE, TWOHOT_CARTPOLE_DOC),
    "qrdqn_cartpole": Preset(QRDQN_CARTPOLE, QRDQN_CARTPOLE_DOC),
    "c51_atari_dopamine": Preset(C51_ATARI_DOPAMINE, C51_ATARI_DOPAMINE_DOC),
    "c51_atari_paper": Preset(C51_ATARI_PAPER, C51_ATARI_PAPER_DOC),
    "hlgauss_atari": Preset(HLGAUSS_ATARI, HLGAUSS_ATARI_DOC),
    "twohot_atari": Preset(TWOHOT_ATARI, TWOHOT_ATARI_DOC),
    "qrdqn_atari": Preset(QRDQN_ATARI, QRDQN_ATARI_DOC),
    "idqn_atari": Preset(IDQN_ATARI, IDQN_ATARI_DOC),
    "idqn_cartpole": Preset(IDQN_CARTPOLE, IDQN_CARTPOLE_DOC),
    "ihlgauss_cartpole": Preset(IHLGAUSS_CARTPOLE, IHLGAUSS_CARTPOLE_DOC),
    "td3_mujoco_paper": Preset(TD3_MUJOCO_PAPER, TD3_MUJOCO_PAPER_DOC, _TD3_PAPER_OVERRIDES),
    "td3_mujoco": Preset(TD3_MUJOCO, TD3_MUJOCO_DOC, _TD3_OVERRIDES),
    "md3qn_atari": Preset(MD3QN_ATARI, MD3QN_ATARI_DOC),
    "hra_atari": Preset(HRA_ATARI, HRA_ATARI_DOC),
    "mmdqn_atari": Preset(MMDQN_ATARI, MMDQN_ATARI_DOC),
    "md3qn_maze_eval": Preset(MD3QN_MAZE_EVAL, MD3QN_MAZE_EVAL_DOC),
    "md3qn_maze_eval_small": Preset(MD3QN_MAZE_EVAL_SMALL, MD3QN_MAZE_EVAL_SMALL_DOC),
    "md3qn_maze": Preset(MD3QN_MAZE, MD3QN_MAZE_DOC),
    "hra_maze": Preset(HRA_MAZE, HRA_MAZE_DOC),
    "dqn_pit_gridworld": Preset(DQN_PIT_GRIDWORLD, DQN_PIT_GRIDWORLD_DOC),
}
DEFAULT_PRESET = "dqn_cartpole"


def get_preset(name: str, env: str | None = None) -> Config:
    """The preset's config, for `env` if given (with the preset's per-task settings for it);
    unknown names raise ConfigError suggesting close ones."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"Unknown preset {name!r}.{hint} Presets: {', '.join(PRESETS)}.")
    config, _, env_overrides = PRESETS[name]
    if env is not None:
        config = dataclasses.replace(config, env=env)
    for prefix, fields in env_overrides.items():
        if config.env.startswith(prefix):
            config = dataclasses.replace(config, **fields)
    return config
