"""One tiny training run end to end: model directory contract, evaluation, mismatch refusal."""

import json

import numpy as np
import pytest

from psirel.errors import ModelError
from psirel.model_dir import load_card
from psirel.train.checkpoint import load_model
from psirel.train.evaluate import evaluate


def test_model_dir_contract(tiny_model):
    card = load_card(tiny_model)
    for name in ("weights.safetensors", "pointwise_only.safetensors",
                 "baselines/training_features.npz"):
        assert card.has(name)
    meta = card.meta
    assert meta["config"]["graph"]["kind"] == "unimp" and card.config.graph.kind == "unimp"
    assert set(meta["baselines"]) == {"coherence_threshold", "neighbour_consistency",
                                      "gradient_boosting"}
    assert 0.0 < card.threshold < 1.0
    t = meta["training"]
    assert t["split"]["n_val"] > 0 and t["split"]["n_train"] > 0
    assert t["nodes_per_seed"] >= 1.0
    assert len(meta["normalizer"]["lulc_codes"]) >= 3
    model = load_model(card)
    assert model.gnn is not None and load_model(card, "pointwise_only").gnn is None


def test_evaluate_writes_metrics_and_figures(tiny_model, tiny_scene, tmp_path):
    res = evaluate(tiny_model, tiny_scene / "points.gpkg", tiny_scene / "dem.tif",
                   tiny_scene / "lulc.tif", tiny_scene / "amplitude.tif", tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(res))
    keys = {"roc_auc", "average_precision", "f1", "balanced_accuracy", "ece"}
    assert set(saved["model"]) == keys
    assert set(saved["baselines"]) == {"coherence_threshold", "neighbour_consistency",
                                       "gradient_boosting", "pointwise_only"}
    for m in saved["baselines"].values():
        assert set(m) == keys and 0.0 <= m["roc_auc"] <= 1.0
    assert saved["n_points"] == 3000 and 0.05 < saved["unreliable_fraction"] < 0.4
    for f in ("roc.png", "pr.png", "map.png", "report.md"):
        assert (tmp_path / f).stat().st_size > 1000
    assert "| model |" in (tmp_path / "report.md").read_text()


def test_feature_mismatch_refused(tiny_model):
    card = load_card(tiny_model)
    names = list(card.features.scalar_names)
    with pytest.raises(ModelError, match="feature config does not match"):
        card.check_features(names[:-1], 61, 10.0)
    with pytest.raises(ModelError, match="no date columns"):
        card.check_features(names, 0, 10.0)
    with pytest.raises(ModelError, match="30 m pixels"):
        card.check_features(names, 61, 30.0)
    card.check_features(names, 61, 10.0)  # the training configuration passes


def test_unknown_land_cover(tiny_model):
    card = load_card(tiny_model)
    seen = []
    card.check_unknown_lulc(10, 1000, warn=seen.append)
    assert seen and "10 of 1000" in seen[0]
    with pytest.raises(ModelError, match="never saw"):
        card.check_unknown_lulc(900, 1000)


def test_training_is_deterministic(tiny_scene, tiny_model, tmp_path):
    from psirel_testing import scene_args

    from psirel.cli import main

    out = tmp_path / "again"
    assert main(["train", *scene_args(tiny_scene), "--out", str(out), "--epochs", "1",
                 "--max-steps", "2", "--batch-size", "128", "--seed", "3"]) == 0
    from safetensors.numpy import load_file

    a, b = (load_file(str(d / "weights.safetensors")) for d in (tiny_model, out))
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
