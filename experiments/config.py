"""The typed run configuration and its validation (everything checked before compiling)."""

import dataclasses
import difflib
import itertools
import math
import warnings
from typing import Literal

import jax
import numpy as np

from envs import ATARI_PROTOCOLS, EnvSpec, check_env_id, env_spec
from experiments.errors import ConfigError, check
from experiments.families import FAMILIES


@dataclasses.dataclass(frozen=True)
class Config:
    """One training run: environment, agent, replay, budget and logging.

    Budgets and periods are in agent steps per seed (one agent step = one action in one
    environment; on Atari that is 4 emulator frames).
    """

    # Environment.
    env: str = "CartPole-v1"
    """Task id: an envpool Atari v5 game (Pong-v5), MuJoCo v4/v5 or classic-control task, an
    MD3QN maze (envs.maze) or a finite MDP (envs.finite_mdp_env, e.g. PitGridworld-v0)."""
    atari_protocol: Literal["dopamine", "nature", "zoo", "md3qn"] = "dopamine"
    """Atari protocol (SPEC.md): sticky actions, no-ops, life loss, episode cap; md3qn also
    decomposes the reward into the game's sources (AirRaid, Asteroids, Gopher, MsPacman,
    Pong, UpNDown)."""
    seed: int = 0
    """Run seed; every key and environment seed derives from it."""
    seeds: int = 8
    """Independent seeds trained together in one program."""
    seed_offset: int = 0
    """Index of this run's first seed: seed i of the run is seed `seed_offset + i` of the
    experiment (same keys and environments), so seeds split over runs combine."""
    envs_per_seed: int = 1
    """Environments stepped in parallel for each seed."""

    # Budget and evaluation.
    total_steps: int = 30_000
    """Agent steps per seed."""
    iteration_steps: int = 2_500
    """Agent steps per seed in one iteration (the unit of logging and evaluation)."""
    eval_episodes: int = 10
    """Evaluation episodes per seed after each iteration, on a separate pool; 0 reports
    training returns only."""
    eval_epsilon: float = 0.0
    """Exploration rate of the evaluation policy."""

    # Network.
    network: Literal["mlp", "nature_cnn"] = "mlp"
    """Torso: an MLP on vector observations or the Nature CNN on stacked Atari frames."""
    mlp_hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the MLP torso."""
    cnn_padding: Literal["VALID", "SAME"] = "VALID"
    """Padding of the Nature CNN's convolutions: VALID (Nature, 3136 features) or SAME
    (Flax's default as used by Dopamine, 7744 features)."""
    network_init: Literal[
        "lecun_normal", "uniform_fan_in", "xavier_uniform", "xavier_normal", "torch_default"
    ] = "lecun_normal"
    """Initialiser of the Q-network's kernels, with zero biases unless said: lecun_normal
    (Flax's default); uniform_fan_in, VarianceScaling(1/sqrt(3), fan_in, uniform) (Dopamine's
    Rainbow/C51 networks, the MD3QN code); xavier_uniform (Dopamine's JAX DQN network);
    xavier_normal, VarianceScaling(1, fan_avg, truncated_normal) (the i-DQN authors' code);
    torch_default, U(+-1/sqrt(fan_in)) on kernels and biases (Torch7's default: DQN's Lua
    code, DQN Zoo)."""

    # Agent.
    agent: Literal[tuple(FAMILIES)] = "dqn"  # type: ignore[valid-type]  (the registry's names)
    """Agent family, from the registry experiments.families.FAMILIES (the list above says
    what each is and which fields only some of them read)."""
    num_networks: int = 5
    """i-QN: K, the Bellman iterations learnt at once."""
    shared_torso: bool = False
    """i-QN: K linear heads on one torso instead of K networks (the published Atari layout,
    except that its torso is the three convolutions and each head has a dense 512 layer)."""
    link_loss_reduction: Literal["sum", "mean"] = "sum"
    """i-QN: how the K links' batch-mean losses combine into the loss: their sum, or their
    mean (the authors' code; a gradient K times smaller, which matters through Adam's eps)."""
    target_sync_period: int = 30
    """i-QN: D, agent steps between re-syncs of the target copies Qbar_k <- Q_k (k >= 1);
    the rolling step comes every `target_update_period` (T) agent steps."""
    policy_delay: int = 2
    """TD3: critic updates per actor update and Polyak step of the targets (d)."""
    target_noise: float = 0.2
    """TD3: std of the target policy smoothing noise, in units of the action bound."""
    target_noise_clip: float = 0.5
    """TD3: clip of the smoothing noise, in units of the action bound."""
    exploration_noise: float = 0.1
    """TD3: std of the Gaussian exploration noise, in units of the action bound."""
    num_particles: int = 200
    """MD3QN, MMDQN: M, the return particles per action (each in R^N for N reward sources)."""
    policy_evaluation: bool = False
    """MD3QN, MMDQN, HRA: learn the return of the uniform policy instead of controlling:
    action 0 on the first observation of every episode, then uniform random actions; each
    transition bootstraps from one uniformly random action (MD3QN's Fig. 2 setting)."""
    loss: Literal["mse", "huber"] = "mse"
    """Per-transition TD loss: squared error, or Huber with `huber_delta`."""
    huber_delta: float = 1.0
    """Huber threshold (the TD-error clip of Nature DQN is delta 1)."""
    double_q: bool = False
    """Double DQN: select the next action with the online network."""
    value_representation: Literal["scalar", "c51", "hl_gauss", "two_hot", "quantile"] = "scalar"
    """Critic output: a scalar Q trained with `loss`; a categorical head trained with
    cross-entropy: c51 (distributional target projected onto the atoms), hl_gauss or two_hot
    (the scalar target turned into a distribution); or quantile (QR-DQN: num_atoms quantiles
    of the return at the levels (2i + 1) / (2 num_atoms), quantile Huber loss with kappa)."""
    num_atoms: int = 51
    """Atoms (C51, two-hot) or bins (HL-Gauss) of a categorical critic; quantiles N of a
    quantile critic."""
    v_min: float = -10.0
    """Lower end of a categorical critic's support."""
    v_max: float = 10.0
    """Upper end of a categorical critic's support."""
    sigma_ratio: float = 0.75
    """HL-Gauss: the Gaussian's sigma as a multiple of the bin width."""
    kappa: float = 1.0
    """Quantile critic: the Huber threshold of the quantile Huber loss (divided by kappa);
    0 is plain quantile regression. Not huber_delta, the scalar loss's threshold: 0 is
    valid here, and a preset's delta (DQN Zoo's 1/32) should not carry over."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 1
    """Steps of the multi-step return."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Adam, or the centered RMSProp of Nature DQN (eps inside the square root)."""
    learning_rate: float = 1e-3
    """Optimiser step size."""
    sweep_learning_rate: tuple[float, ...] = ()
    """Learning rates trained side by side in one compiled program (each with every seed);
    empty trains `learning_rate` only."""
    sweep_gamma: tuple[float, ...] = ()
    """Discounts trained side by side (crossed with the learning rates); empty trains
    `gamma` only."""
    optimizer_eps: float = 1e-8
    """Adam epsilon, or the RMSProp min squared gradient."""
    rmsprop_decay: float = 0.95
    """RMSProp decay of both the squared and the plain gradient averages."""
    max_grad_norm: float = 0.0
    """Clip gradients to this global norm; 0 disables clipping."""
    learning_rate_decay_steps: int = 0
    """Agent steps, from learning starts, over which the learning rate decays linearly to 0
    (and stays there); 0 keeps it constant."""
    target_update_period: int = 500
    """Agent steps between target-network updates (i-QN: between rolling steps, T)."""
    target_update_tau: float = 1.0
    """Target update rate: 1 copies the online network, below 1 is a Polyak average."""
    epsilon_start: float = 1.0
    """Training exploration rate when learning starts."""
    epsilon_end: float = 0.05
    """Training exploration rate after the decay."""
    epsilon_decay_steps: int = 10_000
    """Agent steps, counted from `learning_starts`, of the linear epsilon decay."""

    # Replay.
    replay_capacity: int = 50_000
    """Transitions stored per seed."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Agent steps per seed before the first update (uniform random actions until then;
    TD3's start steps)."""
    update_period: int = 1
    """Agent steps per seed between gradient steps."""

    # Runner and logging.
    seed_axis: Literal["auto", "vmap", "map"] = "auto"
    """How the seed axis is computed: vmap, or a sequential lax.map (bit-exact against
    single-seed runs, but it copies the replay each step); auto is vmap."""
    devices: int = 0
    """Local devices the seed axis is sharded over (each holds seeds / devices seeds);
    0 uses every local device."""
    distributed: bool = False
    """Several processes (hosts): each joins the job through jax.distributed and trains its
    block of seeds / processes seeds on its local devices, logging and checkpointing to
    run_dir/process_<i>; run_dir reads back as one run. Needs --run-dir."""
    coordinator_address: str = ""
    """--distributed: host:port of process 0, which serves the job's coordinator; empty
    takes it from the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU) or
    $JAX_COORDINATOR_ADDRESS."""
    num_processes: int = 0
    """--distributed: processes in the job; 0 takes the count from the cluster."""
    process_id: int = -1
    """--distributed: this process's index in 0..num_processes-1; -1 takes it from the
    cluster."""
    coordinator_timeout: int = 300
    """--distributed: seconds to wait for the coordinator and every process to connect
    before stopping with an error."""
    run_dir: str = ""
    """Directory for logs and results; empty picks runs/<env>-<timestamp>."""
    progress: bool = True
    """Show a progress bar."""
    checkpoint_every: int = 1
    """Iterations between checkpoints (the last iteration is always saved); 0 disables."""
    keep_checkpoints: int = 2
    """Checkpoints kept; older ones are deleted."""

    @property
    def iterations(self) -> int:
        """Iterations of the budget; the last is shorter when iteration_steps does not
        divide total_steps."""
        return -(-self.total_steps // self.iteration_steps)

    def steps_after(self, iterations: int) -> int:
        """Agent steps per seed once `iterations` iterations are done."""
        return min(iterations * self.iteration_steps, self.total_steps)

    @property
    def sweep(self) -> dict[str, tuple[float, ...]]:
        """The swept hyperparameters and their values, e.g. {"learning_rate": (1e-3, 3e-4)}."""
        swept = {"learning_rate": self.sweep_learning_rate, "gamma": self.sweep_gamma}
        return {name: values for name, values in swept.items() if values}

    def members(self) -> list["Member"]:
        """Everything trained side by side: each sweep point x each seed, point-major."""
        names = list(self.sweep)
        members = []
        for point in itertools.product(*self.sweep.values()):
            swept = dict(zip(names, point, strict=True))
            values = {"learning_rate": self.learning_rate, "gamma": self.gamma} | swept
            members += [Member(self.seed_offset + i, values, swept) for i in range(self.seeds)]
        return members


@dataclasses.dataclass(frozen=True)
class Member:
    """One trained agent of a run: a seed at one point of the hyperparameter sweep."""

    seed: int  # seed index within the experiment
    hyperparameters: dict[str, float]  # learning_rate and gamma of this member
    swept: dict[str, float]  # only the swept ones, for labels in the logs

    @property
    def label(self) -> str:
        return " ".join([f"{k}={v:g}" for k, v in self.swept.items()] + [f"seed {self.seed}"])


def check_seed_split(seeds: int, num_processes: int) -> None:
    """Each process of a multi-process run trains an equal block of the seeds."""
    check(
        seeds % num_processes == 0,
        f"seeds={seeds} cannot be split evenly over {num_processes} processes: use a "
        f"multiple of {num_processes}.",
    )


def check_launch(config: Config) -> None:
    """Checks the multi-process fields, before any process joins the job."""
    c = config
    if not c.distributed:
        check(
            (c.coordinator_address, c.num_processes, c.process_id) == ("", 0, -1),
            "coordinator_address, num_processes and process_id launch a multi-process run: "
            "add --distributed, or drop them.",
        )
        return
    check(
        c.run_dir != "",
        "--distributed needs --run-dir: every process (a restarted one too) must find the "
        "same run dir, ideally on a file system all hosts share.",
    )
    check(
        c.num_processes >= 0,
        f"num_processes={c.num_processes}: use 1 or more (0: ask the cluster).",
    )
    check(
        c.process_id == -1 or 0 <= c.process_id < (c.num_processes or math.inf),
        f"process_id={c.process_id} is out of range for num_processes={c.num_processes}: "
        f"use 0..{c.num_processes - 1}."
        if c.num_processes
        else f"process_id={c.process_id}: use 0 or more (-1: ask the cluster).",
    )
    if c.num_processes:
        check_seed_split(c.seeds, c.num_processes)
    check(
        c.coordinator_timeout > 0,
        f"coordinator_timeout={c.coordinator_timeout}: use a number of seconds above 0.",
    )


def validate(config: Config) -> EnvSpec:
    """Checks every field and the environment without compiling; returns the env spec."""
    c = config
    close = difflib.get_close_matches(c.agent, FAMILIES, 1)
    check(
        c.agent in FAMILIES,
        f"agent={c.agent!r}: choose one of {', '.join(FAMILIES)}"
        + (f" (did you mean {close[0]!r}?)." if close else "."),
    )
    check_launch(c)
    try:
        suite = check_env_id(c.env)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    check(
        c.atari_protocol in ATARI_PROTOCOLS,
        f"atari_protocol={c.atari_protocol!r}: choose one of {sorted(ATARI_PROTOCOLS)}.",
    )
    check(c.seeds >= 1, f"seeds={c.seeds}: train at least one seed.")
    check(c.seed_offset >= 0, f"seed_offset={c.seed_offset}: use 0 or more.")
    check(c.envs_per_seed >= 1, f"envs_per_seed={c.envs_per_seed}: use at least 1.")
    for name in ("total_steps", "iteration_steps", "target_update_period", "update_period"):
        check(getattr(c, name) > 0, f"{name}={getattr(c, name)}: must be positive.")
    for name in ("total_steps", "iteration_steps"):
        check(
            getattr(c, name) % c.envs_per_seed == 0,
            f"{name}={getattr(c, name)} must be a multiple of envs_per_seed="
            f"{c.envs_per_seed} (each loop step acts in every environment).",
        )
    check(
        c.update_period % c.envs_per_seed == 0 or c.envs_per_seed % c.update_period == 0,
        f"update_period={c.update_period} and envs_per_seed={c.envs_per_seed}: one must "
        "divide the other so that every loop step runs the same number of updates.",
    )
    check(c.checkpoint_every >= 0, f"checkpoint_every={c.checkpoint_every}: use 0 or more.")
    check(c.keep_checkpoints >= 1, f"keep_checkpoints={c.keep_checkpoints}: keep at least 1.")
    available = len(jax.local_devices())
    check(
        0 <= c.devices <= available,
        f"devices={c.devices}: this process sees {available} device(s); use 1..{available} "
        "or 0 for all.",
    )
    num_devices = c.devices or available
    num_members = len(c.members())
    check(
        num_members % num_devices == 0,
        f"seeds={c.seeds}"
        + (f" ({num_members} agents with the sweep)" if c.sweep else "")
        + f" cannot be split evenly over {num_devices} devices: use a multiple of "
        f"{num_devices}, or --devices with a divisor of {num_members}.",
    )
    check(c.eval_episodes >= 0, f"eval_episodes={c.eval_episodes}: use 0 or more.")
    for name in ("epsilon_start", "epsilon_end", "eval_epsilon"):
        value = getattr(c, name)
        check(0.0 <= value <= 1.0, f"{name}={value}: an exploration rate lies in [0, 1].")
    check(c.epsilon_decay_steps >= 0, f"epsilon_decay_steps={c.epsilon_decay_steps} < 0.")
    check(
        c.learning_rate_decay_steps >= 0,
        f"learning_rate_decay_steps={c.learning_rate_decay_steps}: use 0 (constant) or more.",
    )
    for gamma in (c.gamma, *c.sweep_gamma):
        check(0.0 <= gamma <= 1.0, f"gamma={gamma}: a discount lies in [0, 1].")
    check(c.n_step >= 1, f"n_step={c.n_step}: use at least 1.")
    for learning_rate in (c.learning_rate, *c.sweep_learning_rate):
        check(
            learning_rate > 0 and math.isfinite(learning_rate),
            f"learning_rate={learning_rate}: must be a positive number.",
        )
    check(c.optimizer_eps >= 0, f"optimizer_eps={c.optimizer_eps} < 0.")
    check(c.max_grad_norm >= 0, f"max_grad_norm={c.max_grad_norm}: use 0 (off) or more.")
    check(c.huber_delta > 0, f"huber_delta={c.huber_delta}: must be positive.")
    if c.value_representation == "quantile":
        check(
            c.num_atoms >= 1,
            f"num_atoms={c.num_atoms}: a quantile critic needs at least 1 quantile (QR-DQN: 200).",
        )
        check(
            0 <= c.kappa < math.inf,
            f"kappa={c.kappa}: the quantile Huber threshold must be a finite number >= 0 (1 "
            "in QR-DQN, 0 for plain quantile regression).",
        )
    elif c.value_representation != "scalar":
        check(
            c.v_min < c.v_max,
            f"v_min={c.v_min} must be below v_max={c.v_max}: the support is [v_min, v_max].",
        )
        check(
            c.num_atoms >= 2,
            f"num_atoms={c.num_atoms}: a categorical critic needs at least 2 atoms or bins.",
        )
        check(
            c.sigma_ratio > 0,
            f"sigma_ratio={c.sigma_ratio}: the HL-Gauss sigma must be positive (0.75 is the "
            "recommended ratio to the bin width).",
        )
    check(
        0.0 < c.target_update_tau <= 1.0,
        f"target_update_tau={c.target_update_tau}: must lie in (0, 1].",
    )
    check(c.replay_capacity > 0, f"replay_capacity={c.replay_capacity}: must be positive.")
    check(
        c.replay_capacity % c.envs_per_seed == 0,
        f"replay_capacity={c.replay_capacity} must be a multiple of envs_per_seed="
        f"{c.envs_per_seed} (each environment owns an equal share of the buffer).",
    )
    check(c.batch_size >= 1, f"batch_size={c.batch_size}: use at least 1.")
    check(c.learning_starts >= 0, f"learning_starts={c.learning_starts} < 0.")
    check(
        c.batch_size <= c.learning_starts,
        f"batch_size={c.batch_size} is larger than learning_starts={c.learning_starts}: the "
        "first batch would be drawn from fewer transitions than it holds. Raise "
        "learning_starts or lower batch_size.",
    )
    check(
        c.learning_starts < c.replay_capacity,
        f"learning_starts={c.learning_starts} must be below replay_capacity={c.replay_capacity}.",
    )
    try:
        spec = env_spec(c.env, c.seeds, c.envs_per_seed, c.atari_protocol)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if spec.discount is not None:
        check(
            all(gamma == spec.discount for gamma in (c.gamma, *c.sweep_gamma)),
            f"gamma={c.gamma}"
            + (f", sweep_gamma={c.sweep_gamma}" if c.sweep_gamma else "")
            + f": {c.env} is a finite MDP with discount {spec.discount:g}, at which its exact "
            f"answers (agents.distributional_dp) are computed; use --gamma {spec.discount:g}"
            + (" and drop --sweep-gamma." if c.sweep_gamma else "."),
        )
    family = FAMILIES[c.agent]
    continuous = [name for name, f in FAMILIES.items() if f.actions == "continuous"]
    discrete = [name for name, f in FAMILIES.items() if f.actions == "discrete"]
    if family.actions == "continuous":
        check(
            spec.num_actions is None,
            f"{c.env} has discrete actions; {family.label} needs a continuous action space "
            "(e.g. HalfCheetah-v4 or InvertedPendulum-v4), or use --agent "
            f"{' or '.join(discrete)}.",
        )
    else:
        check(
            spec.num_actions is not None,
            f"{c.env} has a continuous action space; {c.agent} needs discrete actions "
            "(pick a discrete task, e.g. CartPole-v1 or an Atari game, or use --agent "
            f"{' or '.join(continuous)}).",
        )
    family.check(c, spec)
    if spec.frame_dtype == np.uint8:
        check(
            c.network == "nature_cnn",
            f"network={c.network!r} on the pixel task {c.env}: use --network nature_cnn.",
        )
    else:
        check(
            c.network == "mlp",
            f"network={c.network!r} on the vector task {c.env}: use --network mlp.",
        )
        check(all(h > 0 for h in c.mlp_hidden), f"mlp_hidden={c.mlp_hidden}: sizes > 0.")
    if c.value_representation not in ("scalar", "quantile"):
        _warn_if_support_too_narrow(c, suite, spec)
    return spec


# Per-step reward range of tasks whose rewards are bounded (Atari's are clipped).
_REWARD_RANGES = {
    "CartPole-v0": (0.0, 1.0),
    "CartPole-v1": (0.0, 1.0),
    "Acrobot-v1": (-1.0, 0.0),
    "MountainCar-v0": (-1.0, 0.0),
}


def return_range(config: Config, suite: str, max_episode_steps: int) -> tuple[float, float]:
    """Bounds of the discounted return of the task's (clipped) rewards; infinite when the
    task's rewards are not known to be bounded."""
    if suite == "atari":
        low, high = -1.0, 1.0  # every Atari protocol clips rewards
    elif config.env in _REWARD_RANGES:
        low, high = _REWARD_RANGES[config.env]
    else:
        return -math.inf, math.inf
    horizon = max(
        max_episode_steps if g == 1.0 else (1 - g**max_episode_steps) / (1 - g)
        for g in (config.gamma, *config.sweep_gamma)
    )
    return low * horizon, high * horizon


def _warn_if_support_too_narrow(config: Config, suite: str, spec: EnvSpec) -> None:
    low, high = return_range(config, suite, spec.max_episode_steps)
    if math.isfinite(low) and (low < config.v_min or high > config.v_max):
        warnings.warn(
            f"The support [{config.v_min:g}, {config.v_max:g}] of the "
            f"{config.value_representation} critic cannot hold every return of {config.env}'s "
            f"{'clipped ' if suite == 'atari' else ''}rewards ([{low:.4g}, {high:.4g}] with "
            f"gamma {config.gamma:g}); targets outside it are clipped into the support (as in "
            "the C51 and HL-Gauss Atari settings). Widen --v-min/--v-max if that is not meant.",
            stacklevel=3,
        )
