"""Per-seed circular replay that stores each frame once, as a jitted, vmappable pytree.

One row holds one agent step of all E environments of a seed. Row k of env e carries
obs_k (one frame), the action picked on it, and how obs_k was reached: reward_k,
terminated_k, truncated_k, first_k (envpool's next-step autoreset). A transition leaves row
k unless row k+1 starts an episode (first_{k+1}: an autoreset after a termination or a
truncation, or a cut where the runner re-created the environment). A multi-step return
stops at a row that is terminated (no bootstrap) or truncated, or before a first row. A
terminated row that no autoreset follows (a life loss with discount 0 while the game goes
on) thus ends the returns that reach it and starts the transitions that leave it. Frame
stacks, n-step returns and episode boundaries are rebuilt at sample time, so acting
(`stack_frames`) and learning see identical observations.

Everything is written for a single seed; the runner maps over seeds.
"""

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from agents.types import Transition


class ReplayState(NamedTuple):
    """Ring of T rows for E environments of one seed."""

    frames: jax.Array  # (T, E, *frame_shape) frame_dtype
    actions: jax.Array  # (T, E, *action_shape) action_dtype
    rewards: jax.Array  # (T, E, *reward_shape) float32: () or (N,) for N reward sources
    terminated: jax.Array  # (T, E) bool
    truncated: jax.Array  # (T, E) bool
    first: jax.Array  # (T, E) bool
    cursor: jax.Array  # () int32, next row to write
    num_rows: jax.Array  # () int32, rows written so far, <= T
    num_valid: jax.Array  # () int32, (row, env) pairs that `sample` can draw


def stack_frames(stack: jax.Array | None, frame: jax.Array, first: jax.Array) -> jax.Array:
    """Runner-side frame stack for acting, identical to the stacks `Replay.sample` rebuilds.

    stack: (E, *frame_shape, S) previous stacked obs (zeros before the first step), or None
    or an array of frame shape when frame_stack is 1. frame: (E, *frame_shape), first: (E,).
    Returns (E, *frame_shape, S): the older S-1 frames rolled left (zeroed where `first`)
    and `frame` last; with frame_stack 1 returns `frame` itself.
    """
    if stack is None or stack.ndim == frame.ndim:
        return frame
    if stack.shape != (*frame.shape, stack.shape[-1]):
        raise ValueError(
            f"stack shape {stack.shape} does not match frame shape {frame.shape}: "
            "pass the (E, *frame_shape, S) stack this function returned last step"
        )
    older = stack[..., 1:]
    new_episode = first.reshape(first.shape + (1,) * (older.ndim - 1))
    older = jnp.where(new_episode, jnp.zeros_like(older), older)
    return jnp.concatenate([older, frame[..., None].astype(stack.dtype)], axis=-1)


@dataclasses.dataclass(frozen=True)
class Replay:
    """Static description of a per-seed replay; its methods are pure and jit/vmap-safe.

    capacity is the number of transitions per seed, stored as T = capacity // num_envs
    rows of num_envs environments. reward_shape is () for a scalar reward, (N,) for a
    reward vector of N sources (n-step sums are folded per source).
    """

    capacity: int
    num_envs: int
    frame_shape: tuple[int, ...]
    frame_dtype: Any
    action_shape: tuple[int, ...]
    action_dtype: Any
    frame_stack: int = 1
    n_step: int = 1
    batch_size: int = 32
    reward_shape: tuple[int, ...] = ()
    restart_stack_at_termination: bool = False

    def __post_init__(self) -> None:
        for name in ("frame_shape", "action_shape", "reward_shape"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.num_envs < 1:
            raise ValueError(f"num_envs={self.num_envs}: use at least 1 environment per seed")
        if self.capacity <= 0:
            raise ValueError(f"capacity={self.capacity}: set a positive replay capacity")
        if self.capacity % self.num_envs:
            raise ValueError(
                f"capacity={self.capacity} is not divisible by num_envs={self.num_envs}: "
                f"use a multiple of num_envs, e.g. capacity="
                f"{self.capacity // self.num_envs * self.num_envs or self.num_envs}"
            )
        if self.n_step < 1:
            raise ValueError(f"n_step={self.n_step}: use n_step >= 1")
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack={self.frame_stack}: use frame_stack >= 1")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size}: use batch_size >= 1")
        needed = self.frame_stack + self.n_step
        if self.max_rows < needed:
            raise ValueError(
                f"capacity={self.capacity} gives {self.max_rows} rows per environment, fewer "
                f"than frame_stack + n_step = {needed}: raise capacity to at least "
                f"{needed * self.num_envs} or lower frame_stack/n_step"
            )

    @property
    def max_rows(self) -> int:
        """T, the number of rows in the ring."""
        return self.capacity // self.num_envs

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one stacked observation: frame_shape, plus a last axis S if S > 1."""
        if self.frame_stack == 1:
            return self.frame_shape
        return (*self.frame_shape, self.frame_stack)

    def init(self) -> ReplayState:
        """Empty buffer."""
        rows = (self.max_rows, self.num_envs)
        return ReplayState(
            frames=jnp.zeros(rows + self.frame_shape, self.frame_dtype),
            actions=jnp.zeros(rows + self.action_shape, self.action_dtype),
            rewards=jnp.zeros(rows + self.reward_shape, jnp.float32),
            terminated=jnp.zeros(rows, bool),
            truncated=jnp.zeros(rows, bool),
            first=jnp.zeros(rows, bool),
            cursor=jnp.zeros((), jnp.int32),
            num_rows=jnp.zeros((), jnp.int32),
            num_valid=jnp.zeros((), jnp.int32),
        )

    def bytes_per_seed(self) -> int:
        """Exact bytes of all ReplayState arrays of one seed."""
        shapes = jax.eval_shape(self.init)
        return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(shapes))

    def add(
        self,
        state: ReplayState,
        frame: jax.Array,
        action: jax.Array,
        reward: jax.Array,
        terminated: jax.Array,
        truncated: jax.Array,
        first: jax.Array,
    ) -> ReplayState:
        """Writes one row: frame (E, *frame_shape), action (E, *action_shape), reward
        (E, *reward_shape), the flags (E,).

        reward/terminated/truncated/first describe how `frame` was reached; `action` was
        picked on it.
        """
        e = self.num_envs
        expected = {
            "frame": (frame, (e, *self.frame_shape)),
            "action": (action, (e, *self.action_shape)),
            "reward": (reward, (e, *self.reward_shape)),
            "terminated": (terminated, (e,)),
            "truncated": (truncated, (e,)),
            "first": (first, (e,)),
        }
        for name, (value, shape) in expected.items():
            if jnp.shape(value) != shape:
                raise ValueError(f"{name} has shape {jnp.shape(value)}, expected {shape}")

        t, s, n = self.max_rows, self.frame_stack, self.n_step
        cursor = state.cursor
        # Once full, the row at the bottom of the sampling range leaves it; its flags may be
        # overwritten below (S = 1), so count it before writing.
        lost = jnp.where(state.num_rows == t, self._count_starts(state, (cursor + s - 1) % t), 0)
        num_rows = jnp.minimum(state.num_rows + 1, t)
        state = ReplayState(
            frames=state.frames.at[cursor].set(frame.astype(state.frames.dtype)),
            actions=state.actions.at[cursor].set(action.astype(state.actions.dtype)),
            rewards=state.rewards.at[cursor].set(reward.astype(jnp.float32)),
            terminated=state.terminated.at[cursor].set(terminated.astype(bool)),
            truncated=state.truncated.at[cursor].set(truncated.astype(bool)),
            first=state.first.at[cursor].set(first.astype(bool)),
            cursor=(cursor + 1) % t,
            num_rows=num_rows,
            num_valid=state.num_valid,
        )
        # The row n steps back now has its whole n-step window written.
        gained = jnp.where(num_rows >= s + n, self._count_starts(state, (cursor - n) % t), 0)
        return state._replace(num_valid=state.num_valid + gained - lost)

    def can_sample(self, state: ReplayState) -> jax.Array:
        """() bool: at least one valid transition exists (O(1))."""
        return state.num_valid > 0

    def sample(self, state: ReplayState, key: jax.Array, gamma: float | jax.Array) -> Transition:
        """Draws batch_size transitions uniformly from the valid (row, env) pairs.

        gamma may be traced. Valid only where `can_sample(state)`; otherwise the batch is
        arbitrary (but the call still returns).
        """
        t, e, s, n, b = self.max_rows, self.num_envs, self.frame_stack, self.n_step, self.batch_size
        # In ring order (age 0 = oldest row), a start row k needs rows k-S+1..k (frame
        # history) and rows up to k+n written, so its age lies in [S-1, num_rows-1-n].
        num_ages = jnp.maximum(state.num_rows - n - s + 1, 1)
        first_age_row = state.cursor - state.num_rows + s - 1

        def draw(key: jax.Array) -> tuple[jax.Array, jax.Array]:
            flat = jax.random.randint(key, (b,), 0, num_ages * e)
            return (first_age_row + flat // e) % t, flat % e

        def is_start(row: jax.Array, env: jax.Array) -> jax.Array:
            return ~state.first[(row + 1) % t, env]

        def keep_drawing(carry: tuple[jax.Array, ...]) -> jax.Array:
            *_, ok = carry
            return jnp.any(~ok) & (state.num_valid > 0)

        def redraw_rejected(carry: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
            key, row, env, ok = carry
            key, draw_key = jax.random.split(key)
            new_row, new_env = draw(draw_key)
            row, env = jnp.where(ok, row, new_row), jnp.where(ok, env, new_env)
            return key, row, env, is_start(row, env)

        key, draw_key = jax.random.split(key)
        row, env = draw(draw_key)
        _, row, env, _ = jax.lax.while_loop(
            keep_drawing, redraw_rejected, (key, row, env, is_start(row, env))
        )

        window = (row[:, None] + jnp.arange(n + 1)[None]) % t  # rows k..k+n, (B, n+1)
        window_env = env[:, None]
        terminated = state.terminated[window, window_env]
        ends = (
            terminated[:, :n]
            | state.truncated[window[:, :n], window_env]
            | state.first[window[:, 1:], window_env]
        )  # (B, n): the return stops at row k+j, j < n (ends[:, 0], about row k, is unused)
        # m = min(n, steps to where the return stops).
        steps = 1 + jnp.sum(jnp.cumprod(~ends[:, 1:], axis=1), axis=1, dtype=jnp.int32)
        rewards = state.rewards[window[:, 1:], window_env]  # r_{k+1..k+n}, (B, n, *reward)

        gamma = jnp.asarray(gamma, jnp.float32)
        per_source = (slice(None),) + (None,) * len(self.reward_shape)  # (B,) -> (B, 1...)
        reward_t = jnp.zeros((b, *self.reward_shape), jnp.float32)
        discount = jnp.ones((b,), jnp.float32)
        for i in range(n):
            inside = i < steps
            weighted = discount[per_source] * rewards[:, i]
            reward_t = reward_t + jnp.where(inside[per_source], weighted, 0.0)
            discount = jnp.where(inside, discount * gamma, discount)
        terminal = jnp.take_along_axis(terminated, steps[:, None], axis=1)[:, 0]

        # One gather for both ends: on XLA:CPU two separate frame-stack gathers are >10x slower.
        obs = self._stacked_obs(
            state, jnp.concatenate([row, (row + steps) % t]), jnp.concatenate([env, env])
        )
        return Transition(
            obs_tm1=obs[:b],
            action_tm1=state.actions[row, env],
            reward_t=reward_t,
            discount_t=jnp.where(terminal, 0.0, discount),
            obs_t=obs[b:],
        )

    def _count_starts(self, state: ReplayState, row: jax.Array) -> jax.Array:
        """() int32: envs with a transition leaving `row` (needs row+1 written)."""
        return jnp.sum(~state.first[(row + 1) % self.max_rows], dtype=jnp.int32)

    def _stacked_obs(self, state: ReplayState, row: jax.Array, env: jax.Array) -> jax.Array:
        """(B, *obs_shape): frames of rows row-S+1..row, zeroed before the episode start."""
        if self.frame_stack == 1:
            return state.frames[row, env]
        s = self.frame_stack
        rows = (row[:, None] + jnp.arange(1 - s, 1)[None]) % self.max_rows  # oldest first, (B, S)
        frames = state.frames[rows, env[:, None]]  # (B, S, *frame_shape)
        first = state.first[rows, env[:, None]]
        if self.restart_stack_at_termination:
            first = first | state.terminated[rows, env[:, None]]
        first = first.astype(jnp.int32)
        # A frame is from an earlier episode iff a `first` comes strictly after it.
        later_firsts = jnp.flip(jnp.cumsum(jnp.flip(first, 1), axis=1), 1) - first
        keep = (later_firsts == 0).reshape(first.shape + (1,) * len(self.frame_shape))
        frames = jnp.where(keep, frames, jnp.zeros_like(frames))
        return jnp.moveaxis(frames, 1, -1)
