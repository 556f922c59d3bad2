"""Aggregate statistics (experiments.aggregates) against NumPy/SciPy references on synthetic
score tables, and the coverage of their bootstrap intervals."""

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from experiments.aggregates import (
    AGGREGATES,
    aggregate,
    aggregate_curves,
    compare_sweep,
    final_scores,
    performance_profiles,
    probability_of_improvement,
    score_matrices,
)


def tidy(rows) -> pd.DataFrame:
    """A run-store table (experiments.results.load_runs) of (run, agent, game, seed, step,
    metric, value) rows."""
    table = pd.DataFrame(rows, columns=["run", "agent", "game", "seed", "step", "metric", "value"])
    return table.assign(preset="custom", env=table["game"], frames=table["step"])


def test_point_aggregates_match_numpy_and_scipy():
    scores = np.random.default_rng(0).gamma(2.0, 1.0, size=(7, 11))  # (runs, tasks)
    table = aggregate({"x": scores}, reps=200)
    flat = scores.reshape(-1)
    expected = {
        "IQM": scipy.stats.trim_mean(flat, 0.25),  # 77 scores: the middle half, cut exactly
        "median": np.median(scores.mean(axis=0)),
        "mean": flat.mean(),
        "optimality gap": np.mean(np.maximum(1.0 - flat, 0.0)),
    }
    for name, value in expected.items():
        assert table.loc["x", (name, "value")] == pytest.approx(value, rel=1e-12)
        assert table.loc["x", (name, "low")] <= value <= table.loc["x", (name, "high")]
    assert set(AGGREGATES) == set(expected)


def test_iqm_drops_the_lowest_and_highest_quarter_exactly():
    scores = np.arange(8.0).reshape(2, 4)  # IQM of 0..7: mean of 2, 3, 4, 5
    assert aggregate({"x": scores}, reps=10).loc["x", ("IQM", "value")] == 3.5


def test_bootstrap_intervals_cover_the_true_mean_at_the_stated_rate():
    # Runs of each task ~ N(mu_task, 1): the aggregate mean's true value is mean(mu).
    rng = np.random.default_rng(1)
    mu = rng.uniform(0.0, 2.0, size=5)
    covered = []
    for trial in range(200):
        scores = mu + rng.normal(size=(10, 5))
        table = aggregate({"x": scores}, reps=400, seed=trial)
        covered.append(
            table.loc["x", ("mean", "low")] <= mu.mean() <= table.loc["x", ("mean", "high")]
        )
    # 95% intervals; the percentile bootstrap with 10 runs per task covers a little less.
    assert 0.88 <= np.mean(covered) <= 0.99


def test_intervals_depend_on_their_seed_only_and_leave_numpy_s_stream_alone():
    scores = np.random.default_rng(4).normal(size=(5, 3))
    np.random.seed(1)  # noqa: NPY002 (the legacy global generator rliable draws from)
    first = aggregate({"x": scores}, reps=300, seed=7)
    expected_next = np.random.rand(3)  # noqa: NPY002
    np.random.seed(1)  # noqa: NPY002
    np.random.rand(5)  # noqa: NPY002 (another global state)
    pd.testing.assert_frame_equal(aggregate({"x": scores}, reps=300, seed=7), first)
    np.random.seed(1)  # noqa: NPY002
    aggregate({"x": scores}, reps=300, seed=8)
    np.testing.assert_array_equal(np.random.rand(3), expected_next)  # noqa: NPY002


def test_probability_of_improvement_by_brute_force():
    rng = np.random.default_rng(2)
    x, y = (
        rng.integers(0, 4, size=(5, 3)).astype(float),
        rng.integers(0, 4, size=(6, 3)).astype(float),
    )
    per_task = [
        np.mean([(a > b) + 0.5 * (a == b) for a, b in itertools.product(x[:, t], y[:, t])])
        for t in range(3)
    ]
    value, low, high = probability_of_improvement(x, y, reps=300)
    assert value == pytest.approx(np.mean(per_task))
    assert 0.0 <= low <= value <= high <= 1.0


def test_performance_profile_is_the_fraction_above_each_threshold():
    scores = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    profile = performance_profiles({"x": scores}, np.array([-1.0, 0.5, 2.5, 9.0]), reps=100)
    np.testing.assert_allclose(profile["value"], [1.0, 5 / 6, 3 / 6, 0.0])
    assert (profile["low"] <= profile["value"]).all() and (
        profile["value"] <= profile["high"]
    ).all()


def test_scores_from_a_run_table_final_or_last_two_and_normalised():
    rows = [
        ("r1", "dqn", game, seed, step, "eval_return", value)
        for game, base in (("pong", -21.0), ("breakout", 2.0))
        for seed in range(2)
        for step, value in ((100, base), (200, base + seed + 1), (300, base + 2 * seed + 3))
    ]
    table = tidy(rows + [("r1", "dqn", "pong", 0, 300, "loss", 9.0)])
    final = final_scores(table, "eval_return").sort_values(["game", "seed"])
    assert final["score"].tolist() == [5.0, 7.0, -18.0, -16.0]
    assert final["step"].tolist() == [300] * 4
    last_two = final_scores(table, "eval_return", last=2).sort_values(["game", "seed"])
    assert last_two["score"].tolist() == [4.0, 5.5, -19.0, -17.5]
    normalized = final_scores(table, "eval_return", normalize=True).sort_values(["game", "seed"])
    # breakout: random 1.7, human 30.5; pong: random -20.7, human 14.6.
    expected = [(5.0 - 1.7) / 28.8, (7.0 - 1.7) / 28.8, (-18.0 + 20.7) / 35.3, (-16 + 20.7) / 35.3]
    np.testing.assert_allclose(normalized["score"], expected)
    matrices = score_matrices(final)
    assert list(matrices) == ["agent=dqn"]
    np.testing.assert_array_equal(matrices["agent=dqn"], [[5.0, -18.0], [7.0, -16.0]])
    with pytest.raises(ValueError, match="no 'return' rows .* they log eval_return, loss"):
        final_scores(table, "return")


def test_score_matrices_refuse_groups_that_do_not_cover_the_same_games():
    rows = [("a", "dqn", "pong", 0, 1, "m", 1.0), ("b", "c51", "breakout", 0, 1, "m", 2.0)]
    with pytest.raises(ValueError, match=r"agent=c51 has no score for \['pong'\]"):
        score_matrices(final_scores(tidy(rows), "m"))
    rows = [("a", "dqn", "pong", seed, 1, "m", 1.0) for seed in range(2)]
    rows.append(("a", "dqn", "breakout", 0, 1, "m", 1.0))
    with pytest.raises(ValueError, match="unequal runs per game"):
        score_matrices(final_scores(tidy(rows), "m"))


def test_aggregate_curves_and_sweep_comparison():
    rng = np.random.default_rng(3)
    rows = [
        ("r", "dqn", "CartPole-v1", seed, step, "eval_return", step * (1 + seed) + rng.normal())
        for seed in range(4)
        for step in (10, 20)
    ]
    table = tidy(rows)
    curves = aggregate_curves(table, "eval_return", reps=200)
    assert curves["step"].tolist() == [10, 20]
    for _, row in curves.iterrows():
        at_step = table[table["step"] == row["step"]]["value"].to_numpy()
        assert row["value"] == pytest.approx(scipy.stats.trim_mean(at_step, 0.25))
        assert row["low"] <= row["value"] <= row["high"]

    sweep = tidy(
        [
            ("r", "dqn", "CartPole-v1", seed, 1, "eval_return", base + seed)
            for base in (1.0, 3.0)
            for seed in range(4)
        ]
    )
    sweep["learning_rate"] = [lr for lr in (1e-4, 3e-4) for _ in range(4)]  # 3e-4 scores 3+
    ranked = compare_sweep(final_scores(sweep, "eval_return"), "learning_rate", reps=200)
    assert ranked["learning_rate"].astype(float).tolist() == [3e-4, 1e-4]
    assert ranked["IQM"].tolist() == pytest.approx([4.5, 2.5])
    assert np.isnan(ranked["P(best > point)"].iloc[0])
    best, other = [3.0 + s for s in range(4)], [1.0 + s for s in range(4)]
    pairs = [(a > b) + 0.5 * (a == b) for a, b in itertools.product(best, other)]
    assert ranked["P(best > point)"].iloc[1] == pytest.approx(np.mean(pairs))
