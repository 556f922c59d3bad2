"""Multi-process runs (several hosts, or several processes of one): each process trains its
block of the seeds, as an independent program on its own devices.

Seeds never communicate, so the processes of a run meet once, when it starts: they join
through jax.distributed (a coordinator at process 0's address, or the cluster manager's),
which checks that every process is there and tells each its index, and then leave the job
again, so that each trains and checkpoints its block in run_dir/process_<i> as a
single-process run of those seeds would. A process of a started run that is given its
--process-id resumes alone from its latest checkpoint, whatever the others are doing. Each
process writes its returns when it finishes; the last to finish prints the whole run's
summary and writes its learning curve to run_dir.
"""

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path

import jax
from jax._src import distributed as jax_distributed  # the job's state: JAX has no public API

from experiments.checkpoint import nan_to_none
from experiments.config import Config, ConfigError, check_launch, check_seed_split, validate
from experiments.errors import check
from experiments.logger import (
    CONFIG_FILE,
    check_run_dir,
    check_writable,
    process_dir,
    replace_atomically,
    run_record,
)
from experiments.runner import RunResult, summarise, train

RETURNS_FILE = "returns.json"  # a finished process's returns, in its process dir


def process_share(config: Config, process_index: int, process_count: int) -> Config:
    """The part of a multi-process run that one process trains: a contiguous block of seeds
    (the same keys and environments as in a single-process run) in its own directory."""
    check_seed_split(config.seeds, process_count)
    local_seeds = config.seeds // process_count
    return dataclasses.replace(
        config,
        seeds=local_seeds,
        seed_offset=config.seed_offset + process_index * local_seeds,
        run_dir=str(process_dir(Path(config.run_dir), process_index)),
    )


def join(config: Config) -> tuple[int, int]:
    """Meets every process of the job through jax.distributed and leaves it again:
    (this process's index, process count). JAX then runs this process alone. Stops the
    program with exit code 2 and a message if the job has not come together within
    `coordinator_timeout` seconds (JAX itself would abort without saying why)."""
    c = config
    watchdog = threading.Timer(c.coordinator_timeout, _give_up, args=(c,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            c.coordinator_address or None,
            c.num_processes or None,
            None if c.process_id < 0 else c.process_id,
            initialization_timeout=c.coordinator_timeout + 60,  # the watchdog speaks first
        )
    except (ValueError, TypeError, RuntimeError) as error:
        raise ConfigError(
            f"--distributed could not join a job ({error}). Outside a cluster manager pass "
            "--coordinator-address HOST:PORT (process 0's host), --num-processes N and "
            "--process-id I."
        ) from None
    finally:
        watchdog.cancel()
    job = jax_distributed.global_state
    index, count = job.process_id, job.num_processes
    jax.distributed.shutdown()  # every process reaches this barrier right after joining
    job.process_id, job.num_processes = 0, 1  # the backend JAX builds next is this process's
    return index, count


def _give_up(config: Config) -> None:
    c = config
    where = c.coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "the cluster's")
    print(
        f"error: the job did not come together within coordinator_timeout="
        f"{c.coordinator_timeout} s: this process could not reach the coordinator at "
        f"{where}, or not every process connected to it. Start every process with the same "
        "--coordinator-address (process 0's host:port) and --num-processes, check that the "
        "port is reachable from this host, or raise --coordinator-timeout.",
        file=sys.stderr,
        flush=True,
    )
    os._exit(2)


def train_distributed(config: Config, preset: str = "custom") -> RunResult:
    """Trains this process's block of a multi-process run (`config` is the whole run's);
    the last process to finish prints the run's summary."""
    check_launch(config)
    run_dir = Path(config.run_dir)
    check_writable(run_dir)
    started = _started_processes(run_dir, config)
    if started and config.process_id >= 0:  # a process of a started run resumes alone
        index, count = config.process_id, started
        check(index < count, f"process_id={index}: {run_dir} has processes 0..{count - 1}.")
    else:
        index, count = join(config)
    share = process_share(config, index, count)
    spec = validate(share)
    check(
        jax.process_count() == 1,
        f"JAX's {jax.default_backend()} backend joined {jax.process_count()} processes by "
        "itself (a TPU pod slice does): each process must run alone here, so that it "
        "checkpoints its own seeds. Give each host its own devices, or train on one host.",
    )
    if index == 0 and not started:
        run_dir.mkdir(parents=True, exist_ok=True)
        record = run_record(config, preset) | {"processes": count}
        text = json.dumps(record, indent=2) + "\n"
        replace_atomically(run_dir / CONFIG_FILE, lambda partial: partial.write_text(text))
    result = train(share, preset)
    returns = {
        "members": [m.label for m in share.members()],
        "eval_returns": nan_to_none(result.eval_returns),
        "train_returns": nan_to_none(result.train_returns),
    }
    replace_atomically(
        Path(share.run_dir) / RETURNS_FILE, lambda partial: partial.write_text(json.dumps(returns))
    )
    blocks = _finished_blocks(run_dir, config, count)
    if blocks is None:
        print(
            f"process {index} of {count} finished; the last process to finish summarises the run."
        )
        return result
    print(f"\nthe whole run ({count} processes):")
    summarise(run_dir, config, spec)  # reads every process's metrics
    return result


def _started_processes(run_dir: Path, config: Config) -> int:
    """The process count of the run in run_dir, 0 if none has started there; refuses a run
    dir that holds another run, or this run split over another number of processes."""
    if not check_run_dir(run_dir, config):
        return 0
    count = json.loads((run_dir / CONFIG_FILE).read_text()).get("processes", 0)
    check(
        config.num_processes in (0, count),
        f"{run_dir} was trained by {count} processes, each holding its block of seeds; "
        f"resume it with --num-processes {count}.",
    )
    return count


def _finished_blocks(run_dir: Path, config: Config, count: int) -> list[dict] | None:
    """Every process's returns once all have finished the run's budget, else None."""
    blocks = []
    for index in range(count):
        path = process_dir(run_dir, index) / RETURNS_FILE
        if not path.exists():
            return None
        block = json.loads(path.read_text())
        if len(block["eval_returns"]) != config.iterations:  # from before an extension
            return None
        blocks.append(block)
    return blocks
