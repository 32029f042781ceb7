"""Baselines that share the model's estimator interface (DESIGN.md §8).

Every estimator takes a :class:`PointData` (plain arrays, one row per point), has ``fit(data, y)``
with labels 1 = reliable / 0 = unreliable, ``predict_proba(data) -> [N, 2]`` (P(unreliable),
P(reliable)), ``threshold_`` (its own decision threshold on P(reliable)), and ``to_json`` /
``from_json`` for rebuilding without pickle.

* :class:`CoherenceThreshold` — reliable iff coherence ≥ t (today's expert rule).
* :class:`NeighbourConsistency` — StaMPS-like weeding: disagreement with the neighbours.
* :class:`GradientBoosting` — scikit-learn HGB on :func:`hand_features` (rebuilt by refit).

scikit-learn is imported only when gradient boosting is fitted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from psirel.baselines.coherence_threshold import CoherenceThreshold
from psirel.baselines.data import (
    PointData,
    ReliabilityEstimator,
    load_training_features,
    save_training_features,
)
from psirel.baselines.features import hand_features
from psirel.baselines.gradient_boosting import GradientBoosting
from psirel.baselines.neighbour_consistency import NeighbourConsistency, neighbour_statistics

BASELINES: dict[str, type] = {
    "coherence_threshold": CoherenceThreshold,
    "neighbour_consistency": NeighbourConsistency,
    "gradient_boosting": GradientBoosting,
}


def load_baseline(
    d: dict, training: tuple[PointData, np.ndarray] | Path | str | None = None
) -> ReliabilityEstimator:
    """Rebuild any baseline from its ``to_json`` dict (``training`` is needed, and used, only by
    gradient boosting, which is rebuilt by refitting)."""
    name = d.get("name")
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    cls = BASELINES[name]
    if cls is GradientBoosting:
        return cls.from_json(d, training=training)
    return cls.from_json(d)


__all__ = [
    "BASELINES",
    "CoherenceThreshold",
    "GradientBoosting",
    "NeighbourConsistency",
    "PointData",
    "ReliabilityEstimator",
    "hand_features",
    "load_baseline",
    "load_training_features",
    "neighbour_statistics",
    "save_training_features",
]
