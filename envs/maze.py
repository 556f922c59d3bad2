"""The MD3QN mazes (SPEC.md, "Maze tasks") as a vectorised NumPy pool with VecEnv's interface.

Ids: ``MultiRewardMaze-v0``, ``ExclusiveMaze-v1``, ``InclusiveMaze-v2``,
``ConstraintMaze-v3`` observe 84x84x3 uint8 frames; the same names with ``MazeVector``
instead of ``Maze`` observe a float32 vector of length 2 * 25:
``[one-hot of the agent's cell (25), visited-cell mask (25)]``, cells flattened row-major
(``row * 5 + col``). The visited mask holds the start cell and every cell the agent has
stood in, the current one included; a reward cell is consumed exactly when it is visited.

Dynamics follow the authors' code (zpschang/MD3QN, dopamine/environment/maze.py). One step:
on a stochastic cell of v3 the chosen action is first replaced by a random one; then the
step counts; a move whose edge allows it through the outer border ends the episode with
reward 0 (the agent stays drawn in its last cell); a move whose edge allows it into a used,
unvisited cell enters that cell and is paid one draw of its source, if any; any other move
stays and pays 0. The step that reaches the cap (150, or ``max_episode_steps``) still moves
and pays, and ends the episode.

Randomness is counter-based, so environment (s, e) depends only on its own seed ``k``
(``env_seeds[s, e]``, from envs.factory._env_seeds as in make_env) and on how many times
the pool was stepped. With ``mix`` the SplitMix64 finaliser, ``G = 0x9E3779B97F4A7C15`` and
all arithmetic modulo 2**64: ``key = mix(k + G)``; the j-th ``step()`` call of the pool
(j = 0, 1, ..., counted from its creation, autoreset steps and resets included) draws
``u_action = unit(mix(key + (2j + 1) G))`` and ``u_reward = unit(mix(key + (2j + 2) G))``,
``unit(z) = (z >> 11) / 2**53`` in [0, 1). A stochastic cell picks down if
``u_action < p_down``, else right; a reward of source n is ``low_n + width_n * u_reward``
computed in float64, then stored as float32.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence

import envpool.registration
import numpy as np

from envs import maze_render
from envs.factory import EnvSpec, StepResult, resolve_env_seeds
from envs.maze_render import BLOCKED, DOWN, EXIT, LEFT, OPEN, RIGHT, UP
from envs.numpy_pool import NumpyPool

# Art from SPEC.md: `|` and `---` walls, blank edges open, `^ v < >` one-way edges (the
# arrow is the only direction that may cross), `###` unused, a digit a reward source, `S` the
# start, an open outer border an exit. Trailing blanks are left out (the parser pads them).
_ART_V0 = """\
+   +---+---+---+---+
| 0   .   1   . | .
+---+---+---+   +   +
|###|###|###| .   . |
+---+---+---+   +---+
|###| S   .   2 |###|
+---+---+   +---+---+
  .   .   3 |###|###|
+---+---+   +---+---+
|###|###| . |###|###|
+---+---+   +---+---+
"""
_ART_V1 = """\
+---+---+---+---+---+
| S   0 |###|###|###|
+   + v +---+---+---+
| 1 > .   0 |###|###|
+---+   + v +---+---+
|###| 1 > .   0 |###|
+---+---+   + v +---+
|###|###| 1 > .   0 |
+---+---+---+   + v +
|###|###|###| 1 > .
+---+---+---+---+---+
"""
_ART_V2 = """\
+---+---+---+---+---+
| S   0   1   . |###|
+   +---+---+ v +---+
| .   .   . > .   0 |
+---+---+---+   +   +
|###|###|###| . | 1 |
+---+---+---+ v +   +
  . < .   .   . < . |
+   +---+---+   +---+
| . < 1   0   . |###|
+   +---+---+---+---+
"""
_ART_V3 = """\
+---+---+---+---+---+
| S > .   .   1   . |
+ v +---+   +---+ v +
| .   . | .   . > . |
+   +   +---+---+   +
| 2 | 1   . | . < . |
+   +   +   +   +   +
| . | 0 | 1 | . | 0 |
+   +   +   + v + v +
| 2 | 2 | . | .   2
+   +   +   +   +---+
"""

_DELTAS = {UP: (-1, 0), LEFT: (0, -1), DOWN: (1, 0), RIGHT: (0, 1)}
DEFAULT_MAX_EPISODE_STEPS = 150
NUM_ACTIONS = 4


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
    """A parsed maze. Cells are (row, col) from the top left; flat index row * W + col.

    used:   (H, W) bool, False for ``###``.
    source: (H, W) int64, the reward source of the cell, -1 for none.
    start:  (row, col).
    moves:  (H, W, 4) int8 per cell and action (0 up, 1 left, 2 down, 3 right): BLOCKED
            (a wall, or a one-way edge pointing the other way), OPEN (the edge allows it:
            open or its arrow points that way) or EXIT (allowed, through the outer border).
            Whether the target cell is used or visited is checked when stepping.
    """

    used: np.ndarray
    source: np.ndarray
    start: tuple[int, int]
    moves: np.ndarray


def parse_layout(art: str) -> Layout:
    """Parses maze art in the SPEC's notation into a Layout."""
    lines = art.strip("\n").split("\n")
    width_chars = len(lines[0])
    if len(lines) % 2 != 1 or width_chars % 4 != 1:
        raise ValueError("maze art needs 2H + 1 lines of 4W + 1 characters")
    lines = [line.ljust(width_chars) for line in lines]
    height, width = len(lines) // 2, width_chars // 4
    used = np.ones((height, width), bool)
    source = np.full((height, width), -1, np.int64)
    start = None
    for row in range(height):
        for col in range(width):
            content = lines[2 * row + 1][4 * col + 1 : 4 * col + 4].strip()
            if content == "###":
                used[row, col] = False
            elif content == "S":
                start = (row, col)
            elif content.isdigit():
                source[row, col] = int(content)
            elif content != ".":
                raise ValueError(f"cell ({row}, {col}): unknown content {content!r}")
    if start is None:
        raise ValueError("maze art has no start cell S")

    def horizontal(line: int, col: int) -> str:  # "", "---", "^" or "v"
        return lines[line][4 * col + 1 : 4 * col + 4].strip()

    def vertical(line: int, col: int) -> str:  # " ", "|", "<" or ">"
        return lines[line][4 * col]

    moves = np.full((height, width, NUM_ACTIONS), BLOCKED, np.int8)
    for row in range(height):
        for col in range(width):
            edges = {
                UP: horizontal(2 * row, col) in ("", "^"),
                DOWN: horizontal(2 * row + 2, col) in ("", "v"),
                LEFT: vertical(2 * row + 1, col) in (" ", "<"),
                RIGHT: vertical(2 * row + 1, col + 1) in (" ", ">"),
            }
            for action, allowed in edges.items():
                d_row, d_col = _DELTAS[action]
                inside = 0 <= row + d_row < height and 0 <= col + d_col < width
                if allowed:
                    moves[row, col, action] = OPEN if inside else EXIT
    return Layout(used, source, start, moves)


@dataclasses.dataclass(frozen=True)
class _Maze:
    art: str
    reward_low: tuple[float, ...]  # per source; a draw is U[low, low + width)
    reward_width: tuple[float, ...]
    stochastic: dict[tuple[int, int], float]  # cell -> probability of down (else right)


_MAZES: dict[int, _Maze] = {
    0: _Maze(_ART_V0, (0.2, 0.8, 0.3, 0.5), (0.2, 0.2, 0.2, 0.2), {}),
    1: _Maze(_ART_V1, (0.2, 0.4), (0.4, 0.5), {}),
    2: _Maze(_ART_V2, (0.2, 0.4), (0.4, 0.5), {}),
    3: _Maze(_ART_V3, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), {(1, 0): 1 / 3, (2, 1): 1 / 2}),
}
_NAMES = {0: "MultiReward", 1: "Exclusive", 2: "Inclusive", 3: "Constraint"}
_PIXEL_IDS = {f"{name}Maze-v{version}": version for version, name in _NAMES.items()}
_VECTOR_IDS = {f"{name}MazeVector-v{version}": version for version, name in _NAMES.items()}
MAZE_IDS: tuple[str, ...] = (*_PIXEL_IDS, *_VECTOR_IDS)
# Anything shaped like a maze id, so that a misspelt one is reported as such.
_MAZE_LIKE = re.compile(r"[A-Za-z]*maze[A-Za-z]*-v\d+", re.IGNORECASE)


def is_maze_id(env_id: str) -> bool:
    """True for the maze ids and for misspellings shaped like them (``<Word>Maze-vN``,
    ``<Word>MazeVector-vN``, ...), never for an id that envpool registers (e.g. Maze-v0)."""
    return bool(_MAZE_LIKE.fullmatch(env_id)) and env_id not in envpool.registration.registry.specs


def check_maze_id(env_id: str) -> None:
    """Raises ValueError, naming close ids and every valid one, unless env_id is a maze id."""
    if env_id in MAZE_IDS:
        return
    close = difflib.get_close_matches(env_id, MAZE_IDS, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise ValueError(f"unknown maze id {env_id!r}: {hint}valid maze ids: {', '.join(MAZE_IDS)}")


def _version(env_id: str) -> int:
    check_maze_id(env_id)
    return _PIXEL_IDS.get(env_id, _VECTOR_IDS.get(env_id))


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def maze_spec(
    env_id: str, num_seeds: int, envs_per_seed: int, max_episode_steps: int | None = None
) -> EnvSpec:
    """The EnvSpec of ``make_maze_env`` with the same arguments; creates no pool."""
    version = _version(env_id)
    _check_positive(
        num_seeds=num_seeds, envs_per_seed=envs_per_seed, max_episode_steps=max_episode_steps
    )
    layout = _layout(version)
    pixels = env_id in _PIXEL_IDS
    num_cells = layout.used.size
    return EnvSpec(
        env_id=env_id,
        suite="maze",
        frame_shape=(maze_render.FRAME_SIZE,) * 2 + (3,) if pixels else (2 * num_cells,),
        frame_dtype=np.dtype(np.uint8 if pixels else np.float32),
        frame_stack=1,
        num_actions=NUM_ACTIONS,
        action_shape=(),
        action_low=None,
        action_high=None,
        num_seeds=num_seeds,
        envs_per_seed=envs_per_seed,
        max_episode_steps=max_episode_steps or DEFAULT_MAX_EPISODE_STEPS,
        frames_per_step=1,
        reward_shape=(len(_MAZES[version].reward_low),),
    )


def _layout(version: int) -> Layout:
    return parse_layout(_MAZES[version].art)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class MazeEnv(NumpyPool):
    """A pool of ``num_seeds * envs_per_seed`` maze environments with VecEnv's interface.

    ``env_seeds`` (S, E) holds each environment's seed; see the module docstring for how
    it drives the random draws.
    """

    def __init__(self, spec: EnvSpec, env_seeds: np.ndarray) -> None:
        super().__init__(spec, env_seeds)
        version = _version(spec.env_id)
        maze, layout = _MAZES[version], _layout(version)
        height, width = layout.used.shape
        num_envs = self._num_envs
        self._num_cells = num_cells = height * width
        self._pixels = spec.frame_dtype == np.uint8

        # Flat per-cell tables. The target of a move off the grid is never read.
        self._used = layout.used.reshape(-1)
        self._source = layout.source.reshape(-1)
        self._moves = layout.moves.reshape(num_cells, NUM_ACTIONS)
        rows, cols = np.divmod(np.arange(num_cells), width)
        self._target = np.zeros((num_cells, NUM_ACTIONS), np.int64)
        for action, (d_row, d_col) in _DELTAS.items():
            row, col = rows + d_row, cols + d_col
            inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
            self._target[:, action] = np.where(inside, row * width + col, 0)
        self._start = layout.start[0] * width + layout.start[1]
        self._p_down = np.full(num_cells, np.nan)
        for (row, col), p_down in maze.stochastic.items():
            self._p_down[row * width + col] = p_down
        self._reward_low = np.asarray(maze.reward_low, np.float64)
        self._reward_width = np.asarray(maze.reward_width, np.float64)
        if self._pixels:
            self._base = maze_render.base_image(layout.used, layout.source, layout.moves)
            self._inside, self._agent = maze_render.cell_pixels(height, width)

        with np.errstate(over="ignore"):
            self._keys = _mix64(env_seeds.reshape(-1).astype(np.uint64) + _GOLDEN)
        self._draws = 0  # step() calls so far
        self._position = np.full(num_envs, self._start, np.int64)
        self._visited = np.zeros((num_envs, num_cells), bool)
        self._steps = np.zeros(num_envs, np.int32)
        self._source_return = np.zeros((num_envs, len(maze.reward_low)), np.float64)
        self._done = np.zeros(num_envs, bool)  # the next step autoresets

    def reset(self) -> StepResult:
        """Resets every environment; ``first`` is True everywhere and rewards are 0."""
        self._restart(np.ones(self._num_envs, bool))
        self._was_reset = True
        return self._result(
            reward=np.zeros((self._num_envs, self.spec.num_reward_sources), np.float32),
            terminated=np.zeros(self._num_envs, bool),
            first=np.ones(self._num_envs, bool),
        )

    def _step(self, action: np.ndarray) -> StepResult:
        u_action, u_reward = self._uniforms()
        first = self._done.copy()
        self._restart(first)
        live = ~first
        envs = np.arange(self._num_envs)
        position = self._position

        # As in the authors' code, every step taken on a stochastic cell replaces the action,
        # before anything else (also when the replacement turns out illegal).
        p_down = self._p_down[position]
        stochastic = ~np.isnan(p_down)
        action = np.where(stochastic, np.where(u_action < p_down, DOWN, RIGHT), action)
        self._steps += live
        move = self._moves[position, action]
        target = self._target[position, action]
        exits = live & (move == EXIT)
        enters = live & (move == OPEN) & self._used[target] & ~self._visited[envs, target]
        self._visited[envs[enters], target[enters]] = True
        self._position = np.where(enters, target, position)

        num_sources = self.spec.num_reward_sources
        reward = np.zeros((self._num_envs, num_sources), np.float32)
        source = np.where(enters, self._source[target], -1)
        paid = source >= 0
        value = self._reward_low[source[paid]] + self._reward_width[source[paid]] * u_reward[paid]
        reward[envs[paid], source[paid]] = value.astype(np.float32)
        self._source_return += reward

        # The cap is a termination too, as in the authors' code (every end stored terminal).
        terminated = exits | (live & (self._steps >= self.spec.max_episode_steps))
        self._done = terminated
        return self._result(reward, terminated, first)

    def _restart(self, mask: np.ndarray) -> None:
        self._position[mask] = self._start
        self._visited[mask] = False
        self._visited[mask, self._start] = True
        self._steps[mask] = 0
        self._source_return[mask] = 0.0
        self._done[mask] = False

    def _uniforms(self) -> tuple[np.ndarray, np.ndarray]:
        """This step's (u_action, u_reward), each (P,) float64 in [0, 1)."""
        counters = np.array([2 * self._draws + 1, 2 * self._draws + 2], np.uint64)
        self._draws += 1
        with np.errstate(over="ignore"):
            bits = _mix64(self._keys[:, None] + counters[None, :] * _GOLDEN)
        uniforms = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return uniforms[:, 0], uniforms[:, 1]

    def _observe(self) -> np.ndarray:
        if self._pixels:
            return maze_render.render(
                self._base, self._inside, self._agent, self._visited, self._position
            )
        one_hot = np.zeros((self._num_envs, self._num_cells), np.float32)
        one_hot[np.arange(self._num_envs), self._position] = 1.0
        return np.concatenate([one_hot, self._visited.astype(np.float32)], axis=1)

    def _result(self, reward: np.ndarray, terminated: np.ndarray, first: np.ndarray) -> StepResult:
        def batched(flat: np.ndarray) -> np.ndarray:
            return flat.reshape(self._batch_shape + flat.shape[1:])

        source_return = np.where(terminated[:, None], self._source_return, 0.0)
        return StepResult(
            obs=batched(self._observe()),
            reward=batched(reward),
            terminated=batched(terminated.copy()),
            truncated=np.zeros(self._batch_shape, bool),
            first=batched(first),
            episode_done=batched(terminated.copy()),
            episode_return=batched(source_return.sum(axis=1).astype(np.float32)),
            episode_length=batched(np.where(terminated, self._steps, 0).astype(np.int32)),
            episode_source_return=batched(source_return.astype(np.float32)),
        )


def make_maze_env(
    env_id: str,
    num_seeds: int,
    envs_per_seed: int,
    seed: int,
    max_episode_steps: int | None = None,
    seed_offset: int = 0,
    seed_indices: Sequence[int] | None = None,
) -> MazeEnv:
    """A MazeEnv of ``num_seeds * envs_per_seed`` environments, seeded as envs.make_env:
    environment (s, e) gets ``_env_seeds(seed, seed_indices, envs_per_seed)[s, e]``, where
    seed_indices defaults to ``seed_offset, ..., seed_offset + num_seeds - 1``."""
    spec = maze_spec(env_id, num_seeds, envs_per_seed, max_episode_steps)
    return MazeEnv(
        spec, resolve_env_seeds(seed, num_seeds, envs_per_seed, seed_offset, seed_indices)
    )


def monte_carlo_joint_returns(
    env_id: str, num_episodes: int, gamma: float, seed: int, first_action: int = 0
) -> np.ndarray:
    """(num_episodes, N) float64 discounted joint returns sum_t gamma^t r_t (unclipped) from
    the start state of the policy "first_action, then uniformly random actions".

    Episodes run side by side in one vector-observation pool of the same maze; the
    policy's actions come from a generator seeded by ``seed`` apart from the env seeds.
    """
    version = _version(env_id)
    _check_positive(num_episodes=num_episodes)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    if first_action not in range(NUM_ACTIONS):
        raise ValueError(f"first_action must lie in [0, {NUM_ACTIONS}), got {first_action}")
    env = make_maze_env(f"{_NAMES[version]}MazeVector-v{version}", 1, num_episodes, seed)
    policy = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    returns = np.zeros((num_episodes, env.spec.num_reward_sources), np.float64)
    running = np.ones(num_episodes, bool)
    actions = np.full((1, num_episodes), first_action)
    discount = 1.0
    env.reset()
    while running.any():
        result = env.step(actions)
        returns[running] += discount * result.reward[0, running]
        running &= ~result.terminated[0]
        discount *= gamma
        actions = policy.integers(0, NUM_ACTIONS, (1, num_episodes))
    return returns
