"""Reliability metrics and threshold tuning (DESIGN.md §8).

Conventions, shared by every model and baseline:

* ``y_true`` is 1 for a reliable point and 0 for an unreliable one.
* ``p_reliable`` is the predicted probability of label 1.
* At a threshold ``t`` a point is predicted **unreliable iff** ``p_reliable < t`` (so
  ``p_reliable >= t`` is predicted reliable).
* The class an expert is looking for is the *unreliable* one: average precision and F1 are
  computed with label 0 as the positive class, scored by ``1 - p_reliable``.

``reliability_metrics`` uses scikit-learn, imported inside the function: scikit-learn belongs to the
``train`` extra and the inference path must not need it. ``tune_threshold`` and
``expected_calibration_error`` are plain numpy.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

METRIC_KEYS: tuple[str, ...] = ("roc_auc", "average_precision", "f1", "balanced_accuracy", "ece")
"""The keys of :func:`reliability_metrics`, in table order."""

ECE_BINS = 15

Criterion = Literal["balanced_accuracy", "f1_unreliable"]


def _check(y_true, p_reliable) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(p_reliable, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but p_reliable has {p.size}")
    if y.size == 0:
        raise ValueError("no points to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 (unreliable) and 1 (reliable)")
    if not np.isfinite(p).all():
        raise ValueError(f"p_reliable has {int((~np.isfinite(p)).sum())} non-finite values")
    return y.astype(np.int64), p


def expected_calibration_error(y_true, p_reliable, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of ``p_reliable`` against the frequency of label 1.

    ``n_bins`` equal-width bins on [0, 1]; bin ``b`` holds ``b/n <= p < (b+1)/n`` and the last bin
    also holds ``p == 1``. ECE = ``Σ_b (n_b / N) · |mean(y_b) − mean(p_b)|`` over non-empty bins.
    """
    y, p = _check(y_true, p_reliable)
    b = np.clip(np.floor(p * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(b, weights=p, minlength=n_bins)
    sum_y = np.bincount(b, weights=y.astype(np.float64), minlength=n_bins)
    nz = count > 0
    gap = np.abs(sum_y[nz] / count[nz] - sum_p[nz] / count[nz])
    return float(np.sum(count[nz] / y.size * gap))


def reliability_metrics(y_true, p_reliable, threshold: float) -> dict[str, float]:
    """Evaluate reliability scores.

    Args:
        y_true: [N] labels, 1 reliable / 0 unreliable.
        p_reliable: [N] predicted probability of label 1, in [0, 1].
        threshold: a point is predicted unreliable iff ``p_reliable < threshold``.

    Returns:
        ``{"roc_auc", "average_precision", "f1", "balanced_accuracy", "ece"}`` as floats:
        ROC-AUC of ``p_reliable`` for label 1 (the same number as the AUC of ``1 - p_reliable``
        for label 0); average precision of the *unreliable* class (positive = label 0, score
        ``1 - p_reliable``); F1 of the unreliable class and balanced accuracy at ``threshold``;
        ECE with 15 equal-width bins (:func:`expected_calibration_error`). ROC-AUC and average
        precision are NaN when ``y_true`` holds only one class.
    """
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        f1_score,
        roc_auc_score,
    )

    y, p = _check(y_true, p_reliable)
    pred = (p >= threshold).astype(np.int64)  # 1 = predicted reliable
    both = np.unique(y).size == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "average_precision": (
            float(average_precision_score(1 - y, 1.0 - p)) if both else float("nan")
        ),
        "f1": float(f1_score(y, pred, pos_label=0, zero_division=0.0)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
        "ece": expected_calibration_error(y, p),
    }


def threshold_curve(
    y_true, p_reliable, criterion: Criterion = "balanced_accuracy"
) -> tuple[np.ndarray, np.ndarray]:
    """Score of every distinct decision threshold.

    Candidates are the midpoints between consecutive distinct values of ``p_reliable`` (each
    splits the points differently), plus one below the smallest and one above the largest.

    Returns:
        ``(thresholds [C] float64 ascending, score [C] float64)``.
    """
    y, p = _check(y_true, p_reliable)
    n0 = int((y == 0).sum())
    n1 = y.size - n0
    if n0 == 0 or n1 == 0:
        raise ValueError("threshold tuning needs both reliable (1) and unreliable (0) points")
    values, inverse = np.unique(p, return_inverse=True)
    # cumulative counts of each class with p <= values[k]: those are predicted unreliable by a
    # threshold placed just above values[k]
    per0 = np.bincount(inverse, weights=(y == 0), minlength=values.size)
    per1 = np.bincount(inverse, weights=(y == 1), minlength=values.size)
    c0 = np.concatenate([[0.0], np.cumsum(per0)])
    c1 = np.concatenate([[0.0], np.cumsum(per1)])
    if values.size > 1:
        mids = (values[:-1] + values[1:]) / 2.0
    else:
        mids = np.empty(0)
    span = max(float(values[-1] - values[0]), 1.0)
    lo = values[0] - 1e-6 * span
    hi = values[-1] + 1e-6 * span
    thresholds = np.concatenate([[lo], mids, [hi]])
    tp = c0  # unreliable predicted unreliable, for thresholds[0..C-1]
    fp = c1  # reliable predicted unreliable
    if criterion == "balanced_accuracy":
        score = 0.5 * (tp / n0 + (n1 - fp) / n1)
    elif criterion == "f1_unreliable":
        fn = n0 - tp
        denom = 2 * tp + fp + fn
        score = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    else:
        raise ValueError(f"unknown criterion {criterion!r}")
    return thresholds.astype(np.float64), score.astype(np.float64)


def tune_threshold(y_true, p_reliable, criterion: Criterion = "balanced_accuracy") -> float:
    """The threshold on ``p_reliable`` that maximises ``criterion`` on these points.

    Default criterion: **balanced accuracy** (mean of the recalls of both classes). It does not
    depend on the share of unreliable points (10–30 % and varying between scenes), and its optimum
    is the ROC point farthest from the diagonal (Youden's J). ``"f1_unreliable"`` maximises the F1
    of the unreliable class instead.

    Deterministic: candidates are midpoints between consecutive distinct scores
    (:func:`threshold_curve`); among equal best scores the lowest threshold wins. On separable
    data the result lies strictly between the two classes' scores.
    """
    thresholds, score = threshold_curve(y_true, p_reliable, criterion)
    return float(thresholds[int(np.argmax(score))])
