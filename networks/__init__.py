"""Flax modules: torsos, heads, actor and critics. Imports nothing else from this project."""

from networks.actor_critic import Actor, Critic, TwinCritic
from networks.ensemble import QEnsemble, map_networks
from networks.heads import QHead, QNetwork
from networks.torsos import MLP, NatureCNN

__all__ = [
    "MLP",
    "Actor",
    "Critic",
    "NatureCNN",
    "QEnsemble",
    "QHead",
    "QNetwork",
    "TwinCritic",
    "map_networks",
]
