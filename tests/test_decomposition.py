"""Tests of envs.decomposition: SPEC.md's examples, hand-worked cases for every game, and a
plain-Python scalar reference of the SPEC algorithm on random sums of game events."""

import numpy as np
import pytest

from envs.decomposition import DECOMPOSITIONS, check_decomposable, decompose, game_of

GAMES = ("AirRaid", "Asteroids", "Gopher", "MsPacman", "Pong", "UpNDown")

# (game, raw reward, expected vector), each worked by hand from the SPEC rule table.
HAND_WORKED = [
    # SPEC.md's examples.
    ("MsPacman", 60.0, [10, 50, 0]),
    ("MsPacman", 1610.0, [10, 0, 100]),
    ("UpNDown", 400.0, [0, 0, 200]),
    ("Pong", -1.0, [-1, 0]),
    ("Pong", 1.0, [0, 1]),
    # AirRaid: 100, 75, 50, 25, all unconditional.
    ("AirRaid", 0.0, [0, 0, 0, 0]),
    ("AirRaid", 25.0, [0, 0, 0, 25]),
    ("AirRaid", 50.0, [0, 0, 50, 0]),
    ("AirRaid", 75.0, [0, 75, 0, 0]),
    ("AirRaid", 100.0, [100, 0, 0, 0]),
    ("AirRaid", 125.0, [100, 0, 0, 25]),
    ("AirRaid", 150.0, [100, 0, 50, 0]),
    ("AirRaid", 200.0, [100, 75, 0, 25]),  # 100 + 100 reads as 100 + 75 + 25
    ("AirRaid", 250.0, [100, 75, 50, 25]),
    ("AirRaid", 300.0, [100, 75, 50, 25]),  # 50 dropped
    ("AirRaid", 10.0, [0, 0, 0, 0]),  # 10 dropped
    # Asteroids: 20 if rest % 50 <= 0.1; 50 if rest % 100 <= 10; 100.
    ("Asteroids", 0.0, [0, 0, 0]),
    ("Asteroids", 20.0, [20, 0, 0]),
    ("Asteroids", 50.0, [0, 50, 0]),
    ("Asteroids", 100.0, [0, 0, 100]),
    ("Asteroids", 70.0, [20, 50, 0]),
    ("Asteroids", 120.0, [20, 0, 100]),
    ("Asteroids", 150.0, [0, 50, 100]),
    ("Asteroids", 170.0, [20, 50, 100]),
    ("Asteroids", 40.0, [0, 0, 0]),  # 20 + 20: 20 leaves 20, 20 % 50 > 0.1; all dropped
    ("Asteroids", 200.0, [0, 0, 100]),  # 100 dropped
    ("Asteroids", 1000.0, [0, 0, 100]),  # 900 dropped
    ("Asteroids", 60.0, [0, 50, 0]),  # 50 leaves 10, at the tolerance; 10 dropped
    ("Asteroids", 61.0, [0, 0, 0]),  # 50 would leave 11 > 10
    # Gopher: 20 if rest % 100 <= 0.1; 100.
    ("Gopher", 0.0, [0, 0]),
    ("Gopher", 20.0, [20, 0]),
    ("Gopher", 100.0, [0, 100]),
    ("Gopher", 120.0, [20, 100]),
    ("Gopher", 40.0, [0, 0]),  # dropped
    ("Gopher", 80.0, [0, 0]),  # dropped
    ("Gopher", 200.0, [0, 100]),  # 100 dropped
    ("Gopher", 220.0, [20, 100]),  # 100 dropped
    # MsPacman: 10 if rest % 50 <= 0.1; 50 if rest % 100 <= 10; 100.
    ("MsPacman", 0.0, [0, 0, 0]),
    ("MsPacman", 10.0, [10, 0, 0]),
    ("MsPacman", 50.0, [0, 50, 0]),
    ("MsPacman", 100.0, [0, 0, 100]),
    ("MsPacman", 110.0, [10, 0, 100]),
    ("MsPacman", 160.0, [10, 50, 100]),
    ("MsPacman", 200.0, [0, 0, 100]),  # a ghost: 100 dropped
    ("MsPacman", 210.0, [10, 0, 100]),  # 100 dropped
    ("MsPacman", 250.0, [0, 50, 100]),  # 100 dropped
    ("MsPacman", 310.0, [10, 0, 100]),  # 200 dropped
    ("MsPacman", 500.0, [0, 0, 100]),  # 400 dropped
    ("MsPacman", 20.0, [0, 0, 0]),  # two dots: 10 leaves 10, 10 % 50 > 0.1; dropped
    ("MsPacman", 10.05, [10, 0, 0]),  # 10 leaves 0.05 <= 0.1; 0.05 dropped
    ("MsPacman", 10.2, [0, 0, 0]),  # 10 would leave 0.2 > 0.1
    # Pong: -1 if rest < 0.1; +1 if rest > -0.1.
    ("Pong", 0.0, [0, 0]),
    ("Pong", 2.0, [0, 1]),  # 1 dropped
    ("Pong", -2.0, [0, 0]),  # -2 < -1 fails remain >= v; dropped
    # UpNDown: 10 if rest % 100 <= 0.1; 100 if rest % 200 <= 10; 200.
    ("UpNDown", 0.0, [0, 0, 0]),
    ("UpNDown", 10.0, [10, 0, 0]),
    ("UpNDown", 100.0, [0, 100, 0]),
    ("UpNDown", 200.0, [0, 0, 200]),
    ("UpNDown", 110.0, [10, 100, 0]),
    ("UpNDown", 210.0, [10, 0, 200]),
    ("UpNDown", 300.0, [0, 100, 200]),
    ("UpNDown", 310.0, [10, 100, 200]),
    ("UpNDown", 410.0, [10, 0, 200]),  # 200 dropped
    ("UpNDown", 510.0, [10, 100, 200]),  # 200 dropped
    ("UpNDown", 600.0, [0, 0, 200]),  # 400 dropped
    ("UpNDown", 810.0, [10, 0, 200]),  # 600 dropped
    ("UpNDown", 20.0, [0, 0, 0]),  # 10 would leave 10 > 0.1; dropped
]


@pytest.mark.parametrize(("game", "raw", "expected"), HAND_WORKED)
def test_hand_worked(game: str, raw: float, expected: list[float]) -> None:
    np.testing.assert_array_equal(decompose(game, np.asarray(raw)), np.float32(expected))


# The SPEC rule table again, written independently of envs.decomposition.
_REFERENCE_RULES = {
    "AirRaid": [(100.0, None), (75.0, None), (50.0, None), (25.0, None)],
    "Asteroids": [(20.0, (50.0, 0.1)), (50.0, (100.0, 10.0)), (100.0, None)],
    "Gopher": [(20.0, (100.0, 0.1)), (100.0, None)],
    "MsPacman": [(10.0, (50.0, 0.1)), (50.0, (100.0, 10.0)), (100.0, None)],
    "Pong": [(-1.0, "pong-"), (1.0, "pong+")],
    "UpNDown": [(10.0, (100.0, 0.1)), (100.0, (200.0, 10.0)), (200.0, None)],
}

# Point values of each game's scoring events, summed at random below.
_EVENTS = {
    "AirRaid": [25, 50, 75, 100],
    "Asteroids": [20, 50, 100, 200, 1000],
    "Gopher": [20, 100],
    "MsPacman": [10, 50, 100, 200, 400, 800, 1600],
    "Pong": [-1, 1],
    "UpNDown": [10, 100, 200],
}


def _reference(game: str, raw: float) -> list[float]:
    remain = float(raw)
    out = []
    for value, cond in _REFERENCE_RULES[game]:
        rest = remain - value
        if cond is None:
            ok = True
        elif cond == "pong-":
            ok = rest < 0.1
        elif cond == "pong+":
            ok = rest > -0.1
        else:
            modulus, tol = cond
            ok = rest % modulus <= tol
        if remain >= value and ok:
            out.append(value)
            remain = rest
        else:
            out.append(0.0)
    return out


def test_rule_tables() -> None:
    assert tuple(DECOMPOSITIONS) == GAMES
    for game in GAMES:
        assert [r.value for r in DECOMPOSITIONS[game]] == [v for v, _ in _REFERENCE_RULES[game]]


@pytest.mark.parametrize("game", GAMES)
def test_matches_scalar_reference(game: str) -> None:
    rng = np.random.default_rng(sum(map(ord, game)))
    events = np.asarray(_EVENTS[game], dtype=np.float64)
    counts = rng.integers(0, 3, size=(64, 5, len(events)))
    counts[rng.random((64, 5)) < 0.3] = 0  # plenty of zero-reward steps
    raw = (counts @ events).astype(np.float32)  # envpool hands out float32 rewards
    got = decompose(game, raw)
    assert got.shape == (64, 5, len(DECOMPOSITIONS[game]))
    assert got.dtype == np.float32
    expected = [[_reference(game, r) for r in row] for row in raw.tolist()]
    np.testing.assert_array_equal(got, np.float32(expected))


def test_shapes_and_dtype() -> None:
    assert decompose("MsPacman", np.float32(60.0)).shape == (3,)
    assert decompose("MsPacman", 60.0).dtype == np.float32
    np.testing.assert_array_equal(decompose("MsPacman", 60), np.float32([10, 50, 0]))
    raw = np.array([[0.0, 10.0, 60.0], [1610.0, 50.0, 100.0]])
    got = decompose("MsPacman", raw)
    assert got.shape == (2, 3, 3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[1, 0], np.float32([10, 0, 100]))
    assert decompose("Pong", np.zeros((0,))).shape == (0, 2)


def test_raw_left_untouched() -> None:
    raw = np.array([60.0, 1610.0])
    decompose("MsPacman", raw)
    np.testing.assert_array_equal(raw, [60.0, 1610.0])


def test_game_of() -> None:
    assert game_of("MsPacman-v5") == "MsPacman"
    assert game_of("UpNDown-v5") == "UpNDown"
    assert game_of("Pong") == "Pong"


def test_check_decomposable() -> None:
    for game in GAMES:
        assert check_decomposable(f"{game}-v5") == game
    with pytest.raises(ValueError, match="Breakout") as info:
        check_decomposable("Breakout-v5")
    for game in GAMES:
        assert game in str(info.value)
    with pytest.raises(ValueError, match="did you mean 'MsPacman'"):
        check_decomposable("Mspacman-v5")
    with pytest.raises(ValueError, match="AirRaid"):
        decompose("Breakout", np.zeros(3))
