"""envpool factory: one host-side pool for all seeds, NumPy in and out (the MD3QN mazes and
the finite MDPs, which envpool lacks, come from envs.maze and envs.finite_mdp_env behind the
same interface).

A pool holds ``num_seeds * envs_per_seed`` environments; pool index
``i = seed_index * envs_per_seed + env_index``, and every array going in or out is
reshaped to ``(num_seeds, envs_per_seed, ...)``. Only envpool's NumPy API is used, never
``env.xla()`` (see DESIGN.md, principle 6).

envpool 1.2.x autoresets on the step *after* a terminated or truncated one: that step
ignores the action and returns the reset observation with reward 0. ``VecEnv`` marks such
observations ``first=True``; the step that produced them is not a transition.
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import envpool
import envpool.registration
import numpy as np
from gymnasium import spaces

from envs import decomposition

# envpool builds its spaces from float64 bounds; gymnasium warns on every cast to float32.
warnings.filterwarnings("ignore", message=".*precision lowered by casting", category=UserWarning)

Suite = Literal["atari", "mujoco", "classic", "maze", "finite_mdp"]
LifeLoss = Literal["off", "terminal", "discount", "restart"]

# envpool registers every id with the module that implements it; that module names the suite.
_SUITE_OF_ENVPOOL_MODULE: dict[str, Suite] = {
    "envpool.atari": "atari",
    "envpool.mujoco.gym": "mujoco",
    "envpool.classic_control": "classic",
}
_ATARI_FRAME_SIZE = 84


@dataclasses.dataclass(frozen=True)
class AtariProtocol:
    """An Atari evaluation protocol (SPEC.md, "Atari protocols"); never mix them silently.

    All three use the minimal action set, frame skip 4 with a max over the last two frames
    (built into envpool), 84x84 grey frames stacked 4 deep (the stacking is done by the
    replay, not by envpool), and no FIRE press at reset (none of the three papers presses
    FIRE). ``noop_max`` has envpool's meaning: ``1 + uniform{0, ..., noop_max - 1}`` no-op
    frames at every reset, so 1 is exactly one no-op frame and 30 is 1 to 30.

    Sources:
    - ``dopamine``: Machado et al. 2018, "Revisiting the Arcade Learning Environment"
      (sticky actions p = 0.25, no life-loss signal, no no-op starts) and Dopamine's
      ``atari_lib`` (cv2 INTER_AREA resize, 27k agent steps = 108k frames per episode,
      reward clipped to [-1, 1] in the agent). envpool cannot do zero no-ops: noop_max = 1,
      a single no-op frame, is the closest it offers.
    - ``nature``: Mnih et al. 2015, Methods (up to 30 no-ops at the start of an episode,
      a life loss marks the end of a training episode, rewards clipped to their sign,
      evaluation episodes capped at 5 minutes = 18k frames = 4500 agent steps). The paper
      gives no training cap: 27k agent steps is used, as in the other protocols. The paper
      only says "rescaled to 84x84": bilinear is an assumption. It takes the luminance of
      RGB frames; envpool uses ALE's grey palette.
    - ``zoo``: DQN Zoo's Atari pipeline (Quan and Ostrovski 2020, in
      google-deepmind/dqn_zoo@45061f4 processors.py and gym_atari.py): sticky actions off,
      1-30 no-op frames every reset, discount 0 at a life loss while the episode goes on,
      rewards clipped to [-1, 1], bilinear resize, 108k-frame cap. The grey 84x84 frames
      only approximate DQN Zoo's: envpool greys each frame with ALE's palette, max-pools,
      then resizes with cv2 INTER_LINEAR; DQN Zoo max-pools the RGB frames, takes their
      luminance (0.299, 0.587, 0.114) and resizes with PIL's bilinear filter (which smooths
      when downscaling).
    - ``md3qn``: the MD3QN code (Zhang et al. 2021, a TF Dopamine fork): no sticky actions,
      no no-op starts (envpool's minimum, one no-op frame), a life loss is a terminal for
      the agent while the game goes on and the frame stack restarts at it
      (``life_loss="restart"``), 27k-step cap, area resize, and the reward decomposed into
      the game's sources (envs.decomposition), each clipped to [-1, 1]. The score reported
      is the raw game score over all lives.

    ``life_loss``: "off"; "terminal" (envpool's episodic_life: the pool episode ends, and
    the next step is an autoreset that ignores the action while the game goes on);
    "discount" (marked on the host: ``terminated`` at the life loss, the game and the frame
    stack go on); "restart" ("discount", and the frame stack starts again at the life-loss
    observation, as Dopamine's begin_episode does).
    """

    name: str
    repeat_action_probability: float
    noop_max: int
    life_loss: LifeLoss
    reward_clip: bool
    max_episode_steps: int
    eval_max_episode_steps: int
    use_inter_area_resize: bool
    frame_skip: int = 4
    frame_stack: int = 4
    decompose_rewards: bool = False


ATARI_PROTOCOLS: dict[str, AtariProtocol] = {
    protocol.name: protocol
    for protocol in (
        AtariProtocol(
            name="dopamine",
            repeat_action_probability=0.25,
            noop_max=1,
            life_loss="off",
            reward_clip=True,
            max_episode_steps=27_000,
            eval_max_episode_steps=27_000,
            use_inter_area_resize=True,
        ),
        AtariProtocol(
            name="nature",
            repeat_action_probability=0.0,
            noop_max=30,
            life_loss="terminal",
            reward_clip=True,
            max_episode_steps=27_000,
            eval_max_episode_steps=4_500,
            use_inter_area_resize=False,
        ),
        AtariProtocol(
            name="zoo",
            repeat_action_probability=0.0,
            noop_max=30,
            life_loss="discount",
            reward_clip=True,
            max_episode_steps=27_000,
            eval_max_episode_steps=27_000,
            use_inter_area_resize=False,
        ),
        AtariProtocol(
            name="md3qn",
            repeat_action_probability=0.0,
            noop_max=1,
            life_loss="restart",
            reward_clip=True,
            max_episode_steps=27_000,
            eval_max_episode_steps=27_000,
            use_inter_area_resize=True,
            decompose_rewards=True,
        ),
    )
}


@dataclasses.dataclass(frozen=True, eq=False)
class EnvSpec:
    """What agents and the replay need to know about a pool, without creating it.

    ``frame_shape`` is one stored frame: ``(84, 84)`` on Atari, ``(obs_dim,)`` otherwise;
    an agent's observation is ``frame_stack`` of them. Budgets are in agent steps; one
    agent step is ``frames_per_step`` emulator frames.
    """

    env_id: str
    suite: Suite
    frame_shape: tuple[int, ...]
    frame_dtype: np.dtype
    frame_stack: int
    num_actions: int | None
    action_shape: tuple[int, ...]
    action_low: np.ndarray | None
    action_high: np.ndarray | None
    num_seeds: int
    envs_per_seed: int
    max_episode_steps: int
    frames_per_step: int
    reward_shape: tuple[int, ...] = ()  # () a scalar reward, (N,) a vector of N sources
    # A terminated step that no autoreset follows starts a new frame stack (life_loss
    # "restart"); otherwise only ``first`` does.
    restart_stack_at_termination: bool = False
    # The task's own discount, which a run must train with (a finite MDP, whose exact
    # answers are at it); None leaves the discount to the config.
    discount: float | None = None

    @property
    def num_reward_sources(self) -> int:
        """N, the entries of the reward vector; 0 for a scalar reward."""
        return self.reward_shape[0] if self.reward_shape else 0

    def _key(self) -> tuple:
        def as_tuple(bound: np.ndarray | None) -> tuple | None:
            return None if bound is None else tuple(bound.tolist())

        return tuple(
            as_tuple(value) if isinstance(value, np.ndarray) else value
            for value in dataclasses.astuple(self)
        )

    # Field-wise equality; the generated one would compare the bound arrays elementwise.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, EnvSpec) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class StepResult(NamedTuple):
    """One batch from the pool; every array has leading axes ``(num_seeds, envs_per_seed)``.

    obs:            (S, E, *frame_shape) frame_dtype.
    reward:         (S, E, *reward_shape) float32: (S, E) for a scalar reward, (S, E, N) for
                    N reward sources; clipped to [-1, 1] if the Atari protocol says so; 0
                    where ``first``.
    terminated:     (S, E) bool, a true termination (or, on Atari training pools, a life
                    loss when life_loss is "terminal" or "discount"); never set by a time limit.
    truncated:      (S, E) bool, the time limit cut the episode at this obs (never together
                    with ``terminated``).
    first:          (S, E) bool, obs starts a new episode (after ``reset()`` or an envpool
                    autoreset); the step that produced it is not a transition.
    episode_done:   (S, E) bool, a whole game ended at this step: report its score.
    episode_return: (S, E) float32, unclipped game score of that game, 0 where not done.
    episode_length: (S, E) int32, agent steps of that game, 0 where not done.
    episode_source_return: (S, E, N) float32, each source's unclipped return in that game
                    (N = 0 for a scalar reward), 0 where not done.
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    first: np.ndarray
    episode_done: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray
    episode_source_return: np.ndarray


class VecEnv:
    """An envpool pool seen as ``(num_seeds, envs_per_seed)`` environments; see ``make_env``.

    ``env_seeds`` (S, E) holds the envpool seed of each environment.
    """

    def __init__(
        self,
        spec: EnvSpec,
        pool: envpool.registration.GymnasiumEnvPool,
        env_seeds: np.ndarray,
        life_loss: LifeLoss,
        reward_clip: bool,
        decomposed_game: str | None = None,
    ) -> None:
        self.spec = spec
        self.env_seeds = env_seeds
        self._pool = pool
        self._life_loss = life_loss
        self._reward_clip = reward_clip
        self._decomposed_game = decomposed_game
        self._action_dtype = pool.action_space.dtype
        self._state_items = _state_items(pool, spec.suite)
        self._env_ids = np.arange(spec.num_seeds * spec.envs_per_seed, dtype=np.int32)
        self._batch_shape = (spec.num_seeds, spec.envs_per_seed)
        num_envs = spec.num_seeds * spec.envs_per_seed
        # Host-side state, flat over the pool index.
        self._pool_done = np.zeros(num_envs, bool)  # envpool autoresets on the next step
        self._game_done = np.zeros(num_envs, bool)  # the next step starts a new game
        self._game_return = np.zeros(num_envs, np.float64)
        self._game_length = np.zeros(num_envs, np.int32)
        self._source_returns = np.zeros((num_envs, spec.num_reward_sources), np.float64)
        self._lives = np.zeros(num_envs, np.int32)
        self._was_reset = False
        self._in_flight = False  # a step was sent and not received

    def reset(self) -> StepResult:
        """Resets every environment; ``first`` is True everywhere and rewards are 0."""
        obs, info = self._pool.reset()
        self._pool_done[:] = False
        self._game_done[:] = False
        self._game_return[:] = 0.0
        self._game_length[:] = 0
        self._source_returns[:] = 0.0
        if self.spec.suite == "atari":
            self._lives = info["lives"].astype(np.int32)
        self._was_reset = True
        zeros = np.zeros(self._batch_shape, np.float32)
        no = np.zeros(self._batch_shape, bool)
        return StepResult(
            obs=self._shape_obs(obs),
            reward=np.zeros(self._batch_shape + self.spec.reward_shape, np.float32),
            terminated=no,
            truncated=no.copy(),
            first=np.ones(self._batch_shape, bool),
            episode_done=no.copy(),
            episode_return=zeros.copy(),
            episode_length=np.zeros(self._batch_shape, np.int32),
            episode_source_return=np.zeros(
                (*self._batch_shape, self.spec.num_reward_sources), np.float32
            ),
        )

    def step(self, actions: np.ndarray) -> StepResult:
        """Steps every environment with ``actions`` of shape (S, E) int or (S, E, action_dim)."""
        self.send(actions)
        return self.recv()

    def send(self, actions: np.ndarray) -> None:
        """Starts ``step(actions)`` on the pool's threads; ``recv`` returns its result, and
        the host may work in between."""
        if not self._was_reset:
            raise RuntimeError("call reset() before step()")
        # envpool's Python send and recv (dict conversions and checks) cost ~80 us a step
        # against ~25 us for the C++ calls under them, made here with the same arguments.
        self._pool._send([self._env_ids, self._env_ids, self._flat_actions(actions)])
        self._in_flight = True

    def recv(self) -> StepResult:
        """The result of the step that ``send`` started."""
        if not self._in_flight:
            raise RuntimeError("call send() before recv()")
        self._in_flight = False
        obs, pool_reward, done, pool_truncated, *atari_info = self._state_items(self._pool._recv())
        pool_terminated = done & ~pool_truncated
        first = self._pool_done
        new_game = self._game_done
        score = pool_reward
        if atari_info:  # the unclipped game reward (the pool never clips), lives, game over
            score, lives, game_terminated = atari_info

        terminated = pool_terminated
        if self._life_loss in ("discount", "restart"):
            terminated = pool_terminated | (lives < self._lives)
            self._lives = lives.astype(np.int32)
        truncated = pool_truncated & ~terminated
        pool_done = pool_terminated | pool_truncated
        if self._life_loss == "terminal":
            # envpool's episodic_life ends the pool episode at each life loss but carries on
            # the same game after it; a game ends at game over or at the time limit.
            game_over = game_terminated.astype(bool) | pool_truncated
        else:
            game_over = pool_done

        self._game_return = np.where(new_game, 0.0, self._game_return) + score
        # The autoreset step that starts a game is not part of it; the autoreset steps after
        # life losses (life_loss "terminal") are: a game's length is every agent step it
        # consumed, i.e. envpool's elapsed_step plus the number of lives lost.
        self._game_length = np.where(new_game, 0, self._game_length + 1).astype(np.int32)
        self._pool_done = pool_done
        self._game_done = game_over

        reward = score
        source_returns = self._source_returns  # (num_envs, 0) without a decomposition
        if self._decomposed_game is not None:
            reward = decomposition.decompose(self._decomposed_game, score)
            self._source_returns = np.where(new_game[:, None], 0.0, self._source_returns) + reward
            source_returns = np.where(game_over[:, None], self._source_returns, 0.0)
        if self._reward_clip:
            reward = np.clip(reward, -1.0, 1.0)
        if game_over.any():
            episode_return = np.where(game_over, self._game_return, 0.0)
            episode_length = np.where(game_over, self._game_length, 0)
        else:  # most steps: no game ends
            episode_return = np.zeros(game_over.shape, np.float32)
            episode_length = np.zeros(game_over.shape, np.int32)
        return StepResult(
            obs=self._shape_obs(obs),
            reward=self._batched(reward, np.float32),
            terminated=self._batched(terminated),
            truncated=self._batched(truncated),
            first=self._batched(first),
            episode_done=self._batched(game_over),
            episode_return=self._batched(episode_return, np.float32),
            episode_length=self._batched(episode_length, np.int32),
            episode_source_return=source_returns.reshape(
                *self._batch_shape, self.spec.num_reward_sources
            ).astype(np.float32),
        )

    def close(self) -> None:
        """Stops the pool's worker threads."""
        self._pool.close()

    def _flat_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        expected = self._batch_shape + self.spec.action_shape
        if actions.shape != expected:
            raise ValueError(f"actions must have shape {expected}, got {actions.shape}")
        num_actions = self.spec.num_actions
        if num_actions is not None and (actions.min() < 0 or actions.max() >= num_actions):
            raise ValueError(
                f"discrete actions must lie in [0, {num_actions}), got [{actions.min()}, "
                f"{actions.max()}]"
            )
        return actions.reshape((-1, *self.spec.action_shape)).astype(self._action_dtype)

    def _shape_obs(self, obs: np.ndarray) -> np.ndarray:
        return obs.reshape(self._batch_shape + self.spec.frame_shape).astype(
            self.spec.frame_dtype, copy=False
        )

    def _batched(self, flat: np.ndarray, dtype: type | None = None) -> np.ndarray:
        shape = self._batch_shape + flat.shape[1:]
        return flat.reshape(shape).astype(dtype or flat.dtype, copy=False)


def _state_items(pool: envpool.registration.GymnasiumEnvPool, suite: Suite) -> Callable:
    """Picks (obs, reward, done, trunc, *Atari info) from what the pool's C++ recv returns,
    whose layout envpool's Python step reads from `_state_keys`."""
    if tuple(pool._action_keys) != ("env_id", "players.env_id", "action"):
        raise RuntimeError(
            f"envpool {envpool.__version__} sends actions as {pool._action_keys}; VecEnv "
            "knows 1.2.x's (env_id, players.env_id, action): install envpool 1.2.x"
        )
    names = ["obs", "reward", "done", "trunc"]
    names += ["info:reward", "info:lives", "info:terminated"] if suite == "atari" else []
    return operator.itemgetter(*(list(pool._state_keys).index(name) for name in names))


def check_env_id(env_id: str) -> Suite:
    """Returns the suite of an envpool, maze or finite MDP id; raises ValueError naming close
    ids if unknown."""
    from envs import finite_mdp_env, maze  # they build on this module

    if maze.is_maze_id(env_id):
        maze.check_maze_id(env_id)
        return "maze"
    if env_id in finite_mdp_env.FINITE_MDP_IDS:
        return "finite_mdp"
    specs = envpool.registration.registry.specs
    if env_id not in specs:
        known = [*envpool.list_all_envs(), *finite_mdp_env.FINITE_MDP_IDS]
        close = difflib.get_close_matches(env_id, known, n=5)
        hint = (
            f"did you mean one of {close}?"
            if close
            else "see envpool.list_all_envs() and envs.finite_mdp_env.FINITE_MDP_IDS"
        )
        raise ValueError(f"unknown environment id {env_id!r}: {hint}")
    module = specs[env_id][0]
    suite = _SUITE_OF_ENVPOOL_MODULE.get(module)
    if suite is None:
        raise ValueError(
            f"{env_id!r} comes from {module}, which is not supported: use an Atari v5 id "
            "(e.g. 'Pong-v5'), a Gym MuJoCo id (e.g. 'Hopper-v4') or a classic-control id "
            "(e.g. 'CartPole-v1')"
        )
    return suite


def env_spec(
    env_id: str,
    num_seeds: int,
    envs_per_seed: int,
    atari_protocol: str = "dopamine",
    evaluation: bool = False,
    max_episode_steps: int | None = None,
) -> EnvSpec:
    """The EnvSpec that ``make_env`` with the same arguments gives; creates no pool."""
    suite = _validate(env_id, num_seeds, envs_per_seed, atari_protocol, max_episode_steps)
    if suite == "maze":
        from envs import maze

        return maze.maze_spec(env_id, num_seeds, envs_per_seed, max_episode_steps)
    if suite == "finite_mdp":
        from envs import finite_mdp_env

        return finite_mdp_env.finite_mdp_spec(env_id, num_seeds, envs_per_seed, max_episode_steps)
    protocol = ATARI_PROTOCOLS[atari_protocol]
    options = _pool_options(suite, protocol, evaluation, max_episode_steps)
    pool_spec = envpool.make_spec(env_id, **options)
    return _spec_from_envpool(pool_spec, env_id, suite, protocol, num_seeds, envs_per_seed)


def make_env(
    env_id: str,
    num_seeds: int,
    envs_per_seed: int,
    seed: int,
    atari_protocol: str = "dopamine",
    evaluation: bool = False,
    max_episode_steps: int | None = None,
    seed_offset: int = 0,
    seed_indices: Sequence[int] | None = None,
) -> VecEnv:
    """Creates one envpool pool of ``num_seeds * envs_per_seed`` environments.

    Seed index s is the run's seed ``g = seed_offset + s`` (a process may own a slice of a
    run's seeds). Environment (s, e) gets the envpool seed
    ``np.random.SeedSequence([seed, g]).generate_state(envs_per_seed)[e] >> 1``
    (31 bits, as envpool wants int32), so its stream depends only on (seed, g, e).

    Atari follows ``ATARI_PROTOCOLS[atari_protocol]`` (ignored elsewhere). With
    ``evaluation=True`` a life loss never ends an episode nor sets ``terminated``, and
    the episode cap defaults to the protocol's ``eval_max_episode_steps``.
    ``max_episode_steps`` (agent steps) overrides the cap of any suite.
    ``seed_indices`` (num_seeds run seeds, repeats allowed) replaces the contiguous block
    from ``seed_offset``, e.g. when several hyperparameter values each train seeds 0..S-1.
    """
    spec = env_spec(env_id, num_seeds, envs_per_seed, atari_protocol, evaluation, max_episode_steps)
    seeds = resolve_env_seeds(seed, num_seeds, envs_per_seed, seed_offset, seed_indices)
    # The NumPy pools have no life losses: their evaluation pool is a training pool.
    if spec.suite == "maze":
        from envs import maze

        return maze.MazeEnv(spec, seeds)
    if spec.suite == "finite_mdp":
        from envs import finite_mdp_env

        return finite_mdp_env.FiniteMDPEnv(spec, seeds)
    protocol = ATARI_PROTOCOLS[atari_protocol]
    num_envs = num_seeds * envs_per_seed
    pool = envpool.make(
        env_id,
        env_type="gymnasium",
        num_envs=num_envs,
        env_seed=seeds.reshape(-1).tolist(),
        num_threads=min(num_envs, os.cpu_count() or 1),
        **_pool_options(spec.suite, protocol, evaluation, max_episode_steps),
    )
    atari_training = spec.suite == "atari" and not evaluation
    return VecEnv(
        spec,
        pool,
        seeds,
        life_loss=protocol.life_loss if atari_training else "off",
        reward_clip=spec.suite == "atari" and protocol.reward_clip,
        decomposed_game=decomposition.game_of(env_id) if spec.reward_shape else None,
    )


def _validate(
    env_id: str,
    num_seeds: int,
    envs_per_seed: int,
    atari_protocol: str,
    max_episode_steps: int | None,
) -> Suite:
    for name, value in (("num_seeds", num_seeds), ("envs_per_seed", envs_per_seed)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if max_episode_steps is not None and (
        not isinstance(max_episode_steps, int | np.integer) or max_episode_steps < 1
    ):
        raise ValueError(f"max_episode_steps must be an integer >= 1, got {max_episode_steps!r}")
    if atari_protocol not in ATARI_PROTOCOLS:
        raise ValueError(
            f"unknown Atari protocol {atari_protocol!r}: choose one of {sorted(ATARI_PROTOCOLS)}"
        )
    suite = check_env_id(env_id)
    if suite == "atari" and ATARI_PROTOCOLS[atari_protocol].decompose_rewards:
        decomposition.check_decomposable(env_id)
    return suite


def resolve_env_seeds(
    seed: int,
    num_seeds: int,
    envs_per_seed: int,
    seed_offset: int = 0,
    seed_indices: Sequence[int] | None = None,
) -> np.ndarray:
    """(num_seeds, envs_per_seed) environment seeds of a pool (see ``make_env``), after
    checking the seed arguments."""
    for name, value in (("seed", seed), ("seed_offset", seed_offset)):
        if not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if seed_indices is None:
        seed_indices = range(seed_offset, seed_offset + num_seeds)
    if len(seed_indices) != num_seeds:
        raise ValueError(f"seed_indices has {len(seed_indices)} entries for {num_seeds} seeds")
    return _env_seeds(seed, seed_indices, envs_per_seed)


def _env_seeds(seed: int, run_seed_indices: Sequence[int], envs_per_seed: int) -> np.ndarray:
    """(len(run_seed_indices), envs_per_seed) int64 envpool seeds; see ``make_env``."""
    return np.stack(
        [
            np.random.SeedSequence([seed, index]).generate_state(envs_per_seed) >> 1
            for index in run_seed_indices
        ]
    ).astype(np.int64)


def _pool_options(
    suite: Suite, protocol: AtariProtocol, evaluation: bool, max_episode_steps: int | None
) -> dict:
    """Keyword arguments for envpool.make / make_spec."""
    if suite != "atari":
        return {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    default_cap = protocol.eval_max_episode_steps if evaluation else protocol.max_episode_steps
    return {
        "max_episode_steps": default_cap if max_episode_steps is None else max_episode_steps,
        "repeat_action_probability": protocol.repeat_action_probability,
        "noop_max": protocol.noop_max,
        # Only "terminal" is done by envpool; "discount" is marked on the host (VecEnv.step).
        "episodic_life": protocol.life_loss == "terminal" and not evaluation,
        # Clipped on the host from info["reward"]: exact clipping, and the score stays
        # available unclipped.
        "reward_clip": False,
        "frame_skip": protocol.frame_skip,
        "use_inter_area_resize": protocol.use_inter_area_resize,
        # The replay stacks frames itself, so the pool returns single frames.
        "stack_num": 1,
        "gray_scale": True,
        "img_height": _ATARI_FRAME_SIZE,
        "img_width": _ATARI_FRAME_SIZE,
        # None of the three protocols' papers presses FIRE at reset.
        "use_fire_reset": False,
        "full_action_space": False,
    }


def _spec_from_envpool(
    pool_spec: envpool.registration.EnvSpec,
    env_id: str,
    suite: Suite,
    protocol: AtariProtocol,
    num_seeds: int,
    envs_per_seed: int,
) -> EnvSpec:
    observation_space = pool_spec.gymnasium_observation_space
    action_space = pool_spec.gymnasium_action_space
    is_atari = suite == "atari"
    if isinstance(action_space, spaces.Discrete):
        num_actions, action_shape = int(action_space.n), ()
        action_low = action_high = None
    elif isinstance(action_space, spaces.Box):
        num_actions, action_shape = None, tuple(action_space.shape)
        action_low = action_space.low.astype(np.float32)
        action_high = action_space.high.astype(np.float32)
    else:
        raise ValueError(f"{env_id!r}: unsupported action space {action_space}")
    return EnvSpec(
        env_id=env_id,
        suite=suite,
        # Atari observations are (stack_num=1, 84, 84): one frame.
        frame_shape=tuple(observation_space.shape[1:] if is_atari else observation_space.shape),
        frame_dtype=np.dtype(np.uint8 if is_atari else np.float32),
        frame_stack=protocol.frame_stack if is_atari else 1,
        num_actions=num_actions,
        action_shape=action_shape,
        action_low=action_low,
        action_high=action_high,
        num_seeds=num_seeds,
        envs_per_seed=envs_per_seed,
        max_episode_steps=int(pool_spec.config.max_episode_steps),
        frames_per_step=int(pool_spec.config.frame_skip) if is_atari else 1,
        reward_shape=(
            (len(decomposition.DECOMPOSITIONS[decomposition.game_of(env_id)]),)
            if is_atari and protocol.decompose_rewards
            else ()
        ),
        restart_stack_at_termination=is_atari and protocol.life_loss == "restart",
    )
