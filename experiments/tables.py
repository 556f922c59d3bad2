"""Published tables regenerated from a user's runs, the published number beside each cell
and blank where the runs do not cover it:

    python3 -m experiments.tables PAPER RUN_DIR [RUN_DIR ...] [--output-dir DIR]

prints the table as markdown and writes PAPER.csv and PAPER.tex (to DIR, default the
current folder; md3qn, whose paper has curves only, also md3qn.png). The published numbers
live in experiments/data/published.csv, each row with its source; the Dopamine baselines
are computed from the shipped Dopamine data at the budget the runs reached.
"""

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.aggregates import AGGREGATES, aggregate, final_scores, score_matrices
from experiments.baselines import (
    ATARI_FRAMES_PER_STEP,
    DOPAMINE_ITERATION_STEPS,
    dopamine_agent,
    dopamine_curves,
    on_dopamine_grid,
    plot_against_baselines,
    td3_paper_curves,
    td3_task,
)
from experiments.results import DATA_DIR, NoRunsError, load_runs, run_config

PUBLISHED_FILE = DATA_DIR / "published.csv"
TABLE_REPS = 5_000  # bootstrap replications of the aggregates' intervals


@cache
def published() -> pd.DataFrame:
    """Every published number: paper, table, row, column, value, std, budget_steps, source."""
    return pd.read_csv(PUBLISHED_FILE)


def td3_table(table: pd.DataFrame) -> pd.DataFrame:
    """TD3 Table 1 per task: the max over evaluations of the across-seed mean return, with
    the std over seeds at that evaluation; beside it the paper's curves at the same budget
    (the max of their mean up to the last step the runs reached) and the paper's Table 1
    at 1M steps. Tasks match across gym versions (HalfCheetah-v4 is HalfCheetah-v1's row)."""
    rows = table[table["metric"] == "eval_return"].assign(task=lambda t: t["env"].map(td3_task))
    paper = published().query("paper == 'td3'").set_index("row")
    cells = []
    for task in paper.index:
        ours = rows[rows["task"] == task]
        cell = {"task": task, "seeds": 0, "steps": math.nan, "ours": math.nan, "ours std": math.nan}
        if not ours.empty:
            by_step = ours.pivot_table(index="step", columns=["run", "seed"], values="value")
            by_step = by_step.dropna()  # evaluations every seed has reached
            best = by_step.mean(axis=1).idxmax()
            cell.update(
                seeds=by_step.shape[1],
                steps=by_step.index.max(),
                ours=by_step.loc[best].mean(),
                **{"ours std": by_step.loc[best].std(ddof=0)},
            )
            curves = td3_paper_curves([task]).pivot(index="step", columns="seed", values="value")
            cell["paper at these steps"] = curves.loc[: cell["steps"]].mean(axis=1).max()
        cell.update(
            {"paper Table 1": paper.loc[task, "value"], "paper std": paper.loc[task, "std"]}
        )
        cells.append(cell)
    columns = ["task", "seeds", "steps", "ours", "ours std", "paper at these steps"]
    return pd.DataFrame(cells, columns=[*columns, "paper Table 1", "paper std"])


def dopamine_table(table: pd.DataFrame, reps: int = TABLE_REPS) -> pd.DataFrame:
    """DQN / C51 / QR-DQN on Atari: per Dopamine agent (`dopamine_agent` of each run), the
    human-normalised median, mean and IQM (95% interval) of the runs' training returns in
    the last Dopamine iteration all of them reached, on the games they cover; beside them
    Dopamine's released runs of that agent at that iteration on the same games (5 runs
    each)."""
    grid = on_dopamine_grid(table)
    agents = {run: dopamine_agent(run_config(run)) for run in grid["run"].unique()}
    cells = []
    for agent, rows in grid.groupby(grid["run"].map(agents)):
        at, iteration = _last_common_iteration(rows)
        ours = aggregate({agent: _normalized_matrix(at)}, reps)
        theirs = dopamine_curves(agent, sorted(at["game"].unique()))
        theirs = theirs[theirs["iteration"] == iteration]
        matrix = theirs.pivot(index="run", columns="game", values="normalized").to_numpy()
        for name in ("median", "mean", "IQM"):
            value, low, high = (ours.loc[agent, (name, key)] for key in ("value", "low", "high"))
            cells.append(
                {
                    "agent": agent,
                    "aggregate": name,
                    "games": at["game"].nunique(),
                    "frames": _frames(iteration),
                    "ours": value,
                    "ours 95% CI": f"[{low:.3f}, {high:.3f}]",
                    "Dopamine": AGGREGATES[name](matrix),
                }
            )
    return pd.DataFrame(cells)


def iterated_table(table: pd.DataFrame, reps: int = TABLE_REPS) -> pd.DataFrame:
    """i-DQN against DQN at equal budget: the human-normalised IQM (95% interval) of each
    agent's training returns at the last Dopamine iteration all runs reached, on the games
    all cover; the i-QN paper's figure beside them (at 200M frames only)."""
    grid = on_dopamine_grid(table)
    labels = {run: _iterated_label(run_config(run), run) for run in grid["run"].unique()}
    grid = grid.assign(method=grid["run"].map(labels))
    if grid["method"].nunique() < 2:
        raise ValueError("the i-QN comparison needs runs of both i-DQN (agent=iterated) and DQN")
    at, iteration = _last_common_iteration(grid)
    shared = set.intersection(*(set(rows["game"]) for _, rows in at.groupby("method")))
    at = at[at["game"].isin(shared)]
    matrices = {method: _normalized_matrix(rows) for method, rows in at.groupby("method")}
    ours = aggregate(matrices, reps)
    paper = published().query("paper == 'iterated'").set_index("row")["value"]
    at_paper_budget = _frames(iteration) == 200_000_000
    return pd.DataFrame(
        [
            {
                "agent": method,
                "games": len(shared),
                "frames": _frames(iteration),
                "IQM": ours.loc[method, ("IQM", "value")],
                "IQM 95% CI": "[{:.3f}, {:.3f}]".format(
                    *(ours.loc[method, ("IQM", key)] for key in ("low", "high"))
                ),
                "paper (55 games, 200M frames)": paper.get(method, math.nan)
                if at_paper_budget
                else math.nan,
            }
            for method in matrices
        ]
    )


def md3qn_table(table: pd.DataFrame) -> pd.DataFrame:
    """MD3QN against HRA and MMDQN per game: the mean (± std over seeds) of each agent's
    final training return. The paper has no table, only curves: the command line also draws
    each game's curves (`md3qn_curves`)."""
    rows = table[table["agent"].isin(("md3qn", "hra", "mmdqn"))]
    if rows.empty:
        raise ValueError("no md3qn, hra or mmdqn runs among these")
    scores = final_scores(rows, "train_return")
    summary = scores.groupby(["game", "agent"])["score"].agg(["mean", "std", "count"])
    summary = summary.rename(columns={"count": "seeds"}).reset_index()
    return summary.assign(published="no table in the paper (curves only)")


def md3qn_curves(table: pd.DataFrame, output: Path) -> Path:
    """Each game's training-return curves of the MD3QN, HRA and MMDQN runs (every seed and
    each run's mean), written as a PNG."""
    rows = table[table["agent"].isin(("md3qn", "hra", "mmdqn"))]
    plot_against_baselines(rows, None, "train_return", output=output)
    return output


PAPERS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "td3": (td3_table, "TD3 (Fujimoto et al. 2018), Table 1"),
    "dopamine": (dopamine_table, "DQN and C51 on Atari against Dopamine's released runs"),
    "iterated": (iterated_table, "i-DQN against DQN at equal budget (Vincent et al. 2025)"),
    "md3qn": (md3qn_table, "MD3QN against HRA and MMDQN per game (Zhang et al. 2021)"),
}


def paper_table(paper: str, table: pd.DataFrame) -> pd.DataFrame:
    """The cells of `paper`'s table (one of PAPERS) from a `load_runs` table."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; the known ones are {', '.join(PAPERS)}")
    return PAPERS[paper][0](table)


def _last_common_iteration(grid: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows of the last Dopamine iteration every (run, seed, game) reached, and it."""
    iteration = int(grid.groupby(["run", "seed", "game"])["iteration"].max().min())
    return grid[grid["iteration"] == iteration], iteration


def _frames(iteration: int) -> int:
    return (iteration + 1) * DOPAMINE_ITERATION_STEPS * ATARI_FRAMES_PER_STEP


def _normalized_matrix(rows: pd.DataFrame) -> np.ndarray:
    """(seeds, games) human-normalised scores of one iteration's rows."""
    scores = final_scores(rows, rows["metric"].iloc[0], normalize=True)
    (matrix,) = score_matrices(scores.assign(group=""), "group").values()
    return matrix


def _iterated_label(config: dict, run: str) -> str:
    if config["agent"] == "iterated":
        return f"i-DQN (K = {config['num_networks']})"
    if config["agent"] == "dqn" and config["value_representation"] == "scalar":
        return "DQN"
    raise ValueError(f"{run} trains {config['agent']}; the i-QN table compares i-DQN with DQN")


def to_markdown(cells: pd.DataFrame) -> str:
    """A markdown table (3 decimals below 10, 1 below 1000, none above; NaN blank)."""
    lines = ["| " + " | ".join(map(str, cells.columns)) + " |"]
    lines.append("|" + "---|" * len(cells.columns))
    for row in cells.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    return "\n".join(lines)


def to_latex(cells: pd.DataFrame, caption: str) -> str:
    """A LaTeX tabular of the same cells."""
    escape = str.maketrans({"&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "±": r"$\pm$"})
    head = " & ".join(str(c).translate(escape) for c in cells.columns)
    body = [
        " & ".join(_cell(v).translate(escape) for v in row) + r" \\"
        for row in cells.itertuples(index=False)
    ]
    return "\n".join(
        [
            r"\begin{table}[h]",
            r"\centering",
            rf"\caption{{{caption.translate(escape)}}}",
            rf"\begin{{tabular}}{{{'l' * len(cells.columns)}}}",
            r"\hline",
            head + r" \\",
            r"\hline",
            *body,
            r"\hline",
            r"\end{tabular}",
            r"\end{table}",
        ]
    )


def _cell(value: object) -> str:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return ""
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m experiments.tables", description=__doc__)
    parser.add_argument("paper", help=f"one of {', '.join(PAPERS)}")
    parser.add_argument("runs", nargs="+", help="run dirs, their parent folder, or globs")
    parser.add_argument("--output-dir", type=Path, default=Path("."), help="for PAPER.csv/.tex")
    args = parser.parse_args(argv)
    try:
        table = load_runs(args.runs)
        cells = paper_table(args.paper, table)
    except (NoRunsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    caption = PAPERS[args.paper][1]
    print(f"{caption}\n\n{to_markdown(cells)}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    cells.to_csv(args.output_dir / f"{args.paper}.csv", index=False)
    (args.output_dir / f"{args.paper}.tex").write_text(to_latex(cells, caption) + "\n")
    print(f"\nwritten: {args.output_dir / args.paper}.csv and .tex")
    if args.paper == "md3qn":
        print(f"curves: {md3qn_curves(table, args.output_dir / 'md3qn.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
