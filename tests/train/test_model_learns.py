"""The model learns: a short training on one small scene ranks the unreliable points of
another, unseen scene clearly better than the coherence threshold does (quality belongs to
``bench/quality.py``; this only guards against a model that stopped learning)."""

import pytest

pytest.importorskip("torch")

from psirel.scene import generate_scene  # noqa: E402
from psirel.train.evaluate import evaluate  # noqa: E402
from psirel.train.loop import TrainSettings  # noqa: E402
from psirel.train.trainer import train  # noqa: E402

MARGIN = 0.05   # ROC-AUC over the coherence threshold on the held-out scene


def _files(d):
    return d / "points.gpkg", d / "dem.tif", d / "lulc.tif", d / "amplitude.tif"


@pytest.mark.slow
def test_held_out_auc_beats_the_coherence_threshold(tiny_scene, tmp_path):
    test_scene = tmp_path / "test_scene"
    generate_scene(test_scene, n_points=3000, seed=6)
    settings = TrainSettings(epochs=4, ensemble=1, seed=0, batch_size=128, min_steps=0)
    meta = train(*_files(tiny_scene), tmp_path / "model", settings=settings)
    assert meta["training"]["best_epoch"] >= 1
    res = evaluate(tmp_path / "model", *_files(test_scene), tmp_path / "eval", warn=lambda m: None)
    model_auc = res["model"]["roc_auc"]
    coherence_auc = res["baselines"]["coherence_threshold"]["roc_auc"]
    assert model_auc > coherence_auc + MARGIN, (model_auc, coherence_auc)
    assert res["model"]["ece"] < 0.15   # calibrated on the validation blocks
