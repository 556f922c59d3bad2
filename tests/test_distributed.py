"""Multi-process runs: two processes on localhost (an explicit coordinator, CPU) train what
one process trains, a killed process restarted alone resumes exactly, and bad launches are
refused before anything joins or compiles."""

import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.analysis import load_run
from experiments.distributed import process_share
from experiments.logger import CONFIG_FILE, config_dict, process_dir, read_metrics, run_record
from experiments.runner import train
from experiments.train import main, parse_args
from tests.test_runner import TINY_CARTPOLE

REPO = Path(__file__).resolve().parents[1]
# A tiny CartPole run, 4 seeds, 4 iterations; --seed-axis map makes every seed the same
# single-seed program in every process, so the comparison is bit for bit.
RUN_ARGS = [
    *("--seeds", "4", "--total-steps", "1200", "--iteration-steps", "300"),
    *("--learning-starts", "100", "--batch-size", "32", "--replay-capacity", "1000"),
    *("--eval-episodes", "2", "--mlp-hidden", "32", "32", "--target-update-period", "50"),
    *("--seed-axis", "map", "--no-progress"),
]
TIMING_METRICS = {"env_steps_per_s", "updates_per_s"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _command(run_dir: Path, port: int, index: int) -> list[str]:
    launch = ["--distributed", "--coordinator-address", f"localhost:{port}"]
    launch += ["--num-processes", "2", "--process-id", str(index)]
    return [sys.executable, "-m", "experiments.train", *RUN_ARGS, "--run-dir", str(run_dir)] + (
        launch
    )


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def _rows_per_seed(paths: list[Path]) -> dict[str, list[tuple[str, str, str]]]:
    """(step, metric, value) rows of each seed in logging order, wall-clock figures left out."""
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for path in paths:
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                if row["metric"] not in TIMING_METRICS:
                    rows.setdefault(row["seed"], []).append(
                        (row["step"], row["metric"], row["value"])
                    )
    return rows


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The same four seeds trained by a single process."""
    run_dir = tmp_path_factory.mktemp("one") / "run"
    command = [sys.executable, "-m", "experiments.train", *RUN_ARGS, "--run-dir", str(run_dir)]
    _finish(_start(command))
    return run_dir


def _assert_same_run(run_dir: Path, reference: Path) -> None:
    _, state, iterations = load_run(run_dir)
    _, expected, expected_iterations = load_run(reference)
    assert iterations == expected_iterations == 4
    jax.tree.map(np.testing.assert_array_equal, state.agent, expected.agent)
    jax.tree.map(np.testing.assert_array_equal, state.replay, expected.replay)
    paths = [process_dir(run_dir, i) / "metrics.csv" for i in range(2)]
    assert _rows_per_seed(paths) == _rows_per_seed([reference / "metrics.csv"])
    curves, expected_curves = (read_metrics(d, "eval_return") for d in (run_dir, reference))
    assert list(curves) == [f"seed {i}" for i in range(4)]
    for label, (steps, values) in expected_curves.items():
        np.testing.assert_array_equal(curves[label][0], steps)
        np.testing.assert_array_equal(curves[label][1], values)


def _summary_rows(output: str) -> list[str]:
    """The agent rows of the whole run's summary table in a process's output."""
    assert "the whole run (2 processes):" in output, output[-3000:]
    table = output.split("the whole run (2 processes):")[1]
    return [line.split()[1] for line in table.splitlines() if line.strip().startswith("seed ")]


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(one_process, tmp_path):
    run_dir, port = tmp_path / "run", _free_port()
    processes = [_start(_command(run_dir, port, index)) for index in range(2)]
    outputs = [_finish(process) for process in processes]
    summaries = [_summary_rows(o) for o in outputs if "the whole run" in o]
    assert summaries and all(rows == ["0", "1", "2", "3"] for rows in summaries)
    assert (run_dir / "learning_curve.png").stat().st_size > 10_000
    assert json.loads((run_dir / CONFIG_FILE).read_text())["processes"] == 2
    _assert_same_run(run_dir, one_process)


@pytest.mark.slow
def test_a_killed_process_restarted_alone_resumes_exactly(one_process, tmp_path):
    run_dir, port = tmp_path / "run", _free_port()
    first, second = (_start(_command(run_dir, port, index)) for index in range(2))
    first_checkpoint = process_dir(run_dir, 1) / "checkpoints" / "1"
    deadline = time.monotonic() + 300
    while not first_checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first_checkpoint.exists() and second.poll() is None, "process 1 ended too soon"
    second.send_signal(signal.SIGKILL)
    second.communicate()
    assert "the whole run" not in _finish(first)  # process 0 does not wait for process 1

    restarted = _finish(_start(_command(run_dir, port, 1)))  # the same command, alone
    resumed_after = int(restarted.split("resuming after iteration ")[1].split()[0])
    assert 1 <= resumed_after < 4
    assert _summary_rows(restarted) == ["0", "1", "2", "3"]
    _assert_same_run(run_dir, one_process)


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_launches_are_refused_before_joining(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    launch = ["--distributed", "--run-dir", run_dir, "--coordinator-address", "localhost:1"]
    error = _refused([*launch, "--num-processes", "2", "--process-id", "2"], capsys)
    assert "process_id=2 is out of range for num_processes=2: use 0..1" in error
    error = _refused([*launch, "--seeds", "3", "--num-processes", "2", "--process-id", "0"], capsys)
    assert "seeds=3 cannot be split evenly over 2 processes" in error
    error = _refused(["--distributed", "--num-processes", "2", "--process-id", "0"], capsys)
    assert "--distributed needs --run-dir" in error
    error = _refused(["--process-id", "1", "--run-dir", run_dir], capsys)
    assert "add --distributed" in error
    assert not Path(run_dir).exists()


def test_a_started_run_needs_its_process_count(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["--distributed", "--run-dir", str(run_dir), "--seeds", "4"]
    _, config = parse_args([*argv, "--num-processes", "2"])
    run_dir.mkdir()
    record = {"config": config_dict(config), "processes": 2}
    (run_dir / CONFIG_FILE).write_text(json.dumps(record))
    error = _refused([*argv, "--num-processes", "4", "--process-id", "3"], capsys)
    assert "was trained by 2 processes" in error and "--num-processes 2" in error
    error = _refused([*argv, "--process-id", "2"], capsys)
    assert "process_id=2" in error and "processes 0..1" in error


@pytest.mark.parametrize("index", [0, 1], ids=["alone_at_the_coordinator", "no_coordinator"])
def test_a_job_that_does_not_come_together_stops_with_a_message(tmp_path, index):
    """Process 0 waiting for a partner that never comes, and process 1 with nobody at the
    coordinator's address: a clear message within the timeout, not a hang or an abort."""
    run_dir = tmp_path / "run"
    command = _command(run_dir, _free_port(), index) + ["--coordinator-timeout", "3"]
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "the job did not come together within coordinator_timeout=3 s" in completed.stderr
    assert time.monotonic() - started < 60
    assert not run_dir.exists()


@pytest.mark.slow
def test_a_multi_process_sweep_loads_in_run_order(tmp_path):
    """Each process trains every sweep point for its block of seeds; load_run puts the
    blocks back in the run's member order (sweep point major), equal to one process's run."""
    config = dataclasses.replace(
        TINY_CARTPOLE,
        total_steps=300,
        eval_episodes=0,
        seeds=2,
        seed_axis="map",
        sweep_learning_rate=(1e-3, 3e-4),
        distributed=True,
        run_dir=str(tmp_path / "run"),
    )
    for index in range(2):
        train(process_share(config, index, 2))
    (tmp_path / "run" / CONFIG_FILE).write_text(json.dumps(run_record(config, "custom")))
    reference = train(dataclasses.replace(config, distributed=False), run_dir=tmp_path / "one")
    trainer, state, _ = load_run(tmp_path / "run")
    assert [m.label for m in trainer.members] == [
        "learning_rate=0.001 seed 0",
        "learning_rate=0.001 seed 1",
        "learning_rate=0.0003 seed 0",
        "learning_rate=0.0003 seed 1",
    ]
    jax.tree.map(np.testing.assert_array_equal, state.agent, reference.state.agent)
