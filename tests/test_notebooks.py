"""Every notebook in notebooks/ executes, with papermill, on tiny runs made here: a CartPole
learning-rate sweep, C51 and QR-DQN CartPole runs, an MD3QN maze run and a TD3
InvertedPendulum run. A notebook that raises fails its test."""

import dataclasses
from pathlib import Path

import papermill
import pytest

from experiments.presets import PRESETS
from experiments.runner import train

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TINY = {"total_steps": 600, "iteration_steps": 300, "learning_starts": 100, "batch_size": 32}
TINY |= {"mlp_hidden": (32, 32), "eval_episodes": 2, "progress": False}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    configs = {
        "sweep": dataclasses.replace(
            PRESETS["dqn_cartpole"].config, seeds=2, sweep_learning_rate=(1e-3, 3e-4), **TINY
        ),
        "c51": dataclasses.replace(PRESETS["c51_cartpole"].config, seeds=1, **TINY),
        "qrdqn": dataclasses.replace(PRESETS["qrdqn_cartpole"].config, seeds=1, **TINY),
        "md3qn": dataclasses.replace(PRESETS["md3qn_maze"].config, seeds=1, **TINY),
        "td3": dataclasses.replace(
            PRESETS["td3_mujoco"].config,
            env="InvertedPendulum-v4",
            seeds=2,
            # One evaluation on the TD3 paper's 5k-step grid.
            **(TINY | {"total_steps": 5_000, "iteration_steps": 5_000, "learning_starts": 250}),
        ),
    }
    return {name: train(config, name, root / name).run_dir for name, config in configs.items()}


def execute(name: str, tmp_path: Path, **parameters) -> None:
    papermill.execute_notebook(
        NOTEBOOKS / f"{name}.ipynb",
        tmp_path / f"{name}.ipynb",
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NOTEBOOKS.parent),
        progress_bar=False,
    )


def test_every_notebook_is_tested():
    tested = {"learning_curves", "sweeps", "paper_tables", "return_distributions"}
    assert {path.stem for path in NOTEBOOKS.glob("*.ipynb")} == tested


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), path
        assert "parameters" in code[0].metadata.get("tags", []), path


def test_learning_curves(runs, tmp_path):
    execute("learning_curves", tmp_path, run_dirs=[str(runs["sweep"])], reps=100)
    execute("learning_curves", tmp_path, run_dirs=[str(runs["td3"])], baseline="td3", reps=100)


def test_sweeps(runs, tmp_path):
    execute("sweeps", tmp_path, run_dirs=[str(runs["sweep"])], parameter="learning_rate", reps=100)


def test_paper_tables(runs, tmp_path):
    execute("paper_tables", tmp_path, paper="td3", run_dirs=[str(runs["td3"])], reps=100)


@pytest.mark.parametrize("run", ["c51", "qrdqn", "md3qn"])  # categorical, quantiles, particles
def test_return_distributions(runs, tmp_path, run):
    execute("return_distributions", tmp_path, run_dir=str(runs[run]), max_steps=50)
