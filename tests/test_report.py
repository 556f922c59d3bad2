"""A run's report (experiments.report): per-seed final scores and the IQM with its interval,
from run dirs as the logger writes them; the command line's messages for bad input."""

import dataclasses
import re

import numpy as np
import pytest
import scipy.stats

from experiments.config import Config
from experiments.report import format_report, main, point_aggregates
from experiments.results import human_normalized, load_runs
from tests.test_results import write_run

CARTPOLE = Config(env="CartPole-v1", seeds=5, total_steps=400, iteration_steps=200)


def returns_rows(seeds: int, finals: list[float]) -> list[tuple[int, int, str, float]]:
    return [(i, 200, "eval_return", 1.0) for i in range(seeds)] + [
        (i, 400, "eval_return", finals[i]) for i in range(seeds)
    ]


def test_the_report_gives_every_seed_and_the_iqm_with_an_interval(tmp_path):
    finals = [10.0, 200.0, 30.0, 40.0, 55.0]
    write_run(tmp_path / "run", CARTPOLE, "dqn_cartpole", returns_rows(5, finals))
    table = load_runs(tmp_path / "run")
    text = format_report(table)
    for seed, value in enumerate(finals):
        last_two = (1.0 + value) / 2
        assert re.search(rf"seed {seed}\s+{value:.1f}\s+{last_two:.1f}\s+400", text), text
    (point,) = point_aggregates(table, "eval_return").to_dict("records")
    assert point["seeds"] == 5
    assert point["IQM"] == pytest.approx(scipy.stats.trim_mean(finals, 0.25))
    assert point["IQM low"] <= point["IQM"] <= point["IQM high"]
    assert f"{point['IQM']:.1f} [{point['IQM low']:.1f}, {point['IQM high']:.1f}]" in text


def test_few_seeds_get_no_interval_and_say_why(tmp_path):
    config = dataclasses.replace(CARTPOLE, seeds=2)
    write_run(tmp_path / "run", config, "dqn_cartpole", returns_rows(2, [5.0, 7.0]))
    text = format_report(load_runs(tmp_path / "run"))
    assert "6.0 ± 1.0" in text and "need 4+ seeds" in text


def test_atari_points_are_also_human_normalised(tmp_path):
    config = Config(env="Pong-v5", seeds=4, total_steps=8, iteration_steps=4)
    finals = [-21.0, -10.0, 0.0, 21.0]
    write_run(tmp_path / "run", config, "custom", returns_rows(4, finals))
    (point,) = point_aggregates(load_runs(tmp_path), "eval_return").to_dict("records")
    normalized = human_normalized(finals, ["pong"] * 4)
    assert point["normalised IQM"] == pytest.approx(scipy.stats.trim_mean(normalized, 0.25))


def test_a_sweep_reports_each_point(tmp_path):
    config = dataclasses.replace(CARTPOLE, seeds=4, sweep_learning_rate=(1e-3, 1e-4))
    finals = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]
    write_run(tmp_path / "run", config, "custom", returns_rows(8, finals))
    points = point_aggregates(load_runs(tmp_path), "eval_return")
    assert points["learning_rate"].tolist() == [1e-3, 1e-4]
    np.testing.assert_allclose(points["IQM"], [2.5, 25.0])
    assert "learning_rate=0.0001 seed 3" in format_report(load_runs(tmp_path))


def test_the_command_line_reports_bad_paths_and_empty_runs(tmp_path, capsys):
    assert main([str(tmp_path / "nothing")]) == 2
    assert "error: no run under" in capsys.readouterr().err
    write_run(tmp_path / "new", CARTPOLE, "dqn_cartpole", [])
    assert main([str(tmp_path / "new")]) == 2
    assert "logged no eval_return or train_return yet" in capsys.readouterr().err
    write_run(tmp_path / "done", CARTPOLE, "dqn_cartpole", returns_rows(5, [1.0] * 5))
    assert main([str(tmp_path / "done")]) == 0
    assert "seed 4" in capsys.readouterr().out
