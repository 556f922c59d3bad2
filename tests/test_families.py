"""The agent registry: every family's fields exist, and the runner and the generic
validation name no agent (DESIGN principle 12)."""

import dataclasses
import inspect
import re

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import runner
from experiments.config import Config, ConfigError, validate
from experiments.families import FAMILIES, make_optimizer_for
from experiments.presets import PRESETS
from experiments.train import _description


def test_every_family_names_real_fields_and_is_listed_in_help():
    fields = {field.name for field in dataclasses.fields(Config)}
    help_text = _description()
    for name, family in FAMILIES.items():
        assert set(family.fields) <= fields, (name, set(family.fields) - fields)
        assert f"  {name} ({family.label}): " in help_text
        for field in family.fields:
            assert "--" + field.replace("_", "-") in help_text


@pytest.mark.parametrize("source", [inspect.getsource(runner), inspect.getsource(validate)])
def test_the_runner_and_the_generic_validation_name_no_agent(source):
    for name in FAMILIES:
        assert not re.search(rf"[\"']{name}[\"']", source), name


def test_every_family_has_a_preset_and_its_checks_run_before_compiling(monkeypatch):
    assert {preset.config.agent for preset in PRESETS.values()} == set(FAMILIES)
    calls = []
    for name, family in FAMILIES.items():
        monkeypatch.setitem(
            FAMILIES, name, family._replace(check=lambda c, s, n=name: calls.append(n))
        )
    for preset in PRESETS.values():
        validate(preset.config)
    assert set(calls) == set(FAMILIES)


def test_an_unknown_agent_is_refused_with_a_suggestion():
    bad = dataclasses.replace(PRESETS["dqn_cartpole"].config, agent="dgn")
    with pytest.raises(ConfigError, match="agent='dgn': choose one of .*did you mean 'dqn'"):
        validate(bad)


@pytest.mark.parametrize("steps_per_update", [0, 6])
def test_the_learning_rate_decays_linearly_to_zero_over_its_steps(steps_per_update):
    """learning_rate_decay_steps=12 at an update every 2 agent steps: 6 updates from the
    full rate to 0 (3 for an optimiser updated every 6 steps, as TD3's actor at policy
    delay 3). Adam's step on a constant gradient is lr x 1, so each step is the rate."""
    config = Config(learning_rate=0.1, update_period=2, learning_rate_decay_steps=12)
    optimizer = make_optimizer_for(config, steps_per_update)
    params = jnp.zeros(())
    state = optimizer.init(params)
    steps = []
    for _ in range(8):
        update, state = optimizer.update(jnp.ones(()), state, params)
        steps.append(-float(update))
    updates = 12 // (steps_per_update or 2)
    expected = [0.1 * max(1 - n / updates, 0) for n in range(8)]
    np.testing.assert_allclose(steps, expected, rtol=1e-4, atol=1e-9)  # Adam eps
