"""Run outputs: per-seed TensorBoard scalars, a tidy metrics.csv, config.json, summaries."""

import csv
import dataclasses
import json
import os
import platform
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter

from experiments.config import Config, ConfigError, Member

METRICS_FILE = "metrics.csv"
CONFIG_FILE = "config.json"
METRICS_COLUMNS = ("seed", "step", "metric", "value")
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "envpool", "numpy", "orbax-checkpoint")


def config_dict(config: Config) -> dict:
    """The config as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_record(config: Config, preset: str) -> dict:
    """The resolved config with the preset name, library versions and git commit."""
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "preset": preset,
        "config": config_dict(config),
        "versions": versions,
        "git_commit": _git_commit(),
    }


# Fields that may change when a run is resumed: a longer budget extends the run, and a
# process of a multi-process run may be restarted with another coordinator.
RESUMABLE_FIELDS = frozenset(
    {"total_steps", "run_dir", "progress", "checkpoint_every"}
    | {"coordinator_address", "num_processes", "process_id", "coordinator_timeout"}
)


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Writes `path` through `write(partial path)` and a rename, so that a reader (or a
    second process writing the same file) never sees it half written."""
    partial = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    write(partial)
    os.replace(partial, path)


def process_dir(run_dir: Path, process_index: int) -> Path:
    """Where process i of a multi-process run logs and checkpoints its seeds."""
    return Path(run_dir) / f"process_{process_index}"


def process_dirs(run_dir: Path) -> list[Path]:
    """The process dirs of a multi-process run that have started, in process order; empty
    for a single-process run."""
    found = {}
    for path in Path(run_dir).glob("process_*"):
        match = re.fullmatch(r"process_(\d+)", path.name)
        if match and (path / CONFIG_FILE).exists():
            found[int(match.group(1))] = path
    return [found[i] for i in sorted(found)]


def metrics_paths(run_dir: Path) -> list[Path]:
    """The metrics.csv files of a run: its own, or those of its processes."""
    return [d / METRICS_FILE for d in process_dirs(run_dir) or [Path(run_dir)]]


def check_run_dir(run_dir: Path, config: Config) -> bool:
    """True if run_dir holds this run (to resume), False if it holds none; raises
    ConfigError naming the differing fields if it holds another run."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return False
    try:
        stored = json.loads(path.read_text())["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(
            f"{path} exists but is not a config this library wrote; pass another --run-dir."
        ) from None
    current = config_dict(config)
    differing = sorted(
        k
        for k in set(stored) | set(current)
        if stored.get(k) != current.get(k) and k not in RESUMABLE_FIELDS
    )
    if differing:
        details = ", ".join(f"{k}: {stored.get(k)!r} -> {current.get(k)!r}" for k in differing)
        raise ConfigError(
            f"{run_dir} holds a run with another config (differs in {details}). Resume it "
            "with its own settings (only --total-steps may grow) or pass a new --run-dir."
        )
    return True


def check_writable(run_dir: Path) -> None:
    """Raises ConfigError, naming the OS's reason, if run_dir cannot be created or written;
    leaves nothing behind (a probe folder is made in it, or in its nearest existing parent,
    and removed)."""
    parent = Path(run_dir).absolute()
    while not parent.exists():
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(f"{parent} is a file")
        tempfile.TemporaryDirectory(dir=parent, prefix=".write_probe_").cleanup()
    except OSError as error:
        raise ConfigError(
            f"cannot write the run dir {run_dir} ({error}): pass a --run-dir you can write to."
        ) from None


class RunLogger:
    """Writes scalars for every seed to TensorBoard (one writer per seed) and metrics.csv."""

    def __init__(
        self,
        run_dir: Path,
        members: Sequence[Member],
        resume_at: tuple[int, int] | None = None,
    ):
        """One TensorBoard writer per member (a seed, or a seed at a sweep point). Swept
        hyperparameters get their own metrics.csv columns after `seed`. `resume_at` =
        (agent step, metrics.csv bytes) of the checkpoint a run resumes from: what was
        logged after it is discarded, so the logs equal an uninterrupted run's."""
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._prefixes = [(m.seed, *m.swept.values()) for m in members]
        purge_step = resume_at[0] + 1 if resume_at else 0
        self._writers = [
            SummaryWriter(str(run_dir / "tensorboard" / _writer_name(m)), purge_step=purge_step)
            for m in members
        ]
        path = run_dir / METRICS_FILE
        if resume_at and path.exists():
            with path.open("r+b") as file:
                file.truncate(resume_at[1])
            self._csv_file = path.open("a", newline="")
            self._csv = csv.writer(self._csv_file)
        else:
            self._csv_file = path.open("w", newline="")
            self._csv = csv.writer(self._csv_file)
            swept = list(members[0].swept) if members else []
            self._csv.writerow(("seed", *swept, "step", "metric", "value"))

    def write(self, index: int, step: int, metric: str, value: float) -> None:
        """One scalar of one member (index into the run's members) at an agent step."""
        value = float(value)
        self._writers[index].add_scalar(metric, value, step)
        self._csv.writerow((*self._prefixes[index], step, metric, repr(value)))

    def write_all(self, step: int, metric: str, values: Sequence[float]) -> None:
        """One scalar for every member, values (members,)."""
        for index, value in enumerate(values):
            self.write(index, step, metric, value)

    def flush(self) -> int:
        """Writes everything out; returns the size of metrics.csv in bytes."""
        self._csv_file.flush()
        for writer in self._writers:
            writer.flush()
        return self._csv_file.tell()

    def close(self) -> None:
        self._csv_file.close()
        for writer in self._writers:
            writer.close()


def _writer_name(member: Member) -> str:
    return "".join(f"{k}={v:g}_" for k, v in member.swept.items()) + f"seed_{member.seed}"


def read_metrics(run_dir: Path, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{agent label: (steps, values)} of one metric from a run's metrics.csv (every
    process's, in a multi-process run), in step order. Labels read "seed 0", or
    "learning_rate=0.001 seed 0" in a sweep."""
    rows: dict[str, list[tuple[int, float]]] = {}
    for path in metrics_paths(run_dir):
        if not path.exists():  # a process that has not started logging yet
            continue
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if row["metric"] == metric:
                    swept = [k for k in row if k not in METRICS_COLUMNS]
                    label = " ".join(
                        [f"{k}={float(row[k]):g}" for k in swept] + [f"seed {row['seed']}"]
                    )
                    rows.setdefault(label, []).append((int(row["step"]), float(row["value"])))
    result = {}
    for label, pairs in rows.items():
        pairs.sort(key=lambda pair: pair[0])
        steps, values = zip(*pairs, strict=True)
        result[label] = (np.asarray(steps), np.asarray(values))
    return result


def plot_learning_curves(
    run_dir: Path, metric: str, title: str, frames_per_step: int, output: Path
) -> None:
    """PNG of `metric` per seed (thin) and its across-seed mean (thick) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = read_metrics(run_dir, metric)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, (steps, values) in curves.items():
        axis.plot(steps, values, linewidth=0.8, alpha=0.5, label=label)
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for label, curve in curves.items():  # the seeds of each sweep point
        groups.setdefault(label.rsplit("seed", 1)[0].strip(), []).append(curve)
    for point, group in groups.items():
        common = _common_steps(group)
        if common is not None and len(group) > 1:
            mean = np.mean([values for _, values in group], axis=0)
            axis.plot(common, mean, linewidth=2.2, label=f"{point} mean".strip())
    axis.set_xlabel(
        "agent steps per seed" + (f" (x{frames_per_step} frames)" if frames_per_step > 1 else "")
    )
    axis.set_ylabel(metric.replace("_", " "))
    axis.set_title(title)
    axis.grid(alpha=0.3)
    if curves:
        axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    replace_atomically(output, lambda partial: figure.savefig(partial, dpi=120))
    plt.close(figure)


def _common_steps(curves: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray | None:
    steps = [s for s, _ in curves]
    if steps and all(np.array_equal(s, steps[0]) for s in steps):
        return steps[0]
    return None


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned text table."""
    cells = [list(map(str, header))] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.1f}"
    return str(value)
