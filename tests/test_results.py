"""The run store (experiments.results): run dirs as the logger writes them, read back into
one tidy table; human-normalised Atari scores against hand-computed values."""

import dataclasses
import json

import numpy as np
import pytest

from experiments.config import Config
from experiments.logger import CONFIG_FILE, RunLogger, process_dir, run_record
from experiments.results import NoRunsError, find_runs, game_key, human_normalized, load_runs

CARTPOLE = Config(env="CartPole-v1", seeds=2, total_steps=400, iteration_steps=200)


def write_run(run_dir, config: Config, preset: str, rows) -> None:
    """A run dir as `experiments.runner.train` leaves it: config.json, then what the logger
    wrote for `rows` = (member index, step, metric, value)."""
    run_dir.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps(run_record(config, preset)))
    logger = RunLogger(run_dir, config.members())
    for index, step, metric, value in rows:
        logger.write(index, step, metric, value)
    logger.close()


def test_runs_load_into_one_tidy_table_with_the_fields_that_differ(tmp_path):
    write_run(tmp_path / "a", CARTPOLE, "dqn_cartpole", [(0, 200, "eval_return", 20.0)])
    other = dataclasses.replace(CARTPOLE, learning_rate=3e-4, sweep_gamma=(0.9, 0.99))
    rows = [(index, 400, "eval_return", 10.0 * index) for index in range(4)]
    write_run(tmp_path / "sweeps" / "b", other, "custom", [*rows, (0, 400, "loss", 0.5)])
    write_run(tmp_path / "in_progress", CARTPOLE, "dqn_cartpole", [])

    table = load_runs(tmp_path)
    assert list(table.columns) == [
        "run", "preset", "agent", "env", "game", "seed", "gamma", "learning_rate",
        "step", "frames", "metric", "value",
    ]  # fmt: skip
    assert len(table) == 6  # the run in progress has logged nothing yet
    b = table[table["run"] == str(tmp_path / "sweeps" / "b")]
    returns = b[b["metric"] == "eval_return"].sort_values("value")
    # Members are point-major: gamma 0.9 seeds 0, 1, then gamma 0.99 seeds 0, 1.
    assert returns["gamma"].tolist() == [0.9, 0.9, 0.99, 0.99]
    assert returns["seed"].tolist() == [0, 1, 0, 1]
    assert set(b["learning_rate"]) == {3e-4}
    a = table[table["run"] == str(tmp_path / "a")]
    assert a["gamma"].tolist() == [CARTPOLE.gamma]  # not swept there: the run's one value
    assert a["learning_rate"].tolist() == [CARTPOLE.learning_rate]
    assert a["preset"].tolist() == ["dqn_cartpole"]
    np.testing.assert_array_equal(table["frames"], table["step"])  # one frame per step

    only_loss = load_runs([tmp_path / "sweeps" / "*"], metrics=["loss"])
    assert only_loss[["seed", "step", "value"]].values.tolist() == [[0, 400, 0.5]]


def test_atari_runs_count_frames_and_name_their_game(tmp_path):
    config = Config(env="BankHeist-v5", seeds=1, total_steps=8, iteration_steps=4)
    write_run(tmp_path / "run", config, "custom", [(0, 4, "episode_return", 30.0)])
    table = load_runs(tmp_path / "run")
    assert table[["game", "step", "frames"]].values.tolist() == [["bankheist", 4, 16]]


def test_a_multi_process_run_is_one_run_with_every_process_rows(tmp_path):
    config = dataclasses.replace(CARTPOLE, seeds=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / CONFIG_FILE).write_text(json.dumps(run_record(CARTPOLE, "custom")))
    for process in range(2):
        block = dataclasses.replace(config, seed_offset=process)
        write_run(process_dir(tmp_path / "run", process), block, "custom", [(0, 200, "x", 1.0)])
    assert find_runs(tmp_path) == [tmp_path / "run"]
    assert sorted(load_runs(tmp_path)["seed"]) == [0, 1]


def test_game_names_in_every_spelling():
    assert {game_key(n) for n in ("BankHeist-v5", "bank_heist", "bankheist")} == {"bankheist"}


def test_human_normalised_scores_by_hand():
    # pong: random -20.7, human 14.6; breakout: random 1.7, human 30.5 (DQN Nature, Table 2).
    scores = human_normalized([-20.7, 14.6, 16.1], ["Pong-v5", "pong", "breakout"])
    np.testing.assert_allclose(scores, [0.0, 1.0, (16.1 - 1.7) / (30.5 - 1.7)])
    with pytest.raises(ValueError, match="no human and random scores for .*airraid"):
        human_normalized([1.0], ["AirRaid-v5"])


def test_paths_without_runs_say_what_to_pass(tmp_path):
    with pytest.raises(NoRunsError, match="no run under .*pass run dirs"):
        load_runs(tmp_path)
    with pytest.raises(NoRunsError, match="no run under"):
        load_runs(tmp_path / "missing*")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / CONFIG_FILE).write_text("{")
    with pytest.raises(NoRunsError, match="cannot be read as a run's config"):
        load_runs(tmp_path)
