"""Pure-functional agents, value representations, losses and shared types."""

from agents import representations
from agents.dqn import Agent, DQNState, epsilon_greedy, make_dqn, make_optimizer
from agents.representations import ValueRepresentation
from agents.types import Transition

__all__ = [
    "Agent",
    "DQNState",
    "Transition",
    "ValueRepresentation",
    "epsilon_greedy",
    "make_dqn",
    "make_optimizer",
    "representations",
]
