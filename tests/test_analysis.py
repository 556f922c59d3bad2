"""Reading a run back: config, latest checkpoint, predicted return distributions."""

import dataclasses

import jax
import numpy as np
import pytest

from experiments.analysis import load_config, load_run, return_distribution
from experiments.runner import Trainer, train
from tests.test_runner import TINY_CARTPOLE


@pytest.fixture(scope="module")
def c51_run(tmp_path_factory):
    config = dataclasses.replace(
        TINY_CARTPOLE, value_representation="c51", num_atoms=11, v_min=0.0, v_max=100.0
    )
    run_dir = tmp_path_factory.mktemp("c51") / "run"
    return config, run_dir, train(config, "c51_cartpole", run_dir)


def test_load_run_restores_the_final_state(c51_run):
    config, run_dir, result = c51_run
    assert load_config(run_dir) == config
    _, state, iterations = load_run(run_dir)
    assert iterations == config.iterations
    for restored, final in zip(
        jax.tree.leaves(state.agent), jax.tree.leaves(result.state.agent), strict=True
    ):
        np.testing.assert_array_equal(restored, final)


def test_return_distribution_of_each_member(c51_run):
    _, run_dir, _ = c51_run
    trainer, state, _ = load_run(run_dir)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    for member in range(trainer.num_members):
        support, probabilities = return_distribution(trainer, state, obs, member)
        np.testing.assert_allclose(support, np.linspace(0.0, 100.0, 11), rtol=1e-6)
        assert probabilities.shape == (5, 2, 11)  # (observations, actions, atoms)
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
        params = jax.tree.map(lambda x, m=member: x[m], state.agent.params)
        np.testing.assert_allclose(
            probabilities @ support, trainer.agent.q_values(params, obs), rtol=1e-4, atol=1e-4
        )


def test_scalar_critics_have_no_distribution():
    trainer = Trainer.create(TINY_CARTPOLE)
    with pytest.raises(ValueError, match="categorical"):
        return_distribution(trainer, trainer.init_state(), np.zeros((1, 4), np.float32))


def test_a_run_without_checkpoints_is_reported(tmp_path):
    run_dir = tmp_path / "run"
    config = dataclasses.replace(
        TINY_CARTPOLE, total_steps=300, eval_episodes=0, checkpoint_every=0
    )
    train(config, run_dir=run_dir)
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        load_run(run_dir)
