"""A shared-map model end to end: train, export, predict on ONNX Runtime = PyTorch; tiles too."""

import json

import numpy as np
import pyogrio
import pytest
from psirel_testing import scene_args

from psirel.cli import main
from psirel.errors import PsirelError
from psirel.infer.pipeline import predict


@pytest.fixture(scope="module")
def shared_model(tiny_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("shared") / "model"
    code = main(["train", *scene_args(tiny_scene), "--out", str(out), "--encoder", "shared-map",
                 "--epochs", "1", "--max-steps", "3", "--batch-size", "128", "--seed", "2"])
    assert code == 0
    return out


def _rel(path, column="reliability"):
    return pyogrio.read_dataframe(path)[column].to_numpy()


def test_model_json_records_the_encoder_and_window_inputs(shared_model):
    meta = json.loads((shared_model / "model.json").read_text())
    assert meta["format"] == "psirel-model/2"
    assert meta["config"]["encoder"]["kind"] == "shared-map"
    assert meta["artifacts"]["pointwise.onnx"]["inputs"] == ["window", "rc", "scalars"]
    assert max(meta["onnx"]["parity_max_abs_prob"].values()) <= 1e-4
    assert meta["onnx"]["sample"].startswith("training window")


def test_onnx_equals_torch_and_tiles_equal_one_process(shared_model, tiny_scene, tmp_path):
    args = dict(zip(("points", "dem", "lulc", "amplitude"), scene_args(tiny_scene)[1::2],
                    strict=True))
    s = predict(shared_model, out=tmp_path / "onnx.gpkg", **args)
    predict(shared_model, out=tmp_path / "torch.gpkg", backend="torch", **args)
    a, b = _rel(tmp_path / "onnx.gpkg"), _rel(tmp_path / "torch.gpkg")
    assert s["points"] == len(a) == 3000
    assert np.isfinite(a).all()
    # the summary counts the windows encoded: whole lattice cells with their context
    from psirel.features.tiles import CONTEXT_PX
    from psirel.infer.shared_stage import CELL_PX

    side = CELL_PX + 2 * CONTEXT_PX
    assert s["counts"]["windows"] >= 1 and s["counts"]["window_px"] == s["counts"]["windows"] \
        * side * side
    assert np.abs(a - b).max() <= 1e-5
    # the default is a calibrated ensemble: its spread agrees between backends too
    sa, sb = _rel(tmp_path / "onnx.gpkg", "reliability_std"), _rel(tmp_path / "torch.gpkg",
                                                                    "reliability_std")
    assert sa.max() > 0 and np.abs(sa - sb).max() <= 1e-5
    from psirel.infer.distributed import predict_tiled

    predict_tiled(shared_model, out=tmp_path / "tiles.gpkg", dask="sync", tile_m=900, **args)
    # every window is its lattice cell plus context, whichever tile reads it: exact
    assert np.abs(_rel(tmp_path / "tiles.gpkg") - a).max() <= 1e-5
    assert np.abs(_rel(tmp_path / "tiles.gpkg", "reliability_std") - sa).max() <= 1e-5


def test_naive_strategy_refuses_a_shared_map_model(shared_model, tiny_scene, tmp_path):
    args = dict(zip(("points", "dem", "lulc", "amplitude"), scene_args(tiny_scene)[1::2],
                    strict=True))
    with pytest.raises(PsirelError, match="shared-map"):
        predict(shared_model, out=tmp_path / "n.gpkg", strategy="naive", **args)


def test_evaluate_scores_a_shared_map_model(shared_model, tiny_scene, tmp_path):
    code = main(["evaluate", "--model", str(shared_model), *scene_args(tiny_scene), "--out",
                 str(tmp_path / "report")])
    assert code == 0
    m = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert 0.0 <= m["model"]["roc_auc"] <= 1.0 and "pointwise_only" in m["baselines"]
