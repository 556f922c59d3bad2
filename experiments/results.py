"""The run store: run dirs read back into one tidy pandas DataFrame, one row per (run,
seed, step, metric), with Atari scores normalised by random and human play.

Runs still in progress load what they have logged. The Atari random and human scores ship
with the package (`experiments/data/atari_human_random.csv`).
"""

import glob
import json
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from envs import env_spec
from experiments.logger import CONFIG_FILE, METRICS_COLUMNS, metrics_paths

DATA_DIR = Path(__file__).resolve().parent / "data"
HUMAN_RANDOM_FILE = DATA_DIR / "atari_human_random.csv"
# The run's identity columns, before the swept hyperparameters and the per-row ones.
RUN_COLUMNS = ("run", "preset", "agent", "env", "game")
ROW_COLUMNS = ("step", "frames", "metric", "value")
# Config fields that never tell runs apart in a comparison.
_BOOKKEEPING_FIELDS = frozenset(
    {"run_dir", "progress", "checkpoint_every", "keep_checkpoints", "seeds", "seed_offset"}
    | {"coordinator_address", "num_processes", "process_id", "coordinator_timeout"}
)


class NoRunsError(FileNotFoundError):
    """The given paths hold no run this library wrote."""


def game_key(name: str) -> str:
    """The name of an Atari game in every table's spelling: "BankHeist-v5", "bank_heist"
    and "bankheist" all give "bankheist"."""
    return name.split("-v")[0].replace("_", "").replace(" ", "").lower()


def find_runs(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The run dirs under `paths`: run dirs, parents of run dirs (searched at any depth) or
    glob patterns; sorted, each once. The process dirs of a multi-process run are part of
    it, not runs of their own."""
    if isinstance(paths, str | Path):
        paths = [paths]
    found: set[Path] = set()
    for pattern in paths:
        matches = glob.glob(str(pattern)) or [str(pattern)]
        for match in map(Path, matches):
            found.update(config.parent for config in match.glob(f"**/{CONFIG_FILE}"))
    runs = {run for run in found if not (run.name.startswith("process_") and run.parent in found)}
    if not runs:
        raise NoRunsError(
            f"no run under {', '.join(map(str, paths))}: pass run dirs (each holds "
            f"{CONFIG_FILE} and metrics.csv), their parent folder, or a glob of them."
        )
    return sorted(runs)


def _read_record(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        message = f"{run_dir / CONFIG_FILE} cannot be read as a run's config: {error}"
        raise NoRunsError(message) from None


def run_config(run_dir: str | Path) -> dict:
    """The resolved config a run dir stores (config.json's "config"), as a dict."""
    return _read_record(Path(run_dir))["config"]


def _run_metrics(run_dir: Path, metrics: Sequence[str] | None) -> pd.DataFrame:
    """Every process's metrics.csv of a run, concatenated (empty if none has logged)."""
    frames = [pd.read_csv(path) for path in metrics_paths(run_dir) if path.exists()]
    if not frames:
        return pd.DataFrame(columns=list(METRICS_COLUMNS))
    table = pd.concat(frames, ignore_index=True)
    if metrics is not None:
        table = table[table["metric"].isin(metrics)]
    return table


def load_runs(
    paths: str | Path | Iterable[str | Path], metrics: Sequence[str] | None = None
) -> pd.DataFrame:
    """One tidy table of the runs under `paths` (see `find_runs`): columns run (the run
    dir), preset, agent, env, game (the Atari game, else the env id), seed, one column per
    swept hyperparameter, the config fields whose values differ between the runs, then
    step (agent steps per seed), frames (emulator frames: steps x frame skip), metric and
    value. `metrics` keeps only those metrics. A run without logged rows adds none."""
    runs = find_runs(paths)
    records = {run: _read_record(run) for run in runs}
    configs = {run: record["config"] for run, record in records.items()}
    swept = [
        name
        for name in ("learning_rate", "gamma")
        if any(config.get(f"sweep_{name}") for config in configs.values())
    ]
    fields = sorted({field for config in configs.values() for field in config})
    differing = [
        field
        for field in fields
        if field not in _BOOKKEEPING_FIELDS
        and field not in ("agent", "env", *swept, *(f"sweep_{name}" for name in swept))
        and len({json.dumps(config.get(field)) for config in configs.values()}) > 1
    ]
    tables = []
    for run in runs:
        config = configs[run]
        spec = env_spec(config["env"], 1, 1, config.get("atari_protocol", "dopamine"))
        table = _run_metrics(run, metrics)
        table = table.assign(
            run=str(run),
            preset=records[run].get("preset", "custom"),
            agent=config["agent"],
            env=config["env"],
            game=game_key(config["env"]) if spec.suite == "atari" else config["env"],
            frames=table["step"] * spec.frames_per_step,
        )
        for field in [name for name in swept if name not in table.columns] + differing:
            value = config.get(field)  # a swept name absent here: the run's one value
            table[field] = json.dumps(value) if isinstance(value, list | dict) else value
        tables.append(table)
    columns = [*RUN_COLUMNS, "seed", *swept, *differing, *ROW_COLUMNS]
    logged = [table[columns] for table in tables if not table.empty]
    table = pd.concat(logged, ignore_index=True) if logged else pd.DataFrame(columns=columns)
    return table.astype({"seed": int, "step": int, "frames": int, "value": float})


def metric_rows(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows of one metric of a `load_runs` table; raises ValueError naming the metrics
    the runs do log if there are none."""
    rows = table[table["metric"] == metric]
    if rows.empty:
        logged = ", ".join(sorted(table["metric"].unique())) or "nothing"
        raise ValueError(f"no {metric!r} rows in these runs; they log {logged}")
    return rows


def report_metric(table: pd.DataFrame) -> str:
    """The score a run is judged by: its evaluation return if it logs one, else its
    training return."""
    logged = set(table["metric"])
    for metric in ("eval_return", "train_return"):
        if metric in logged:
            return metric
    raise ValueError(
        "these runs have logged no eval_return or train_return yet (they log "
        f"{', '.join(sorted(logged)) or 'nothing'}): report them after their first iteration"
    )


@cache
def human_random_scores() -> pd.DataFrame:
    """Random and human scores of the 57 Atari games, indexed by `game_key`."""
    table = pd.read_csv(HUMAN_RANDOM_FILE)
    return table.assign(game=table["game"].map(game_key)).set_index("game")


def human_normalized(scores: np.ndarray | Sequence[float], games: Sequence[str]) -> np.ndarray:
    """(score - random) / (human - random) of each score with its game (any spelling), both
    (N,); raises ValueError naming games without human and random scores."""
    table = human_random_scores()
    keys = [game_key(game) for game in games]
    unknown = sorted(set(keys) - set(table.index))
    if unknown:
        raise ValueError(
            f"no human and random scores for {unknown}; the known games are "
            f"{', '.join(sorted(table.index))}"
        )
    random, human = (table.loc[keys, column].to_numpy() for column in ("random", "human"))
    return (np.asarray(scores, float) - random) / (human - random)
