"""Pure-functional agents, their losses and shared types."""

from agents.dqn import Agent, DQNState, make_dqn, make_optimizer
from agents.types import Transition

__all__ = ["Agent", "DQNState", "Transition", "make_dqn", "make_optimizer"]
