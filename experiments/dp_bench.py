"""The tabular section of experiments.bench: how exact distributional DP
(agents.distributional_dp) grows with the horizon, in (time, state, stock) entries solved
and seconds, on the pit gridworld with and without discounting."""

import time
from collections.abc import Sequence
from typing import Any

from agents.distributional_dp import cvar, solve, threshold
from envs.finite_mdp import pit_gridworld

CVAR_ALPHA = 0.2


def bench_tabular(horizons: Sequence[int]) -> list[dict[str, Any]]:
    """Per gamma and horizon: the entries and seconds of a P(G >= 0.5) solve, and the
    seconds of CVaR_0.2 (one inner solve per achievable return)."""
    rows = []
    for gamma in (1.0, 0.9):
        mdp = pit_gridworld(slip=0.1, step_cost=0.05, gamma=gamma)
        for horizon in horizons:
            start = time.perf_counter()
            solution = solve(mdp, threshold(0.5), horizon)
            solve_s = time.perf_counter() - start
            start = time.perf_counter()
            cvar(mdp, CVAR_ALPHA, horizon)
            rows.append(
                {
                    "task": "pit_gridworld",
                    "states": mdp.num_states,
                    "gamma": gamma,
                    "horizon": horizon,
                    "entries": solution.entries,
                    "solve_s": solve_s,
                    "cvar_s": time.perf_counter() - start,
                }
            )
    return rows
