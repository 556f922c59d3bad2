"""Aggregate figures (experiments.plots) draw what their tables hold."""

import numpy as np
import pandas as pd

from experiments import plots
from experiments.aggregates import aggregate


def test_interval_bars_span_each_interval_and_mark_the_estimate(tmp_path):
    scores = {"a": np.arange(12.0).reshape(3, 4), "b": np.arange(12.0).reshape(3, 4) + 5}
    table = aggregate(scores, reps=100)
    figure = plots.intervals_figure(table)
    assert [axis.get_title() for axis in figure.axes] == ["IQM", "median", "mean", "optimality gap"]
    iqm_axis = figure.axes[0]
    bars = iqm_axis.patches
    np.testing.assert_allclose([bar.get_x() for bar in bars], table[("IQM", "low")])
    np.testing.assert_allclose(
        [bar.get_x() + bar.get_width() for bar in bars], table[("IQM", "high")]
    )
    marks = iqm_axis.collections[0].get_segments()
    np.testing.assert_allclose([segment[0][0] for segment in marks], table[("IQM", "value")])
    assert plots.save(figure, tmp_path / "a" / "intervals.png").stat().st_size > 0


def test_curves_and_profiles_draw_each_group_with_its_band():
    curves = pd.DataFrame(
        {"group": ["x", "x", "y", "y"], "step": [1, 2, 1, 2], "value": [1.0, 2.0, 3.0, 4.0]}
    ).assign(low=lambda t: t["value"] - 0.5, high=lambda t: t["value"] + 0.5)
    axis = plots.aggregate_curves_figure(curves, "IQM").axes[0]
    assert [line.get_label() for line in axis.lines] == ["x", "y"]
    np.testing.assert_allclose(axis.lines[1].get_ydata(), [3.0, 4.0])
    assert len(axis.collections) == 2  # one band per group
    profiles = curves.rename(columns={"step": "threshold"})
    axis = plots.profiles_figure(profiles, "score").axes[0]
    np.testing.assert_allclose(axis.lines[0].get_xdata(), [1, 2])


def test_sweep_figure_uses_a_log_axis_across_decades():
    ranked = pd.DataFrame(
        {"learning_rate": ["0.0001", "0.01"], "IQM": [1.0, 2.0], "IQM low": [0.5, 1.5]}
    ).assign(**{"IQM high": [1.5, 2.5]})
    axis = plots.sweep_figure(ranked, "learning_rate").axes[0]
    assert axis.get_xscale() == "log"
