"""The finite MDPs of envs.finite_mdp as a vectorised NumPy pool with VecEnv's interface, so
that the runner trains deep agents on the tasks whose exact answers agents.distributional_dp
computes (DESIGN.md, principle 14).

Ids (suite ``finite_mdp``), each the default MDP of its builder with an episode cap:
``SafeRiskyBandit-v0`` (cap 1), ``TwoStepTask-v0`` (cap 2) and ``PitGridworld-v0`` (cap 50);
``finite_mdp(env_id)`` gives the MDP.

Observation: a float32 one-hot of the state, (num_states,): the state and nothing else, as
the Markov policies of the exact solver see it (neither the time nor the stock is observed;
DetaN carries its stock as actor state). On a one-hot an MLP can represent any table, so a
gap to the exact answer is the agent's, not the observation's.

Cap: a step that reaches ``max_episode_steps`` without a terminal outcome is truncated (the
runner bootstraps through it); an outcome with ``terminal`` terminates, also at the cap.
The exact finite-horizon solve at horizon H = the cap optimises over policies that see the
time, which a policy of the state alone matches only approximately: the caps are chosen so
that good policies never meet them (the bandit and the two-step task always terminate by
the cap) or end well before them (on the gridworld the optimal mean over 30 steps equals the
one over 50 to 1e-6), so the exact mean at H = the cap is the infinite-horizon value the
agent learns. Objectives that need the stock (e.g. P(G >= 2) on the two-step task) stay out
of reach of the state alone.

Discount: the spec's ``discount`` is the MDP's gamma, which the exact answers use; config
validation refuses a run with another gamma.

Randomness: environment (s, e) owns ``np.random.default_rng(env_seeds[s, e])`` (its seed from
envs.factory.resolve_env_seeds, as in make_env, so its stream depends only on the run seed,
its seed index and e) and draws one uniform u from it at every ``step()`` call, autoreset
steps included. The outcome is the first k of the listed outcomes with u < p_0 + ... + p_k
(the last one if rounding leaves u above every sum).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from envs.factory import EnvSpec, StepResult
from envs.finite_mdp import FiniteMDP, pit_gridworld, safe_risky_bandit, two_step_task
from envs.numpy_pool import NumpyPool


class FiniteMDPTask(NamedTuple):
    """A registered task: the builder of its MDP and its episode cap."""

    build: Callable[[], FiniteMDP]
    max_episode_steps: int


FINITE_MDP_TASKS: dict[str, FiniteMDPTask] = {
    "SafeRiskyBandit-v0": FiniteMDPTask(safe_risky_bandit, 1),
    "TwoStepTask-v0": FiniteMDPTask(two_step_task, 2),
    "PitGridworld-v0": FiniteMDPTask(pit_gridworld, 50),
}
FINITE_MDP_IDS: tuple[str, ...] = tuple(FINITE_MDP_TASKS)


def check_finite_mdp_id(env_id: str) -> None:
    """Raises ValueError, naming close ids and every valid one, unless env_id is a task id."""
    if env_id in FINITE_MDP_TASKS:
        return
    close = difflib.get_close_matches(env_id, FINITE_MDP_IDS, n=3)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise ValueError(
        f"unknown finite MDP id {env_id!r}: {hint}valid ids: {', '.join(FINITE_MDP_IDS)}"
    )


def finite_mdp(env_id: str) -> FiniteMDP:
    """The MDP of a registered id."""
    check_finite_mdp_id(env_id)
    return FINITE_MDP_TASKS[env_id].build()


def finite_mdp_spec(
    env_id: str, num_seeds: int, envs_per_seed: int, max_episode_steps: int | None = None
) -> EnvSpec:
    """The EnvSpec of ``make_finite_mdp_env`` with the same arguments; creates no pool."""
    mdp = finite_mdp(env_id)
    for name, value in (
        ("num_seeds", num_seeds),
        ("envs_per_seed", envs_per_seed),
        ("max_episode_steps", max_episode_steps),
    ):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return EnvSpec(
        env_id=env_id,
        suite="finite_mdp",
        frame_shape=(mdp.num_states,),
        frame_dtype=np.dtype(np.float32),
        frame_stack=1,
        num_actions=mdp.num_actions,
        action_shape=(),
        action_low=None,
        action_high=None,
        num_seeds=num_seeds,
        envs_per_seed=envs_per_seed,
        max_episode_steps=max_episode_steps or FINITE_MDP_TASKS[env_id].max_episode_steps,
        frames_per_step=1,
        discount=mdp.gamma,
    )


class FiniteMDPEnv(NumpyPool):
    """A pool of ``num_seeds * envs_per_seed`` copies of a finite MDP with VecEnv's
    interface (next-step autoreset, as envpool). ``env_seeds`` (S, E) holds each
    environment's seed; see the module docstring for how it drives the draws."""

    def __init__(self, spec: EnvSpec, env_seeds: np.ndarray) -> None:
        super().__init__(spec, env_seeds)
        self.mdp = mdp = finite_mdp(spec.env_id)
        num_envs = self._num_envs

        # Outcome tables (states, actions, K), padded to the longest outcome list. An
        # outcome is picked by counting the thresholds <= u; the last real outcome's and
        # the padding's are infinite, so the count stays on a listed outcome.
        most = max(len(outcomes) for actions in mdp.outcomes for outcomes in actions)
        shape = (mdp.num_states, mdp.num_actions, most)
        self._thresholds = np.full(shape, np.inf)
        self._reward = np.zeros(shape, np.float32)
        self._next_state = np.zeros(shape, np.int64)
        self._terminal = np.zeros(shape, bool)
        for s, actions in enumerate(mdp.outcomes):
            for a, outcomes in enumerate(actions):
                k = len(outcomes)
                cumulative = np.cumsum([o.probability for o in outcomes])
                self._thresholds[s, a, : k - 1] = cumulative[:-1]
                self._reward[s, a, :k] = [o.reward for o in outcomes]
                self._next_state[s, a, :k] = [o.next_state for o in outcomes]
                self._terminal[s, a, :k] = [o.terminal for o in outcomes]

        self._generators = [np.random.default_rng(seed) for seed in env_seeds.reshape(-1)]
        self._state = np.full(num_envs, mdp.start, np.int64)
        self._steps = np.zeros(num_envs, np.int32)
        self._return = np.zeros(num_envs, np.float64)
        self._done = np.zeros(num_envs, bool)  # the next step autoresets

    def reset(self) -> StepResult:
        """Resets every environment; ``first`` is True everywhere and rewards are 0."""
        self._restart(np.ones(self._num_envs, bool))
        self._was_reset = True
        no = np.zeros(self._num_envs, bool)
        return self._result(np.zeros(self._num_envs, np.float32), no, no, ~no)

    def _step(self, action: np.ndarray) -> StepResult:
        u = np.fromiter((g.random() for g in self._generators), np.float64, self._num_envs)
        first = self._done.copy()
        self._restart(first)
        live = ~first
        state = self._state
        k = (self._thresholds[state, action] <= u[:, None]).sum(axis=1)
        reward = np.where(live, self._reward[state, action, k], np.float32(0.0))
        terminated = live & self._terminal[state, action, k]
        self._state = np.where(live, self._next_state[state, action, k], state)
        self._steps += live
        self._return += reward
        truncated = live & ~terminated & (self._steps >= self.spec.max_episode_steps)
        self._done = terminated | truncated
        return self._result(reward, terminated, truncated, first)

    def _restart(self, mask: np.ndarray) -> None:
        self._state[mask] = self.mdp.start
        self._steps[mask] = 0
        self._return[mask] = 0.0
        self._done[mask] = False

    def _result(
        self,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        first: np.ndarray,
    ) -> StepResult:
        def batched(flat: np.ndarray, dtype: type | None = None) -> np.ndarray:
            return flat.reshape(self._batch_shape + flat.shape[1:]).astype(dtype or flat.dtype)

        done = terminated | truncated
        obs = np.zeros((self._num_envs, self.mdp.num_states), np.float32)
        obs[np.arange(self._num_envs), self._state] = 1.0
        return StepResult(
            obs=batched(obs),
            reward=batched(reward, np.float32),
            terminated=batched(terminated),
            truncated=batched(truncated),
            first=batched(first),
            episode_done=batched(done),
            episode_return=batched(np.where(done, self._return, 0.0), np.float32),
            episode_length=batched(np.where(done, self._steps, 0), np.int32),
            episode_source_return=np.zeros((*self._batch_shape, 0), np.float32),
        )
