"""Tests of envs.maze: the parsed layouts, hand-written trajectories, and a plain-Python
single-environment reference written from SPEC.md's rules stepped beside the pool."""

import envpool
import numpy as np
import pytest

from envs import maze, maze_render
from envs.factory import _env_seeds
from envs.maze import (
    MAZE_IDS,
    check_maze_id,
    is_maze_id,
    make_maze_env,
    maze_spec,
    monte_carlo_joint_returns,
    parse_layout,
)

UP, LEFT, DOWN, RIGHT = 0, 1, 2, 3
DELTA = {UP: (-1, 0), LEFT: (0, -1), DOWN: (1, 0), RIGHT: (0, 1)}
PIXEL_IDS = ("MultiRewardMaze-v0", "ExclusiveMaze-v1", "InclusiveMaze-v2", "ConstraintMaze-v3")
VECTOR_IDS = tuple(name.replace("Maze-", "MazeVector-") for name in PIXEL_IDS)
# SPEC.md, "Maze tasks": reward ranges per source, v3's stochastic cells, starts.
REWARD_RANGES = {
    0: [(0.2, 0.4), (0.8, 1.0), (0.3, 0.5), (0.5, 0.7)],
    1: [(0.2, 0.6), (0.4, 0.9)],
    2: [(0.2, 0.6), (0.4, 0.9)],
    3: [(1.0, 1.0)] * 3,
}
STOCHASTIC = {3: {(1, 0): 1 / 3, (2, 1): 1 / 2}}
STARTS = {0: (2, 1), 1: (0, 0), 2: (0, 0), 3: (0, 0)}
CAP = 150

# ---------------------------------------------------------------- reference ----------
MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _uniform(env_seed: int, draw: int) -> float:
    """Draw number ``draw`` (1, 2, ...) of an environment, as envs.maze documents it."""
    key = _mix((env_seed + GOLDEN) & MASK)
    return (_mix((key + draw * GOLDEN) & MASK) >> 11) / 2**53


class RefMaze:
    """One maze, read straight from its art at every move (no parsed arrays)."""

    def __init__(self, version: int, env_seed: int, cap: int = CAP) -> None:
        lines = maze._MAZES[version].art.strip("\n").split("\n")
        self.lines = [line.ljust(21) for line in lines]
        self.version, self.env_seed, self.cap = version, env_seed, cap
        self.num_sources = len(REWARD_RANGES[version])
        self.reset()

    def content(self, row: int, col: int) -> str:
        return self.lines[2 * row + 1][4 * col + 1 : 4 * col + 4].strip()

    def may_cross(self, row: int, col: int, action: int) -> bool:
        if action in (UP, DOWN):
            line = 2 * row + (0 if action == UP else 2)
            arrow = "^" if action == UP else "v"
            return self.lines[line][4 * col + 1 : 4 * col + 4].strip() in ("", arrow)
        char = self.lines[2 * row + 1][4 * col + (0 if action == LEFT else 4)]
        return char in (" ", "<" if action == LEFT else ">")

    def reset(self) -> None:
        self.pos = STARTS[self.version]
        self.visited = {self.pos}
        self.t = 0
        self.returns = [0.0] * self.num_sources
        self.done = False

    def step(self, action: int, call: int) -> tuple[list[float], bool]:
        """The pool's ``call``-th step() (0-based) for this environment, not an autoreset."""
        u_action = _uniform(self.env_seed, 2 * call + 1)
        u_reward = _uniform(self.env_seed, 2 * call + 2)
        p_down = STOCHASTIC.get(self.version, {}).get(self.pos)
        if p_down is not None:
            action = DOWN if u_action < p_down else RIGHT
        self.t += 1
        reward = [0.0] * self.num_sources
        exited = False
        row, col = self.pos
        new_row, new_col = row + DELTA[action][0], col + DELTA[action][1]
        if self.may_cross(row, col, action):
            if not (0 <= new_row < 5 and 0 <= new_col < 5):
                exited = True
            elif self.content(new_row, new_col) != "###" and (new_row, new_col) not in self.visited:
                self.pos = (new_row, new_col)
                self.visited.add(self.pos)
                content = self.content(new_row, new_col)
                if content.isdigit():
                    low, high = REWARD_RANGES[self.version][int(content)]
                    reward[int(content)] = float(np.float32(low + (high - low) * u_reward))
        for n in range(self.num_sources):
            self.returns[n] += reward[n]
        self.done = exited or self.t >= self.cap
        return reward, self.done

    def vector_obs(self) -> np.ndarray:
        obs = np.zeros(50, np.float32)
        obs[self.pos[0] * 5 + self.pos[1]] = 1.0
        for row, col in self.visited:
            obs[25 + row * 5 + col] = 1.0
        return obs


# ---------------------------------------------------------------- helpers ------------


def position(obs: np.ndarray) -> tuple[int, int]:
    return divmod(int(np.argmax(obs[:25])), 5)


def run_one(env_id: str, actions: list[int], seed: int = 0, **kwargs) -> list:
    """Reset plus one step per action of a 1x1 pool; the list of StepResults."""
    env = make_maze_env(env_id, 1, 1, seed, **kwargs)
    results = [env.reset()]
    for action in actions:
        results.append(env.step(np.array([[action]])))
    return results


# ---------------------------------------------------------------- layouts ------------

# (cell, action, expected code) read off the SPEC's drawings by hand.
BL, OP, EX = maze_render.BLOCKED, maze_render.OPEN, maze_render.EXIT
HAND_EDGES = {
    0: [((0, 0), UP, EX), ((0, 0), LEFT, BL), ((0, 3), RIGHT, BL), ((0, 4), RIGHT, EX),
        ((0, 4), DOWN, OP), ((2, 3), RIGHT, BL), ((3, 0), LEFT, EX), ((4, 2), DOWN, EX),
        ((2, 1), DOWN, BL), ((2, 2), DOWN, OP)],
    1: [((0, 1), DOWN, OP), ((1, 1), UP, BL), ((1, 0), RIGHT, OP), ((1, 1), LEFT, BL),
        ((4, 4), RIGHT, EX), ((4, 3), DOWN, BL), ((0, 1), RIGHT, BL), ((3, 4), DOWN, OP),
        ((4, 4), UP, BL)],
    2: [((0, 3), DOWN, OP), ((1, 3), UP, BL), ((1, 2), RIGHT, OP), ((1, 3), LEFT, BL),
        ((3, 1), LEFT, OP), ((3, 0), RIGHT, BL), ((3, 4), LEFT, OP), ((3, 3), RIGHT, BL),
        ((3, 0), LEFT, EX), ((4, 0), DOWN, EX), ((4, 1), LEFT, OP), ((4, 0), RIGHT, BL),
        ((2, 3), DOWN, OP), ((3, 3), UP, BL), ((1, 4), RIGHT, BL)],
    3: [((0, 0), RIGHT, OP), ((0, 1), LEFT, BL), ((0, 0), DOWN, OP), ((1, 0), UP, BL),
        ((2, 4), LEFT, OP), ((2, 3), RIGHT, BL), ((4, 4), RIGHT, EX), ((4, 3), DOWN, EX),
        ((4, 4), DOWN, BL), ((3, 3), DOWN, OP), ((4, 3), UP, BL), ((1, 1), RIGHT, BL),
        ((2, 1), RIGHT, OP), ((0, 2), DOWN, OP)],
}  # fmt: skip
HAND_CELLS = {  # unused cells and reward cells per source
    0: ({(1, 0), (1, 1), (1, 2), (2, 0), (2, 4), (3, 3), (3, 4), (4, 0), (4, 1), (4, 3), (4, 4)},
        [{(0, 0)}, {(0, 2)}, {(2, 3)}, {(3, 2)}]),
    1: ({(0, 2), (0, 3), (0, 4), (1, 3), (1, 4), (2, 0), (2, 4), (3, 0), (3, 1), (4, 0), (4, 1),
         (4, 2)},
        [{(0, 1), (1, 2), (2, 3), (3, 4)}, {(1, 0), (2, 1), (3, 2), (4, 3)}]),
    2: ({(0, 4), (2, 0), (2, 1), (2, 2), (4, 4)},
        [{(0, 1), (1, 4), (4, 2)}, {(0, 2), (2, 4), (4, 1)}]),
    3: (set(), [{(3, 1), (3, 4)}, {(0, 3), (2, 1), (3, 2)}, {(2, 0), (4, 0), (4, 1), (4, 4)}]),
}  # fmt: skip


@pytest.mark.parametrize("version", range(4))
def test_parsed_layouts_match_hand_read_cells_and_edges(version):
    layout = maze._layout(version)
    assert layout.start == STARTS[version]
    unused, sources = HAND_CELLS[version]
    assert {tuple(c) for c in np.argwhere(~layout.used)} == unused
    for n, cells in enumerate(sources):
        assert {tuple(c) for c in np.argwhere(layout.source == n)} == cells
    assert layout.source.max() == len(sources) - 1
    for cell, action, code in HAND_EDGES[version]:
        assert layout.moves[cell][action] == code, (cell, action)


def test_parser_reads_every_edge_kind_and_rejects_bad_art():
    art = "+   +---+\n| S > 0 |\n+ ^ + v +\n| . < .\n+---+---+\n"
    layout = parse_layout(art)
    assert layout.start == (0, 0) and layout.source.tolist() == [[-1, 0], [-1, -1]]
    assert layout.moves[0, 0].tolist() == [EX, BL, BL, OP]  # up exit, left wall, ^ below, > right
    assert layout.moves[0, 1].tolist() == [BL, BL, OP, BL]
    assert layout.moves[1, 0].tolist() == [OP, BL, BL, BL]
    assert layout.moves[1, 1].tolist() == [BL, OP, BL, EX]  # the padded right border is open
    with pytest.raises(ValueError, match="no start"):
        parse_layout(art.replace("S", "."))
    with pytest.raises(ValueError, match="unknown content"):
        parse_layout(art.replace("0", "x"))


# ---------------------------------------------------------------- trajectories -------

# (version, actions, positions after each action, source paid at each step or None); an
# episode ending with an exit keeps the last position.
TRAJECTORIES = [
    (0, [UP, LEFT, DOWN, RIGHT, RIGHT, LEFT, UP, UP, LEFT, LEFT, LEFT, UP],
     [(2, 1), (2, 1), (2, 1), (2, 2), (2, 3), (2, 3), (1, 3), (0, 3), (0, 2), (0, 1), (0, 0),
      (0, 0)],
     [None, None, None, None, 2, None, None, None, 1, None, 0, None]),
    (0, [RIGHT, DOWN, LEFT, RIGHT, LEFT, LEFT],
     [(2, 2), (3, 2), (3, 1), (3, 1), (3, 0), (3, 0)], [None, 3, None, None, None, None]),
    (0, [RIGHT, DOWN, DOWN, DOWN], [(2, 2), (3, 2), (4, 2), (4, 2)], [None, 3, None, None]),
    (0, [RIGHT, RIGHT, UP, RIGHT, RIGHT, UP, LEFT, RIGHT],
     [(2, 2), (2, 3), (1, 3), (1, 4), (1, 4), (0, 4), (0, 4), (0, 4)],
     [None, 2, None, None, None, None, None, None]),
    (1, [DOWN, RIGHT, RIGHT, DOWN, RIGHT, DOWN, RIGHT, DOWN, RIGHT],
     [(1, 0), (1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (4, 4)],
     [1, None, 0, None, 0, None, 0, None, None]),
    (2, [DOWN, RIGHT, RIGHT, RIGHT, LEFT, RIGHT, DOWN, DOWN, LEFT, RIGHT, UP, DOWN, LEFT, LEFT,
         LEFT, DOWN],
     [(1, 0), (1, 1), (1, 2), (1, 3), (1, 3), (1, 4), (2, 4), (3, 4), (3, 3), (3, 3), (3, 3),
      (4, 3), (4, 2), (4, 1), (4, 0), (4, 0)],
     [None, None, None, None, None, 0, 1, None, None, None, None, None, 0, 1, None, None]),
    (2, [RIGHT, RIGHT, RIGHT, DOWN, DOWN, DOWN, LEFT, LEFT, LEFT, RIGHT, DOWN, RIGHT, LEFT, DOWN],
     [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1), (3, 0), (3, 0), (4, 0),
      (4, 0), (4, 0), (4, 0)],
     [0, 1, None, None, None, None, None, None, None, None, None, None, None, None]),
    (3, [UP, LEFT, RIGHT, LEFT, DOWN, RIGHT, DOWN, RIGHT, RIGHT, UP, DOWN, LEFT, DOWN, DOWN,
         RIGHT, RIGHT],
     [(0, 0), (0, 0), (0, 1), (0, 1), (0, 1), (0, 2), (1, 2), (1, 3), (1, 4), (1, 4), (2, 4),
      (2, 3), (3, 3), (4, 3), (4, 4), (4, 4)],
     [None] * 14 + [2, None]),
    (3, [RIGHT, RIGHT, DOWN, RIGHT, RIGHT, DOWN, LEFT, DOWN, DOWN, DOWN],
     [(0, 1), (0, 2), (1, 2), (1, 3), (1, 4), (2, 4), (2, 3), (3, 3), (4, 3), (4, 3)],
     [None] * 10),
]  # fmt: skip


@pytest.mark.parametrize("version, actions, positions, paid", TRAJECTORIES)
def test_hand_written_trajectories_end_by_an_exit(version, actions, positions, paid):
    results = run_one(VECTOR_IDS[version], actions, seed=version)
    num_sources = len(REWARD_RANGES[version])
    visited = {STARTS[version]}
    for k, (result, expected, source) in enumerate(
        zip(results[1:], positions, paid, strict=True), 1
    ):
        obs = result.obs[0, 0]
        assert position(obs) == expected, f"step {k}"
        visited.add(expected)
        assert {divmod(int(i), 5) for i in np.flatnonzero(obs[25:])} == visited
        reward = result.reward[0, 0]
        assert reward.shape == (num_sources,) and reward.dtype == np.float32
        if source is None:
            assert not reward.any(), f"step {k}"
        else:
            assert np.count_nonzero(reward) == 1
            low, high = REWARD_RANGES[version][source]
            assert low <= reward[source] <= high
        last = k == len(actions)
        assert result.terminated[0, 0] == last and result.episode_done[0, 0] == last
        assert not result.truncated.any() and not result.first.any()
    end = results[-1]
    paid_total = np.sum([r.reward[0, 0] for r in results[1:]], axis=0, dtype=np.float64)
    assert end.episode_length[0, 0] == len(actions)
    np.testing.assert_allclose(end.episode_source_return[0, 0], paid_total, rtol=1e-6)
    np.testing.assert_allclose(end.episode_return[0, 0], paid_total.sum(), rtol=1e-6)


def test_one_way_edges_block_the_other_way_into_unvisited_cells():
    # v1: (0,1) down into (1,1); (1,1) left is "1 >" (into unvisited (1,0)) and up is "v".
    actions = [RIGHT, RIGHT, DOWN, LEFT, UP, DOWN, RIGHT, LEFT, UP]
    positions = [(0, 1), (0, 1), (1, 1), (1, 1), (1, 1), (2, 1), (2, 2), (2, 2), (2, 2)]
    results = run_one(VECTOR_IDS[1], actions)
    assert [position(r.obs[0, 0]) for r in results[1:]] == positions
    assert not any(r.terminated.any() for r in results)


def test_cap_is_a_termination_and_max_episode_steps_overrides_it():
    results = run_one(VECTOR_IDS[0], [UP] * (CAP + 1))  # up from the start is a wall
    assert not any(r.terminated.any() or r.episode_done.any() for r in results[1:CAP])
    end = results[CAP]
    assert end.terminated[0, 0] and end.episode_done[0, 0] and not end.truncated.any()
    assert end.episode_length[0, 0] == CAP and end.episode_return[0, 0] == 0.0
    assert results[CAP + 1].first[0, 0]
    assert maze_spec(VECTOR_IDS[0], 1, 1).max_episode_steps == CAP

    results = run_one(VECTOR_IDS[0], [UP] * 6, max_episode_steps=5)
    assert [bool(r.terminated[0, 0]) for r in results[1:]] == [False] * 4 + [True, False]
    assert results[5].episode_length[0, 0] == 5 and results[6].first[0, 0]


def test_the_step_that_reaches_the_cap_still_moves_and_pays():
    end = run_one(VECTOR_IDS[0], [RIGHT, RIGHT], max_episode_steps=2)[2]
    assert end.terminated[0, 0] and position(end.obs[0, 0]) == (2, 3)
    assert 0.3 <= end.reward[0, 0, 2] <= 0.5
    assert end.episode_source_return[0, 0, 2] == end.reward[0, 0, 2]


def test_autoreset_ignores_the_action_and_returns_the_reset_observation():
    results = run_one(VECTOR_IDS[0], [RIGHT, DOWN, DOWN, DOWN, RIGHT, RIGHT])
    reset, ended, restarted, moved = results[0], results[4], results[5], results[6]
    assert ended.terminated[0, 0]
    np.testing.assert_array_equal(restarted.obs, reset.obs)
    assert restarted.first[0, 0] and not restarted.terminated.any()
    assert not restarted.reward.any() and not restarted.episode_done.any()
    assert restarted.episode_length[0, 0] == 0 and not restarted.episode_source_return.any()
    assert position(moved.obs[0, 0]) == (2, 2) and not moved.first.any()


def test_reset_observations():
    for version, env_id in enumerate(VECTOR_IDS):
        result = make_maze_env(env_id, 2, 3, 0).reset()
        assert result.first.all() and not result.reward.any()
        start = STARTS[version][0] * 5 + STARTS[version][1]
        expected = np.zeros(50, np.float32)
        expected[[start, 25 + start]] = 1.0
        assert result.obs.shape == (2, 3, 50) and result.obs.dtype == np.float32
        np.testing.assert_array_equal(result.obs, np.broadcast_to(expected, (2, 3, 50)))


# ---------------------------------------------------------------- reference ----------


@pytest.mark.parametrize("version", range(4))
def test_pool_matches_the_reference_on_random_actions(version):
    rng = np.random.default_rng(100 + version)
    num_seeds, envs_per_seed, seed = 2, 3, 11
    env = make_maze_env(VECTOR_IDS[version], num_seeds, envs_per_seed, seed)
    seeds = _env_seeds(seed, range(num_seeds), envs_per_seed)
    np.testing.assert_array_equal(env.env_seeds, seeds)
    refs = [[RefMaze(version, int(seeds[s, e])) for e in range(envs_per_seed)]
            for s in range(num_seeds)]  # fmt: skip
    env.reset()
    episodes = 0
    for call in range(600):
        # Mostly moves towards the bottom right, so that episodes get long enough.
        actions = rng.choice(4, (num_seeds, envs_per_seed), p=[0.15, 0.15, 0.35, 0.35])
        result = env.step(actions)
        for s in range(num_seeds):
            for e in range(envs_per_seed):
                ref = refs[s][e]
                first = ref.done
                if first:
                    ref.reset()
                    reward, terminated = [0.0] * ref.num_sources, False
                else:
                    reward, terminated = ref.step(int(actions[s, e]), call)
                assert result.first[s, e] == first
                np.testing.assert_array_equal(result.obs[s, e], ref.vector_obs())
                np.testing.assert_allclose(result.reward[s, e], reward, rtol=1e-6)
                assert result.terminated[s, e] == terminated == result.episode_done[s, e]
                if terminated:
                    episodes += 1
                    assert result.episode_length[s, e] == ref.t
                    np.testing.assert_allclose(
                        result.episode_source_return[s, e], ref.returns, rtol=1e-6
                    )
                    np.testing.assert_allclose(
                        result.episode_return[s, e],
                        result.episode_source_return[s, e].sum(),
                        rtol=1e-6,
                    )
                else:
                    assert result.episode_length[s, e] == 0 and result.episode_return[s, e] == 0
        assert not result.truncated.any()
    assert episodes > 20


def test_reward_draws_lie_in_their_ranges_and_belong_to_their_source():
    rng = np.random.default_rng(5)
    for version, env_id in enumerate(VECTOR_IDS):
        env = make_maze_env(env_id, 1, 200, 3)
        env.reset()
        source_map = maze._layout(version).source.reshape(-1)
        paid = np.zeros(len(REWARD_RANGES[version]), int)
        for _ in range(60):
            result = env.step(rng.integers(0, 4, (1, 200)))
            reward = result.reward[0]
            entered = np.argmax(result.obs[0, :, :25], axis=1)
            for n, (low, high) in enumerate(REWARD_RANGES[version]):
                pays = reward[:, n] != 0
                assert np.all((reward[pays, n] >= low) & (reward[pays, n] <= high))
                assert np.all(source_map[entered[pays]] == n)
                paid[n] += pays.sum()
            assert np.all(np.count_nonzero(reward, axis=1) <= 1)
        assert paid.min() > 0, paid


def test_v3_stochastic_cells_replace_the_action_with_the_documented_frequencies():
    """Per environment the outcome is a Bernoulli(p) draw; 4 standard errors of the mean
    bound the empirical frequency (a false failure has probability about 6e-5)."""
    rng = np.random.default_rng(0)
    num = 4000
    env = make_maze_env(VECTOR_IDS[3], 1, num, 1)
    env.reset()
    env.step(np.full((1, num), DOWN))  # (0,0) -> (1,0)
    result = env.step(rng.integers(0, 4, (1, num)))  # the chosen action is ignored here
    cells = [position(obs) for obs in result.obs[0]]
    went_down = np.array([cell == (2, 0) for cell in cells])
    assert all(cell in ((2, 0), (1, 1)) for cell in cells)
    np.testing.assert_array_equal(result.reward[0, :, 2] == 1.0, went_down)
    stderr = np.sqrt(1 / 3 * 2 / 3 / num)
    assert abs(went_down.mean() - 1 / 3) < 4 * stderr

    result = env.step(np.full((1, num), DOWN))  # (1,1) -> (2,1); (2,0) -> (3,0)
    at_21 = np.array([position(obs) == (2, 1) for obs in result.obs[0]])
    np.testing.assert_array_equal(at_21, ~went_down)
    result = env.step(rng.integers(0, 4, (1, num)))
    cells = [position(obs) for obs in result.obs[0, at_21]]
    assert all(cell in ((3, 1), (2, 2)) for cell in cells)
    down = np.array([cell == (3, 1) for cell in cells])
    np.testing.assert_array_equal(result.reward[0, at_21, 0] == 1.0, down)
    assert abs(down.mean() - 0.5) < 4 * np.sqrt(0.25 / at_21.sum())


# ---------------------------------------------------------------- seeding ------------


def _stream(env, actions):
    env.reset()
    return [env.step(a) for a in actions]


def test_same_seed_same_stream_and_another_seed_another():
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 4, (200, 2, 4))
    first = _stream(make_maze_env(VECTOR_IDS[1], 2, 4, 9), actions)
    again = _stream(make_maze_env(VECTOR_IDS[1], 2, 4, 9), actions)
    other = _stream(make_maze_env(VECTOR_IDS[1], 2, 4, 10), actions)
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    rewards = np.stack([r.reward for r in first])
    assert not np.array_equal(rewards, np.stack([r.reward for r in other]))


def test_an_environment_does_not_depend_on_the_pool_around_it():
    rng = np.random.default_rng(2)
    actions = rng.integers(0, 4, (300, 3, 4))
    big = _stream(make_maze_env(VECTOR_IDS[3], 3, 4, 7), actions)
    small = _stream(make_maze_env(VECTOR_IDS[3], 1, 4, 7, seed_indices=[2]), actions[:, 2:3])
    offset = _stream(make_maze_env(VECTOR_IDS[3], 1, 4, 7, seed_offset=2), actions[:, 2:3])
    for b, s, o in zip(big, small, offset, strict=True):
        for x, y, z in zip(b, s, o, strict=True):
            np.testing.assert_array_equal(x[2:3], y)
            np.testing.assert_array_equal(y, z)
    assert sum(r.episode_done[2].sum() for r in big) > 5


# ---------------------------------------------------------------- rendering ----------


def _decode(frame: np.ndarray, layout) -> tuple[tuple[int, int], set, set]:
    """(agent cell, visited cells, cells showing a reward) read from a frame."""
    agent, visited, rewards = None, set(), set()
    for row in range(5):
        for col in range(5):
            y, x = 2 + 16 * row, 2 + 16 * col
            if tuple(frame[y + 8, x + 8]) == maze_render.AGENT:
                assert agent is None
                agent = (row, col)
            if tuple(frame[y + 2, x + 2]) == maze_render.VISITED:
                visited.add((row, col))
            source = layout.source[row, col]
            if source >= 0 and tuple(frame[y + 6, x + 6]) == maze_render.SOURCE_COLOURS[source]:
                rewards.add((row, col))
    return agent, visited, rewards


@pytest.mark.parametrize("version", range(4))
def test_frames_show_the_state_of_the_vector_pool(version):
    rng = np.random.default_rng(7 + version)
    pixels = make_maze_env(PIXEL_IDS[version], 1, 3, 4)
    vector = make_maze_env(VECTOR_IDS[version], 1, 3, 4)
    assert pixels.spec.frame_shape == (84, 84, 3) and pixels.spec.frame_dtype == np.uint8
    layout = maze._layout(version)
    reward_cells = {tuple(c) for c in np.argwhere(layout.source >= 0)}
    a, b = pixels.reset(), vector.reset()
    for _ in range(80):
        assert a.obs.shape == (1, 3, 84, 84, 3) and a.obs.dtype == np.uint8
        for x, y in zip(a[1:], b[1:], strict=True):
            np.testing.assert_array_equal(x, y)
        for e in range(3):
            agent, visited, rewards = _decode(a.obs[0, e], layout)
            obs = b.obs[0, e]
            expected_visited = {divmod(int(i), 5) for i in np.flatnonzero(obs[25:])}
            assert agent == position(obs) and visited == expected_visited
            assert rewards == reward_cells - expected_visited
        actions = rng.integers(0, 4, (1, 3))
        a, b = pixels.step(actions), vector.step(actions)


def test_distinct_states_and_mazes_render_differently():
    frames = [make_maze_env(env_id, 1, 1, 0).reset().obs[0, 0] for env_id in PIXEL_IDS]
    for i in range(4):
        for j in range(i):
            assert not np.array_equal(frames[i], frames[j])
    results = run_one(PIXEL_IDS[1], [RIGHT, DOWN])  # (0,1) source 0 consumed, then (1,1)
    for i in range(3):
        for j in range(i):
            assert not np.array_equal(results[i].obs, results[j].obs)
    # v1: unused (0, 4) and (0, 2), source 1 at (1, 0), a wall above (0, 0); v0: an exit
    # above (0, 0) leaves the border white.
    assert tuple(frames[1][2 + 8, 2 + 64 + 8]) == maze_render.UNUSED
    assert tuple(frames[1][2 + 8, 2 + 32 + 8]) == maze_render.UNUSED
    assert tuple(frames[1][2 + 16 + 6, 2 + 6]) == maze_render.SOURCE_COLOURS[1]
    assert tuple(frames[1][2, 2 + 8]) == maze_render.WALL
    assert tuple(frames[0][2, 2 + 8]) == maze_render.FLOOR


# ---------------------------------------------------------------- ids and errors -----


def test_ids_and_specs():
    assert set(MAZE_IDS) == set(PIXEL_IDS) | set(VECTOR_IDS)
    for version, (pixel_id, vector_id) in enumerate(zip(PIXEL_IDS, VECTOR_IDS, strict=True)):
        for env_id in (pixel_id, vector_id):
            assert is_maze_id(env_id)
            check_maze_id(env_id)
            spec = maze_spec(env_id, 2, 3, max_episode_steps=40)
            assert spec.suite == "maze" and spec.reward_shape == (len(REWARD_RANGES[version]),)
            assert spec.num_actions == 4 and spec.action_shape == () and spec.frame_stack == 1
            assert spec.frames_per_step == 1 and spec.max_episode_steps == 40
            assert (spec.num_seeds, spec.envs_per_seed) == (2, 3)
            assert make_maze_env(env_id, 2, 3, 0, max_episode_steps=40).spec == spec
        assert maze_spec(vector_id, 1, 1).frame_shape == (50,)
        assert maze_spec(vector_id, 1, 1).frame_dtype == np.float32


def test_misspelt_ids_are_caught_with_close_names():
    for env_id, close in (
        ("ExclusiveMaze-v0", "ExclusiveMaze-v1"),
        ("ExclusivMaze-v1", "ExclusiveMaze-v1"),
        ("MultiRewardMazeVec-v0", "MultiRewardMazeVector-v0"),
        ("inclusivemazevector-v2", "InclusiveMazeVector-v2"),
    ):
        assert is_maze_id(env_id)
        with pytest.raises(ValueError, match="valid maze ids") as error:
            check_maze_id(env_id)
        assert f"did you mean '{close}'" in str(error.value)
    with pytest.raises(ValueError, match="unknown maze id"):
        make_maze_env("InclusiveMaze-v9", 1, 1, 0)
    for env_id in ("Pong-v5", "CartPole-v1", "Maze-v0", "MazeEasy-v0", *envpool.list_all_envs()):
        assert not is_maze_id(env_id), env_id


def test_bad_arguments_and_actions_are_rejected():
    for kwargs in (
        dict(num_seeds=0),
        dict(envs_per_seed=1.5),
        dict(seed=-1),
        dict(seed_offset=-2),
        dict(max_episode_steps=0),
        dict(seed_indices=[0, 1]),
    ):
        args = dict(env_id=VECTOR_IDS[0], num_seeds=1, envs_per_seed=2, seed=0) | kwargs
        with pytest.raises(ValueError):
            make_maze_env(**args)
    env = make_maze_env(VECTOR_IDS[0], 2, 3, 0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 3), int))
    env.reset()
    for bad in (np.zeros((3, 2), int), np.zeros(6, int), np.full((2, 3), 4), np.full((2, 3), -1)):
        with pytest.raises(ValueError):
            env.step(bad)
    with pytest.raises(ValueError, match="integers"):
        env.step(np.zeros((2, 3), np.float32))
    env.step(np.zeros((2, 3), np.int32))
    env.close()


# ---------------------------------------------------------------- Monte Carlo --------


def test_monte_carlo_discounts_from_the_first_action():
    returns = monte_carlo_joint_returns(PIXEL_IDS[1], 300, 0.0, seed=0, first_action=RIGHT)
    assert returns.shape == (300, 2)
    assert np.all((returns[:, 0] >= 0.2) & (returns[:, 0] <= 0.6)) and not returns[:, 1].any()
    assert not monte_carlo_joint_returns(PIXEL_IDS[1], 50, 0.0, seed=0, first_action=UP).any()
    again = monte_carlo_joint_returns(PIXEL_IDS[1], 300, 0.0, seed=0, first_action=RIGHT)
    np.testing.assert_array_equal(returns, again)
    # v3 pays 1.0 per reward cell: with gamma 1 each component counts the cells entered.
    counts = monte_carlo_joint_returns(VECTOR_IDS[3], 200, 1.0, seed=1)
    np.testing.assert_array_equal(counts, np.round(counts))
    assert np.all(counts <= [2, 3, 4])


@pytest.mark.parametrize("version", [0, 2])
def test_monte_carlo_mean_agrees_with_the_reference(version):
    """Means of two independent samples of 3000 episodes: their difference has standard
    error sqrt(var_a / n + var_b / n); 4 of them bound it."""
    num, gamma = 3000, 0.9
    returns = monte_carlo_joint_returns(PIXEL_IDS[version], num, gamma, seed=3, first_action=0)
    rng = np.random.default_rng(version)
    reference = np.zeros_like(returns)
    for i in range(num):
        ref = RefMaze(version, env_seed=int(rng.integers(2**31)))
        call, action = 0, UP
        while not ref.done:
            reward, _ = ref.step(action, call)
            reference[i] += gamma**call * np.asarray(reward)
            call, action = call + 1, int(rng.integers(4))
    stderr = np.sqrt(returns.var(axis=0) / num + reference.var(axis=0) / num)
    assert np.all(np.abs(returns.mean(axis=0) - reference.mean(axis=0)) <= 4 * stderr + 1e-12)
