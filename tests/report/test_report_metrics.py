import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from psirel.report.metrics import (
    METRIC_KEYS,
    expected_calibration_error,
    reliability_metrics,
    threshold_curve,
    tune_threshold,
)

# five points, worked by hand:
#   unreliable score 1 - p = [.9, .4, .6, .2, .1]; unreliable = points 0 and 1
#   ranked: .9 (unrel), .6 (rel), .4 (unrel) -> AP = (1/1 + 2/3) / 2 = 5/6
#   AUC of p for label 1: pairs (rel, unrel) ordered right: 0.4>0.1, 0.8>both, 0.9>both = 5/6
#   threshold 0.5: flagged (p < .5) = points 0, 2 -> TP 1, FP 1, FN 1 -> F1 = 2/(2+1+1) = 0.5
#   recalls: unreliable 1/2, reliable 2/3 -> balanced accuracy 7/12
#   ECE: every point alone in its bin -> mean |y - p| = (.1+.6+.6+.2+.1)/5 = 0.32
Y = np.array([0, 0, 1, 1, 1])
P = np.array([0.1, 0.6, 0.4, 0.8, 0.9])


def test_metrics_on_a_hand_worked_example():
    m = reliability_metrics(Y, P, threshold=0.5)
    assert tuple(m) == METRIC_KEYS
    assert all(isinstance(v, float) for v in m.values())
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["average_precision"] == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(7 / 12)
    assert m["ece"] == pytest.approx(0.32)


def test_average_precision_is_that_of_the_unreliable_class():
    # reliable ranking perfect, but among the unreliable scores a reliable point ranks first
    y = np.array([1, 0, 0, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.2, 0.7, 0.8, 0.9])
    m = reliability_metrics(y, p, threshold=0.5)
    # unreliable score ranking: .95 (rel), .9 (unrel), .8 (unrel) -> AP = (1/2 + 2/3) / 2
    assert m["average_precision"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # threshold 0.5 flags points 0, 1, 2: TP 2, FP 1, FN 0 -> F1 = 4/5
    assert m["f1"] == pytest.approx(0.8)
    # the threshold is strict: p == 0.2 counts as reliable, so only points 0 and 1 are flagged:
    # TP 1, FP 1, FN 1 -> F1 = 1/2
    assert reliability_metrics(y, p, threshold=0.2)["f1"] == pytest.approx(0.5)


def test_ece_shared_bins_and_edges():
    # 15 bins of width 1/15: .21, .22, .23 share bin 3 -> |1/3 - .22| over 3 points
    y = np.array([0, 1, 0])
    p = np.array([0.21, 0.22, 0.23])
    assert expected_calibration_error(y, p) == pytest.approx(abs(1 / 3 - 0.22))
    # p = 1 falls in the last bin (with .95), p = 0 in the first
    y = np.array([1, 1, 0, 0])
    p = np.array([1.0, 0.95, 0.0, 0.02])
    expected = (2 * abs(1 - 0.975) + 2 * abs(0 - 0.01)) / 4
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    # perfectly calibrated within each bin -> 0
    y = np.array([1, 0, 1, 0])
    p = np.full(4, 0.5)
    assert expected_calibration_error(y, p) == pytest.approx(0.0)


def test_single_class_gives_nan_ranking_metrics():
    m = reliability_metrics(np.ones(4), np.array([0.2, 0.6, 0.7, 0.9]), threshold=0.5)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["average_precision"])
    assert m["f1"] == 0.0
    assert m["ece"] == pytest.approx((0.8 + 0.4 + 0.3 + 0.1) / 4)


def test_input_checks():
    with pytest.raises(ValueError, match="only 0"):
        reliability_metrics(np.array([0, 2]), np.array([0.1, 0.2]), 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        reliability_metrics(np.array([0, 1]), np.array([np.nan, 0.2]), 0.5)
    with pytest.raises(ValueError, match="has 2 values but p_reliable has 3"):
        reliability_metrics(np.array([0, 1]), np.array([0.1, 0.2, 0.3]), 0.5)


def test_tune_threshold_separates_a_separable_toy():
    rng = np.random.default_rng(0)
    p = np.r_[rng.uniform(0.05, 0.35, 40), rng.uniform(0.45, 0.95, 160)]
    y = np.r_[np.zeros(40, int), np.ones(160, int)]
    perm = rng.permutation(y.size)
    p, y = p[perm], y[perm]
    for criterion in ("balanced_accuracy", "f1_unreliable"):
        t = tune_threshold(y, p, criterion)
        assert p[y == 0].max() < t < p[y == 1].min()
        m = reliability_metrics(y, p, t)
        assert m["f1"] == 1.0 and m["balanced_accuracy"] == 1.0
    # exactly the midpoint of the gap, and the same on a second call
    assert tune_threshold(y, p) == (p[y == 0].max() + p[y == 1].min()) / 2
    assert tune_threshold(y, p) == tune_threshold(y.copy(), p.copy())


def test_tune_threshold_is_the_best_of_all_candidates_with_ties():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.75).astype(int)
    p = np.round(np.clip(0.6 * y + rng.normal(0.2, 0.25, 500), 0, 1), 2)  # many ties
    thresholds, score = threshold_curve(y, p)
    for t, s in zip(thresholds[::7], score[::7], strict=False):
        assert s == pytest.approx(balanced_accuracy_score(y, (p >= t).astype(int)))
    thresholds, score = threshold_curve(y, p, "f1_unreliable")
    for t, s in zip(thresholds[::7], score[::7], strict=False):
        assert s == pytest.approx(f1_score(y, (p >= t).astype(int), pos_label=0))
    t = tune_threshold(y, p)
    best = max(balanced_accuracy_score(y, (p >= c).astype(int)) for c in np.unique(p))
    assert balanced_accuracy_score(y, (p >= t).astype(int)) == pytest.approx(best)
    with pytest.raises(ValueError, match="both"):
        tune_threshold(np.ones(5), np.linspace(0, 1, 5))


def test_report_package_does_not_import_sklearn_eagerly():
    import subprocess
    import sys

    code = (
        "import sys, psirel.report, psirel.report.markdown, psirel.report.metrics; "
        "assert not [m for m in sys.modules if m.startswith('sklearn')], 'sklearn imported'; "
        "from psirel.report import tune_threshold; print(tune_threshold([0, 1], [0.2, 0.8]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(0.5)
