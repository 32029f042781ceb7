import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from psirel.baselines import CoherenceThreshold, PointData


def _coherence_only(coherence, seed=0):
    n = coherence.size
    rng = np.random.default_rng(seed)
    return PointData.from_arrays(rng.uniform(0, 1000, n), rng.uniform(0, 1000, n),
                                 np.zeros(n), coherence, np.full((n, 1), -1))


def test_recovers_planted_threshold_exactly_when_separable():
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 1, 4000)
    y = (c >= 0.62).astype(int)
    est = CoherenceThreshold().fit(_coherence_only(c), y)
    assert c[y == 0].max() < est.coherence_threshold_ <= c[y == 1].min()
    assert abs(est.coherence_threshold_ - 0.62) < 2e-3


@pytest.mark.parametrize("criterion", ["balanced_accuracy", "f1_unreliable"])
def test_recovers_planted_threshold_under_label_noise(criterion):
    rng = np.random.default_rng(1)
    c = rng.uniform(0, 1, 4000)
    y = (c >= 0.62).astype(int)
    flip = rng.random(c.size) < 0.1
    y[flip] = 1 - y[flip]
    est = CoherenceThreshold(criterion=criterion).fit(_coherence_only(c), y)
    assert abs(est.coherence_threshold_ - 0.62) < 0.03


def test_probability_is_monotone_continuous_and_matches_the_rule(mixed_scenes):
    (train, y_train), (test, y_test) = mixed_scenes
    est = CoherenceThreshold().fit(train, y_train)
    proba = est.predict_proba(test)
    assert proba.shape == (test.n_points, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert proba.min() >= 0 and proba.max() <= 1
    p = proba[:, 1]
    order = np.argsort(test.coherence)
    assert np.all(np.diff(p[order]) >= 0)
    assert est.slope_ > 0
    # one distinct probability per distinct coherence: ROC-AUC is that of coherence itself
    assert np.unique(p).size == np.unique(test.coherence).size
    assert roc_auc_score(y_test, p) == pytest.approx(roc_auc_score(y_test, test.coherence))
    # threshold_ on P(reliable) reproduces "coherence >= t"
    np.testing.assert_array_equal((p >= est.threshold_).astype(int), est.predict(test))
    # calibrated: mean predicted reliability on the training points ≈ share reliable
    assert est.predict_proba(train)[:, 1].mean() == pytest.approx(y_train.mean(), abs=0.01)


def test_json_round_trip(mixed_scenes):
    (train, y_train), (test, _) = mixed_scenes
    est = CoherenceThreshold().fit(train, y_train)
    d = json.loads(json.dumps(est.to_json()))
    est2 = CoherenceThreshold.from_json(d)
    np.testing.assert_array_equal(est.predict_proba(test), est2.predict_proba(test))
    assert est2.threshold_ == est.threshold_
    with pytest.raises(ValueError, match="not a coherence_threshold"):
        CoherenceThreshold.from_json({**d, "name": "gradient_boosting"})
