import json

import pytest

from psirel.errors import ModelError
from psirel.model_dir import load_card, register_artifact, save_card


def _model_dir(tmp_path):
    (tmp_path / "weights.safetensors").write_bytes(b"0123456789")
    meta = {"config": {"gnn": "unimp"}, "features": {"k": 16}, "threshold": 0.4}
    register_artifact(meta, tmp_path, "weights.safetensors")
    save_card(tmp_path, meta)
    return tmp_path


def test_round_trip_and_hash_verified(tmp_path):
    card = load_card(_model_dir(tmp_path))
    assert card.threshold == 0.4 and card.config["gnn"] == "unimp"
    assert card.artifact("weights.safetensors").exists()
    assert card.has("weights.safetensors") and not card.has("gnn.onnx")


def test_corrupted_artifact_refused(tmp_path):
    d = _model_dir(tmp_path)
    (d / "weights.safetensors").write_bytes(b"0123456780")
    with pytest.raises(ModelError, match="weights.safetensors: SHA-256 does not match"):
        load_card(d)


@pytest.mark.parametrize("text,match", [("{not json", "not valid JSON"),
                                        ('{"format": "other"}', "unknown format")])
def test_bad_model_json_refused(tmp_path, text, match):
    d = _model_dir(tmp_path)
    (d / "model.json").write_text(text)
    with pytest.raises(ModelError, match=match):
        load_card(d)


def test_missing_artifact_and_dir(tmp_path):
    d = _model_dir(tmp_path)
    (d / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_card(d)
    with pytest.raises(ModelError, match="not found"):
        load_card(tmp_path / "nope")
    meta = json.loads((d / "model.json").read_text())
    assert meta["format"] == "psirel-model/1"


def test_receptive_hops():
    from psirel.model_dir import receptive_hops

    assert receptive_hops({"gnn": "none", "gnn_layers": 2}) == 0
    assert receptive_hops({"gnn": "unimp", "gnn_layers": 2, "edge_summary": False}) == 2
    # the edge summary reads each node's own edges at the input: one hop more
    assert receptive_hops({"gnn": "gen", "gnn_layers": 3, "edge_summary": True}) == 4
