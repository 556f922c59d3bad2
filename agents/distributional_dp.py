"""Exact distributional dynamic programming on finite MDPs with stock augmentation (Avila
Pires et al., JMLR 2025, as reconstructed in SPEC.md), finite horizon.

The agent's state is (time, state, stock c): c_0 is given and c_{t+1} = (c_t + r_{t+1}) /
gamma, so that c_0 + G_0 = gamma^t (c_t + G_t). For an objective E f(c_0 + G) whose f is
invariant to gamma-scaling up to an affine map (f(gamma x) = a f(x) + b, a > 0), acting
greedily on E f(c_t + G_t) at every (t, s, c_t) is optimal among all history-dependent
policies. Return distributions have finite support here and are computed exactly.

The MDP is any object with `outcomes[s][a]` (tuples of (probability, reward, next_state,
terminal)), `start` and `gamma` (envs.finite_mdp.FiniteMDP).
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, NamedTuple

import numpy as np

DECIMALS = 12  # atoms closer than 1e-12 are one atom


class Distribution(NamedTuple):
    """A finite-support law: sorted distinct atoms (K,) and their probabilities (K,)."""

    atoms: np.ndarray
    probabilities: np.ndarray

    @staticmethod
    def of(atoms: Sequence[float], probabilities: Sequence[float]) -> "Distribution":
        """The law with these atoms and weights; equal atoms merge, zero weights drop."""
        atoms = np.round(np.asarray(atoms, float), DECIMALS)
        probabilities = np.asarray(probabilities, float)
        unique, index = np.unique(atoms, return_inverse=True)
        merged = np.zeros(len(unique))
        np.add.at(merged, index, probabilities)
        keep = merged > 0
        return Distribution(unique[keep], merged[keep])

    def affine(self, shift: float, scale: float) -> "Distribution":
        """The law of shift + scale X."""
        return Distribution.of(shift + scale * self.atoms, self.probabilities)

    def mean(self) -> float:
        return float(self.probabilities @ self.atoms)


def delta(x: float) -> Distribution:
    return Distribution.of([x], [1.0])


def mixture(parts: Sequence[tuple[float, Distribution]]) -> Distribution:
    """sum_i w_i Law_i for (w_i, Law_i) pairs."""
    atoms = np.concatenate([d.atoms for _, d in parts])
    weights = np.concatenate([w * d.probabilities for w, d in parts])
    return Distribution.of(atoms, weights)


@dataclasses.dataclass(frozen=True)
class Objective:
    """K(Law(c_0 + G)) = E f(c_0 + G) at an initial stock c_0. `scale_invariant`: whether
    f(gamma x) = a f(x) + b with a > 0 for every gamma in (0, 1), which distributional DP
    needs for gamma < 1 (with gamma = 1 any f is optimised exactly)."""

    name: str
    utility: Callable[[np.ndarray], np.ndarray]
    initial_stock: float = 0.0
    scale_invariant: bool = True

    def value(self, law: Distribution, stock: float | None = None) -> float:
        """E f(c + X) for X ~ law, c the given stock (default: the initial stock)."""
        c = self.initial_stock if stock is None else stock
        return float(law.probabilities @ self.utility(c + law.atoms))


def mean() -> Objective:
    """E G: f(x) = x (classic expected return)."""
    return Objective("mean", lambda x: x)


def threshold(b: float) -> Objective:
    """P(G >= b): c_0 = -b, f(x) = 1{x >= 0}."""
    return Objective(f"P(G >= {b:g})", lambda x: (x >= -1e-9).astype(float), -b)


def homeostatic(b: float, power: int = 1) -> Objective:
    """-E|G - b|^power (power 1 or 2): c_0 = -b, f(x) = -|x|^power."""
    if power not in (1, 2):
        raise ValueError(f"power={power}: homeostatic objectives use 1 (-|x|) or 2 (-x^2)")
    return Objective(f"-E|G - {b:g}|^{power}", lambda x: -(np.abs(x) ** power), -b)


def expected_utility(
    f: Callable[[np.ndarray], np.ndarray], name: str, scale_invariant: bool
) -> Objective:
    """E f(G) for any f; say whether f(gamma x) = a f(x) + b (a > 0) for every gamma."""
    return Objective(name, f, 0.0, scale_invariant)


def exponential_utility(beta: float) -> Objective:
    """E -exp(-beta G) (risk-averse for beta > 0): not scale-invariant, so exact only with
    gamma = 1."""
    return Objective(f"E -exp(-{beta:g} G)", lambda x: -np.exp(-beta * x), 0.0, False)


Policy = Callable[[int, int, float], int]  # (time, state, stock) -> action


class Solution(NamedTuple):
    """The optimal value of the objective, the greedy policy (time, state, stock) -> action
    it acts with, the exact law of the return G of that policy from the start, and the
    number of (time, state, stock) entries the solver computed (reachable ones only)."""

    value: float
    policy: Policy
    distribution: Distribution
    entries: int


def _check(mdp: Any, objective: Objective, horizon: int, approximate: bool) -> None:
    if horizon < 1:
        raise ValueError(f"horizon={horizon}: a finite horizon of 1 step or more is needed")
    if mdp.gamma < 1 and not objective.scale_invariant and not approximate:
        raise ValueError(
            f"{objective.name} is not invariant to gamma-scaling (f(gamma x) is no affine "
            f"map of f(x)), so distributional DP with gamma={mdp.gamma} does not optimise it "
            "exactly; use gamma = 1, or pass approximate=True for the greedy answer."
        )


def solve(mdp: Any, objective: Objective, horizon: int, approximate: bool = False) -> Solution:
    """The optimum of `objective` over `horizon` steps from the MDP's start by distributional
    value iteration on the stock-augmented MDP (reachable stocks enumerated)."""
    _check(mdp, objective, horizon, approximate)

    @cache
    def optimal(time: int, state: int, stock: float) -> tuple[Distribution, int]:
        """(Law of G from here under the greedy policy, its action)."""
        laws = [
            _action_law(mdp, horizon, lambda *key: optimal(*key)[0], time, state, stock, action)
            for action in range(len(mdp.outcomes[state]))
        ]
        action = _greedy(objective, laws, stock)
        return laws[action], action

    def policy(time: int, state: int, stock: float) -> int:
        return optimal(time, state, round(stock, DECIMALS))[1]

    law, _ = optimal(0, mdp.start, round(objective.initial_stock, DECIMALS))
    return Solution(objective.value(law), policy, law, optimal.cache_info().currsize)


def policy_iteration(
    mdp: Any, objective: Objective, horizon: int, approximate: bool = False
) -> Solution:
    """The same optimum by distributional policy iteration: from "always action 0", exact
    evaluation and a greedy step (keeping the action unless another is strictly better),
    `horizon` times: the k-th step makes the last k steps optimal."""
    _check(mdp, objective, horizon, approximate)

    def first_action(time: int, state: int, stock: float) -> int:
        return 0

    policy = first_action
    for _ in range(horizon):
        policy = _improved(mdp, objective, horizon, policy)
    laws = _policy_laws(mdp, policy, horizon)
    law = laws(0, mdp.start, round(objective.initial_stock, DECIMALS))
    return Solution(objective.value(law), policy, law, laws.cache_info().currsize)


def _improved(mdp: Any, objective: Objective, horizon: int, policy: Policy) -> Policy:
    """The greedy policy with respect to `policy`'s exact laws."""
    laws_of = _policy_laws(mdp, policy, horizon)

    @cache
    def improved(time: int, state: int, stock: float) -> int:
        laws = [
            _action_law(mdp, horizon, laws_of, time, state, stock, action)
            for action in range(len(mdp.outcomes[state]))
        ]
        return _greedy(objective, laws, stock, keep=policy(time, state, stock))

    return improved


def evaluate(mdp: Any, policy: Policy, horizon: int, initial_stock: float = 0.0) -> Distribution:
    """The exact law of G over `horizon` steps of a (time, state, stock) -> action policy,
    the stock starting at `initial_stock`."""
    if horizon < 1:
        raise ValueError(f"horizon={horizon}: a finite horizon of 1 step or more is needed")
    return _policy_laws(mdp, policy, horizon)(0, mdp.start, round(initial_stock, DECIMALS))


def _policy_laws(mdp: Any, policy: Policy, horizon: int) -> Callable[..., Distribution]:
    """(time, state, stock) -> the law of G from there under `policy`, memoised."""

    @cache
    def law(time: int, state: int, stock: float) -> Distribution:
        action = policy(time, state, stock)
        return _action_law(mdp, horizon, law, time, state, stock, action)

    return law


def _action_law(
    mdp: Any,
    horizon: int,
    following: Callable[..., Distribution],
    time: int,
    state: int,
    stock: float,
    action: int,
) -> Distribution:
    """The law of G from (time, state, stock) taking `action`, then G' ~ following(time + 1,
    next state, next stock): Law(R + gamma G'), or Law(R) at a terminal transition or the
    horizon."""
    parts = []
    for p, r, s_next, terminal in mdp.outcomes[state][action]:
        if terminal or time + 1 == horizon:
            parts.append((p, delta(r)))
        else:
            later = following(time + 1, s_next, _next_stock(stock, r, mdp.gamma))
            parts.append((p, later.affine(r, mdp.gamma)))
    return mixture(parts)


def _greedy(objective: Objective, laws: Sequence[Distribution], stock: float, keep: int = 0) -> int:
    """argmax_a E f(stock + G_a), staying with `keep` unless another is strictly better."""
    values = [objective.value(law, stock) for law in laws]
    best = keep
    for action, value in enumerate(values):
        if value > values[best] + 1e-12:
            best = action
    return best


def _next_stock(stock: float, reward: float, gamma: float) -> float:
    """c' = (c + r) / gamma, rounded so that equal stocks share a table entry."""
    return round((stock + reward) / gamma, DECIMALS)


def cvar_of(law: Distribution, alpha: float) -> float:
    """CVaR_alpha: the mean of the lowest alpha of the probability mass (alpha in (0, 1])."""
    _check_alpha(alpha)
    below = np.clip(alpha - np.concatenate([[0.0], np.cumsum(law.probabilities)[:-1]]), 0, None)
    return float(np.minimum(law.probabilities, below) @ law.atoms / alpha)


def cvar(mdp: Any, alpha: float, horizon: int) -> tuple[float, float, Solution]:
    """The optimal CVaR_alpha of G by Rockafellar-Uryasev: max over c_0 of
    -c_0 + E min(c_0 + G, 0) / alpha, each inner problem solved by stock-augmented DP with
    f(x) = min(x, 0). The outer search is exact: -VaR_alpha of the optimal law maximises
    it, and that is minus an achievable return, so every achievable return's negative is
    tried. Returns (CVaR, c_0* = -VaR_alpha, the inner solution at c_0*)."""
    _check_alpha(alpha)
    best = None
    # Descending, keeping the first best: among tied maximisers (an interval of c_0 when the
    # alpha-quantile is not unique) the largest, -VaR_alpha with VaR the lower quantile.
    for c0 in sorted({-g for g in _achievable_returns(mdp, horizon)}, reverse=True):
        inner = solve(mdp, Objective("E min(c + G, 0)", lambda x: np.minimum(x, 0.0), c0), horizon)
        value = -c0 + inner.value / alpha
        if best is None or value > best[0] + 1e-12:
            best = (value, c0, inner)
    return best


def _achievable_returns(mdp: Any, horizon: int) -> set[float]:
    """Every value G can take under some policy within `horizon` steps."""

    @cache
    def values(steps: int, state: int) -> frozenset[float]:
        found = set()
        for outcomes in mdp.outcomes[state]:
            for _, r, s_next, terminal in outcomes:
                if terminal or steps == 1:
                    found.add(round(r, DECIMALS))
                else:
                    found |= {round(r + mdp.gamma * g, DECIMALS) for g in values(steps - 1, s_next)}
        return frozenset(found)

    return set(values(horizon, mdp.start))


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha <= 1 or math.isnan(alpha):
        raise ValueError(f"alpha={alpha} must be in (0, 1]")
