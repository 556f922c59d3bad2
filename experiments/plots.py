"""Figures of aggregate results (experiments.aggregates): curves with bootstrap bands,
interval estimates, performance profiles and a sweep's sensitivity. Each returns a
matplotlib Figure built without pyplot (no global backend state: a notebook shows it, a
script saves it); `save` writes one as a PNG without leaving a partial file."""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from experiments.logger import replace_atomically


def aggregate_curves_figure(curves: pd.DataFrame, ylabel: str) -> Figure:
    """Each group's aggregate against agent steps with its interval as a band, from
    `aggregate_curves` (columns group, step, value, low, high)."""
    return _bands_figure(curves, "step", "agent steps per seed", ylabel, (6.5, 4))


def intervals_figure(aggregates: pd.DataFrame) -> Figure:
    """One panel per aggregate (IQM, median, ...): each group's point estimate and its
    interval as a bar, from `aggregate` (index group, columns (aggregate, value|low|high))."""
    names = list(dict.fromkeys(aggregates.columns.get_level_values(0)))
    groups = list(aggregates.index)
    figure = Figure(figsize=(3.2 * len(names), 0.5 * len(groups) + 1.4))
    axes = figure.subplots(1, len(names), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        low, high, value = (aggregates[(name, key)].to_numpy() for key in ("low", "high", "value"))
        rows = np.arange(len(groups))
        axis.barh(rows, high - low, left=low, height=0.6, alpha=0.4)
        axis.vlines(value, rows - 0.3, rows + 0.3, color="black")
        axis.set_yticks(rows, groups if axis is axes[0, 0] else [""] * len(groups))
        axis.set_title(name, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def profiles_figure(profiles: pd.DataFrame, xlabel: str) -> Figure:
    """Performance profiles: the fraction of runs scoring above each threshold, with its
    band, from `performance_profiles` (columns group, threshold, value, low, high)."""
    ylabel = "fraction of runs with score > threshold"
    return _bands_figure(profiles, "threshold", xlabel, ylabel, (6, 4))


def _bands_figure(
    table: pd.DataFrame, x: str, xlabel: str, ylabel: str, size: tuple[float, float]
) -> Figure:
    """Each group's value against column `x` as a line, its low-high interval as a band."""
    figure = Figure(figsize=size)
    axis = figure.subplots()
    for group, rows in table.groupby("group", sort=False):
        line = axis.plot(rows[x], rows["value"], linewidth=2, label=group)[0]
        axis.fill_between(rows[x], rows["low"], rows["high"], alpha=0.2, color=line.get_color())
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def sweep_figure(ranked: pd.DataFrame, parameter: str) -> Figure:
    """A sweep's IQM against the swept value with its interval, from `compare_sweep`; a
    log axis for a parameter spanning more than a decade."""
    points = ranked.assign(**{parameter: ranked[parameter].astype(float)}).sort_values(parameter)
    figure = Figure(figsize=(5.5, 4))
    axis = figure.subplots()
    errors = [points["IQM"] - points["IQM low"], points["IQM high"] - points["IQM"]]
    axis.errorbar(points[parameter], points["IQM"], yerr=errors, marker="o", capsize=4)
    values = points[parameter].to_numpy()
    if (values > 0).all() and values.max() > 10 * values.min():
        axis.set_xscale("log")
    axis.set_xlabel(parameter)
    axis.set_ylabel("IQM of final scores (95% CI)")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def save(figure: Figure, output: str | Path, dpi: int = 120) -> Path:
    """Writes the figure as a PNG (atomically: a crash leaves the old file)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(output, lambda partial: figure.savefig(partial, dpi=dpi, format="png"))
    return output
