"""Plain NumPy (float64) references of the categorical targets, written independently of
agents/representations.py: per-atom loops with the floor/ceil split, math.erf."""

import math

import numpy as np


def c51_projection(atoms_t: np.ndarray, probs_t: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Moves each target atom's mass to its two neighbouring atoms (all of it to an atom it
    lands on exactly), after clipping into the support."""
    v_min, v_max = atoms[0], atoms[-1]
    delta_z = (v_max - v_min) / (len(atoms) - 1)
    projected = np.zeros(len(atoms))
    for value, mass in zip(atoms_t, probs_t, strict=True):
        position = min((min(max(value, v_min), v_max) - v_min) / delta_z, len(atoms) - 1)
        lower = math.floor(position)
        if lower == position:  # on an atom (the ends included)
            projected[lower] += mass
        else:
            projected[lower] += mass * (lower + 1 - position)
            projected[lower + 1] += mass * (position - lower)
    return projected


def two_hot(y: float, atoms: np.ndarray) -> np.ndarray:
    return c51_projection(np.array([y]), np.array([1.0]), atoms)


def hl_gauss(y: float, edges: np.ndarray, sigma: float) -> np.ndarray:
    cdf = np.array([0.5 * (1 + math.erf((edge - y) / (math.sqrt(2) * sigma))) for edge in edges])
    return (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
