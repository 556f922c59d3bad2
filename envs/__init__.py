"""Environments: envpool factories and Atari protocols."""

from envs.factory import (
    ATARI_PROTOCOLS,
    AtariProtocol,
    EnvSpec,
    StepResult,
    VecEnv,
    check_env_id,
    env_spec,
    make_env,
)

__all__ = [
    "ATARI_PROTOCOLS",
    "AtariProtocol",
    "EnvSpec",
    "StepResult",
    "VecEnv",
    "check_env_id",
    "env_spec",
    "make_env",
]
