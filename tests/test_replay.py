"""Replay against a brute-force NumPy reference built from the full per-env history."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.replay import Replay, stack_frames

FRAME_SHAPE = (3, 2)
GAMMA = 0.9


@pytest.fixture(autouse=True)
def _strict_ranks():
    with jax.numpy_rank_promotion("raise"):
        yield


def encode(ident: int) -> np.ndarray:
    """A (3, 2) uint8 frame whose bytes spell `ident` (>= 1, so never all zeros)."""
    return np.array([(ident >> (8 * i)) & 255 for i in range(6)], np.uint8).reshape(FRAME_SHAPE)


def decode(frames: np.ndarray) -> np.ndarray:
    """(..., 3, 2) frames -> (...) identities; 0 for a zero frame."""
    flat = frames.reshape(frames.shape[:-2] + (6,)).astype(np.int64)
    return np.sum(flat << (8 * np.arange(6)), axis=-1)


def make_stream(
    seed: int,
    num_steps: int,
    num_envs: int,
    continuous: bool = False,
    life_losses: bool = False,
    reward_shape: tuple[int, ...] = (),
) -> dict:
    """Random envpool-style stream: autoreset after flags, cuts, short episodes, with
    `life_losses` terminations that no autoreset follows (the game goes on), and rewards of
    `reward_shape` (a vector of reward sources).

    Frame of (step j, env e) is encode(j * num_envs + e + 1).
    """
    rng = np.random.default_rng(seed)
    n, e = num_steps, num_envs
    stream = {
        "frame": np.stack([np.stack([encode(j * e + i + 1) for i in range(e)]) for j in range(n)]),
        "action": (
            rng.normal(size=(n, e, 2)).astype(np.float32)
            if continuous
            else rng.integers(0, 5, size=(n, e)).astype(np.int32)
        ),
        "reward": np.zeros((n, e, *reward_shape), np.float32),
        "terminated": np.zeros((n, e), bool),
        "truncated": np.zeros((n, e), bool),
        "first": np.zeros((n, e), bool),
    }
    for env in range(e):
        episode_ended = True
        for j in range(n):
            if episode_ended or rng.random() < 0.06:  # autoreset step, or a cut
                stream["first"][j, env] = True
            else:
                stream["reward"][j, env] = rng.normal(size=reward_shape)
                u = rng.random()
                stream["terminated"][j, env] = u < 0.12 or (life_losses and u >= 0.85)
                stream["truncated"][j, env] = 0.12 <= u < 0.2
                episode_ended = u < 0.2
                continue
            episode_ended = False
    return stream


def row(stream: dict, j: int) -> tuple:
    keys = ("frame", "action", "reward", "terminated", "truncated", "first")
    return tuple(stream[k][j] for k in keys)


def next_is_first(stream: dict, j: int, env: int) -> bool:
    """No transition leaves step j: step j+1 starts an episode (or is not written)."""
    return j + 1 < len(stream["first"]) and bool(stream["first"][j + 1, env])


def return_stops(stream: dict, j: int, env: int) -> bool:
    """A multi-step return that reaches step j stops there."""
    ended = stream["terminated"][j, env] or stream["truncated"][j, env]
    return bool(ended) or next_is_first(stream, j, env)


def valid_starts(stream: dict, written: int, rows: int, frame_stack: int, n: int) -> list:
    """All (k, env) from which a transition may be drawn after `written` adds."""
    in_buffer = min(written, rows)
    oldest = written - in_buffer
    num_envs = stream["first"].shape[1]
    # History rows k-S+1..k still in the ring, rows up to k+n written, a transition leaves k.
    return [
        (k, env)
        for k in range(oldest + frame_stack - 1, written - n)
        for env in range(num_envs)
        if not next_is_first(stream, k, env)
    ]


def reference_obs(stream: dict, j: int, env: int, frame_stack: int) -> np.ndarray:
    if frame_stack == 1:
        return stream["frame"][j, env]
    start = max(i for i in range(j + 1) if stream["first"][i, env])
    frames = [
        stream["frame"][i, env] if i >= start else np.zeros(FRAME_SHAPE, np.uint8)
        for i in range(j - frame_stack + 1, j + 1)
    ]
    return np.stack(frames, axis=-1)


def reference_transition(stream: dict, k: int, env: int, frame_stack: int, n: int) -> dict:
    m = 1
    while m < n and not return_stops(stream, k + m, env):
        m += 1
    rewards = stream["reward"][k + 1 : k + m + 1, env].astype(np.float64)
    terminal = stream["terminated"][k + m, env]
    return {
        "obs_tm1": reference_obs(stream, k, env, frame_stack),
        "action_tm1": stream["action"][k, env],
        "reward_t": np.tensordot(GAMMA ** np.arange(m), rewards, axes=1),  # per source
        "discount_t": 0.0 if terminal else GAMMA**m,
        "obs_t": reference_obs(stream, k + m, env, frame_stack),
        "m": m,
    }


def runner_stacks(stream: dict, frame_stack: int) -> np.ndarray:
    """(N, E, *obs_shape) observations the runner acts on, built with `stack_frames`."""
    frames, first = stream["frame"], stream["first"]
    stack = None if frame_stack == 1 else jnp.zeros((*frames.shape[1:], frame_stack), np.uint8)
    step = jax.jit(stack_frames)
    stacks = []
    for j in range(len(frames)):
        stack = step(stack, frames[j], first[j])
        stacks.append(np.asarray(stack))
    return np.stack(stacks)


def check_batch(batch, stream: dict, written: int, rows: int, frame_stack: int, n: int) -> None:
    """Every sample is a valid transition with the exact fields; all valid ones appear."""
    num_envs = stream["first"].shape[1]
    starts = valid_starts(stream, written, rows, frame_stack, n)
    index = {start: i for i, start in enumerate(starts)}
    expected = [reference_transition(stream, k, env, frame_stack, n) for k, env in starts]
    stacks = runner_stacks(stream, frame_stack)

    obs_tm1, obs_t = np.asarray(batch.obs_tm1), np.asarray(batch.obs_t)
    last = (Ellipsis,) if frame_stack == 1 else (Ellipsis, -1)
    ident_tm1 = decode(obs_tm1[last])
    assert ident_tm1.min() >= 1
    step_tm1, env_tm1 = divmod(ident_tm1 - 1, num_envs)
    step_t, env_t = divmod(decode(obs_t[last]) - 1, num_envs)
    np.testing.assert_array_equal(env_t, env_tm1)
    picks = np.array([index[(k, e)] for k, e in zip(step_tm1, env_tm1, strict=True)])

    def stacked(field):
        return np.stack([expected[i][field] for i in picks])

    np.testing.assert_array_equal(obs_tm1, stacked("obs_tm1"))
    np.testing.assert_array_equal(obs_t, stacked("obs_t"))
    np.testing.assert_array_equal(np.asarray(batch.action_tm1), stacked("action_tm1"))
    np.testing.assert_allclose(batch.reward_t, stacked("reward_t"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch.discount_t, stacked("discount_t"), rtol=1e-6)
    # The runner acts on exactly the observations the replay rebuilds.
    np.testing.assert_array_equal(obs_tm1, stacks[step_tm1, env_tm1])
    np.testing.assert_array_equal(obs_t, stacks[step_t, env_t])

    # Episode semantics, stated directly on the stream for each distinct sampled start.
    _, distinct = np.unique(picks, return_index=True)
    for i in distinct:
        k, env, k_t, discount = step_tm1[i], env_tm1[i], step_t[i], batch.discount_t[i]
        assert not stream["first"][k + 1, env] and not stream["truncated"][k, env]
        assert 1 <= k_t - k <= n
        assert not stream["first"][k + 1 : k_t + 1, env].any(), "crossed into a new episode"
        if stream["terminated"][k_t, env]:
            assert discount == 0.0
        else:  # truncation, cut or full window: bootstrap from the final obs
            assert discount == pytest.approx(GAMMA ** (k_t - k), rel=1e-6)
        if k_t - k < n:
            assert return_stops(stream, k_t, env)
        if frame_stack > 1:  # zeros exactly before the episode start, then steps ..k
            start = max(i for i in range(k + 1) if stream["first"][i, env])
            steps = np.arange(k - frame_stack + 1, k + 1)
            held = decode(np.moveaxis(obs_tm1[i], -1, 0)) - 1 - env
            np.testing.assert_array_equal(held, np.where(steps < start, -1 - env, steps * num_envs))

    counts = np.bincount(picks, minlength=len(starts))
    assert counts.min() > 0, "some valid transitions were never sampled"
    mean = len(picks) / len(starts)
    chi2 = np.sum((counts - mean) ** 2 / mean)
    dof = len(starts) - 1
    assert chi2 < dof + 6 * np.sqrt(2 * dof) + 1, (chi2, dof)


@pytest.mark.parametrize(
    "frame_stack,n_step,continuous,life_losses,reward_shape",
    [
        (1, 1, False, False, ()),
        (1, 3, True, False, ()),
        (4, 1, False, False, ()),
        (4, 3, False, False, ()),
        (1, 1, False, True, ()),
        (4, 3, False, True, ()),
        (1, 3, False, True, (1,)),
        (4, 3, False, False, (3,)),
        (1, 2, True, True, (4,)),
    ],
)
def test_matches_brute_force_through_wraparound(
    frame_stack, n_step, continuous, life_losses, reward_shape
):
    num_envs, rows, num_steps = 3, 20, 75
    seed = frame_stack * 10 + n_step
    stream = make_stream(seed, num_steps, num_envs, continuous, life_losses, reward_shape)
    if life_losses:
        assert (stream["terminated"][:-1] & ~stream["first"][1:]).sum() >= 10
    replay = Replay(
        capacity=rows * num_envs,
        num_envs=num_envs,
        frame_shape=FRAME_SHAPE,
        frame_dtype=np.uint8,
        action_shape=(2,) if continuous else (),
        action_dtype=np.float32 if continuous else np.int32,
        frame_stack=frame_stack,
        n_step=n_step,
        batch_size=4000,
        reward_shape=reward_shape,
    )
    add, sample = jax.jit(replay.add), jax.jit(replay.sample)
    state = replay.init()
    checked = 0
    for j in range(num_steps):
        state = add(state, *row(stream, j))
        written = j + 1
        num_valid = len(valid_starts(stream, written, rows, frame_stack, n_step))
        assert int(state.num_valid) == num_valid
        assert bool(replay.can_sample(state)) == (num_valid > 0)
        assert int(state.num_rows) == min(written, rows)
        if written in (12, rows, rows + 1, 2 * rows + 7, num_steps) and num_valid:
            key = jax.random.key(written)
            batch = sample(state, key, jnp.float32(GAMMA))
            check_batch(batch, stream, written, rows, frame_stack, n_step)
            checked += 1
    assert checked >= 4


def sample_handmade(
    reward, terminated, truncated, first, n_step: int, capacity: int, restart: bool = False
):
    """A batch of 2000 from one env (S = 2, gamma = 1/2) fed the given per-step lists;
    step j's frame is encode(j + 1) and its action j; `restart` restarts the frame stack at
    terminated rows. Returns (replay state, batch)."""
    replay = Replay(
        restart_stack_at_termination=restart,
        capacity=capacity,
        num_envs=1,
        frame_shape=FRAME_SHAPE,
        frame_dtype=np.uint8,
        action_shape=(),
        action_dtype=np.int32,
        frame_stack=2,
        n_step=n_step,
        batch_size=2000,
    )
    state = replay.init()
    for j in range(len(reward)):
        state = replay.add(
            state,
            encode(j + 1)[None],
            np.array([j], np.int32),
            np.array([reward[j]], np.float32),
            np.array([terminated[j]], bool),
            np.array([truncated[j]], bool),
            np.array([first[j]], bool),
        )
    return state, jax.jit(replay.sample)(state, jax.random.key(0), 0.5)


def test_handmade_episode_boundaries():
    """One env, S=2, n=3, gamma=1/2: termination, autoreset, truncation and a cut."""
    # step:        0  1  2  3  4  5  6   7  8   9  10  11   12   13
    reward = [0, 1, 2, 4, 0, 8, 16, 0, 32, 0, 64, 128, 256, 512]
    first = [1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0]  # 9 is a cut: no flag at 8
    terminated = [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    truncated = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    state, batch = sample_handmade(reward, terminated, truncated, first, n_step=3, capacity=16)
    # start k: (reward_t, discount_t, obs_tm1 steps, obs_t steps); -1 is a zero frame.
    expected = {
        1: (2 + 4 / 2, 0.0, (0, 1), (2, 3)),  # terminates at 3
        2: (4, 0.0, (1, 2), (2, 3)),
        4: (8 + 16 / 2, 0.25, (-1, 4), (5, 6)),  # truncated at 6: bootstrap from obs_6
        5: (16, 0.5, (4, 5), (5, 6)),
        7: (32, 0.5, (-1, 7), (7, 8)),  # cut after 8: bootstrap from obs_8
        9: (64 + 64 + 64, 0.125, (-1, 9), (11, 12)),
        10: (128 + 128 + 128, 0.125, (9, 10), (12, 13)),
    }  # never 3, 6, 8 (episode ends), 0 (history not in range), 11-13 (window unwritten)
    assert int(state.num_valid) == len(expected)
    tm1_steps = decode(np.moveaxis(np.asarray(batch.obs_tm1), -1, 1)) - 1
    t_steps = decode(np.moveaxis(np.asarray(batch.obs_t), -1, 1)) - 1
    seen = set()
    for i, k in enumerate(np.asarray(batch.action_tm1)):
        reward_t, discount_t, obs_tm1, obs_t = expected[int(k)]
        assert float(batch.reward_t[i]) == reward_t
        assert float(batch.discount_t[i]) == discount_t
        assert tuple(tm1_steps[i]) == obs_tm1
        assert tuple(t_steps[i]) == obs_t
        seen.add(int(k))
    assert seen == set(expected)


@pytest.mark.parametrize("restart", [False, True])
def test_the_transition_after_a_life_loss_is_kept(restart):
    """A life loss with discount 0 while the game goes on (DQN Zoo; md3qn also restarts the
    frame stack there): the returns that reach the life-loss step stop there, and the
    transition that leaves it is sampled with the reward of the next step. One env, S=2,
    n=2, gamma=1/2."""
    # step:        0  1  2  3  4   5   6   7
    reward = [0, 1, 2, 4, 8, 16, 32, 64]
    terminated = [0, 0, 0, 1, 0, 0, 0, 0]  # a life lost at step 3, no autoreset after it
    first = [1, 0, 0, 0, 0, 0, 0, 0]
    state, batch = sample_handmade(
        reward, terminated, [0] * 8, first, n_step=2, capacity=8, restart=restart
    )
    expected = {  # start k: (reward_t, discount_t, obs_t steps)
        1: (2 + 4 / 2, 0.0, (2, 3)),  # reaches the life loss: no bootstrap
        2: (4, 0.0, (2, 3)),
        3: (8 + 16 / 2, 0.25, (4, 5)),  # leaves the life loss
        4: (16 + 32 / 2, 0.25, (5, 6)),
        5: (32 + 64 / 2, 0.25, (6, 7)),
    }
    assert int(state.num_valid) == len(expected)
    t_steps = decode(np.moveaxis(np.asarray(batch.obs_t), -1, 1)) - 1
    tm1_steps = decode(np.moveaxis(np.asarray(batch.obs_tm1), -1, 1)) - 1
    seen = set()
    for i, k in enumerate(np.asarray(batch.action_tm1)):
        reward_t, discount_t, obs_t = expected[int(k)]
        assert (float(batch.reward_t[i]), float(batch.discount_t[i])) == (reward_t, discount_t)
        # With a restart, the stack at the life-loss step 3 holds no older frame.
        expected_tm1 = (-1 if restart and k == 3 else k - 1, k)
        expected_t = (-1, 3) if restart and obs_t == (2, 3) else obs_t
        assert tuple(tm1_steps[i]) == expected_tm1 and tuple(t_steps[i]) == expected_t
        seen.add(int(k))
    assert seen == set(expected)


def test_vmap_over_seeds_equals_separate_runs():
    num_seeds, num_envs, rows, num_steps = 3, 2, 10, 35
    replay = Replay(
        capacity=rows * num_envs,
        num_envs=num_envs,
        frame_shape=FRAME_SHAPE,
        frame_dtype=np.uint8,
        action_shape=(),
        action_dtype=np.int32,
        frame_stack=4,
        n_step=3,
        batch_size=64,
    )
    streams = [make_stream(100 + s, num_steps, num_envs) for s in range(num_seeds)]
    gammas = jnp.array([0.9, 0.99, 0.5], jnp.float32)
    keys = jax.random.split(jax.random.key(7), num_seeds)

    add, sample = jax.jit(replay.add), jax.jit(replay.sample)
    separate_states = []
    for stream in streams:
        state = replay.init()
        for j in range(num_steps):
            state = add(state, *row(stream, j))
        separate_states.append(state)
    separate_batches = [sample(separate_states[s], keys[s], gammas[s]) for s in range(num_seeds)]

    vadd, vsample = jax.jit(jax.vmap(replay.add)), jax.jit(jax.vmap(replay.sample))
    states = jax.vmap(lambda _: replay.init())(jnp.arange(num_seeds))
    for j in range(num_steps):
        rows_j = [row(stream, j) for stream in streams]
        states = vadd(states, *(np.stack(field) for field in zip(*rows_j, strict=True)))
    batches = vsample(states, keys, gammas)

    for s in range(num_seeds):
        pick = jax.tree.map(lambda x, s=s: x[s], (states, batches))
        jax.tree.map(np.testing.assert_array_equal, pick, (separate_states[s], separate_batches[s]))


def test_nothing_to_sample_returns_and_reports_false():
    replay = Replay(
        capacity=8,
        num_envs=2,
        frame_shape=FRAME_SHAPE,
        frame_dtype=np.uint8,
        action_shape=(),
        action_dtype=np.int32,
        frame_stack=2,
        n_step=1,
    )
    state = replay.init()
    sample = jax.jit(replay.sample)
    assert not replay.can_sample(state)
    sample(state, jax.random.key(0), GAMMA)  # must not loop forever
    always_first = np.ones(2, bool)
    for j in range(9):
        state = replay.add(
            state, np.stack([encode(j + 1)] * 2), np.zeros(2, np.int32), np.zeros(2),
            np.zeros(2, bool), np.zeros(2, bool), always_first,
        )  # fmt: skip
    assert int(state.num_rows) == 4 and not replay.can_sample(state)
    sample(state, jax.random.key(0), GAMMA)


def test_stack_frames_single_frame_passthrough():
    frame = jnp.arange(8.0).reshape(2, 4)
    first = jnp.array([True, False])
    assert stack_frames(None, frame, first) is frame
    assert stack_frames(jnp.zeros((2, 4)), frame, first) is frame
    with pytest.raises(ValueError, match="stack shape"):
        stack_frames(jnp.zeros((2, 5, 4)), frame, first)


def test_bytes_per_seed():
    def itemsize(dtype):
        return np.dtype(dtype).itemsize

    replay = Replay(
        capacity=1000,
        num_envs=1,
        frame_shape=(84, 84),
        frame_dtype=np.uint8,
        action_shape=(),
        action_dtype=np.int32,
        frame_stack=4,
        n_step=3,
    )
    per_row = 84 * 84 * itemsize(np.uint8) + itemsize(np.int32) + itemsize(np.float32)
    per_row += 3 * itemsize(np.bool_)  # terminated, truncated, first
    expected = 1000 * per_row
    assert abs(replay.bytes_per_seed() - expected) <= 0.01 * expected
    assert abs(replay.bytes_per_seed() - 1000 * 7056) <= 0.01 * 1000 * 7056
    assert replay.obs_shape == (84, 84, 4)
    atari = Replay(
        capacity=1_000_000,
        num_envs=8,
        frame_shape=(84, 84),
        frame_dtype=np.uint8,
        action_shape=(),
        action_dtype=np.int32,
        frame_stack=4,
    )
    assert 1_000_000 * 7056 <= atari.bytes_per_seed() <= 1.01 * 1_000_000 * 7056
    # A reward vector of 4 sources adds 3 floats per stored step; frames are still stored once.
    four_sources = dataclasses.replace(atari, reward_shape=(4,))
    assert four_sources.bytes_per_seed() - atari.bytes_per_seed() == 1_000_000 * 3 * 4


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"capacity": 0}, "positive replay capacity"),
        ({"capacity": -4}, "positive replay capacity"),
        ({"capacity": 101}, "multiple of num_envs"),
        ({"n_step": 0}, "n_step >= 1"),
        ({"frame_stack": 0}, "frame_stack >= 1"),
        ({"batch_size": 0}, "batch_size >= 1"),
        ({"capacity": 12, "frame_stack": 4, "n_step": 3}, "raise capacity to at least 28"),
        ({"num_envs": 0}, "at least 1 environment"),
    ],
)
def test_invalid_configs_raise(overrides, message):
    kwargs = {
        "capacity": 100,
        "num_envs": 4,
        "frame_shape": FRAME_SHAPE,
        "frame_dtype": np.uint8,
        "action_shape": (),
        "action_dtype": np.int32,
    }
    with pytest.raises(ValueError, match=message):
        Replay(**(kwargs | overrides))
