"""Bad input fails before compiling, with a message that says what to change."""

import dataclasses
import json
import warnings

import pytest

from experiments import runner
from experiments.config import Config, ConfigError, validate
from experiments.distributed import process_share
from experiments.presets import PRESETS, get_preset
from experiments.train import main, parse_args

CARTPOLE = PRESETS["dqn_cartpole"].config


@pytest.fixture
def no_compile(monkeypatch):
    """Makes any attempt to build the agent fail the test: errors must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the agent was built before the bad input was reported")

    monkeypatch.setattr(runner, "build_agent", forbidden)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates(name):
    config = PRESETS[name].config
    spec = validate(config)
    assert (spec.num_actions is None) == (config.agent == "td3")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_names_its_source(name):
    assert "\nSource: " in PRESETS[name].description, f"{name}'s docstring has no Source: line"


def test_atari_presets_follow_their_protocols():
    dopamine, nature, zoo = (
        PRESETS[n].config for n in ("dqn_atari_dopamine", "dqn_atari_nature", "dqn_atari_zoo")
    )
    assert (dopamine.atari_protocol, nature.atari_protocol, zoo.atari_protocol) == (
        "dopamine",
        "nature",
        "zoo",
    )
    assert (dopamine.learning_rate, dopamine.optimizer_eps, dopamine.loss) == (
        6.25e-5,
        1.5e-4,
        "mse",
    )
    assert (dopamine.target_update_period, dopamine.learning_starts) == (8_000, 20_000)
    assert (nature.optimizer, nature.learning_rate, nature.loss) == ("rmsprop", 2.5e-4, "huber")
    assert nature.target_update_period // nature.update_period == 10_000  # updates
    assert nature.total_steps * 4 == 50_000_000  # frames
    assert dopamine.total_steps * 4 == 200_000_000
    # The Lua code's RMSProp eps 0.01 acts on the batch-summed gradient; ours is the mean.
    assert nature.optimizer_eps == zoo.optimizer_eps == pytest.approx(0.01 / 32**2)
    # DQN Zoo (dqn/run_atari.py): clipping the batch-mean loss's gradient at 1/32 is Huber
    # delta 1; no global-norm clip; the target flag counts 40k frames.
    assert (zoo.loss, zoo.huber_delta, zoo.max_grad_norm) == ("huber", 1.0, 0.0)
    assert zoo.target_update_period == 10_000
    assert (dopamine.network_init, nature.network_init, zoo.network_init) == (
        "xavier_uniform",
        "torch_default",
        "torch_default",
    )


def test_quantile_presets_follow_dopamine():
    """qrdqn_atari is dqn_atari_dopamine with quantile.gin's changes; qrdqn_cartpole is
    dqn_cartpole with a quantile head."""
    qrdqn, dqn = PRESETS["qrdqn_atari"].config, PRESETS["dqn_atari_dopamine"].config
    assert (qrdqn.value_representation, qrdqn.num_atoms, qrdqn.kappa) == ("quantile", 200, 1.0)
    assert (qrdqn.n_step, qrdqn.network_init, qrdqn.cnn_padding) == (3, "uniform_fan_in", "SAME")
    assert (qrdqn.learning_rate, qrdqn.optimizer_eps) == (5e-5, pytest.approx(0.01 / 32))
    changed = ("value_representation", "num_atoms", "n_step", "network_init")
    changed += ("learning_rate", "optimizer_eps")
    assert dataclasses.replace(qrdqn, **{f: getattr(dqn, f) for f in changed}) == dqn
    cartpole = PRESETS["qrdqn_cartpole"].config
    assert (cartpole.value_representation, cartpole.num_atoms) == ("quantile", 51)
    assert dataclasses.replace(cartpole, value_representation="scalar") == CARTPOLE


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"env": "CartPol-v1"}, "CartPole-v1"),
        ({"replay_capacity": -5}, "replay_capacity=-5"),
        ({"batch_size": 2_000}, "learning_starts"),
        ({"epsilon_end": 1.5}, "epsilon_end=1.5"),
        ({"eval_epsilon": -0.1}, "eval_epsilon=-0.1"),
        ({"gamma": 1.2}, "gamma=1.2"),
        ({"envs_per_seed": 2, "total_steps": 1_001}, "total_steps=1001 must be a multiple"),
        ({"target_update_tau": 0.0}, "target_update_tau"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"network": "nature_cnn"}, "--network mlp"),
        ({"env": "Pendulum-v1"}, "discrete actions"),
        ({"env": "Pong-v5"}, "--network nature_cnn"),
        ({"value_representation": "c51", "v_min": 5.0, "v_max": 5.0}, "v_min=5.0"),
        ({"value_representation": "two_hot", "num_atoms": 1}, "num_atoms=1"),
        ({"value_representation": "hl_gauss", "sigma_ratio": 0.0}, "sigma_ratio=0.0"),
        ({"value_representation": "quantile", "num_atoms": 0}, "num_atoms=0"),
        ({"value_representation": "quantile", "kappa": -1.0}, "kappa=-1.0"),
        ({"value_representation": "quantile", "kappa": float("nan")}, "kappa=nan"),
        ({"agent": "iterated", "num_networks": 0}, "num_networks=0"),
        ({"agent": "iterated", "target_sync_period": 0}, "target_sync_period=0"),
        ({"agent": "iterated", "target_sync_period": 50, "target_update_period": 40}, "D <= T"),
        ({"agent": "iterated", "target_sync_period": 10, "double_q": True}, "double_q"),
        ({"agent": "td3"}, "TD3 needs a continuous action space"),
        ({"agent": "td3", "env": "InvertedPendulum-v4", "policy_delay": 0}, "policy_delay=0"),
        (
            {"agent": "td3", "env": "InvertedPendulum-v4", "exploration_noise": -0.1},
            "exploration_noise=-0.1",
        ),
        ({"agent": "td3", "env": "Hopper-v4", "target_update_tau": 1.5}, "target_update_tau"),
        ({"env": "Hopper-v4"}, "--agent td3"),
        ({"agent": "md3qn"}, "needs a multi-reward task"),
        ({"agent": "hra"}, "needs a multi-reward task"),
        ({"agent": "md3qn", "env": "ExclusiveMazeVector-v1", "num_particles": 1}, "M >= 2"),
        ({"agent": "mmdqn", "num_particles": 0}, "M >= 2"),
        ({"agent": "md3qn", "env": "ExclusiveMazeVector-v1", "double_q": True}, "double_q"),
        ({"env": "ExclusiveMaze-v1"}, "--network nature_cnn"),
        ({"env": "ExclusiveMazeVektor-v1"}, "ExclusiveMazeVector-v1"),
        ({"env": "Breakout-v5", "atari_protocol": "md3qn"}, "AirRaid, Asteroids"),
        (
            {"agent": "td3", "env": "ExclusiveMazeVector-v1"},
            "TD3 needs a continuous action space",
        ),
    ],
)
def test_bad_values_raise_before_compiling(override, fragment, no_compile, tmp_path):
    config = dataclasses.replace(CARTPOLE, run_dir=str(tmp_path / "run"), **override)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        runner.train(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("representation", ["c51", "hl_gauss", "two_hot"])
def test_narrow_support_warns(representation, no_compile, tmp_path):
    config = dataclasses.replace(
        PRESETS["c51_cartpole"].config, value_representation=representation, v_max=20.0
    )
    with pytest.warns(UserWarning, match=r"\[0, 20\].*\[0, 99\.3"):
        validate(config)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="The support")
        validate(dataclasses.replace(config, v_max=100.0))  # holds every CartPole return
        validate(dataclasses.replace(config, value_representation="scalar"))
        validate(dataclasses.replace(config, value_representation="quantile"))  # no support


def test_categorical_presets_follow_their_papers():
    dopamine, paper = PRESETS["c51_atari_dopamine"].config, PRESETS["c51_atari_paper"].config
    for config in (dopamine, paper):
        assert (config.value_representation, config.num_atoms) == ("c51", 51)
        assert (config.v_min, config.v_max) == (-10.0, 10.0)
        assert (config.optimizer, config.learning_rate) == ("adam", 2.5e-4)
        assert config.optimizer_eps == pytest.approx(0.01 / 32)
        assert not config.double_q  # the bootstrap action comes from the target network
    assert (dopamine.atari_protocol, dopamine.learning_starts) == ("dopamine", 20_000)
    assert (dopamine.target_update_period, dopamine.epsilon_end) == (8_000, 0.01)
    assert dopamine.network_init == "uniform_fan_in"  # Dopamine's RainbowNetwork
    # c51_icml.gin and DQN Zoo's c51 (40k frames): 10k agent steps.
    assert (paper.learning_starts, paper.target_update_period) == (50_000, 10_000)
    assert paper.max_grad_norm == 0.0
    assert (paper.epsilon_end, paper.eval_epsilon) == (0.01, 0.001)
    hl_gauss = PRESETS["hlgauss_atari"].config
    dqn = PRESETS["dqn_atari_dopamine"].config
    assert (hl_gauss.value_representation, hl_gauss.sigma_ratio) == ("hl_gauss", 0.75)
    assert dataclasses.replace(hl_gauss, value_representation="scalar") == dqn
    assert PRESETS["twohot_atari"].config.value_representation == "two_hot"


def test_idqn_atari_preset_follows_the_paper():
    idqn, dqn = PRESETS["idqn_atari"].config, PRESETS["dqn_atari_dopamine"].config
    assert (idqn.agent, idqn.num_networks, idqn.shared_torso) == ("iterated", 5, True)
    assert (idqn.target_sync_period, idqn.target_update_period) == (30, 6_000)  # D, T
    assert (idqn.learning_rate, idqn.optimizer_eps) == (6.25e-5, 1.5e-4)
    # The authors' code: the mean over the links, VarianceScaling(1, fan_avg, truncated_normal).
    assert (idqn.link_loss_reduction, idqn.network_init) == ("mean", "xavier_normal")
    same = {"agent", "num_networks", "shared_torso", "target_sync_period", "target_update_period"}
    same |= {"link_loss_reduction", "network_init"}
    assert dataclasses.replace(idqn, **{k: getattr(dqn, k) for k in same}) == dqn


def test_td3_presets_follow_the_paper_and_the_authors_scripts():
    paper = get_preset("td3_mujoco_paper")
    assert (paper.agent, paper.mlp_hidden, paper.learning_rate) == ("td3", (400, 300), 1e-3)
    assert (paper.batch_size, paper.total_steps, paper.iteration_steps) == (100, 10**6, 5_000)
    assert (paper.target_update_tau, paper.policy_delay, paper.eval_episodes) == (0.005, 2, 10)
    assert (paper.target_noise, paper.target_noise_clip, paper.exploration_noise) == (
        0.2,
        0.5,
        0.1,
    )
    starts = {
        env: get_preset("td3_mujoco_paper", env).learning_starts
        for env in ("HalfCheetah-v4", "Ant-v4", "Hopper-v4", "InvertedPendulum-v4")
    }
    assert starts == {
        "HalfCheetah-v4": 10_000,
        "Ant-v4": 10_000,
        "Hopper-v4": 1_000,
        "InvertedPendulum-v4": 1_000,
    }
    modern = get_preset("td3_mujoco", "Walker2d-v4")
    assert (modern.mlp_hidden, modern.learning_rate, modern.batch_size) == ((256, 256), 3e-4, 256)
    assert modern.learning_starts == 25_000
    for env in ("InvertedPendulum-v4", "InvertedDoublePendulum-v4", "Reacher-v4"):
        assert get_preset("td3_mujoco", env).learning_starts == 1_000
    # A field given on the command line wins over the per-task setting.
    _, config = parse_args(
        ["--preset", "td3_mujoco", "--env", "Reacher-v4", "--learning-starts", "7"]
    )
    assert (config.env, config.learning_starts) == ("Reacher-v4", 7)


def test_unknown_preset_suggests_close_names():
    with pytest.raises(ConfigError, match="dqn_cartpole"):
        get_preset("dqn_cartpol")


def test_cli_overrides_fields_of_the_preset():
    preset, config = parse_args(
        [
            "--preset",
            "dqn_atari_nature",
            "--env",
            "Breakout-v5",
            "--seeds",
            "3",
            "--total-steps",
            "1000",
            "--iteration-steps",
            "500",
            "--run-dir",
            "x",
            "--double-q",
        ]
    )
    expected = dataclasses.replace(
        PRESETS["dqn_atari_nature"].config,
        env="Breakout-v5",
        seeds=3,
        total_steps=1000,
        iteration_steps=500,
        run_dir="x",
        double_q=True,
    )
    assert (preset, config) == ("dqn_atari_nature", expected)


def test_cli_unknown_field_fails(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--learning-rat", "0.1"])
    assert exit_info.value.code != 0
    assert "learning-rat" in capsys.readouterr().err


def test_cli_reports_unknown_preset_and_env(capsys, no_compile):
    assert main(["--preset", "dqn_atari_natur"]) == 2
    assert "dqn_atari_nature" in capsys.readouterr().err
    assert main(["--env", "CartPol-v1"]) == 2
    assert "CartPole-v1" in capsys.readouterr().err


def test_cli_reports_a_run_dir_it_cannot_write_before_building(tmp_path, capsys, no_compile):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for run_dir in ("/proc/nope/run", str(blocker / "run")):
        assert main(["--run-dir", run_dir]) == 2
        assert f"cannot write the run dir {run_dir}" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


def test_help_lists_presets_and_documents_fields(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    for name in PRESETS:
        assert name in text
    assert "Transitions stored per seed" in text  # a field docstring
    assert "--total-steps" in text


def test_run_dir_of_another_run_is_refused(tmp_path, no_compile):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    other = dataclasses.replace(CARTPOLE, learning_rate=0.5)
    record = {"config": json.loads(json.dumps(dataclasses.asdict(other)))}
    (run_dir / "config.json").write_text(json.dumps(record))
    before = (run_dir / "config.json").read_text()
    with pytest.raises(ConfigError, match="learning_rate"):
        runner.train(CARTPOLE, run_dir=run_dir)
    assert (run_dir / "config.json").read_text() == before


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().seeds = 3  # type: ignore[misc]


def test_each_process_trains_its_block_of_seeds():
    config = dataclasses.replace(CARTPOLE, seeds=8, seed_offset=2, run_dir="runs/x")
    shares = [process_share(config, index, 4) for index in range(4)]
    assert [(s.seeds, s.seed_offset) for s in shares] == [(2, 2), (2, 4), (2, 6), (2, 8)]
    assert [s.run_dir for s in shares] == [f"runs/x/process_{i}" for i in range(4)]
    with pytest.raises(ConfigError, match="seeds=8 cannot be split evenly over 3 processes"):
        process_share(config, 0, 3)
