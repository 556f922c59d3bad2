"""Plain NumPy (float64) references of the distributional losses and targets, written
independently of agents/: per-atom loops with the floor/ceil split, math.erf, and per-pair
loops for quantile regression."""

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


def quantile_huber(
    quantiles: np.ndarray, tau: np.ndarray, targets: np.ndarray, kappa: float
) -> tuple[float, np.ndarray]:
    """Dabney et al.'s quantile Huber loss, sum over quantiles i of the mean over targets j
    of |tau_i - 1{u < 0}| L_kappa(u) / kappa (|u| at kappa 0), u = targets_j - quantiles_i;
    and its gradient with respect to the quantiles."""
    loss, grad = 0.0, np.zeros(len(quantiles))
    for i, (theta, level) in enumerate(zip(quantiles, tau, strict=True)):
        for target in targets:
            u = target - theta
            weight = 1.0 - level if u < 0 else level
            if kappa == 0:
                loss += weight * abs(u) / len(targets)
                grad[i] -= weight * np.sign(u) / len(targets)
            elif abs(u) <= kappa:
                loss += weight * 0.5 * u * u / kappa / len(targets)
                grad[i] -= weight * u / kappa / len(targets)
            else:
                loss += weight * (abs(u) - 0.5 * kappa) / len(targets)
                grad[i] -= weight * np.sign(u) / len(targets)
    return loss, grad
