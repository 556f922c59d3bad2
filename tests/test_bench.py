"""The benchmark script: one quick run of its sections that need no Atari pool (the td3
section steps a HalfCheetah pool), and the JSON it writes (keys, labels and finite positive
figures, not values)."""

import contextlib
import io
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import bench
from experiments.presets import get_preset
from experiments.replay import Replay

LABELS = {"backend", "device_kind", "cpu_count", "jax_version"}
SECTIONS = [
    "updates",
    "representations",
    "iterated",
    "multireward",
    "td3",
    "devices",
    "checkpoint",
    "replay",
    "peers",
    "tabular",
]
UPDATE_KEYS = {"network", "batch_size", "seeds", "updates_per_call", "updates_per_s"}
UPDATE_KEYS |= {"updates_per_s_per_seed", "compile_s"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, str]:
    """(report, printed text) of a quick run with 1 seed, a small replay, 1 repetition and 1
    interleaved round (so each time ratio is a ratio of the rows' rates), 1
    update per call (a loop of several updates compiles for longer) and i-DQN with K = 2 only
    (K separate Nature CNNs update slowly on CPU)."""
    output = tmp_path_factory.mktemp("bench") / "b.json"
    argv = ["--quick", "--sections", ",".join(SECTIONS), "--update-seeds", "1"]
    argv += ["--iterated-networks", "2"]
    argv += [
        "--capacity",
        "500",
        "--reps",
        "1",
        "--ratio-rounds",
        "1",
        "--cnn-updates",
        "1",
        "--mlp-updates",
        "1",
    ]
    argv += ["--output", str(output)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert bench.main(argv) == 0
    return json.loads(output.read_text()), printed.getvalue()


def _numbers(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _section(report: dict, name: str) -> list[dict]:
    return [r for r in report["rows"] if r["section"] == name]


@pytest.mark.slow
def test_quick_bench_writes_labelled_finite_figures(quick):
    report, printed = quick
    assert all(f"[{section}]" in printed for section in SECTIONS)
    assert {"machine", "settings", "sections", "seconds", "rows"} <= set(report)
    assert set(report["machine"]) == LABELS
    assert report["sections"] == SECTIONS
    assert report["settings"]["cnn_updates"] == report["settings"]["mlp_updates"] == 1
    assert {r["section"] for r in report["rows"]} == set(SECTIONS)
    for row in report["rows"]:
        assert {k: row[k] for k in LABELS} == report["machine"]
        for key, value in _numbers(row).items():
            assert math.isfinite(value) and value > 0, (key, row)


@pytest.mark.slow
def test_updates_run_the_runners_update_loop(quick):
    report, _ = quick
    settings = report["settings"]
    updates = _section(report, "updates")
    assert all(UPDATE_KEYS | {"seed_axis", "runner_call"} <= set(r) for r in updates)
    variants = {
        (r["network"], r["seed_axis"], r["updates_per_call"], r["runner_call"]) for r in updates
    }
    per_call = {"nature_cnn": settings["cnn_updates"], "mlp": settings["mlp_updates"]}
    runner_call = ("vmap", 1)  # both presets' train steps: one update, vmap over seeds
    expected = {
        (network, mode, k, (mode, k) == runner_call)
        for network, bench_k in per_call.items()
        for mode, k in (("vmap", bench_k), ("map", bench_k), runner_call)
    }
    assert variants == expected
    assert {r["batch_size"] for r in updates if r["network"] == "nature_cnn"} == {32}
    for r in updates:
        assert r["seeds"] == 1
        np.testing.assert_allclose(r["updates_per_s"], r["updates_per_s_per_seed"] * r["seeds"])


@pytest.mark.slow
def test_representations_are_timed_against_scalar(quick):
    report, _ = quick
    rows = _section(report, "representations")
    seed_counts = report["settings"]["representation_seeds"]
    assert [r["representation"] for r in rows] == [*bench.REPRESENTATIONS] * len(seed_counts)
    assert bench.REPRESENTATIONS == ("scalar", "c51", "hl_gauss", "two_hot", "quantile")
    for r in rows:
        assert UPDATE_KEYS | {"time_ratio"} <= set(r)
        assert (r["network"], r["batch_size"]) == ("nature_cnn", 32)
        (scalar,) = [
            s for s in rows if s["seeds"] == r["seeds"] and s["representation"] == "scalar"
        ]
        assert r["time_ratio"] == pytest.approx(scalar["updates_per_s"] / r["updates_per_s"])
        if r["representation"] == "scalar":
            assert "target" not in r
        else:
            assert r["target"] == 1.15
            assert r["target_met"] is (r["time_ratio"] <= 1.15)


@pytest.mark.slow
def test_iterated_is_timed_against_dqn(quick):
    report, _ = quick
    settings = report["settings"]
    rows = _section(report, "iterated")
    assert settings["iterated_networks"] == [2]
    layouts = [(r["agent"], r.get("num_networks"), r.get("shared_torso")) for r in rows]
    assert layouts == [("dqn", None, None), ("iterated", 2, False), ("iterated", 2, True)]
    for r in rows:
        assert UPDATE_KEYS | {"time_ratio"} <= set(r)
        assert (r["network"], r["batch_size"], r["seeds"]) == ("nature_cnn", 32, 1)
        assert r["updates_per_call"] == settings["cnn_updates"]
        assert r["time_ratio"] == pytest.approx(rows[0]["updates_per_s"] / r["updates_per_s"])


@pytest.mark.slow
def test_multireward_agents_are_timed_against_dqn(quick):
    report, _ = quick
    rows = _section(report, "multireward")
    assert [(r["agent"], r["sources"]) for r in rows] == [("dqn", 2), ("md3qn", 2), ("hra", 2)]
    for r in rows:
        assert UPDATE_KEYS | {"time_ratio"} <= set(r)
        assert (r["network"], r["batch_size"], r["seeds"]) == ("nature_cnn", 32, 1)
        assert r["time_ratio"] == pytest.approx(rows[0]["updates_per_s"] / r["updates_per_s"])
    assert rows[1]["particles"] == 200 and rows[1]["target"] == 1.5


@pytest.mark.slow
def test_td3_times_updates_and_the_training_loop(quick):
    report, _ = quick
    settings = report["settings"]
    rows = _section(report, "td3")
    assert [r["seeds"] for r in rows] == settings["td3_seeds"] == [1]
    keys = {"updates_per_s", "update_compile_s", "steps_per_s", "train_call_ms"}
    keys |= {"train_compile_s", "s_per_100k_steps", "extrapolated_from", "time_ratio"}
    for r in rows:
        assert keys <= set(r)
        assert (r["env"], r["batch_size"]) == ("HalfCheetah-v4", 100)
        assert r["updates_per_call"] == settings["mlp_updates"]
        assert r["s_per_100k_steps"] == pytest.approx(100_000 * r["seeds"] / r["steps_per_s"])
        steps = f"{settings['reps']} x {settings['td3_loop_steps']} loop steps"
        assert r["extrapolated_from"] == steps
        assert r["time_ratio"] == pytest.approx(r["s_per_100k_steps"] / rows[0]["s_per_100k_steps"])


@pytest.mark.slow
def test_peers_time_whole_runs_with_cleanrls_settings(quick):
    """Without a CleanRL environment the section times this library only: one fresh
    process per run, at the quick fraction of CleanRL's budgets."""
    report, _ = quick
    rows = _section(report, "peers")
    assert [(r["work"], r["seeds"]) for r in rows] == [
        ("DQN CartPole-v1", 1),
        ("TD3 InvertedPendulum-v4", 1),
    ]
    fraction = report["settings"]["peer_fraction"]
    for r, full in zip(rows, (100_000, 30_000), strict=True):
        assert r["agent_steps"] == pytest.approx(full * fraction, rel=0.2)
        assert r["seconds"] > 0 and "cleanrl_seconds" not in r


@pytest.mark.slow
def test_tabular_rows_grow_with_the_horizon(quick):
    report, _ = quick
    rows = _section(report, "tabular")
    horizons = report["settings"]["tabular_horizons"]
    assert [(r["gamma"], r["horizon"]) for r in rows] == [
        (gamma, horizon) for gamma in (1.0, 0.9) for horizon in horizons
    ]
    for gamma in (1.0, 0.9):
        entries = [r["entries"] for r in rows if r["gamma"] == gamma]
        assert entries == sorted(entries) and entries[0] < entries[-1]
    assert all(r["solve_s"] > 0 and r["cvar_s"] > 0 for r in rows)


@pytest.mark.slow
def test_devices_compare_one_and_four_fake_devices(quick):
    report, _ = quick
    rows = _section(report, "devices")
    assert {(r["network"], r["devices"]) for r in rows} == {
        (network, devices) for network in ("nature_cnn", "mlp") for devices in (1, 4)
    }
    for r in rows:
        assert UPDATE_KEYS | {"ratio_to_1_device", "note"} <= set(r)
        assert r["seeds"] == report["settings"]["device_seeds"]
        one = next(o for o in rows if o["network"] == r["network"] and o["devices"] == 1)
        assert r["ratio_to_1_device"] == pytest.approx(r["updates_per_s"] / one["updates_per_s"])
        assert ("fake" in r["note"]) is (r["devices"] == 4)


@pytest.mark.slow
def test_checkpoint_sizes_and_times(quick):
    report, _ = quick
    rows = {r["env"]: r for r in _section(report, "checkpoint")}
    assert set(rows) == {"CartPole-v1", "Pong-v5"}
    keys = {"seeds", "capacity", "save_s", "restore_s", "mib_per_seed", "memory_mib_per_seed"}
    keys |= {"bytes_per_transition", "preset_capacity", "gib_per_seed_at_preset_capacity"}
    assert all(keys <= set(r) for r in rows.values())
    cartpole, pong = rows["CartPole-v1"], rows["Pong-v5"]
    assert cartpole["capacity"] == cartpole["preset_capacity"] == 50_000
    assert pong["capacity"] == report["settings"]["checkpoint_capacity"]
    assert pong["preset_capacity"] == 1_000_000
    assert pong["gib_per_seed_at_preset_capacity"] > pong["mib_per_seed"] / 1024


@pytest.mark.slow
def test_replay_bytes_of_the_atari_preset(quick):
    report, _ = quick
    (replay_row,) = _section(report, "replay")
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
    args, settings = bench.parse_args(["--sections", "replay,env,devices", "--seeds", "1,3"])
    assert args.sections == ("env", "devices", "replay")  # always in the bench's own order
    assert settings.seeds == (1, 3)
    _, settings = bench.parse_args(["--iterated-seeds", "1,8", "--iterated-networks", "1,5"])
    assert (settings.iterated_seeds, settings.iterated_networks) == ((1, 8), (1, 5))
    with pytest.raises(SystemExit):
        bench.parse_args(["--sections", "envs"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--seeds", "0"])
