"""Aggregate performance over (task, run) done as Agarwal et al. (2021, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice") recommend, with their rliable library:
interquartile mean, median, mean and optimality gap with stratified bootstrap confidence
intervals, performance profiles, probability of improvement, and aggregate curves.

A score matrix is (runs, tasks): one score per seed and game (or env). `score_matrices`
builds them from a run-store table (`experiments.results.load_runs`).
"""

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics

from experiments.results import human_normalized, metric_rows

AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "IQM": metrics.aggregate_iqm,
    "median": metrics.aggregate_median,  # of the per-task means over runs
    "mean": metrics.aggregate_mean,
    "optimality gap": metrics.aggregate_optimality_gap,  # mean shortfall below 1
}
DEFAULT_REPS = 50_000  # bootstrap replications, rliable's default


def final_scores(
    table: pd.DataFrame, metric: str, last: int = 1, normalize: bool = False
) -> pd.DataFrame:
    """Each (run, seed, swept point)'s score: the mean of its `last` logged values of
    `metric` (the final evaluation, or the mean of the last two). Columns: the table's
    identity columns (run ... the differing config fields), step (of the last value) and
    score; `normalize` turns Atari scores into human-normalised ones."""
    rows = metric_rows(table, metric)
    keys = [c for c in rows.columns if c not in ("step", "frames", "metric", "value")]
    rows = rows.sort_values("step", kind="stable")  # members stay in logging order
    rows = rows.groupby(keys, sort=False, dropna=False).tail(last)
    scores = rows.groupby(keys, sort=False, dropna=False).agg(
        step=("step", "max"), score=("value", "mean")
    )
    scores = scores.reset_index()
    if normalize:
        scores["score"] = human_normalized(scores["score"], scores["game"])
    return scores


def score_matrices(
    scores: pd.DataFrame, by: str | Sequence[str] = "agent"
) -> dict[str, np.ndarray]:
    """{group label: (runs, tasks) scores} from `final_scores`, one group per value of
    `by` (e.g. "agent", "run" or a swept hyperparameter), the tasks being games in the same
    order for every group. Raises ValueError when a group misses a task or has unequal
    numbers of runs per task (the stratified bootstrap needs a full matrix)."""
    by = [by] if isinstance(by, str) else list(by)
    games = sorted(scores["game"].unique())
    matrices = {}
    for key, group in scores.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        label = " ".join(f"{name}={value}" for name, value in zip(by, key, strict=True))
        runs = group.groupby("game")["score"].apply(list)
        missing = sorted(set(games) - set(runs.index))
        if missing:
            raise ValueError(
                f"{label} has no score for {missing}: compare groups on the same games"
            )
        counts = {game: len(runs[game]) for game in games}
        if len(set(counts.values())) > 1:
            raise ValueError(
                f"{label} has unequal runs per game {counts}: load the same seeds for every game"
            )
        matrices[label] = np.stack([np.asarray(runs[game], float) for game in games], axis=1)
    return matrices


def aggregate(
    matrices: Mapping[str, np.ndarray],
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Every aggregate of `AGGREGATES` per group with its stratified bootstrap confidence
    interval (resampling runs within each task): index group, columns (aggregate,
    "value" | "low" | "high")."""
    functions = list(AGGREGATES.values())
    points, intervals = _interval_estimates(
        dict(matrices),
        lambda scores: np.array([function(scores) for function in functions]),
        reps,
        confidence,
        seed,
    )
    columns = pd.MultiIndex.from_product([list(AGGREGATES), ["value", "low", "high"]])
    rows = [np.stack([points[group], *intervals[group]], axis=1).reshape(-1) for group in matrices]
    return pd.DataFrame(rows, index=pd.Index(list(matrices), name="group"), columns=columns)


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, reps: int = 2_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """P(X > Y): the probability that a run of X beats a run of Y on a task (ties count
    half), averaged over tasks, with its stratified bootstrap interval; x (runs_x, tasks),
    y (runs_y, tasks). Returns (value, low, high)."""
    points, intervals = _interval_estimates(
        {"x,y": [np.asarray(x, float), np.asarray(y, float)]},
        metrics.probability_of_improvement,
        reps,
        confidence,
        seed,
    )
    low, high = np.ravel(intervals["x,y"])
    return float(points["x,y"]), float(low), float(high)


def performance_profiles(
    matrices: Mapping[str, np.ndarray],
    thresholds: np.ndarray,
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Score distributions: for each group and threshold tau, the fraction of (run, task)
    scores above tau with its bootstrap interval. Columns group, threshold, value, low,
    high."""
    rows = []
    for group, scores in matrices.items():
        profiles, intervals = _interval_estimates(
            {group: scores},
            lambda s: np.mean(s[..., None] > thresholds, axis=tuple(range(s.ndim))),
            reps,
            confidence,
            seed,
        )
        low, high = intervals[group]
        rows += [
            (group, tau, value, lo, hi)
            for tau, value, lo, hi in zip(thresholds, profiles[group], low, high, strict=True)
        ]
    return pd.DataFrame(rows, columns=["group", "threshold", "value", "low", "high"])


def aggregate_curves(
    table: pd.DataFrame,
    metric: str,
    by: str | Sequence[str] = "agent",
    aggregate_name: str = "IQM",
    normalize: bool = False,
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Sample-efficiency curves: one aggregate (default IQM) over (task, run) at every step
    that all groups' runs have logged, with its bootstrap band. Columns group, step, value,
    low, high."""
    function = AGGREGATES[aggregate_name]
    rows = table[table["metric"] == metric]
    rows = rows[rows.groupby("step")["run"].transform("nunique") == rows["run"].nunique()]
    curves = []
    for step, at_step in rows.groupby("step", sort=True):
        scores = final_scores(at_step, metric, normalize=normalize)
        estimates = aggregate_one(score_matrices(scores, by), function, reps, confidence, seed)
        curves += [(group, step, *values) for group, values in estimates.items()]
    return pd.DataFrame(curves, columns=["group", "step", "value", "low", "high"])


def aggregate_one(
    matrices: Mapping[str, np.ndarray],
    function: Callable[[np.ndarray], float],
    reps: int,
    confidence: float,
    seed: int,
) -> dict[str, tuple[float, float, float]]:
    """{group: (value, low, high)} of one aggregate function."""
    points, intervals = _interval_estimates(
        dict(matrices),
        function,
        reps,
        confidence,
        seed,
    )
    return {g: (float(points[g]), *map(float, np.ravel(intervals[g]))) for g in matrices}


def compare_sweep(
    scores: pd.DataFrame, parameter: str, reps: int = 2_000, seed: int = 0
) -> pd.DataFrame:
    """A sweep's points ranked by IQM (with its interval) from `final_scores`, each with
    the probability that the best point improves on it. Columns `parameter`, IQM, low,
    high, P(best > point), low, high."""
    matrices = score_matrices(scores, parameter)
    iqm = aggregate_one(matrices, metrics.aggregate_iqm, reps, 0.95, seed)
    ranked = sorted(matrices, key=lambda label: -iqm[label][0])
    best = matrices[ranked[0]]
    rows = []
    for label in ranked:
        value = scores[parameter].iloc[0] if len(matrices) == 1 else label.split("=", 1)[1]
        improvement = (
            (np.nan,) * 3
            if label == ranked[0]
            else probability_of_improvement(best, matrices[label], reps, seed=seed)
        )
        rows.append((value, *iqm[label], *improvement))
    columns = [parameter, "IQM", "IQM low", "IQM high", "P(best > point)", "P low", "P high"]
    return pd.DataFrame(rows, columns=columns)


def _interval_estimates(
    matrices: Mapping[str, np.ndarray | list[np.ndarray]],
    function: Callable[..., np.ndarray],
    reps: int,
    confidence: float,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's point estimates and stratified bootstrap intervals, reproducible by seed.

    rliable's stratified bootstrap draws its resamples from NumPy's global generator (the
    random_state it accepts is not used for them), so that generator is seeded here and
    restored after: the caller's stream is left as it was."""
    saved = np.random.get_state()  # noqa: NPY002 (rliable draws from the legacy global)
    np.random.seed(seed)  # noqa: NPY002
    try:
        return rly.get_interval_estimates(
            dict(matrices), function, reps=reps, confidence_interval_size=confidence
        )
    finally:
        np.random.set_state(saved)  # noqa: NPY002
