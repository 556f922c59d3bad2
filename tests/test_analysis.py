"""Reading a run back: config, latest checkpoint, predicted return distributions."""

import dataclasses

import jax
import numpy as np
import pytest

from experiments.analysis import (
    episode_distributions_figure,
    episode_return_distributions,
    load_config,
    load_run,
    return_distribution,
)
from experiments.runner import Trainer, train
from tests.test_runner import TINY_CARTPOLE

CRITICS = {
    "c51": {"value_representation": "c51", "num_atoms": 11, "v_min": 0.0, "v_max": 100.0},
    "quantile": {"value_representation": "quantile", "num_atoms": 11},
}


@pytest.fixture(scope="module", params=list(CRITICS))
def distributional_run(request, tmp_path_factory):
    config = dataclasses.replace(TINY_CARTPOLE, **CRITICS[request.param])
    run_dir = tmp_path_factory.mktemp(request.param) / "run"
    return config, run_dir, train(config, request.param, run_dir)


def test_load_run_restores_the_final_state(distributional_run):
    config, run_dir, result = distributional_run
    assert load_config(run_dir) == config
    _, state, iterations = load_run(run_dir)
    assert iterations == config.iterations
    for restored, final in zip(
        jax.tree.leaves(state.agent), jax.tree.leaves(result.state.agent), strict=True
    ):
        np.testing.assert_array_equal(restored, final)


def test_return_distribution_of_each_member(distributional_run):
    """C51: probabilities on the fixed support; quantiles: 11 atoms of mass 1/11 each."""
    config, run_dir, _ = distributional_run
    trainer, state, _ = load_run(run_dir)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    for member in range(trainer.num_members):
        support, probabilities = return_distribution(trainer, state, obs, member)
        assert probabilities.shape == (5, 2, 11)  # (observations, actions, atoms)
        if config.value_representation == "c51":
            np.testing.assert_allclose(support, np.linspace(0.0, 100.0, 11), rtol=1e-6)
        else:
            assert support.shape == (5, 2, 11)
            np.testing.assert_allclose(probabilities, 1 / 11, rtol=1e-6)
        np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
        params = jax.tree.map(lambda x, m=member: x[m], state.agent.params)
        np.testing.assert_allclose(
            np.sum(probabilities * support, axis=-1),
            trainer.agent.q_values(params, obs),
            rtol=1e-4,
            atol=1e-4,
        )


def test_episode_return_distributions_are_drawn(distributional_run):
    config, run_dir, _ = distributional_run
    trainer, state, _ = load_run(run_dir)
    support, probabilities, returns = episode_return_distributions(trainer, state, max_steps=20)
    assert probabilities.shape == (len(returns), 11)
    expected = (11,) if config.value_representation == "c51" else (len(returns), 11)
    assert support.shape == expected
    figure = episode_distributions_figure(support, probabilities, returns, config.env)
    assert "predicted mean" in [text.get_text() for text in figure.axes[0].get_legend().texts]


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
