"""Published baselines (experiments.baselines): the shipped data against the project's
reference data and the published figures, the step grids by hand, and the figure."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.baselines import (
    dopamine_agent,
    dopamine_caveat,
    dopamine_curves,
    on_dopamine_grid,
    on_td3_grid,
    plot_against_baselines,
    td3_paper_curves,
)
from experiments.presets import (
    C51_ATARI_DOPAMINE,
    DQN_ATARI_DOPAMINE,
    DQN_ATARI_NATURE,
    QRDQN_ATARI,
)
from experiments.results import load_runs
from tests.shared_data import SHARED_DATA, needs_shared_data
from tests.test_results import write_run

ADAM_DQN = "DQN (Adam + MSE in JAX)"


@pytest.mark.parametrize(
    ("agent", "frames", "median", "iqm"),
    [
        (ADAM_DQN, 199_000_000, 1.006, 1.345),
        ("C51", 199_000_000, 1.092, 1.276),
        (ADAM_DQN, 50_000_000, 0.670, 0.813),
        ("C51", 50_000_000, 0.720, 0.789),
    ],
)
def test_shipped_dopamine_data_give_the_spec_aggregates(agent, frames, median, iqm):
    # SPEC's "199 iterations" is the main files' last one (index 198, they hold 0-198) and
    # "50M frames" the 50th (index 49); 48 and 50 give other numbers. The median that
    # matches is over games of each game's mean over its 5 runs; the IQM is over all 275
    # (game, run) scores.
    curves = dopamine_curves(agent).dropna(subset=["normalized"])
    assert curves["iteration"].max() == 198
    final = curves[curves["frames"] == frames]
    assert final["iteration"].unique().tolist() == [frames // 1_000_000 - 1]
    assert (final["game"].nunique(), len(final)) == (55, 275)
    assert round(final.groupby("game")["normalized"].mean().median(), 3) == median
    assert round(stats.trim_mean(final["normalized"], 0.25), 3) == iqm


@pytest.mark.parametrize(("task", "table_1"), [("HalfCheetah-v4", 9636.95), ("Hopper", 3564.07)])
def test_shipped_td3_curves_give_the_papers_table_1(task, table_1):
    curves = td3_paper_curves([task])
    assert curves["seed"].nunique() == 10
    by_step = curves.pivot(index="step", columns="seed", values="value")
    assert list(by_step.index) == list(range(0, 1_000_001, 5000))
    assert by_step.mean(axis=1).max() == pytest.approx(table_1, abs=0.01)


def within_tolerance(shipped: pd.Series, original: pd.Series) -> np.ndarray:
    return np.abs(shipped - original) <= np.maximum(5e-4 * np.abs(original), 0.01)


@needs_shared_data
def test_shipped_data_equal_the_reference_data_to_rounding():
    original = pd.read_csv(SHARED_DATA / "dopamine_baselines.csv.gz", keep_default_na=False)
    original = original[original["suite"] == "atari"].astype({"iteration": int})
    keys = ["variant", "agent", "game", "run", "iteration"]
    shipped = pd.concat(
        dopamine_curves(agent, variant=variant)
        for variant, agent in original[["variant", "agent"]].drop_duplicates().to_numpy()
    )
    both = original.merge(shipped, on=keys, how="outer", suffixes=("", "_shipped"))
    assert len(both) == len(original) == len(shipped)
    assert within_tolerance(both["value_shipped"], both["value"]).all()

    original = pd.read_csv(SHARED_DATA / "td3_paper_learning_curves.csv")
    original = original.rename(columns={"timestep": "step", "eval_return": "value"})
    both = original.merge(td3_paper_curves(), on=["env", "seed", "step"], how="outer")
    assert len(both) == len(original) == 14_070
    assert within_tolerance(both["value_y"], both["value_x"]).all()


def _runs_table(rows: list[tuple[int, int, str, float]], game: str = "pong") -> pd.DataFrame:
    """A `load_runs`-shaped table of one Atari run from (seed, step, metric, value)."""
    table = pd.DataFrame(rows, columns=["seed", "step", "metric", "value"])
    identity = {"run": "runs/a", "preset": "custom", "agent": "dqn", "env": "Pong-v5"}
    table = table.assign(**identity, game=game, frames=table["step"] * 4)
    return table[
        ["run", "preset", "agent", "env", "game", "seed", "step", "frames", "metric", "value"]
    ]


def test_dopamine_grid_averages_each_seeds_rows_within_an_iteration():
    table = _runs_table(
        [
            (0, 0, "train_return", 99.0),  # before the first iteration: dropped
            (0, 100_000, "train_return", 1.0),
            (0, 200_000, "train_return", 2.0),
            (0, 250_000, "train_return", 3.0),  # the first iteration's last step
            (0, 300_000, "train_return", 4.0),
            (0, 500_000, "train_return", 6.0),
            (1, 250_000, "train_return", 10.0),
            (1, 250_000, "eval_return", 50.0),  # another metric
        ]
    )
    grid = on_dopamine_grid(table).sort_values(["seed", "iteration"])
    assert list(grid.columns) == [
        *["run", "preset", "agent", "env", "game", "seed"],
        *["iteration", "step", "frames", "metric", "value"],
    ]
    got = grid[["seed", "iteration", "step", "frames", "value"]].to_numpy().tolist()
    assert got == [
        [0, 0, 250_000, 1_000_000, 2.0],
        [0, 1, 500_000, 2_000_000, 5.0],
        [1, 0, 250_000, 1_000_000, 10.0],
    ]


def test_td3_grid_keeps_the_evaluations_every_5000_steps():
    table = _runs_table(
        [(0, step, "eval_return", step / 100) for step in (2500, 5000, 7500, 10_000)]
        + [(0, 5000, "train_return", 1.0)],
        game="HalfCheetah-v4",
    )
    grid = on_td3_grid(table)
    assert grid[["step", "value"]].to_numpy().tolist() == [[5000, 50.0], [10_000, 100.0]]
    with pytest.raises(ValueError, match="no 'loss' rows.*eval_return, train_return"):
        on_td3_grid(table, "loss")
    off_grid = table[table["step"] % 5000 != 0]
    with pytest.raises(ValueError, match="multiples of 5000.*--iteration-steps 5000"):
        on_td3_grid(off_grid)


def test_runs_map_to_the_dopamine_agent_and_protocol_they_compare_with():
    assert dopamine_agent(DQN_ATARI_DOPAMINE) == ADAM_DQN
    assert dopamine_agent(DQN_ATARI_NATURE) == "DQN"
    assert dopamine_agent(C51_ATARI_DOPAMINE) == "C51"
    assert dopamine_agent(QRDQN_ATARI) == "Quantile (JAX)"
    assert dopamine_curves("Quantile (JAX)", ["pong"])["run"].nunique() == 5
    stored = {"agent": "dqn", "value_representation": "c51"}  # a config.json's fields
    assert dopamine_agent(stored) == "C51"
    assert dopamine_caveat(stored) == ""  # the default protocol is Dopamine's
    assert dopamine_caveat(DQN_ATARI_DOPAMINE) == ""
    assert dopamine_caveat(DQN_ATARI_NATURE).startswith("not comparable: atari_protocol 'nature'")
    with pytest.raises(ValueError, match="td3 baseline"):
        dopamine_agent({"agent": "td3"})


def test_figure_has_a_panel_per_game_and_flags_another_protocol(tmp_path):
    short = {"seeds": 2, "total_steps": 500_000, "iteration_steps": 250_000}
    nature = dataclasses.replace(DQN_ATARI_NATURE, env="Pong-v5", **short)
    dopamine = dataclasses.replace(C51_ATARI_DOPAMINE, env="Breakout-v5", **short)
    rows = [
        (seed, step, "train_return", seed + step / 1e5)
        for seed in (0, 1)
        for step in (250_000, 500_000)
    ]
    write_run(tmp_path / "nature", nature, "dqn_atari_nature", rows)
    write_run(tmp_path / "dopamine", dopamine, "c51_atari_dopamine", rows)
    output = tmp_path / "figures" / "baselines.png"
    table = load_runs(tmp_path)
    figure = plot_against_baselines(table, "dopamine", output=output)
    titles = [axis.get_title() for axis in figure.axes]
    assert len(titles) == 2
    assert titles[0] == "breakout"
    assert titles[1].startswith("pong\nnot comparable: atari_protocol 'nature'")
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "Dopamine C51: mean, min-max of 5 runs" in labels
    assert "Dopamine DQN: mean, min-max of 5 runs" in labels
    assert "nature: mean of 2 seeds (thin: each seed)" in labels
    assert output.stat().st_size > 0
    alone = plot_against_baselines(table)
    assert [axis.get_title() for axis in alone.axes] == ["breakout", "pong"]


def test_td3_figure_names_the_papers_task_version():
    table = _runs_table(
        [(seed, step, "eval_return", 1.0) for seed in (0, 1) for step in (5000, 10_000)],
        game="HalfCheetah-v4",
    )
    figure = plot_against_baselines(table, "td3")
    assert [axis.get_title() for axis in figure.axes] == [
        "HalfCheetah-v4\n(the paper's HalfCheetah-v1)"
    ]
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == [
        "a: mean of 2 seeds (thin: each seed)",
        "TD3 paper: mean, min-max of 10 seeds",
    ]


def test_unknown_names_say_which_are_known(tmp_path):
    with pytest.raises(ValueError, match=r"unknown Dopamine agent 'QR-DQN'.*'C51', 'DQN'"):
        dopamine_curves("QR-DQN")
    assert dopamine_curves("QR-DQN", ["pong"], variant="Impala")["run"].nunique() == 5
    with pytest.raises(ValueError, match=r"no data for \['defender'\]; it has airraid, alien"):
        dopamine_curves("C51", ["Defender-v5"])
    with pytest.raises(ValueError, match=r"no curves for \['Humanoid-v4'\]; it has Ant, "):
        td3_paper_curves(["Humanoid-v4"])
    cartpole = _runs_table([(0, 5000, "eval_return", 1.0)], game="CartPole-v1")
    with pytest.raises(ValueError, match=r"no curves for \['CartPole-v1'\].*baseline=None"):
        plot_against_baselines(cartpole, "td3")
    mixed = pd.concat([cartpole, cartpole.assign(env="Acrobot-v1")]).drop(columns="game")
    with pytest.raises(ValueError, match="no game column and 2 envs.*load_runs"):
        plot_against_baselines(mixed)
    defender = dataclasses.replace(DQN_ATARI_DOPAMINE, env="Defender-v5", seeds=1)
    write_run(tmp_path / "defender", defender, "custom", [(0, 250_000, "train_return", 1.0)])
    with pytest.raises(ValueError, match=r"Dopamine has no data for \['defender'\].*baseline=None"):
        plot_against_baselines(load_runs(tmp_path), "dopamine")
