"""Published baselines beside a user's runs: Dopamine's released Atari training returns and
the TD3 paper's own evaluation curves, put on the runs' step grid and drawn with them.

Both ship in the package as compact copies of the project's reference data
(`experiments/data/dopamine_atari.csv.gz`, `experiments/data/td3_paper_curves.csv.gz`);
rebuild them with

    python3 -m experiments.baselines --build SHARED_DATA_DIR

from `dopamine_baselines.csv.gz` and `td3_paper_learning_curves.csv` in that folder.
"""

import argparse
import gzip
import math
import sys
import textwrap
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from experiments.config import Config
from experiments.logger import replace_atomically
from experiments.results import (
    DATA_DIR,
    ROW_COLUMNS,
    RUN_COLUMNS,
    game_key,
    human_normalized,
    human_random_scores,
    metric_rows,
    report_metric,
    run_config,
)

DOPAMINE_FILE = DATA_DIR / "dopamine_atari.csv.gz"
TD3_FILE = DATA_DIR / "td3_paper_curves.csv.gz"
DOPAMINE_ITERATION_STEPS = 250_000  # agent steps (1M frames) per Dopamine iteration
ATARI_FRAMES_PER_STEP = 4
TD3_EVAL_PERIOD = 5_000  # agent steps between the TD3 paper's evaluations
# Dopamine's returns keep 5 significant digits and at most 2 decimals (within 0.005% or
# 0.005 of the released values). 4 digits would also stay within 0.05%, but they move
# DQN (Adam)'s final median from 1.00647 to 1.00653, printed 1.007 instead of SPEC's 1.006.
DOPAMINE_DIGITS = 5
DOPAMINE_DECIMALS = 2
TD3_DECIMALS = 2  # the paper's Table 1 prints 2 decimals
_DOPAMINE_KEYS = ["variant", "agent", "game", "run"]
_BASELINES = ("dopamine", "td3")
_BASELINE_COLORS = ("black", "tab:gray", "tab:brown", "tab:olive")


def _rounded(values: np.ndarray, significant: int, decimals: int) -> np.ndarray:
    """Each value (N,) to `significant` significant digits, but to no more than `decimals`
    decimals."""
    values = np.asarray(values, float)
    magnitude = np.floor(np.log10(np.abs(values), where=values != 0, out=np.zeros_like(values)))
    places = np.minimum(decimals, significant - 1 - magnitude).astype(int)
    result = np.empty_like(values)
    for place in np.unique(places):
        chosen = places == place
        result[chosen] = np.round(values[chosen], place)
    return result


def build(shared: str | Path, output: str | Path = DATA_DIR) -> list[Path]:
    """Writes the compact copies of the reference data in `shared` to `output`: every Atari
    curve of `dopamine_baselines.csv.gz` (all agents and variants, one row per variant,
    agent, game and run, one column per iteration) and `td3_paper_learning_curves.csv`
    (one row per env and seed, one column per evaluation step). Returns their paths."""
    shared, output = Path(shared), Path(output)
    dopamine = pd.read_csv(shared / "dopamine_baselines.csv.gz", keep_default_na=False)
    atari = dopamine[dopamine["suite"] == "atari"]
    atari = atari.assign(
        game=atari["game"].map(game_key),
        iteration=atari["iteration"].astype(int),
        value=_rounded(atari["value"].to_numpy(), DOPAMINE_DIGITS, DOPAMINE_DECIMALS),
    )
    td3 = pd.read_csv(shared / "td3_paper_learning_curves.csv")
    td3 = td3.assign(value=td3["eval_return"].round(TD3_DECIMALS))
    tables = {
        output / DOPAMINE_FILE.name: atari.pivot(
            index=_DOPAMINE_KEYS, columns="iteration", values="value"
        ),
        output / TD3_FILE.name: td3.pivot(
            index=["env", "seed"], columns="timestep", values="value"
        ),
    }
    output.mkdir(parents=True, exist_ok=True)
    for path, wide in tables.items():
        # mtime 0 and no file name in the gzip header: a rebuild gives the same bytes.
        data = gzip.compress(wide.to_csv(float_format="%.10g").encode(), 9, mtime=0)
        replace_atomically(path, lambda partial, data=data: partial.write_bytes(data))
    return list(tables)


@cache
def _dopamine() -> dict[tuple[str, str], pd.DataFrame]:
    """The shipped Dopamine curves by (variant, agent): game, run, iteration, value."""
    wide = pd.read_csv(DOPAMINE_FILE, dtype={"variant": str}).fillna({"variant": ""})
    long = wide.melt(id_vars=_DOPAMINE_KEYS, var_name="iteration").dropna(subset=["value"])
    long = long.astype({"iteration": int})
    return {
        key: curves.drop(columns=["variant", "agent"]).reset_index(drop=True)
        for key, curves in long.groupby(["variant", "agent"])
    }


@cache
def _td3() -> pd.DataFrame:
    """The shipped TD3 paper curves: task, env, seed, step, value."""
    wide = pd.read_csv(TD3_FILE)
    long = wide.melt(id_vars=["env", "seed"], var_name="step").dropna(subset=["value"])
    long = long.astype({"step": int}).assign(task=lambda t: t["env"].map(td3_task))
    return long[["task", "env", "seed", "step", "value"]].reset_index(drop=True)


def dopamine_games() -> list[str]:
    """The Atari games of Dopamine's data (`game_key` spelling)."""
    return sorted({game for curves in _dopamine().values() for game in curves["game"]})


def dopamine_curves(
    agent: str, games: Sequence[str] | None = None, variant: str = ""
) -> pd.DataFrame:
    """Dopamine's per-iteration training returns of `agent` (e.g. "C51", "DQN (Adam + MSE in
    JAX)") on `games` (any spelling; all 60 by default) from the variant's files ("": the
    main files, 5 runs x 199 iterations; "CNN" or "Impala": 200 iterations). Columns game,
    agent, variant, run, iteration, step (agent steps at the iteration's end), frames, value
    (the mean return of the training episodes of that iteration) and normalized (human-
    normalised value; NaN for the 5 games without human scores)."""
    variants = sorted({key[0] for key in _dopamine()})
    if variant not in variants:
        raise ValueError(f"unknown Dopamine variant {variant!r}; the known ones are {variants}")
    agents = sorted(name for key, name in _dopamine() if key == variant)
    if agent not in agents:
        raise ValueError(
            f"unknown Dopamine agent {agent!r} (variant {variant!r}); the known ones are "
            f"{', '.join(map(repr, agents))}"
        )
    data = _dopamine()[variant, agent]
    if games is not None:
        keys = [game_key(game) for game in games]
        unknown = sorted(set(keys) - set(data["game"]))
        if unknown:
            raise ValueError(
                f"Dopamine has no data for {unknown}; it has {', '.join(dopamine_games())}"
            )
        data = data[data["game"].isin(keys)]
    curves = data.sort_values(["game", "run", "iteration"]).reset_index(drop=True)
    step = (curves["iteration"] + 1) * DOPAMINE_ITERATION_STEPS
    scored = curves["game"].isin(human_random_scores().index)
    normalized = np.full(len(curves), np.nan)
    normalized[scored.to_numpy()] = human_normalized(
        curves.loc[scored, "value"], curves.loc[scored, "game"]
    )
    curves = curves.assign(
        agent=agent,
        variant=variant,
        step=step,
        frames=step * ATARI_FRAMES_PER_STEP,
        normalized=normalized,
    )
    columns = ["game", "agent", "variant", "run", "iteration", "step", "frames", "value"]
    return curves[[*columns, "normalized"]]


def td3_task(env: str) -> str:
    """The task of a MuJoCo env id without its version: "HalfCheetah-v4" -> "HalfCheetah"."""
    return env.split("-v")[0]


def td3_paper_curves(tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """The TD3 paper's evaluation curves (10 seeds, every 5000 steps from 0 to 1M, each the
    mean return of 10 episodes without noise) on `tasks` (names or env ids of any version,
    e.g. "HalfCheetah-v4"; all 7 by default). Columns task, env (the paper's gym -v1 id),
    seed, step, value."""
    data = _td3()
    if tasks is not None:
        known = {task.lower(): task for task in data["task"].unique()}
        wanted = [td3_task(task).lower() for task in tasks]
        unknown = [task for task, key in zip(tasks, wanted, strict=True) if key not in known]
        if unknown:
            raise ValueError(
                f"the TD3 paper has no curves for {unknown}; it has "
                f"{', '.join(sorted(known.values()))}"
            )
        data = data[data["task"].isin([known[key] for key in wanted])]
    return data.sort_values(["task", "seed", "step"]).reset_index(drop=True)


def _field(config: Config | Mapping[str, Any], name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name, getattr(Config, name))  # a field older runs did not store
    return getattr(config, name)


def dopamine_agent(config: Config | Mapping[str, Any]) -> str:
    """The Dopamine agent a run is compared with, from its config (a `Config`, or the dict
    a run dir's config.json holds):

    | the run's config                       | e.g. the presets           | Dopamine agent    |
    |----------------------------------------|----------------------------|-------------------|
    | value_representation "c51"             | c51_atari_dopamine, _paper | "C51"             |
    | value_representation "quantile"        | qrdqn_atari                | "Quantile (JAX)"  |
    | optimizer "rmsprop" (and neither)      | dqn_atari_nature, _zoo     | "DQN" (RMSProp,   |
    |                                        |                            | Huber)            |
    | optimizer "adam" (and neither): scalar,| dqn_atari_dopamine,        | "DQN (Adam + MSE  |
    | HL-Gauss and two-hot critics, i-DQN,   | hlgauss_atari, idqn_atari, | in JAX)"          |
    | MD3QN, HRA, MMDQN                      | md3qn_atari                |                   |

    A td3 run (MuJoCo) raises ValueError. Whether the protocols match is
    `dopamine_caveat`'s question."""
    if _field(config, "agent") == "td3":
        raise ValueError("a td3 run has no Dopamine (Atari) baseline: use the td3 baseline")
    if _field(config, "value_representation") == "c51":
        return "C51"
    if _field(config, "value_representation") == "quantile":
        return "Quantile (JAX)"
    if _field(config, "optimizer") == "rmsprop":
        return "DQN"
    return "DQN (Adam + MSE in JAX)"


def dopamine_caveat(config: Config | Mapping[str, Any]) -> str:
    """Why a run's scores are not comparable with Dopamine's: "not comparable: <why>" when
    its Atari protocol is not Dopamine's (sticky actions, atari_protocol "dopamine"), else
    ""."""
    protocol = _field(config, "atari_protocol")
    if protocol == "dopamine":
        return ""
    return f"not comparable: atari_protocol {protocol!r}, Dopamine's runs use sticky actions"


def on_dopamine_grid(table: pd.DataFrame, metric: str = "train_return") -> pd.DataFrame:
    """The `metric` rows of a `load_runs` table on Dopamine's iterations: a row logged at
    agent step s falls in iteration ceil(s / 250k) - 1 (rows at step 0 in none), and the
    rows of one seed within an iteration are averaged. That equals Dopamine's per-iteration
    mean training return only when the run's iteration_steps is 250k (one train_return per
    iteration, the mean of its episodes); with shorter iterations it is the mean of their
    means. Columns: the table's run columns, iteration, step ((iteration + 1) x 250k),
    frames (4 per step), metric, value."""
    rows = metric_rows(table, metric)
    iteration = -(-rows["step"] // DOPAMINE_ITERATION_STEPS) - 1
    rows = rows.assign(iteration=iteration)[iteration >= 0]
    keys = [c for c in rows.columns if c not in ("step", "frames", "value")]
    grid = rows.groupby(keys, sort=False, dropna=False)["value"].mean().reset_index()
    step = (grid["iteration"] + 1) * DOPAMINE_ITERATION_STEPS
    grid = grid.assign(step=step, frames=step * ATARI_FRAMES_PER_STEP)
    identity = [c for c in keys if c not in ("metric", "iteration")]
    return grid[[*identity, "iteration", "step", "frames", "metric", "value"]]


def on_td3_grid(table: pd.DataFrame, metric: str = "eval_return") -> pd.DataFrame:
    """The `metric` rows of a `load_runs` table at the TD3 paper's evaluation steps
    (multiples of 5000), with the table's columns; raises ValueError if there are none."""
    rows = metric_rows(table, metric)
    rows = rows[rows["step"] % TD3_EVAL_PERIOD == 0].reset_index(drop=True)
    if rows.empty:
        raise ValueError(
            f"no {metric!r} rows at the TD3 paper's evaluation steps (multiples of "
            f"{TD3_EVAL_PERIOD}): train with --iteration-steps {TD3_EVAL_PERIOD}"
        )
    return rows


def plot_against_baselines(
    table: pd.DataFrame,
    baseline: str | None = None,
    metric: str | None = None,
    output: str | Path | None = None,
) -> Figure:
    """One panel per game (or task) of the runs in `table` (a `load_runs` table): each
    seed's `metric` thin, each run's mean over its seeds thick, and the baseline's mean with
    a min-max band over its runs, up to the last step the runs reached. `baseline`:
    "dopamine" (Atari: each run against the agent `dopamine_agent` picks, its rows put on
    Dopamine's iterations by `on_dopamine_grid`; a run on another protocol adds
    `dopamine_caveat`'s "not comparable: ..." to its panel's title), "td3" (MuJoCo: the
    paper's 10 seeds, the runs at its evaluation steps by `on_td3_grid`) or None (the runs
    alone). `metric` defaults to what the baseline reports: train_return (Dopamine),
    eval_return (TD3); without a baseline eval_return if logged, else train_return. Writes
    a PNG to `output` if given."""
    if baseline not in (None, *_BASELINES):
        raise ValueError(f"unknown baseline {baseline!r}: use one of {_BASELINES} or None")
    table = _with_panels(table)
    if metric is None:
        defaults = {"dopamine": "train_return", "td3": "eval_return"}
        metric = defaults[baseline] if baseline else report_metric(table)
    on_grid = {"dopamine": on_dopamine_grid, "td3": on_td3_grid}.get(baseline, metric_rows)
    rows = _with_curves(on_grid(table, metric))
    panels = sorted(rows["panel"].unique())
    references = _references(rows, panels, baseline)
    colors = {label: f"C{i % 10}" for i, label in enumerate(sorted(rows["curve"].unique()))}
    names = sorted({name for curves, _ in references.values() for name in curves})
    colors |= {name: _BASELINE_COLORS[i % len(_BASELINE_COLORS)] for i, name in enumerate(names)}

    columns = min(3, len(panels))
    figure = Figure(
        figsize=(4.6 * columns, 3.6 * math.ceil(len(panels) / columns) + 0.8), layout="constrained"
    )
    FigureCanvasAgg(figure)
    axes = figure.subplots(math.ceil(len(panels) / columns), columns, squeeze=False).ravel()
    for axis in axes[len(panels) :]:
        axis.remove()
    frames = _frames_per_step(rows)
    handles = {}
    for axis, panel in zip(axes, panels, strict=False):
        ours = rows[rows["panel"] == panel]
        for label, curve in ours.groupby("curve"):
            for _, seed in curve.groupby("seed"):
                seed = seed.sort_values("step")
                axis.plot(seed["step"], seed["value"], color=colors[label], lw=0.7, alpha=0.4)
            mean = curve.groupby("step")["value"].mean()
            seeds = curve["seed"].nunique()
            legend = f"{label}: mean of {seeds} seed{'s' * (seeds > 1)} (thin: each seed)"
            handles[legend] = axis.plot(mean.index, mean, color=colors[label], lw=2.2)[0]
        curves, notes = references.get(panel, ({}, []))
        for name, curve in curves.items():
            if (curve["step"] <= ours["step"].max()).any():
                curve = curve[curve["step"] <= ours["step"].max()]
            band = curve.groupby("step")["value"].agg(["mean", "min", "max"])
            axis.fill_between(band.index, band["min"], band["max"], color=colors[name], alpha=0.15)
            handles[name] = axis.plot(band.index, band["mean"], color=colors[name], ls="--")[0]
        axis.set_title("\n".join([panel, *(textwrap.fill(n, 60) for n in notes)]), fontsize=9)
        axis.set_xlabel("agent steps per seed" + (f" (x{frames} = frames)" if frames > 1 else ""))
        axis.set_ylabel(metric.replace("_", " "))
        axis.xaxis.set_major_formatter(EngFormatter(sep=""))  # 250k, 1M
        axis.grid(alpha=0.3)
    figure.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(2, columns),
        fontsize=8,
    )
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(output, lambda partial: figure.savefig(partial, dpi=120, format="png"))
    return figure


def _with_panels(table: pd.DataFrame) -> pd.DataFrame:
    """The table with a panel column: its game column, or its one env."""
    if "game" in table.columns:
        return table.assign(panel=table["game"])
    envs = sorted(table["env"].unique()) if "env" in table.columns else []
    if len(envs) != 1:
        raise ValueError(
            f"the table has no game column and {len(envs)} envs ({', '.join(envs)}): load it "
            "with experiments.results.load_runs, which adds one, or pass one env's rows"
        )
    return table.assign(panel=envs[0])


def _with_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with a curve column naming what their seeds are averaged over: the run
    dir's name, with the swept values that tell a run's points apart."""
    runs = rows["run"] if "run" in rows.columns else rows["panel"]
    fixed = {*RUN_COLUMNS, "panel", "seed", "iteration", *ROW_COLUMNS}
    swept = [
        c
        for c in rows.columns
        if c not in fixed and (rows.groupby(runs)[c].nunique(dropna=False) > 1).any()
    ]
    curve = runs.map(lambda run: Path(str(run)).name)
    for column in swept:
        curve = curve + f" {column}=" + rows[column].map(_short)
    return rows.assign(curve=curve)


def _references(
    rows: pd.DataFrame, panels: list[str], baseline: str | None
) -> dict[str, tuple[dict[str, pd.DataFrame], list[str]]]:
    """{panel: ({legend: the baseline's curves (step, value per run)}, title notes)}."""
    references = {}
    if baseline == "dopamine":
        unknown = sorted({game_key(panel) for panel in panels} - set(dopamine_games()))
        if unknown:
            raise ValueError(
                f"Dopamine has no data for {unknown} (it has the Atari games "
                f"{', '.join(dopamine_games())}): drop those runs or pass baseline=None"
            )
        configs = {run: run_config(run) for run in rows["run"].unique()}
        for panel in panels:
            runs = rows.loc[rows["panel"] == panel, "run"].unique()
            curves = {}
            for agent in sorted({dopamine_agent(configs[run]) for run in runs}):
                curve = dopamine_curves(agent, [panel])
                curves[f"Dopamine {agent}: mean, min-max of {curve['run'].nunique()} runs"] = curve
            notes = [
                dopamine_caveat(configs[run]) + (f" ({Path(run).name})" if len(runs) > 1 else "")
                for run in runs
                if dopamine_caveat(configs[run])
            ]
            references[panel] = (curves, notes)
    elif baseline == "td3":
        for panel in panels:
            try:
                curve = td3_paper_curves([panel])
            except ValueError as error:
                raise ValueError(f"{error}: drop those runs or pass baseline=None") from None
            paper_env = curve["env"].iloc[0]
            notes = [f"(the paper's {paper_env})"] if paper_env != panel else []
            seeds = curve["seed"].nunique()
            references[panel] = ({f"TD3 paper: mean, min-max of {seeds} seeds": curve}, notes)
    return references


def _frames_per_step(rows: pd.DataFrame) -> int:
    if "frames" not in rows.columns or rows["step"].max() <= 0:
        return 1
    return round(rows["frames"].max() / rows["step"].max())


def _short(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m experiments.baselines", description=__doc__)
    parser.add_argument(
        "--build",
        type=Path,
        required=True,
        metavar="SHARED_DATA_DIR",
        help="the folder holding dopamine_baselines.csv.gz and td3_paper_learning_curves.csv",
    )
    parser.add_argument("--output", type=Path, default=DATA_DIR, help="where to write them")
    args = parser.parse_args(argv)
    for path in build(args.build, args.output):
        print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
