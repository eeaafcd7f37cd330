"""Temperature scaling (Guo et al. 2017): one scalar T so that sigmoid(logit / T) is calibrated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar


def sigmoid(z: np.ndarray) -> np.ndarray:
    """P(fake) of logits (already divided by the temperature where one applies)."""
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(logits: Sequence[float], labels: Sequence[int]) -> float:
    """The T in [0.05, 20] minimising the log loss of sigmoid(logits / T) on held-out data."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        # log(1 + e^s) - y * s, computed stably
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))
