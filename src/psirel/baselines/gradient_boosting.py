"""Gradient boosting on hand-made features (scikit-learn ``HistGradientBoostingClassifier``).

Serialisation without pickle: a fitted tree ensemble has no JSON form in scikit-learn, skops is
not installed and an ONNX export of HGB would need skl2onnx (not installed either). So
``to_json`` stores the hyper-parameters, the feature names, the scikit-learn version and SHA-256
fingerprints of the training features and of the training predictions; the trainer stores the
training points with :func:`~psirel.baselines.data.save_training_features` (a compressed ``.npz``,
no pickle) in the model directory, and ``from_json(d, training=...)`` **refits**. The fit is
deterministic (no early stopping, no subsampling below 200 000 points and a fixed
``random_state`` above), so the refit gives identical predictions; a changed training file is
refused, and a changed scikit-learn version that alters the predictions is warned about.

Land cover is a categorical feature (raw codes; negative = unknown = missing); at most
``max_bins`` distinct codes. No class weights: the probabilities stay calibrated to the training
share of unreliable points.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from psirel.baselines.data import PointData, check_labels, load_training_features, proba_columns
from psirel.baselines.features import LULC_FEATURE, hand_features
from psirel.report.metrics import tune_threshold

PREDICT_ROWS = 65_536   # rows per scikit-learn call (its float64 copy: ~30 MB)
DEFAULT_PARAMS: dict = {
    "learning_rate": 0.1,
    "max_iter": 200,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "l2_regularization": 0.0,
    "max_bins": 255,
    "random_state": 0,
}


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class GradientBoosting:
    """``HistGradientBoostingClassifier`` on :func:`~psirel.baselines.features.hand_features`.

    Args:
        **params: overrides of :data:`DEFAULT_PARAMS` (learning_rate, max_iter, max_leaf_nodes,
            min_samples_leaf, l2_regularization, max_bins, random_state). Early stopping is
            always off, for a deterministic refit.

    Fitted attributes: ``model_`` (the scikit-learn classifier), ``feature_names_``,
    ``threshold_`` (threshold on P(reliable) maximising balanced accuracy on the training points).
    """

    name = "gradient_boosting"

    def __init__(self, **params):
        unknown = set(params) - set(DEFAULT_PARAMS)
        if unknown:
            raise ValueError(f"unknown GradientBoosting parameters: {sorted(unknown)}")
        self.params = {**DEFAULT_PARAMS, **params}

    def fit(self, data: PointData, y: np.ndarray) -> GradientBoosting:
        from sklearn.ensemble import HistGradientBoostingClassifier

        y = check_labels(y, data.n_points)
        x, names = hand_features(data)
        cat = np.array([n == LULC_FEATURE for n in names])
        self.model_ = HistGradientBoostingClassifier(
            loss="log_loss",
            early_stopping=False,
            categorical_features=cat,
            **self.params,
        ).fit(x, y)
        self.feature_names_ = names
        p_train = self._p_from_features(x)
        self.threshold_ = tune_threshold(y, p_train)
        self.training_sha256_ = _sha256(x, y)
        self.predictions_sha256_ = _sha256(p_train)
        self.n_train_ = int(y.size)
        return self

    def _p_from_features(self, x: np.ndarray, rows: int = PREDICT_ROWS) -> np.ndarray:
        """``[N]`` float64 P(reliable), ``rows`` at a time: scikit-learn copies its input to
        float64 (2 GB for a million points at once); trees score every row alone, so the
        chunks change nothing."""
        col = list(self.model_.classes_).index(1)
        p = np.empty(len(x), np.float64)
        for s in range(0, len(x), rows):
            p[s:s + rows] = self.model_.predict_proba(x[s:s + rows])[:, col]
        return p

    def features(self, data: PointData) -> np.ndarray:
        """The hand features of ``data``, checked against those the model was fitted on."""
        x, names = hand_features(data)
        if names != self.feature_names_:
            raise ValueError(
                f"hand features differ from training: got {names}, trained on "
                f"{self.feature_names_} (same series statistics and patch layers needed)"
            )
        return x

    def predict_proba(self, data: PointData) -> np.ndarray:
        """[N, 2]: P(unreliable), P(reliable)."""
        return proba_columns(self._p_from_features(self.features(data)))

    def predict(self, data: PointData) -> np.ndarray:
        """[N] int64, 1 = reliable at ``threshold_``."""
        return (self.predict_proba(data)[:, 1] >= self.threshold_).astype(np.int64)

    def to_json(self) -> dict:
        import sklearn

        return {
            "name": self.name,
            "params": dict(self.params),
            "feature_names": list(self.feature_names_),
            "threshold": self.threshold_,
            "n_train": self.n_train_,
            "training_sha256": self.training_sha256_,
            "predictions_sha256": self.predictions_sha256_,
            "sklearn_version": sklearn.__version__,
            "rebuild": "refit on the saved training features (save_training_features)",
        }

    @classmethod
    def from_json(
        cls,
        d: dict,
        training: tuple[PointData, np.ndarray] | Path | str | None = None,
    ) -> GradientBoosting:
        """Rebuild by refitting on ``training``: ``(data, y)`` or the path of the ``.npz``
        written by :func:`~psirel.baselines.data.save_training_features`.

        Raises ``ValueError`` when ``training`` is missing or is not the data the estimator was
        fitted on (SHA-256 of its hand features and labels)."""
        import sklearn

        if d.get("name", cls.name) != cls.name:
            raise ValueError(f"not a {cls.name} baseline: {d.get('name')!r}")
        if training is None:
            raise ValueError(
                "GradientBoosting is rebuilt by refitting: pass training=(data, y) or the path "
                "of the training-features .npz"
            )
        if isinstance(training, str | Path):
            data, y = load_training_features(training)
        else:
            data, y = training
        est = cls(**d["params"])
        y = check_labels(y, data.n_points)
        x, names = hand_features(data)
        if names != list(d["feature_names"]):
            raise ValueError(f"training features {names} differ from {d['feature_names']}")
        if _sha256(x, y) != d["training_sha256"]:
            raise ValueError(
                "training features do not match the fitted GradientBoosting "
                "(SHA-256 of hand features and labels differs)"
            )
        est.fit(data, y)
        if est.predictions_sha256_ != d["predictions_sha256"]:
            warnings.warn(
                f"GradientBoosting refit does not reproduce the saved predictions (fitted with "
                f"scikit-learn {d.get('sklearn_version')}, now {sklearn.__version__})",
                RuntimeWarning,
                stacklevel=2,
            )
            # keep the saved threshold: it is what the reported metrics used
            est.threshold_ = float(d["threshold"])
        return est

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.params.items() if DEFAULT_PARAMS[k] != v}
        return f"GradientBoosting({', '.join(f'{k}={v!r}' for k, v in changed.items())})"
