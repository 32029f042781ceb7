"""The rule experts use today: a point is reliable iff its temporal coherence ≥ t.

``t`` is tuned on the training points to maximise **balanced accuracy** (by default; the F1 of
the unreliable class is selectable), so it does not drift with the share of unreliable points.

A hard rule has no ROC curve, so the probability is a calibrated, continuous, monotone map of
coherence: a logistic fit ``P(reliable) = σ(a · (coherence − t) + b)`` with ``a ≥ 0`` (more
coherent is never less reliable). Its ROC-AUC is that of coherence itself; ``threshold_ = σ(b)``
is the probability at ``coherence = t``, so ``predict_proba(...)[:, 1] >= threshold_`` reproduces
the rule. Missing (NaN) coherence counts as 0.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from psirel.baselines.data import PointData, check_labels, proba_columns
from psirel.baselines.logistic import fit_logistic
from psirel.report.metrics import Criterion, tune_threshold


def _coherence(data: PointData) -> np.ndarray:
    return np.nan_to_num(data.coherence.astype(np.float64), nan=0.0)


class CoherenceThreshold:
    """Reliable iff ``coherence >= coherence_threshold_``.

    Args:
        criterion: what the threshold maximises on the training data: ``"balanced_accuracy"``
            (default) or ``"f1_unreliable"``.

    Fitted attributes: ``coherence_threshold_`` (t, 0..1), ``slope_`` (a, per unit coherence),
    ``intercept_`` (b), ``threshold_`` (σ(b), the matching threshold on P(reliable)).
    """

    name = "coherence_threshold"

    def __init__(self, criterion: Criterion = "balanced_accuracy"):
        self.criterion = criterion

    def fit(self, data: PointData, y: np.ndarray) -> CoherenceThreshold:
        y = check_labels(y, data.n_points)
        c = _coherence(data)
        t = tune_threshold(y, c, self.criterion)
        model = fit_logistic((c - t)[:, None], y, l2=1e-8, signs=[1])
        # back to coherence units: a·(c − t) + b
        a = model.weights[0] / model.scale[0]
        b = model.intercept - a * model.mean[0]
        self.coherence_threshold_ = float(t)
        self.slope_ = float(a)
        self.intercept_ = float(b)
        self.threshold_ = float(expit(b))
        return self

    def _p(self, data: PointData) -> np.ndarray:
        return expit(self.slope_ * (_coherence(data) - self.coherence_threshold_) + self.intercept_)

    def predict_proba(self, data: PointData) -> np.ndarray:
        """[N, 2]: P(unreliable), P(reliable)."""
        return proba_columns(self._p(data))

    def predict(self, data: PointData) -> np.ndarray:
        """[N] int64, 1 = reliable: the rule itself, ``coherence >= t``."""
        return (_coherence(data) >= self.coherence_threshold_).astype(np.int64)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "criterion": self.criterion,
            "coherence_threshold": self.coherence_threshold_,
            "slope": self.slope_,
            "intercept": self.intercept_,
            "threshold": self.threshold_,
        }

    @classmethod
    def from_json(cls, d: dict) -> CoherenceThreshold:
        if d.get("name", cls.name) != cls.name:
            raise ValueError(f"not a {cls.name} baseline: {d.get('name')!r}")
        est = cls(criterion=d["criterion"])
        est.coherence_threshold_ = float(d["coherence_threshold"])
        est.slope_ = float(d["slope"])
        est.intercept_ = float(d["intercept"])
        est.threshold_ = float(d["threshold"])
        return est

    def __repr__(self) -> str:
        t = getattr(self, "coherence_threshold_", None)
        return f"CoherenceThreshold(criterion={self.criterion!r}, t={t})"
