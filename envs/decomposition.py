"""MD3QN's Atari reward decomposition (SPEC.md, "Atari reward decomposition (code)").

Each game has an ordered list of reward sources. A source with nominal value ``v`` fires
when ``remain >= v`` and its condition holds for ``remain - v``; it then takes ``v`` out
of the remainder. Each source fires at most once per step and whatever is left at the end
is dropped. The rule tables match the authors' ``reward-compose/<Game>-reward.txt``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable

import numpy as np

Condition = Callable[[np.ndarray], np.ndarray]


def always(rest: np.ndarray) -> np.ndarray:
    """No condition: the source fires whenever the remainder covers its value."""
    return np.ones(np.shape(rest), dtype=bool)


def near_multiple(modulus: float, tolerance: float) -> Condition:
    """``rest % modulus <= tolerance``, with Python's floored modulo (as ``np.mod``)."""

    def condition(rest: np.ndarray) -> np.ndarray:
        return np.mod(rest, modulus) <= tolerance

    condition.__name__ = f"near_multiple({modulus:g}, {tolerance:g})"
    return condition


def below(bound: float) -> Condition:
    """``rest < bound``."""

    def condition(rest: np.ndarray) -> np.ndarray:
        return rest < bound

    condition.__name__ = f"below({bound:g})"
    return condition


def above(bound: float) -> Condition:
    """``rest > bound``."""

    def condition(rest: np.ndarray) -> np.ndarray:
        return rest > bound

    condition.__name__ = f"above({bound:g})"
    return condition


@dataclasses.dataclass(frozen=True)
class Rule:
    """One reward source: its nominal value and the condition on the remainder after it."""

    value: float
    condition: Condition = always


DECOMPOSITIONS: dict[str, tuple[Rule, ...]] = {
    "AirRaid": (Rule(100.0), Rule(75.0), Rule(50.0), Rule(25.0)),
    "Asteroids": (
        Rule(20.0, near_multiple(50.0, 0.1)),
        Rule(50.0, near_multiple(100.0, 10.0)),
        Rule(100.0),
    ),
    "Gopher": (Rule(20.0, near_multiple(100.0, 0.1)), Rule(100.0)),
    "MsPacman": (
        Rule(10.0, near_multiple(50.0, 0.1)),
        Rule(50.0, near_multiple(100.0, 10.0)),
        Rule(100.0),
    ),
    # The -1 source needs remain >= -1 like any other, so a raw -2 gives [0, 0].
    "Pong": (Rule(-1.0, below(0.1)), Rule(1.0, above(-0.1))),
    "UpNDown": (
        Rule(10.0, near_multiple(100.0, 0.1)),
        Rule(100.0, near_multiple(200.0, 10.0)),
        Rule(200.0),
    ),
}


def game_of(env_id: str) -> str:
    """The game name of an envpool id: ``"MsPacman-v5" -> "MsPacman"``."""
    match = re.fullmatch(r"(.+)-v\d+", env_id)
    return match.group(1) if match else env_id


def _unknown(game: str) -> ValueError:
    close = difflib.get_close_matches(game, DECOMPOSITIONS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(
        f"no reward decomposition for {game!r}{hint}; games with rules: "
        + ", ".join(DECOMPOSITIONS)
    )


def check_decomposable(env_id: str) -> str:
    """The game of ``env_id`` if it has decomposition rules, else a ValueError."""
    game = game_of(env_id)
    if game not in DECOMPOSITIONS:
        raise _unknown(game)
    return game


def decompose(game: str, raw: np.ndarray) -> np.ndarray:
    """Split raw per-step rewards into nominal per-source components.

    Args:
      game: a key of ``DECOMPOSITIONS``, e.g. ``"MsPacman"``.
      raw: (...,) the raw (unclipped) reward of one agent step, summed over skipped frames.

    Returns:
      (..., N) float32, N = ``len(DECOMPOSITIONS[game])``: each source's nominal value where
      it fired, else 0. Not clipped: clipping each component to [-1, 1] is the caller's.
    """
    if game not in DECOMPOSITIONS:
        raise _unknown(game)
    rules = DECOMPOSITIONS[game]
    # float64 like the authors' Python floats, so the 0.1 tolerances see exact remainders.
    remain = np.asarray(raw, dtype=np.float64)
    out = np.zeros((*remain.shape, len(rules)), dtype=np.float32)
    for i, rule in enumerate(rules):
        rest = remain - rule.value
        fires = (remain >= rule.value) & rule.condition(rest)
        out[..., i] = np.where(fires, rule.value, 0.0)
        remain = np.where(fires, rest, remain)
    return out
