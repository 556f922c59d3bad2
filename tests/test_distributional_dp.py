"""Exact distributional DP (agents.distributional_dp) against brute-force enumeration of every
deterministic history-dependent policy, classic value iteration, and the SPEC's bandit
figures; the finite MDPs' bad input."""

import itertools

import numpy as np
import pytest

from agents.distributional_dp import (
    Distribution,
    cvar,
    cvar_of,
    delta,
    evaluate,
    exponential_utility,
    homeostatic,
    mean,
    mixture,
    policy_iteration,
    solve,
    threshold,
)
from envs.finite_mdp import FiniteMDP, Outcome, pit_gridworld, safe_risky_bandit, two_step_task


def every_policy_law(mdp: FiniteMDP, horizon: int) -> list[Distribution]:
    """The law of G of every deterministic history-dependent policy: at each history (the
    outcomes so far, which outcomes with the same reward and next state do not tell apart)
    any action, independently of the other histories."""

    def laws(steps: int, state: int) -> list[Distribution]:
        found = []
        for outcomes in mdp.outcomes[state]:
            merged: dict[tuple, float] = {}
            for p, r, s_next, terminal in outcomes:
                merged[r, s_next, terminal] = merged.get((r, s_next, terminal), 0.0) + p
            branches = [
                [(p, delta(r))]
                if terminal or steps == 1
                else [(p, law.affine(r, mdp.gamma)) for law in laws(steps - 1, s_next)]
                for (r, s_next, terminal), p in merged.items()
            ]
            found += [mixture(choice) for choice in itertools.product(*branches)]
        return found

    return laws(horizon, mdp.start)


def value_iteration(mdp: FiniteMDP, horizon: int) -> float:
    """Classic finite-horizon Q-value iteration: the optimal expected return from the start."""
    values = np.zeros(mdp.num_states)
    for _ in range(horizon):
        values = np.array(
            [
                max(
                    sum(p * (r + (0.0 if done else mdp.gamma * values[s2])) for p, r, s2, done in o)
                    for o in actions
                )
                for actions in mdp.outcomes
            ]
        )
    return float(values[mdp.start])


TASKS = {
    "two_step": (two_step_task(), 2),
    "two_step_discounted": (two_step_task(gamma=0.5), 2),
    "gridworld": (pit_gridworld(slip=0.2, step_cost=0.1), 2),
    "gridworld_discounted": (pit_gridworld(slip=0.2, step_cost=0.1, gamma=0.9), 2),
}
OBJECTIVES = {
    "mean": mean(),
    "reach 2": threshold(2.0),
    "reach 0": threshold(0.0),
    "|G - 1.5|": homeostatic(1.5, 1),
    "(G - 1)^2": homeostatic(1.0, 2),
}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_optimum_equals_the_best_of_every_history_dependent_policy(task, objective):
    mdp, horizon = TASKS[task]
    k = OBJECTIVES[objective]
    solution = solve(mdp, k, horizon)
    best = max(k.value(law) for law in every_policy_law(mdp, horizon))
    assert solution.value == pytest.approx(best, abs=1e-9)
    # The returned law is the greedy policy's, and evaluating that policy gives it again.
    assert k.value(solution.distribution) == pytest.approx(solution.value, abs=1e-12)
    again = evaluate(mdp, solution.policy, horizon, k.initial_stock)
    np.testing.assert_allclose(again.atoms, solution.distribution.atoms)
    np.testing.assert_allclose(again.probabilities, solution.distribution.probabilities)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_policy_iteration_agrees_with_value_iteration(task, objective):
    mdp, horizon = TASKS[task]
    k = OBJECTIVES[objective]
    by_values, by_policies = solve(mdp, k, horizon), policy_iteration(mdp, k, horizon)
    assert by_policies.value == pytest.approx(by_values.value, abs=1e-12)
    assert k.value(evaluate(mdp, by_policies.policy, horizon, k.initial_stock)) == pytest.approx(
        by_values.value, abs=1e-12
    )


def test_policy_iteration_needs_every_step_on_a_longer_horizon():
    mdp, k = pit_gridworld(slip=0.1, step_cost=0.05), threshold(0.5)
    assert policy_iteration(mdp, k, 6).value == pytest.approx(solve(mdp, k, 6).value, abs=1e-12)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("stock", [0.0, 1.5, -2.0])
def test_the_mean_objective_is_classic_value_iteration_for_every_initial_stock(task, stock):
    mdp, horizon = TASKS[task]
    objective = mean()
    shifted = solve(mdp, type(objective)("mean", objective.utility, stock), horizon)
    assert shifted.value - stock == pytest.approx(value_iteration(mdp, horizon), abs=1e-9)


def test_the_bandit_figures():
    bandit = safe_risky_bandit()
    for objective, action, value in (
        (mean(), 1, 1.5),
        (threshold(2.0), 1, 0.5),
        (threshold(1.0), 0, 1.0),
    ):
        solution = solve(bandit, objective, 1)
        assert solution.policy(0, 0, objective.initial_stock) == action
        assert solution.value == pytest.approx(value)
    for alpha, expected, risky in ((0.5, 1.0, False), (0.8, 9 / 8, True)):
        value, _, inner = cvar(bandit, alpha, 1)
        assert value == pytest.approx(expected)
        assert (inner.distribution.atoms.size > 1) == risky  # risky pays 0 or 3


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0])
def test_cvar_search_finds_the_best_policy_and_c0_is_minus_var(task, alpha):
    mdp, horizon = TASKS[task]
    value, c0, inner = cvar(mdp, alpha, horizon)
    assert value == pytest.approx(
        max(cvar_of(law, alpha) for law in every_policy_law(mdp, horizon))
    )
    law = inner.distribution
    assert cvar_of(law, alpha) == pytest.approx(value)
    value_at_risk = law.atoms[np.searchsorted(np.cumsum(law.probabilities), alpha - 1e-12)]
    assert c0 == pytest.approx(-value_at_risk)


def test_reaching_a_target_needs_the_stock():
    mdp = two_step_task()
    solution = solve(mdp, threshold(2.0), 2)
    assert solution.value == pytest.approx(0.75)
    # Entries solved: the start, and state 1 at the stocks -2 + 0, -2 + 2 and -2 + 0.5.
    assert solution.entries == 4
    # In state 1 the stock is -2 + r_1: -2 after a first reward of 0, 0 after a reward of 2.
    assert solution.policy(1, 1, -2.0) == 1 and solution.policy(1, 1, 0.0) == 0
    markov = [
        evaluate(mdp, lambda t, s, c, a=a, b=b: a if t == 0 else b, 2)
        for a, b in itertools.product(range(2), repeat=2)
    ]
    assert max(threshold(2.0).value(law) for law in markov) == pytest.approx(0.5)


def test_the_stock_grows_by_one_over_gamma():
    mdp = two_step_task(gamma=0.5)
    seen = []

    def policy(time, state, stock):
        seen.append((time, stock))
        return 1 if time == 0 else 0

    law = evaluate(mdp, policy, 2, initial_stock=-1.0)
    assert sorted(seen) == [(0, -1.0), (1, (-1.0 + 0.5) / 0.5)]  # c' = (c + r) / gamma
    np.testing.assert_allclose(law.atoms, [0.5 + 0.5 * 1.0])


def test_objectives_distributional_dp_cannot_optimise_are_refused():
    with pytest.raises(ValueError, match="not invariant to gamma-scaling.*approximate=True"):
        solve(two_step_task(gamma=0.5), exponential_utility(1.0), 2)
    exact = solve(two_step_task(gamma=1.0), exponential_utility(1.0), 2)  # gamma 1: exact
    best = max(exponential_utility(1.0).value(law) for law in every_policy_law(two_step_task(), 2))
    assert exact.value == pytest.approx(best)
    assert solve(two_step_task(gamma=0.5), exponential_utility(1.0), 2, approximate=True)
    with pytest.raises(ValueError, match="horizon=0"):
        solve(two_step_task(), mean(), 0)
    for alpha in (0.0, 1.5):
        with pytest.raises(ValueError, match=f"alpha={alpha} must be in"):
            cvar(safe_risky_bandit(), alpha, 1)
    with pytest.raises(ValueError, match="power=3"):
        homeostatic(0.0, 3)


@pytest.mark.parametrize(
    "outcomes, message",
    [
        ((((Outcome(0.5, 0.0, 0, True),),),), "sum to 0.5, not 1"),
        ((((Outcome(1.5, 0.0, 0, True), Outcome(-0.5, 0.0, 0, True)),),), "negative"),
        ((((Outcome(1.0, 0.0, 3, False),),),), "outside 0..0"),
        ((((),),), "no outcome"),
    ],
)
def test_bad_mdps_are_refused(outcomes, message):
    with pytest.raises(ValueError, match=message):
        FiniteMDP(outcomes, start=0, gamma=1.0)
    with pytest.raises(ValueError, match="gamma=1.5"):
        FiniteMDP(safe_risky_bandit().outcomes, start=0, gamma=1.5)
