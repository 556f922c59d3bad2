"""Tests of envs.factory against raw envpool pools stepped by hand."""

import envpool
import numpy as np
import pytest

from envs import ATARI_PROTOCOLS, check_env_id, env_spec, make_env
from envs.decomposition import decompose

# The pool options each Atari protocol must translate to, written out independently of
# envs.factory (SPEC.md, "Atari protocols").
_ATARI_COMMON = dict(
    stack_num=1,
    gray_scale=True,
    img_height=84,
    img_width=84,
    frame_skip=4,
    use_fire_reset=False,
    full_action_space=False,
    reward_clip=False,
    max_episode_steps=27_000,
)
_RAW_ATARI_OPTIONS = {
    "dopamine": dict(
        _ATARI_COMMON,
        repeat_action_probability=0.25,
        noop_max=1,
        episodic_life=False,
        use_inter_area_resize=True,
    ),
    "nature": dict(
        _ATARI_COMMON,
        repeat_action_probability=0.0,
        noop_max=30,
        episodic_life=True,
        use_inter_area_resize=False,
    ),
    "zoo": dict(
        _ATARI_COMMON,
        repeat_action_probability=0.0,
        noop_max=30,
        episodic_life=False,
        use_inter_area_resize=False,
    ),
    "md3qn": dict(
        _ATARI_COMMON,
        repeat_action_probability=0.0,
        noop_max=1,
        episodic_life=False,
        use_inter_area_resize=True,
    ),
}


def _expected_seeds(seed: int, seed_index: int, envs_per_seed: int) -> list[int]:
    """The documented env -> seed rule of make_env."""
    state = np.random.SeedSequence([seed, seed_index]).generate_state(envs_per_seed)
    return (state >> 1).tolist()


def _raw_pool(env_id: str, env_seeds: list[int], **options):
    return envpool.make(
        env_id, env_type="gymnasium", num_envs=len(env_seeds), env_seed=env_seeds, **options
    )


def _random_actions(rng: np.random.Generator, spec) -> np.ndarray:
    batch = (spec.num_seeds, spec.envs_per_seed)
    if spec.num_actions is not None:
        return rng.integers(0, spec.num_actions, batch).astype(np.int32)
    return rng.uniform(spec.action_low, spec.action_high, batch + spec.action_shape).astype(
        np.float32
    )


@pytest.mark.parametrize(
    ("env_id", "raw_options", "frame_shape", "frame_dtype"),
    [
        ("CartPole-v1", {}, (4,), np.float32),
        ("Hopper-v4", {}, (11,), np.float32),
        ("Pong-v5", _RAW_ATARI_OPTIONS["dopamine"], (84, 84), np.uint8),
    ],
)
def test_layout_and_seed_index_matches_standalone_pool(
    env_id, raw_options, frame_shape, frame_dtype
):
    num_seeds, envs_per_seed, seed, seed_index = 3, 2, 11, 1
    env = make_env(env_id, num_seeds, envs_per_seed, seed)
    expected_seeds = _expected_seeds(seed, seed_index, envs_per_seed)
    raw = _raw_pool(env_id, expected_seeds, **raw_options)
    assert env.env_seeds[seed_index].tolist() == expected_seeds

    result = env.reset()
    raw_obs, _ = raw.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        assert result.obs.shape == (num_seeds, envs_per_seed, *frame_shape)
        assert result.obs.dtype == frame_dtype
        np.testing.assert_array_equal(
            result.obs[seed_index], raw_obs.reshape(envs_per_seed, *frame_shape).astype(frame_dtype)
        )
        actions = _random_actions(rng, env.spec)
        result = env.step(actions)
        raw_obs, raw_reward, raw_terminated, raw_truncated, info = raw.step(actions[seed_index])
        if env.spec.suite != "atari":
            np.testing.assert_array_equal(result.reward[seed_index], raw_reward)
        np.testing.assert_array_equal(result.terminated[seed_index], raw_terminated)
    # Seed indices are distinct streams.
    assert not np.array_equal(result.obs[0], result.obs[1])
    env.close()


def test_seed_offset_selects_a_slice_of_the_run_seeds():
    whole = make_env("CartPole-v1", 3, 2, seed=9)
    part = make_env("CartPole-v1", 2, 2, seed=9, seed_offset=1)
    np.testing.assert_array_equal(part.env_seeds, whole.env_seeds[1:])
    whole_result, part_result = whole.reset(), part.reset()
    rng = np.random.default_rng(6)
    for _ in range(30):
        np.testing.assert_array_equal(part_result.obs, whole_result.obs[1:])
        actions = _random_actions(rng, whole.spec)
        whole_result, part_result = whole.step(actions), part.step(actions[1:])
    whole.close()
    part.close()


def test_cartpole_autoreset_marks_first_with_zero_reward():
    env = make_env("CartPole-v1", 1, 3, seed=0)
    result = env.reset()
    assert result.first.all() and not result.reward.any()
    previous_done = np.zeros((1, 3), bool)
    num_dones = 0
    for _ in range(80):
        result = env.step(np.zeros((1, 3), np.int32))  # always push left: falls in ~10 steps
        np.testing.assert_array_equal(result.first, previous_done)
        assert not result.reward[result.first].any()
        assert not (result.terminated & result.truncated).any()
        assert not (result.first & (result.terminated | result.truncated)).any()
        previous_done = result.terminated | result.truncated
        num_dones += int(result.terminated.sum())
    assert num_dones >= 3
    env.close()


def test_cartpole_time_limit_truncates_without_terminating():
    cap = 20
    env = make_env("CartPole-v1", 1, 2, seed=3, max_episode_steps=cap)
    assert env.spec.max_episode_steps == cap
    result = env.reset()
    for step in range(1, cap + 2):
        # Push towards the side the pole is falling to: balances well beyond 20 steps.
        _, _, angle, angular_velocity = np.moveaxis(result.obs, -1, 0)
        result = env.step((angle + angular_velocity > 0).astype(np.int32))
        if step < cap:
            assert not (result.terminated | result.truncated).any()
        elif step == cap:
            assert result.truncated.all() and not result.terminated.any()
            assert result.episode_done.all()
            np.testing.assert_array_equal(result.episode_length, cap)
            np.testing.assert_array_equal(result.episode_return, float(cap))
        else:
            assert result.first.all() and not result.reward.any()
    env.close()


def test_cartpole_episode_statistics_match_host_sums():
    env = make_env("CartPole-v1", 2, 2, seed=5)
    rng = np.random.default_rng(1)
    result = env.reset()
    running_return = np.zeros((2, 2))
    running_length = np.zeros((2, 2), int)
    num_episodes = 0
    for _ in range(300):
        result = env.step(rng.integers(0, 2, (2, 2)).astype(np.int32))
        running_return = np.where(result.first, 0.0, running_return + result.reward)
        running_length = np.where(result.first, 0, running_length + 1)
        np.testing.assert_array_equal(result.episode_done, result.terminated | result.truncated)
        done = result.episode_done
        np.testing.assert_allclose(result.episode_return[done], running_return[done])
        np.testing.assert_array_equal(result.episode_length[done], running_length[done])
        num_episodes += int(done.sum())
    assert num_episodes >= 10
    env.close()


def test_atari_reward_clipped_while_score_is_not():
    """SpaceInvaders pays 5-30 points per alien: exercises the clip."""
    env = make_env("SpaceInvaders-v5", 1, 2, seed=2, atari_protocol="zoo")
    raw = _raw_pool("SpaceInvaders-v5", env.env_seeds[0].tolist(), **_RAW_ATARI_OPTIONS["zoo"])
    env.reset()
    raw.reset()
    rng = np.random.default_rng(2)
    raw_rewards = []
    for _ in range(300):
        actions = _random_actions(rng, env.spec)
        result = env.step(actions)
        info = raw.step(actions[0])[4]
        np.testing.assert_array_equal(result.reward[0], np.clip(info["reward"], -1, 1))
        raw_rewards.append(info["reward"])
    assert np.max(raw_rewards) > 1
    env.close()


def test_zoo_life_loss_terminates_without_ending_the_episode():
    env = make_env("Breakout-v5", 1, 2, seed=4, atari_protocol="zoo")
    raw = _raw_pool("Breakout-v5", env.env_seeds[0].tolist(), **_RAW_ATARI_OPTIONS["zoo"])
    env.reset()
    _, info = raw.reset()
    lives = info["lives"]
    rng = np.random.default_rng(3)
    pending_life_loss = np.zeros(2, bool)
    num_life_losses = 0
    for _ in range(500):
        actions = _random_actions(rng, env.spec)
        result = env.step(actions)
        raw_obs, _, raw_terminated, raw_truncated, info = raw.step(actions[0])
        np.testing.assert_array_equal(result.obs[0], raw_obs[:, 0])
        # The step after a life loss (not a game over) continues the same episode.
        assert not result.first[0][pending_life_loss].any()
        life_lost = info["lives"] < lives
        game_over = raw_terminated | raw_truncated
        np.testing.assert_array_equal(result.terminated[0], life_lost | raw_terminated)
        np.testing.assert_array_equal(result.episode_done[0], game_over)
        pending_life_loss = life_lost & ~game_over
        num_life_losses += int(pending_life_loss.sum())
        lives = info["lives"]
    assert num_life_losses >= 5
    env.close()


def test_md3qn_protocol_decomposes_rewards_and_restarts_at_life_losses():
    """MsPacman under md3qn: the reward vector is the decomposition of the raw reward with
    each source clipped; a life loss terminates for the agent while the game (and its score
    and per-source returns) goes on."""
    env = make_env("MsPacman-v5", 1, 2, seed=3, atari_protocol="md3qn")
    assert env.spec.reward_shape == (3,) and env.spec.restart_stack_at_termination
    raw = _raw_pool("MsPacman-v5", env.env_seeds[0].tolist(), **_RAW_ATARI_OPTIONS["md3qn"])
    env.reset()
    _, info = raw.reset()
    lives = info["lives"]
    rng = np.random.default_rng(4)
    score, sources = np.zeros(2), np.zeros((2, 3))
    num_life_losses = num_games = 0
    for _ in range(1500):
        actions = _random_actions(rng, env.spec)
        result = env.step(actions)
        raw_obs, _, raw_terminated, raw_truncated, info = raw.step(actions[0])
        np.testing.assert_array_equal(result.obs[0], raw_obs[:, 0])
        components = decompose("MsPacman", info["reward"])
        np.testing.assert_array_equal(result.reward[0], np.clip(components, -1, 1))
        life_lost = info["lives"] < lives
        game_over = raw_terminated | raw_truncated
        np.testing.assert_array_equal(result.terminated[0], life_lost | raw_terminated)
        np.testing.assert_array_equal(result.episode_done[0], game_over)
        assert not result.first[0][life_lost & ~game_over].any()
        score += info["reward"]
        sources += components
        for e in np.nonzero(game_over)[0]:
            assert result.episode_return[0, e] == np.float32(score[e])
            np.testing.assert_array_equal(
                result.episode_source_return[0, e], sources[e].astype(np.float32)
            )
            score[e], sources[e] = 0.0, 0.0
            num_games += 1
        num_life_losses += int((life_lost & ~game_over).sum())
        lives = info["lives"]
    assert num_life_losses >= 3 and num_games >= 1
    env.close()


def test_md3qn_protocol_refuses_a_game_without_decomposition_rules():
    with pytest.raises(ValueError, match="MsPacman"):
        env_spec("Breakout-v5", 1, 1, atari_protocol="md3qn")


def test_nature_life_loss_ends_training_episode_and_score_spans_lives():
    env = make_env("Breakout-v5", 1, 2, seed=6, atari_protocol="nature")
    raw = _raw_pool("Breakout-v5", env.env_seeds[0].tolist(), **_RAW_ATARI_OPTIONS["nature"])
    env.reset()
    _, info = raw.reset()
    lives = info["lives"]
    rng = np.random.default_rng(4)
    game_score = np.zeros(2)
    game_length = np.zeros(2, int)
    previous_life_loss = np.zeros(2, bool)
    num_games = 0
    num_scored_games = 0
    for _ in range(1000):
        actions = _random_actions(rng, env.spec)
        result = env.step(actions)
        raw_obs, _, _, _, info = raw.step(actions[0])
        np.testing.assert_array_equal(result.obs[0], raw_obs[:, 0])
        game_score += info["reward"]
        game_length += 1
        # After a life loss the next observation is the first of a new training episode.
        assert result.first[0][previous_life_loss].all()
        assert not result.reward[0][previous_life_loss].any()
        game_over = info["terminated"].astype(bool)
        life_lost = (info["lives"] < lives) & ~game_over
        np.testing.assert_array_equal(result.terminated[0], life_lost | game_over)
        np.testing.assert_array_equal(result.episode_done[0], game_over)
        np.testing.assert_array_equal(result.episode_return[0][game_over], game_score[game_over])
        np.testing.assert_array_equal(result.episode_length[0][game_over], game_length[game_over])
        num_games += int(game_over.sum())
        num_scored_games += int((game_over & (game_score > 1)).sum())
        # The autoreset step after a game over starts the next game and is not part of it.
        game_score[game_over] = 0.0
        game_length[game_over] = -1
        previous_life_loss = life_lost
        lives = info["lives"]
    assert num_games >= 2 and num_scored_games >= 1
    env.close()


@pytest.mark.parametrize("protocol", ["nature", "zoo"])
def test_evaluation_pool_ignores_life_loss(protocol):
    env = make_env("Breakout-v5", 1, 2, seed=7, atari_protocol=protocol, evaluation=True)
    eval_cap = ATARI_PROTOCOLS[protocol].eval_max_episode_steps
    assert env.spec.max_episode_steps == eval_cap == {"nature": 4500, "zoo": 27_000}[protocol]
    raw_options = dict(
        _RAW_ATARI_OPTIONS[protocol], episodic_life=False, max_episode_steps=eval_cap
    )
    raw = _raw_pool("Breakout-v5", env.env_seeds[0].tolist(), **raw_options)
    env.reset()
    _, info = raw.reset()
    lives = info["lives"]
    rng = np.random.default_rng(5)
    num_life_losses = num_games = 0
    for _ in range(400):
        actions = _random_actions(rng, env.spec)
        result = env.step(actions)
        _, _, raw_terminated, _, info = raw.step(actions[0])
        np.testing.assert_array_equal(result.terminated[0], raw_terminated)
        np.testing.assert_array_equal(result.episode_done[0], raw_terminated)
        num_life_losses += int(((info["lives"] < lives) & ~raw_terminated).sum())
        num_games += int(raw_terminated.sum())
        lives = info["lives"]
    assert num_life_losses >= 4 and num_games >= 1
    env.close()


def test_unknown_env_id_suggests_close_matches():
    with pytest.raises(ValueError, match="CartPole-v1"):
        check_env_id("CartPol-v1")
    with pytest.raises(ValueError, match="CartPole-v1"):
        make_env("CartPol-v1", 1, 1, seed=0)


def test_suites_and_unsupported_ids():
    assert check_env_id("Pong-v5") == "atari"
    assert check_env_id("HalfCheetah-v4") == "mujoco"
    assert check_env_id("Acrobot-v1") == "classic"
    with pytest.raises(ValueError, match="not supported"):
        check_env_id("CheetahRun-v1")  # dm_control: dict observations


def test_bad_arguments_fail_before_creating_a_pool():
    with pytest.raises(ValueError, match="dopamine.*nature.*zoo"):
        make_env("Pong-v5", 1, 1, seed=0, atari_protocol="deepmind")
    with pytest.raises(ValueError, match="num_seeds"):
        env_spec("CartPole-v1", 0, 1)
    with pytest.raises(ValueError, match="envs_per_seed"):
        env_spec("CartPole-v1", 1, 0)
    with pytest.raises(ValueError, match="seed"):
        make_env("CartPole-v1", 1, 1, seed=-1)
    with pytest.raises(ValueError, match="seed_offset"):
        make_env("CartPole-v1", 1, 1, seed=0, seed_offset=-2)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "ExclusiveMaze-v1", "PitGridworld-v0"])
def test_step_rejects_bad_actions(env_id):
    env = make_env(env_id, 2, 2, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((2, 2), np.int32))
    env.reset()
    with pytest.raises(RuntimeError, match="send"):
        env.recv()  # envpool's would wait forever
    env.send(np.zeros((2, 2), np.int32))
    env.recv()
    with pytest.raises(RuntimeError, match="send"):
        env.recv()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(4, np.int32))
    num_actions = env.spec.num_actions
    with pytest.raises(ValueError, match=rf"\[0, {num_actions}\)"):
        env.step(np.full((2, 2), num_actions, np.int32))
    env.close()


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("CartPole-v1", {}),
        ("CartPole-v1", dict(max_episode_steps=50)),
        ("Pendulum-v1", {}),
        ("InvertedPendulum-v4", {}),
        ("Breakout-v5", dict(atari_protocol="nature")),
        ("Breakout-v5", dict(atari_protocol="nature", evaluation=True)),
        ("Pong-v5", dict(atari_protocol="md3qn")),
        ("ExclusiveMazeVector-v1", {}),
        ("ConstraintMaze-v3", {}),
    ],
)
def test_env_spec_matches_made_env(env_id, kwargs):
    spec = env_spec(env_id, 2, 3, **kwargs)
    env = make_env(env_id, 2, 3, seed=0, **kwargs)
    assert spec == env.spec
    result = env.reset()
    assert result.obs.shape == (2, 3, *spec.frame_shape)
    assert result.obs.dtype == spec.frame_dtype
    env.close()


def test_continuous_spec_bounds():
    spec = env_spec("InvertedPendulum-v4", 1, 1)
    assert spec.suite == "mujoco" and spec.num_actions is None
    assert spec.action_shape == (1,) and spec.frame_shape == (4,)
    np.testing.assert_array_equal(spec.action_low, [-3.0])
    np.testing.assert_array_equal(spec.action_high, [3.0])
    assert spec.action_low.dtype == np.float32
