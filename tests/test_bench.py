"""The benchmark script: a quick run of its cheap sections and the JSON it writes."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import bench
from experiments.presets import get_preset
from experiments.replay import Replay

LABELS = {"backend", "device_kind", "cpu_count", "jax_version"}


def _numbers(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@pytest.mark.slow
def test_quick_bench_writes_labelled_finite_figures(tmp_path, capsys):
    output = tmp_path / "b.json"
    argv = ["--quick", "--sections", "replay,updates", "--update-seeds", "1"]
    assert bench.main([*argv, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "[updates]" in printed and "[replay]" in printed

    report = json.loads(output.read_text())
    assert {"machine", "settings", "sections", "seconds", "rows"} <= set(report)
    assert set(report["machine"]) == LABELS
    assert report["sections"] == ["updates", "replay"]
    rows = report["rows"]
    for row in rows:
        assert {k: row[k] for k in LABELS} == report["machine"]
        for key, value in _numbers(row).items():
            assert math.isfinite(value) and value > 0, (key, row)

    updates = [r for r in rows if r["section"] == "updates"]
    expected_keys = {"network", "batch_size", "seeds", "seed_axis", "loop", "updates_per_call"}
    expected_keys |= {"updates_per_s", "updates_per_s_per_seed", "compile_s"}
    assert all(expected_keys <= set(r) for r in updates)
    combos = {(r["network"], r["seed_axis"], r["loop"]) for r in updates}
    assert combos == {
        ("nature_cnn", "vmap", "scan"),
        ("nature_cnn", "map", "scan"),
        ("nature_cnn", "vmap", "unrolled"),
        ("mlp", "vmap", "scan"),
        ("mlp", "map", "scan"),
    }
    assert {r["batch_size"] for r in updates if r["network"] == "nature_cnn"} == {32}
    for r in updates:
        assert r["seeds"] == 1
        np.testing.assert_allclose(r["updates_per_s"], r["updates_per_s_per_seed"] * r["seeds"])

    (replay_row,) = [r for r in rows if r["section"] == "replay"]
    capacity = get_preset("dqn_atari_dopamine").replay_capacity
    replay = Replay(
        capacity=capacity,
        num_envs=1,
        frame_shape=(84, 84),
        frame_dtype=jnp.uint8,
        action_shape=(),
        action_dtype=jnp.int32,
        frame_stack=4,
        n_step=1,
        batch_size=32,
    )
    assert replay_row["capacity"] == capacity == 1_000_000
    assert replay_row["bytes_per_seed"] == replay.bytes_per_seed()
    assert replay_row["ratio"] == pytest.approx(replay.bytes_per_seed() / (capacity * 7056))
    assert replay_row["target_met"] is (abs(replay_row["ratio"] - 1) <= 0.1)


def test_sections_and_seed_lists_are_checked():
    args, settings = bench.parse_args(["--sections", "replay,env", "--seeds", "1,3"])
    assert args.sections == ("env", "replay")  # always in the bench's own order
    assert settings.seeds == (1, 3)
    with pytest.raises(SystemExit):
        bench.parse_args(["--sections", "envs"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--seeds", "0"])
