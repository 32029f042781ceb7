"""Calibrated probabilities: Platt scaling of a member's logit on the validation points.

``p = σ(a·z + b)`` with ``(a, b)`` minimising the log loss of the validation labels (Platt,
1999). Why Platt rather than temperature alone or isotonic regression:

* the network is trained with a class-balanced loss, which shifts its prior towards 50 %; a
  temperature (``b = 0``) cannot undo a shift, the bias ``b`` can;
* with ``a > 0`` the map is strictly increasing, so ranking metrics (ROC-AUC, AP) are those of
  the raw model; isotonic regression is a step function that ties ranks and, fitted on a few
  thousand validation points of spatially correlated labels, overfits;
* two parameters fold into the ONNX graph as constants (:mod:`psirel.models.ensemble`), so ONNX,
  torch, tiles and Dask apply the same map.

Validation points are spatial blocks or whole held-out clouds, never training seeds, so the
calibration sees the model's generalisation error rather than its training fit.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

MIN_SCALE = 1e-3   # keeps the map increasing (a ranking never flips)


def logit(p: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def fit_platt(z: np.ndarray, y: np.ndarray, l2: float = 1e-4) -> tuple[float, float]:
    """``(a, b)`` minimising the mean log loss of ``σ(a z + b)`` for labels ``y`` (1 =
    reliable), with a small ridge towards the identity (a = 1, b = 0) so that a tiny or one-class
    validation set gives a sane map. Identity when ``z`` is empty."""
    z = np.asarray(z, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if z.size == 0 or z.size != y.size:
        return 1.0, 0.0
    s = 2.0 * y - 1.0     # ±1

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = theta
        f = a * z + b
        nll = -np.mean(log_expit(s * f)) + 0.5 * l2 * ((a - 1.0) ** 2 + b * b)
        r = expit(f) - y
        return nll, np.array([np.mean(r * z) + l2 * (a - 1.0), np.mean(r) + l2 * b])

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                   bounds=[(MIN_SCALE, None), (None, None)])
    a, b = (float(v) for v in res.x)
    return a, b


def apply_platt(z: np.ndarray, a: float, b: float) -> np.ndarray:
    """Calibrated probabilities ``σ(a z + b)`` (float32)."""
    return expit(a * np.asarray(z, np.float64) + b).astype(np.float32)
