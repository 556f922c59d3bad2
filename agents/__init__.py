"""Pure-functional agents, value representations, losses and shared types."""

from agents import representations
from agents.dqn import DQNState, epsilon_greedy, make_dqn, make_optimizer
from agents.iterated import IteratedState, make_iterated_dqn
from agents.representations import ValueRepresentation
from agents.td3 import TD3State, lower_critic_outputs, make_td3, target_action
from agents.types import Agent, Transition

__all__ = [
    "Agent",
    "DQNState",
    "IteratedState",
    "TD3State",
    "Transition",
    "ValueRepresentation",
    "epsilon_greedy",
    "lower_critic_outputs",
    "make_dqn",
    "make_iterated_dqn",
    "make_optimizer",
    "make_td3",
    "representations",
    "target_action",
]
