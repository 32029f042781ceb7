import json

import pytest
from psirel_testing import card_meta

from psirel.config import ModelConfig
from psirel.errors import ModelError
from psirel.model_dir import (
    FORMAT,
    V1_CONFIG_DEFAULTS,
    load_card,
    migrate,
    register_artifact,
    save_card,
)


def _model_dir(tmp_path, **meta):
    (tmp_path / "weights.safetensors").write_bytes(b"0123456789")
    meta = card_meta(**meta)
    register_artifact(meta, tmp_path, "weights.safetensors")
    save_card(tmp_path, meta)
    return tmp_path


def test_round_trip_and_hash_verified(tmp_path):
    card = load_card(_model_dir(tmp_path))
    assert card.threshold == 0.4 and card.config.graph.kind == "unimp"
    assert card.features.k == 16 and card.normalizer.lulc_codes == [1, 2, 6]
    assert card.artifact("weights.safetensors").exists()
    assert card.has("weights.safetensors") and not card.has("gnn.onnx")
    assert json.loads((tmp_path / "model.json").read_text())["format"] == FORMAT


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


@pytest.mark.parametrize("edit,match", [
    (lambda m: m.pop("normalizer"), r"model.json: invalid model card \(no 'normalizer' entry"),
    (lambda m: m["config"]["graph"].update(kind="gcn"), "gnn must be one of"),
    (lambda m: m["calibration"].update(scale=[1.0, 1.0]), "calibration has 2 entries for 1"),
    (lambda m: m["features"].pop("pixel_m"), "no 'pixel_m' entry"),
])
def test_invalid_card_is_one_line_at_load(tmp_path, edit, match):
    d = _model_dir(tmp_path)
    meta = json.loads((d / "model.json").read_text())
    edit(meta)
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=match):
        load_card(d)


def test_missing_artifact_and_dir(tmp_path):
    d = _model_dir(tmp_path)
    (d / "weights.safetensors").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_card(d)
    with pytest.raises(ModelError, match="not found"):
        load_card(tmp_path / "nope")


def test_version_1_card_migrates_in_one_place(tmp_path):
    """A card saved before version 2: flat config, flags added later absent (meaning off)."""
    v1 = card_meta()
    v1["format"] = "psirel-model/1"
    v1["config"] = {"n_lulc": 3, "n_scalars": 2, "gnn": "gatv2", "gnn_hidden": 32,
                    "edge_summary_signed": True}
    for key in ("ensemble", "calibration"):
        del v1[key]
    for key in ("lulc_legend", "n_dates_trained"):
        del v1["features"][key]
    (tmp_path / "weights.safetensors").write_bytes(b"w")
    register_artifact(v1, tmp_path, "weights.safetensors")
    (tmp_path / "model.json").write_text(json.dumps(v1))
    card = load_card(tmp_path)
    want = ModelConfig.from_flat(**{**V1_CONFIG_DEFAULTS, **v1["config"]})
    assert card.config == want
    g = card.config.graph
    assert (card.encoder, g.kind, g.hidden) == ("patch", "gatv2", 32)
    assert card.config.graph.edge_summary_signed and not card.config.graph.edge_summary_robust
    assert not card.config.encoder.temporal and card.config.encoder.scalar_hidden == 32
    assert card.features.lulc_legend is None and card.features.n_dates_trained == 0
    assert card.members == 1 and card.variant().scale == (1.0,)
    assert json.loads((tmp_path / "model.json").read_text())["format"] == "psirel-model/1"
    assert migrate(card.meta) == card.meta and card.meta["format"] == FORMAT
    save_card(tmp_path, card.meta)       # saved back as the current version
    again = load_card(tmp_path)
    assert again.config == want and json.loads((tmp_path / "model.json").read_text())[
        "format"] == FORMAT


def test_receptive_hops():
    def hops(**flat):
        return ModelConfig.from_flat(n_lulc=3, n_scalars=2, temporal=False, **flat) \
            .receptive_hops()

    assert hops(gnn="none", gnn_layers=2) == 0
    assert hops(gnn="unimp", gnn_layers=2, edge_summary=False) == 2
    # the edge summary reads each node's own edges at the input: one hop more
    assert hops(gnn="gen", gnn_layers=3, edge_summary=True) == 4
