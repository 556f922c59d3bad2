"""Flax modules: torsos and heads. Imports nothing else from this project."""

from networks.heads import QHead, QNetwork
from networks.torsos import MLP, NatureCNN

__all__ = ["MLP", "NatureCNN", "QHead", "QNetwork"]
