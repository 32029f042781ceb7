"""A few-parameter logistic model, fitted by maximum likelihood with scipy (no scikit-learn).

``P(reliable | z) = σ(b + Σ_j w_j z_j)`` with ``z = (x − mean) / scale`` standardised by the
training statistics. The fit minimises the mean log-loss plus ``l2 / 2 · ‖w‖²`` with L-BFGS-B and an
analytic gradient, from zero: deterministic for given data. Optional bounds keep a weight's sign
(a monotone score, e.g. "more coherent is never less reliable").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit


@dataclass
class Logistic:
    """Standardisation + weights of a logistic model; all JSON-friendly lists."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    intercept: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        """[N, M] raw features → [N] logit. NaN features count as the training mean."""
        z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
        return self.intercept + z @ np.asarray(self.weights, np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[N, M] raw features → [N] P(label 1)."""
        return expit(self.decision(x))

    def to_json(self) -> dict:
        return {
            "mean": list(map(float, self.mean)),
            "scale": list(map(float, self.scale)),
            "weights": list(map(float, self.weights)),
            "intercept": float(self.intercept),
        }

    @classmethod
    def from_json(cls, d: dict) -> Logistic:
        return cls(
            mean=[float(v) for v in d["mean"]],
            scale=[float(v) for v in d["scale"]],
            weights=[float(v) for v in d["weights"]],
            intercept=float(d["intercept"]),
        )


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 1e-4,
    signs: list[int] | None = None,
    standardize: bool = True,
) -> Logistic:
    """Fit ``P(y = 1 | x)``.

    Args:
        x: [N, M] features (NaN allowed: treated as the mean).
        y: [N] labels 0/1.
        l2: ridge penalty on the standardised weights (not on the intercept).
        signs: per feature +1 (weight ≥ 0), -1 (weight ≤ 0) or 0 (free).
        standardize: scale features by their training mean and std; if False, use them as they
            are (mean 0, scale 1).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    m = x.shape[1]
    if standardize:
        mean = np.nanmean(x, axis=0) if x.shape[0] else np.zeros(m)
        mean = np.nan_to_num(mean)
        scale = np.nanstd(x, axis=0) if x.shape[0] else np.ones(m)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    else:
        mean, scale = np.zeros(m), np.ones(m)
    z = np.nan_to_num((x - mean) / scale, nan=0.0, posinf=0.0, neginf=0.0)
    n = max(len(y), 1)
    s = 2.0 * y - 1.0  # ±1

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, w = theta[0], theta[1:]
        f = b + z @ w
        nll = -np.sum(log_expit(s * f)) / n + 0.5 * l2 * float(w @ w)
        r = (expit(f) - y) / n
        grad = np.concatenate([[r.sum()], z.T @ r + l2 * w])
        return float(nll), grad

    bounds = [(None, None)]
    for sgn in signs or [0] * m:
        bounds.append((0.0, None) if sgn > 0 else (None, 0.0) if sgn < 0 else (None, None))
    p1 = float(np.clip(y.mean(), 1e-6, 1 - 1e-6)) if len(y) else 0.5
    theta0 = np.zeros(m + 1)
    theta0[0] = np.log(p1 / (1 - p1))
    res = minimize(
        loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-8},
    )
    theta = res.x
    return Logistic(
        mean=[float(v) for v in mean],
        scale=[float(v) for v in scale],
        weights=[float(v) for v in theta[1:]],
        intercept=float(theta[0]),
    )
