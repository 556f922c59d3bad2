"""Learning tests of the i-QN CartPole presets (as tests/test_learning.py, in a file of its
own: CI gives each test file to one worker, and these are the longest)."""

import pytest

from tests.test_learning import assert_cartpole_preset_ends_solved


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["idqn_cartpole", "ihlgauss_cartpole"])
def test_iterated_cartpole_presets_end_solved(tmp_path, preset):
    """The last two evaluations average >= 400 for at least 3 of 4 seeds."""
    assert_cartpole_preset_ends_solved(tmp_path, preset)
