"""Checkpoint/resume: a run stopped at an iteration boundary and resumed equals the
uninterrupted run, bit for bit on CPU, logs included."""

import csv
import dataclasses
import errno
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.checkpoint import CHECKPOINT_DIR, UNREADABLE_DIR, CheckpointSaveError
from experiments.config import ConfigError
from experiments.runner import train
from tests.test_runner import MD3QN_MAZE, TINY_CARTPOLE, TINY_TD3

CONFIG = dataclasses.replace(TINY_CARTPOLE, total_steps=900, iteration_steps=300)
TIMING_METRICS = {"env_steps_per_s", "updates_per_s"}


def _logged(run_dir):
    """metrics.csv rows except wall-clock figures."""
    with (run_dir / "metrics.csv").open(newline="") as file:
        return [row for row in csv.DictReader(file) if row["metric"] not in TIMING_METRICS]


def _assert_same_run(a, b):
    jax.tree.map(np.testing.assert_array_equal, a.state.agent, b.state.agent)
    jax.tree.map(np.testing.assert_array_equal, a.state.replay, b.state.replay)
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)
    np.testing.assert_array_equal(a.train_returns, b.train_returns)
    assert _logged(a.run_dir) == _logged(b.run_dir)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(CONFIG, run_dir=tmp_path_factory.mktemp("uninterrupted") / "run")


def test_resume_at_a_boundary_equals_uninterrupted(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    train(dataclasses.replace(CONFIG, total_steps=600), run_dir=run_dir)  # stops after 2 of 3
    with (run_dir / "metrics.csv").open("a") as file:  # rows of a crashed third iteration
        file.write("0,700,episode_return,123.0\n")
    resumed = train(CONFIG, run_dir=run_dir)
    _assert_same_run(resumed, uninterrupted)
    assert sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir()) == ["2", "3"]  # pruned


ITERATED = {"agent": "iterated", "num_networks": 2, "target_sync_period": 10}


@pytest.mark.parametrize(
    "agent",
    [
        {**ITERATED, "target_update_period": 40},
        TINY_TD3,
        MD3QN_MAZE,
        {**MD3QN_MAZE, "agent": "hra", "policy_evaluation": True},
    ],
    ids=["iterated", "td3", "md3qn_maze", "hra_maze_evaluation"],
)
def test_other_agents_resume_exactly(tmp_path, agent):
    """The i-QN chain (anchor, copies, schedule counters), TD3 (actor, twin critics, their
    targets, two optimisers, the policy-delay counter), and MD3QN and HRA on a maze (reward
    vectors in the replay; random bootstrap actions in policy evaluation) resume bit for
    bit."""
    config = dataclasses.replace(CONFIG, eval_episodes=0, **agent)
    uninterrupted = train(config, run_dir=tmp_path / "uninterrupted")
    run_dir = tmp_path / "run"
    train(dataclasses.replace(config, total_steps=600), run_dir=run_dir)
    _assert_same_run(train(config, run_dir=run_dir), uninterrupted)


def test_truncated_latest_checkpoint_falls_back(uninterrupted, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(dataclasses.replace(CONFIG, total_steps=600), run_dir=run_dir)
    latest = run_dir / CHECKPOINT_DIR / "2"
    for path in latest.rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            with path.open("r+b") as file:
                file.truncate(path.stat().st_size // 2)
    resumed = train(CONFIG, run_dir=run_dir)
    err = capsys.readouterr().err
    assert "checkpoint of iteration 2 is unreadable" in err and "falling back" in err
    assert (run_dir / UNREADABLE_DIR / "2").is_dir()
    _assert_same_run(resumed, uninterrupted)


def test_a_failed_save_keeps_the_previous_checkpoint_and_resumes_exactly(
    uninterrupted, tmp_path, monkeypatch
):
    """A disk that fills while the third checkpoint is written: the run stops with a message,
    the partial write is gone, and running again resumes from the second, exactly."""
    save = ocp.CheckpointManager.save

    def full_disk(manager, step, *args, **kwargs):
        if step == 3:
            partial = manager.directory / "3.orbax-checkpoint-tmp-1"
            (partial / "state").mkdir(parents=True)
            (partial / "state" / "part").write_bytes(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(manager, step, *args, **kwargs)

    run_dir = tmp_path / "run"
    monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
    with pytest.raises(
        CheckpointSaveError, match="iteration 3 failed .*No space left.*iteration 2 is kept"
    ):
        train(CONFIG, run_dir=run_dir)
    assert sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir()) == ["1", "2"]
    monkeypatch.setattr(ocp.CheckpointManager, "save", save)
    _assert_same_run(train(CONFIG, run_dir=run_dir), uninterrupted)


def test_resuming_with_a_changed_config_names_the_fields(tmp_path):
    run_dir = tmp_path / "run"
    train(dataclasses.replace(CONFIG, total_steps=300), run_dir=run_dir)
    before = sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir())
    changed = dataclasses.replace(CONFIG, learning_rate=0.5, gamma=0.9)
    with pytest.raises(ConfigError, match=r"gamma: 0\.99 -> 0\.9, learning_rate"):
        train(changed, run_dir=run_dir)
    assert sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir()) == before


def test_a_budget_below_the_checkpoint_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    train(dataclasses.replace(CONFIG, total_steps=600), run_dir=run_dir)
    with pytest.raises(ConfigError, match="--total-steps 600"):
        train(dataclasses.replace(CONFIG, total_steps=300), run_dir=run_dir)


SHORT_LAST = dataclasses.replace(CONFIG, total_steps=750)  # iterations of 300, 300 and 150


def test_a_short_last_iteration_trains_the_budget_and_resumes_exactly(tmp_path):
    """A budget that iteration_steps does not divide ends with a shorter iteration: exactly
    total_steps agent steps, evaluated and logged at its end, and a run stopped before it
    resumes bit for bit."""
    full = train(SHORT_LAST, run_dir=tmp_path / "full")
    c = SHORT_LAST
    updates = len(range(c.learning_starts, c.total_steps + 1, c.update_period))
    np.testing.assert_array_equal(full.state.num_updates, [updates] * c.seeds)
    assert np.isfinite(full.eval_returns).all() and full.eval_returns.shape == (3, c.seeds)
    eval_steps = {
        int(row["step"]) for row in _logged(full.run_dir) if row["metric"] == "eval_return"
    }
    assert eval_steps == {300, 600, 750}
    assert max(int(row["step"]) for row in _logged(full.run_dir)) == 750
    run_dir = tmp_path / "run"
    train(dataclasses.replace(SHORT_LAST, total_steps=600), run_dir=run_dir)
    _assert_same_run(train(SHORT_LAST, run_dir=run_dir), full)


def test_extending_a_run_that_ended_short_is_refused(tmp_path):
    """A longer budget would have trained the short last iteration in full: not exact, so
    refused with what to do, and the run dir is left as it was."""
    run_dir = tmp_path / "run"
    train(SHORT_LAST, run_dir=run_dir)
    before = sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir())
    with pytest.raises(ConfigError, match="short last iteration .*new --run-dir"):
        train(CONFIG, run_dir=run_dir)
    assert sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir()) == before


def test_a_run_without_checkpoints_restarts_cleanly(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    train(dataclasses.replace(CONFIG, total_steps=300), run_dir=run_dir)
    shutil.rmtree(run_dir / CHECKPOINT_DIR)  # as if stopped before the first save
    _assert_same_run(train(CONFIG, run_dir=run_dir), uninterrupted)
