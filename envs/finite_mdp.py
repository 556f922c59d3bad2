"""Finite MDPs for exact (tabular) distributional dynamic programming: every (state, action)
has a finite list of outcomes (probability, reward, next state, terminal), so return
distributions have finite support and can be computed exactly.

Examples built with it: `safe_risky_bandit` (one step), `two_step_task` (the best second
action depends on the first reward, which the state does not tell), `pit_gridworld` (a
short path past a pit, a long safe one, slips and step costs).
"""

import dataclasses
from typing import NamedTuple

PROBABILITY_TOLERANCE = 1e-9


class Outcome(NamedTuple):
    """One possible result of taking an action: with `probability`, `reward` is received
    and the MDP moves to `next_state`, or ends there if `terminal`."""

    probability: float
    reward: float
    next_state: int
    terminal: bool


@dataclasses.dataclass(frozen=True)
class FiniteMDP:
    """outcomes[s][a]: the outcomes of action a in state s (every state has the same
    actions); episodes start in `start`; `gamma` discounts rewards. Raises ValueError on
    probabilities that are negative or do not sum to 1, or states out of range."""

    outcomes: tuple[tuple[tuple[Outcome, ...], ...], ...]
    start: int
    gamma: float

    def __post_init__(self):
        num_states = len(self.outcomes)
        if num_states == 0:
            raise ValueError("an MDP needs at least one state")
        num_actions = {len(actions) for actions in self.outcomes}
        if len(num_actions) != 1 or 0 in num_actions:
            raise ValueError(
                f"every state needs the same, nonzero number of actions: {num_actions}"
            )
        if not 0 <= self.start < num_states:
            raise ValueError(f"start={self.start} is not a state (0..{num_states - 1})")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma={self.gamma} must be in (0, 1]")
        for s, actions in enumerate(self.outcomes):
            for a, outcomes in enumerate(actions):
                where = f"state {s}, action {a}"
                if not outcomes:
                    raise ValueError(f"{where} has no outcome")
                if any(o.probability < 0 for o in outcomes):
                    raise ValueError(f"{where} has a negative probability")
                total = sum(o.probability for o in outcomes)
                if abs(total - 1) > PROBABILITY_TOLERANCE:
                    raise ValueError(f"{where}: probabilities sum to {total}, not 1")
                if any(not 0 <= o.next_state < num_states for o in outcomes):
                    raise ValueError(f"{where} leads to a state outside 0..{num_states - 1}")

    @property
    def num_states(self) -> int:
        return len(self.outcomes)

    @property
    def num_actions(self) -> int:
        return len(self.outcomes[0])


def safe_risky_bandit() -> FiniteMDP:
    """One step from state 0: action 0 ("safe") pays 1; action 1 ("risky") pays 3 or 0
    with probability 1/2 each."""
    safe = (Outcome(1.0, 1.0, 0, True),)
    risky = (Outcome(0.5, 3.0, 0, True), Outcome(0.5, 0.0, 0, True))
    return FiniteMDP(((safe, risky),), start=0, gamma=1.0)


def two_step_task(gamma: float = 1.0) -> FiniteMDP:
    """Two steps: in state 0, action 0 pays 0 or 2 (1/2 each) and action 1 pays 0.5; either
    leads to state 1, where action 0 ("safe") pays 1 and action 1 ("risky") pays 2 or -1
    (1/2 each), and the episode ends. To reach a total of 2 most often (3/4), the second
    action must depend on the first reward, which the state does not tell: risky after 0,
    safe after 2. A policy of the state alone reaches 2 with probability 1/2 at best."""
    first = (
        (Outcome(0.5, 0.0, 1, False), Outcome(0.5, 2.0, 1, False)),
        (Outcome(1.0, 0.5, 1, False),),
    )
    second = (
        (Outcome(1.0, 1.0, 1, True),),
        (Outcome(0.5, 2.0, 1, True), Outcome(0.5, -1.0, 1, True)),
    )
    return FiniteMDP((first, second), start=0, gamma=gamma)


def pit_gridworld(slip: float = 0.1, step_cost: float = 0.1, gamma: float = 1.0) -> FiniteMDP:
    """A 3 x 4 grid: start at the bottom left, goal (reward 1, terminal) at the bottom
    right, a pit (reward -1, terminal) in the two bottom-middle cells. The short route runs
    along the pit's top edge, the safe one along the top row. Actions 0 up, 1 right, 2 down,
    3 left; a move goes sideways (perpendicular, either side) with probability `slip` each
    and costs `step_cost`; moving into a wall stays put.

        row 0:  .  .  .  .
        row 1:  .  .  .  .
        row 2:  S  P  P  G
    """
    rows, columns = 3, 4
    pit, goal = {(2, 1), (2, 2)}, (2, 3)
    moves = ((-1, 0), (0, 1), (1, 0), (0, -1))

    def cell(r: int, c: int) -> int:
        return r * columns + c

    def result(r: int, c: int, move: int) -> Outcome:
        dr, dc = moves[move]
        nr, nc = r + dr, c + dc
        if not (0 <= nr < rows and 0 <= nc < columns):
            nr, nc = r, c
        if (nr, nc) in pit:
            return Outcome(0.0, -1.0 - step_cost, cell(nr, nc), True)
        if (nr, nc) == goal:
            return Outcome(0.0, 1.0 - step_cost, cell(nr, nc), True)
        return Outcome(0.0, -step_cost, cell(nr, nc), False)

    states = []
    for r in range(rows):
        for c in range(columns):
            actions = []
            for a in range(4):
                sideways = ((a + 1) % 4, (a + 3) % 4)
                weighted = [(1 - 2 * slip, a), (slip, sideways[0]), (slip, sideways[1])]
                outcomes = [result(r, c, move)._replace(probability=p) for p, move in weighted]
                actions.append(tuple(o for o in outcomes if o.probability > 0))
            states.append(tuple(actions))
    return FiniteMDP(tuple(states), start=cell(2, 0), gamma=gamma)
