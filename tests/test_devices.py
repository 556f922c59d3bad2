"""Seeds sharded over 4 (fake CPU) devices train what one device trains."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    import jax, numpy as np
    from experiments.runner import train
    from tests.test_runner import TINY_CARTPOLE

    assert len(jax.local_devices()) == 4, jax.local_devices()
    run_root = sys.argv[1]
    base = dataclasses.replace(TINY_CARTPOLE, seeds=4, eval_episodes=2)
    for mode in ("vmap", "map"):
        config = dataclasses.replace(base, seed_axis=mode)
        one = train(dataclasses.replace(config, devices=1), run_dir=f"{run_root}/{mode}1")
        four = train(dataclasses.replace(config, devices=4), run_dir=f"{run_root}/{mode}4")
        shardings = {leaf.sharding.num_devices for leaf in jax.tree.leaves(four.state)}
        assert shardings == {4}, shardings
        jax.tree.map(np.testing.assert_array_equal, one.state.replay, four.state.replay)
        np.testing.assert_array_equal(one.eval_returns, four.eval_returns)
        if mode == "map":  # each seed runs the same single-seed program: bit for bit
            jax.tree.map(np.testing.assert_array_equal, one.state.agent, four.state.agent)
        else:  # XLA:CPU vectorises a vmap over 4 seeds differently than over 1
            jax.tree.map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                one.state.agent.params,
                four.state.agent.params,
            )
    print("SHARDED == SINGLE")
    """
)


@pytest.mark.slow
def test_four_devices_equal_one_device(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "SHARDED == SINGLE" in completed.stdout


def test_seeds_that_do_not_divide_the_devices_are_refused():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    code = (
        "from experiments.train import main; "
        "raise SystemExit(main(['--seeds', '6', '--run-dir', '/nonexistent/x']))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 2
    assert "seeds=6 cannot be split evenly over 4 devices" in completed.stderr
