"""A run's report: every seed's final score and, per sweep point with 4 or more seeds, their
interquartile mean with a 95% stratified bootstrap interval (human-normalised too on
Atari). The end of `experiments.train` prints it; for an existing run:

    python3 -m experiments.report RUN_DIR [RUN_DIR ...] [--baseline dopamine|td3]

`--baseline` also draws the runs' curves beside the published ones (baselines.png in the
first run dir, or --output).
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.aggregates import AGGREGATES, aggregate_one, final_scores
from experiments.logger import format_table
from experiments.results import (
    ROW_COLUMNS,
    RUN_COLUMNS,
    NoRunsError,
    human_normalized,
    human_random_scores,
    load_runs,
    report_metric,
)

MIN_SEEDS_FOR_INTERVALS = 4  # fewer seeds give bootstrap intervals too wide to mean much
REPORT_REPS = 5_000  # bootstrap replications: fast, and the bounds stable to ~1%


def point_columns(table: pd.DataFrame) -> list[str]:
    """The columns of a `load_runs` table that tell a run's members apart besides the seed:
    the swept hyperparameters and the config fields that differ between runs."""
    return [c for c in table.columns if c not in (*RUN_COLUMNS, "seed", *ROW_COLUMNS)]


def seed_scores(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per member (run, sweep point, seed): the final value of `metric`, the mean of its
    last two, and the step of the last."""
    final = final_scores(table, metric)
    last_two = final_scores(table, metric, last=2)
    return final.assign(last_two=last_two["score"].to_numpy()).rename(columns={"score": "final"})


def point_aggregates(
    table: pd.DataFrame, metric: str, reps: int = REPORT_REPS, seed: int = 0
) -> pd.DataFrame:
    """Per run, game and sweep point: seeds, mean and std of the final scores, and with 4+
    seeds their IQM with a 95% interval (NaN with fewer); on Atari games with human scores
    the same IQM human-normalised."""
    keys = ["run", "game", *point_columns(table)]
    scores = final_scores(table, metric)
    if scores["game"].isin(human_random_scores().index).all():  # Atari games
        scores["normalized"] = human_normalized(scores["score"], scores["game"])
    rows = []
    for key, group in scores.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key, strict=True))
        row.update(seeds=len(group), mean=group["score"].mean(), std=group["score"].std(ddof=0))
        for name, column in (("IQM", "score"), ("normalised IQM", "normalized")):
            value = (np.nan,) * 3
            if len(group) >= MIN_SEEDS_FOR_INTERVALS and column in group:
                value = _iqm(group[[column]].to_numpy(), reps, seed)
            row.update(dict(zip((name, f"{name} low", f"{name} high"), value, strict=True)))
        rows.append(row)
    return pd.DataFrame(rows)


def _iqm(scores: np.ndarray, reps: int, seed: int) -> tuple[float, float, float]:
    """IQM of (runs, 1) scores with its 95% interval."""
    return aggregate_one({"": scores}, AGGREGATES["IQM"], reps, 0.95, seed)[""]


def format_report(table: pd.DataFrame, reps: int = REPORT_REPS) -> str:
    """The per-seed table and the per-point aggregates of a `load_runs` table, as text."""
    metric = report_metric(table)
    seeds = seed_scores(table, metric)
    points = point_aggregates(table, metric, reps)
    label = _labeller(table)
    per_seed = format_table(
        ("agent", f"final {metric}", "mean of last two", "at step"),
        [
            (label(row, with_seed=True), row["final"], row["last_two"], row["step"])
            for _, row in seeds.iterrows()
        ],
    )
    normalized = points["normalised IQM"].notna().any()
    header = ["point", "seeds", "mean ± std", "IQM [95% CI]"]
    header += ["human-normalised IQM [95% CI]"] if normalized else []
    rows = [
        (
            label(row, with_seed=False) or "all seeds",
            row["seeds"],
            f"{row['mean']:.1f} ± {row['std']:.1f}",
            _interval(row, "IQM", "{:.1f}"),
            *([_interval(row, "normalised IQM", "{:.3f}")] if normalized else []),
        )
        for _, row in points.iterrows()
    ]
    lines = [per_seed, "", format_table(header, rows)]
    if (points["seeds"] < MIN_SEEDS_FOR_INTERVALS).any():
        lines.append(f"(an IQM and its interval need {MIN_SEEDS_FOR_INTERVALS}+ seeds: --seeds)")
    return "\n".join(lines)


def _labeller(table: pd.DataFrame):
    """Labels of members and points: run name (when several runs), swept values, seed."""
    several_runs = table["run"].nunique() > 1
    columns = point_columns(table)

    def label(row: pd.Series, with_seed: bool) -> str:
        parts = [Path(row["run"]).name + ":"] if several_runs else []
        parts += [
            f"{c}={row[c]:g}" if isinstance(row[c], float) else f"{c}={row[c]}" for c in columns
        ]
        return " ".join(parts + ([f"seed {row['seed']}"] if with_seed else []))

    return label


def _interval(row: pd.Series, name: str, number: str) -> str:
    if np.isnan(row[name]):
        return "-"
    value, low, high = (number.format(row[key]) for key in (name, f"{name} low", f"{name} high"))
    return f"{value} [{low}, {high}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m experiments.report", description=__doc__)
    parser.add_argument("runs", nargs="+", help="run dirs, their parent folder, or globs")
    parser.add_argument("--baseline", choices=("dopamine", "td3"), help="draw published curves")
    parser.add_argument("--output", type=Path, help="the baseline figure (PNG)")
    args = parser.parse_args(argv)
    try:
        table = load_runs(args.runs)
        print(format_report(table))
        if args.baseline:
            from experiments.baselines import plot_against_baselines

            output = args.output or Path(table["run"].iloc[0]) / "baselines.png"
            plot_against_baselines(table, args.baseline, output=output)
            print(f"baselines: {output}")
    except (NoRunsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
