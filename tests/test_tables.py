"""Paper tables (experiments.tables) from run dirs as the logger writes them, checked against
hand computations and against the shared reference data read independently."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from experiments.presets import PRESETS
from experiments.results import human_normalized, load_runs
from experiments.tables import main, paper_table, published
from tests.shared_data import SHARED_DATA, needs_shared_data
from tests.test_results import write_run

TD3 = dataclasses.replace(PRESETS["td3_mujoco_paper"].config, env="HalfCheetah-v4", seeds=2)
DQN = dataclasses.replace(PRESETS["dqn_atari_dopamine"].config, seeds=2)


@needs_shared_data
def test_td3_table_by_hand(tmp_path):
    rows = [(0, 5_000, "eval_return", 100.0), (1, 5_000, "eval_return", 300.0)]
    rows += [(0, 10_000, "eval_return", 250.0), (1, 10_000, "eval_return", 50.0)]
    write_run(tmp_path / "td3", TD3, "td3_mujoco_paper", rows)
    cells = paper_table("td3", load_runs(tmp_path)).set_index("task")
    cheetah = cells.loc["HalfCheetah"]
    assert cheetah["ours"] == 200.0 and cheetah["ours std"] == 100.0  # step 5k: 100 and 300
    assert cheetah["seeds"] == 2 and cheetah["steps"] == 10_000
    paper = pd.read_csv(SHARED_DATA / "td3_paper_learning_curves.csv")
    paper = paper[(paper["env"] == "HalfCheetah-v1") & (paper["timestep"] <= 10_000)]
    expected = paper.groupby("timestep")["eval_return"].mean().max()
    assert cheetah["paper at these steps"] == pytest.approx(expected, abs=0.01)
    assert cheetah["paper Table 1"] == 9636.95
    assert np.isnan(cells.loc["Hopper", "ours"])  # no Hopper run: a blank cell
    assert len(cells) == 7


@needs_shared_data
@pytest.mark.parametrize("task, table_1", [("HalfCheetah", 9636.95), ("Hopper", 3564.07)])
def test_td3_table_from_the_papers_own_curves_gives_its_table_1(tmp_path, task, table_1):
    paper = pd.read_csv(SHARED_DATA / "td3_paper_learning_curves.csv")
    paper = paper[paper["env"] == f"{task}-v1"]
    rows = [(seed, step, "eval_return", value) for _, (_, seed, step, value) in paper.iterrows()]
    config = dataclasses.replace(TD3, env=f"{task}-v4", seeds=10)
    write_run(tmp_path / "paper", config, "td3_mujoco_paper", rows)
    cells = paper_table("td3", load_runs(tmp_path)).set_index("task")
    assert cells.loc[task, "ours"] == pytest.approx(table_1, abs=0.01)
    published_std = published().set_index("row").loc[task, "std"]
    assert cells.loc[task, "ours std"] == pytest.approx(published_std, abs=0.01)


def atari_runs(root: Path, config, finals: dict[str, list[float]], name: str) -> None:
    """One run per game, 2 seeds, train_return at 250k and (`finals`) 500k agent steps."""
    for game, values in finals.items():
        rows = [(seed, 250_000, "train_return", 0.0) for seed in range(2)]
        rows += [(seed, 500_000, "train_return", value) for seed, value in enumerate(values)]
        write_run(root / f"{name}_{game}", dataclasses.replace(config, env=game), name, rows)


@needs_shared_data
def test_dopamine_table_by_hand_and_from_the_shared_data(tmp_path):
    finals = {"Pong-v5": [-20.0, -10.0], "Breakout-v5": [5.0, 20.0]}
    atari_runs(tmp_path, DQN, finals, "dqn_atari_dopamine")
    cells = paper_table("dopamine", load_runs(tmp_path)).set_index("aggregate")
    assert set(cells["agent"]) == {"DQN (Adam + MSE in JAX)"}
    assert set(cells["frames"]) == {2_000_000} and set(cells["games"]) == {2}
    ours = {g: human_normalized(v, [g] * 2) for g, v in finals.items()}  # game -> (seeds,)
    assert cells.loc["IQM", "ours"] == pytest.approx(
        scipy.stats.trim_mean(np.concatenate(list(ours.values())), 0.25)
    )
    assert cells.loc["median", "ours"] == pytest.approx(
        np.median([v.mean() for v in ours.values()])
    )

    shared = pd.read_csv(SHARED_DATA / "dopamine_baselines.csv.gz", keep_default_na=False)
    shared = shared[
        (shared["agent"] == "DQN (Adam + MSE in JAX)")
        & (shared["variant"] == "")
        & shared["game"].isin(["pong", "breakout"])
        & (shared["iteration"] == 1)  # the iteration that ends at 500k agent steps
    ]
    theirs = human_normalized(shared["value"], shared["game"])
    assert cells.loc["mean", "Dopamine"] == pytest.approx(theirs.mean(), rel=1e-3)
    assert cells.loc["IQM", "Dopamine"] == pytest.approx(
        scipy.stats.trim_mean(theirs, 0.25), rel=1e-3
    )


def test_iterated_table_compares_at_the_budget_both_reached(tmp_path):
    finals = {"Pong-v5": [-20.0, -10.0], "Breakout-v5": [5.0, 20.0]}
    atari_runs(tmp_path, DQN, finals, "dqn_atari_dopamine")
    idqn = PRESETS["idqn_atari"].config
    better = {game: [v + 5.0 for v in values] for game, values in finals.items()}
    atari_runs(tmp_path, dataclasses.replace(idqn, seeds=2), better, "idqn_atari")
    cells = paper_table("iterated", load_runs(tmp_path)).set_index("agent")
    label = f"i-DQN (K = {idqn.num_networks})"
    assert set(cells.index) == {"DQN", label}
    for agent, scores in (("DQN", finals), (label, better)):
        normalized = np.concatenate([human_normalized(v, [g] * 2) for g, v in scores.items()])
        assert cells.loc[agent, "IQM"] == pytest.approx(scipy.stats.trim_mean(normalized, 0.25))
    assert cells["paper (55 games, 200M frames)"].isna().all()  # 2M frames: no paper figure
    with pytest.raises(ValueError, match="needs runs of both i-DQN"):
        paper_table("iterated", load_runs(tmp_path / "dqn_*"))


def test_md3qn_table_lists_each_agent_per_game(tmp_path):
    md3qn = dataclasses.replace(PRESETS["md3qn_atari"].config, seeds=2)
    for agent in ("md3qn", "hra"):
        config = dataclasses.replace(md3qn, agent=agent)
        rows = [(seed, 100, "train_return", 10.0 * (seed + 1)) for seed in range(2)]
        write_run(tmp_path / agent, config, f"{agent}_atari", rows)
    cells = paper_table("md3qn", load_runs(tmp_path))
    assert cells[["agent", "mean", "seeds"]].values.tolist() == [
        ["hra", 15.0, 2],
        ["md3qn", 15.0, 2],
    ]
    assert main(["md3qn", str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "md3qn.png").stat().st_size > 0


def test_the_command_line_prints_and_writes_the_table(tmp_path, capsys):
    rows = [(seed, 5_000, "eval_return", 100.0) for seed in range(2)]
    write_run(tmp_path / "td3", TD3, "td3_mujoco_paper", rows)
    assert main(["td3", str(tmp_path / "td3"), "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| HalfCheetah | 2 | 5,000 | 100.0 |" in out.replace(".0 |", ".0 |")
    written = pd.read_csv(tmp_path / "out" / "td3.csv")
    assert written.loc[written["task"] == "HalfCheetah", "ours"].item() == 100.0
    assert r"\begin{tabular}" in (tmp_path / "out" / "td3.tex").read_text()

    assert main(["nosuchpaper", str(tmp_path / "td3")]) == 2
    assert (
        "unknown paper 'nosuchpaper'; the known ones are td3, dopamine" in capsys.readouterr().err
    )
    assert main(["td3", str(tmp_path / "nothing")]) == 2
    assert "error: no run under" in capsys.readouterr().err


def test_published_numbers_name_their_source():
    table = published()
    assert table["source"].str.len().min() > 20
    assert not table.duplicated(["paper", "table", "row", "column"]).any()
