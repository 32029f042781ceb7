import numpy as np
from scipy.special import expit

from psirel.report.metrics import expected_calibration_error
from psirel.train.calibration import apply_platt, fit_platt, logit


def test_platt_recovers_a_known_map_and_calibrates():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 20_000)
    y = (rng.random(z.size) < expit(0.5 * z - 1.0)).astype(np.int64)   # truth: a = .5, b = -1
    a, b = fit_platt(z, y)
    assert abs(a - 0.5) < 0.05 and abs(b + 1.0) < 0.08
    raw, cal = expit(z), apply_platt(z, a, b)
    assert expected_calibration_error(y, cal) < 0.02 < expected_calibration_error(y, raw)
    # increasing: the ranking (ROC-AUC, AP) is the raw model's
    order = np.argsort(z)
    assert np.all(np.diff(cal[order]) >= 0)


def test_platt_is_the_identity_without_data_and_stays_increasing():
    assert fit_platt(np.array([]), np.array([])) == (1.0, 0.0)
    # labels that run against the scores would want a < 0: the map stays increasing
    z = np.linspace(-3, 3, 200)
    a, _ = fit_platt(z, (z < 0).astype(int))
    assert a > 0


def test_logit_inverts_sigmoid_and_clips():
    p = np.array([1e-3, 0.2, 0.5, 0.9])
    np.testing.assert_allclose(expit(logit(p)), p, rtol=1e-9)
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()


def test_small_training_sets_get_more_epochs():
    from psirel.train.loop import TrainSettings, epochs_for

    s = TrainSettings(epochs=12, min_steps=1800)
    assert epochs_for(s, 88) == 21 and epochs_for(s, 188) == 12   # 1800 / 88 → 21
    assert epochs_for(TrainSettings(epochs=12, min_steps=0), 5) == 12
    assert epochs_for(TrainSettings(epochs=1, max_steps_per_epoch=2), 2) == 1   # capped runs
