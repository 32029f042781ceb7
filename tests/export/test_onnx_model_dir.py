"""``export_model``: three ONNX graphs in the model directory, checked against torch, or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from psirel_testing import card_meta, v1_config  # noqa: E402

from psirel.errors import ModelError  # noqa: E402
from psirel.export import onnx as export_onnx  # noqa: E402
from psirel.export.onnx import ONNX_FILES, export_model, random_sample  # noqa: E402
from psirel.model_dir import load_card, register_artifact, save_card, sha256_file  # noqa: E402
from psirel.models.reliability import ReliabilityModel  # noqa: E402
from psirel.train.checkpoint import save_weights  # noqa: E402

TOL = 1e-4


def _spread(model: ReliabilityModel, seed: int) -> ReliabilityModel:
    """Random weights with non-trivial residual branches and a head far from 0.5, so that a
    broken export shows in the probabilities."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):  # ConvNeXt layer scale, 1e-6 at init
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif p.dim() > 1:
                p.mul_(1.5)
    return model.eval()


def make_model_dir(path: Path, gnn: str, seed: int = 0) -> Path:
    """A model directory written by hand: random weights, the card fields export needs."""
    path.mkdir(parents=True)
    torch.manual_seed(seed)
    # a slim ConvNeXt keeps the test fast; the trained fixture of tests/infer exports the full one
    cfg = v1_config(n_lulc=6, n_scalars=5, gnn=gnn, depths=(1, 1, 1, 1), dims=(8, 16, 24, 32),
                      gnn_layers=2, edge_summary_signed=True, edge_summary_robust=True)
    save_weights(_spread(ReliabilityModel(cfg), seed), path / "weights.safetensors")
    pw_cfg = cfg.replace(gnn="none")
    save_weights(_spread(ReliabilityModel(pw_cfg), seed + 1), path / "pointwise_only.safetensors")
    meta = card_meta(cfg=cfg, pointwise_only=True, threshold=0.5,
                     edge_scale={"xy_m": 100.0, "height_m": 5.0, "velocity_mm_yr": 2.0})
    for name in ("weights.safetensors", "pointwise_only.safetensors"):
        register_artifact(meta, path, name)
    save_card(path, meta)
    return path


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("gnn", ["unimp", "gatv2", "gen"])
def test_export_writes_checked_graphs(tmp_path, gnn):
    model_dir = make_model_dir(tmp_path / gnn, gnn)
    meta = export_model(model_dir)

    card = load_card(model_dir)  # every hash verified, the new files included
    assert card.meta == meta
    for name in ONNX_FILES:
        assert card.meta["artifacts"][name]["sha256"] == sha256_file(model_dir / name)
    info = card.meta["onnx"]
    assert info["opset"] == 17 and info["exported_with"] == torch.__version__
    assert set(info["parity_max_abs_prob"]) == {*ONNX_FILES, "end_to_end"}
    assert all(0 <= v <= TOL for v in info["parity_max_abs_prob"].values())
    assert not list(model_dir.glob(".onnx-export-*"))

    # independent check on other sizes (B, N) than traced and checked with; the slot axis is
    # the card's k, fixed in gnn.onnx (the robust medians sort k slots with a network)
    from psirel.train.checkpoint import load_model

    k = card.features.k
    gnn_inputs = {i.name: i.shape for i in _session(model_dir / "gnn.onnx").get_inputs()}
    assert gnn_inputs["idx"][1] == gnn_inputs["mask"][1] == gnn_inputs["edge_attr"][1] == k
    assert isinstance(gnn_inputs["idx"][0], str)     # any number of nodes
    s = random_sample(card, n=23, seed=7)
    assert s.idx.shape == (23, k)
    model, pw_only = load_model(card), load_model(card, "pointwise_only")
    with torch.no_grad():
        emb_t = model.embed(torch.from_numpy(s.patches), torch.from_numpy(s.scalars))
        graph = [torch.from_numpy(a) for a in (s.idx, s.mask, s.edge_attr)]
        prob_t = torch.sigmoid(model.graph_logits(emb_t, *graph)).numpy()
        only_t = torch.sigmoid(pw_only(torch.from_numpy(s.patches),
                                       torch.from_numpy(s.scalars))).numpy()
    emb_o = _session(model_dir / "pointwise.onnx").run(
        None, {"patches": s.patches, "scalars": s.scalars})[0]
    prob_o = _session(model_dir / "gnn.onnx").run(
        None, {"emb": emb_o, "idx": s.idx, "mask": s.mask, "edge_attr": s.edge_attr})[0]
    only_o = _session(model_dir / "pointwise_only.onnx").run(
        None, {"patches": s.patches, "scalars": s.scalars})[0]
    assert prob_o.shape == (23,) and only_o.shape == (23,)
    assert np.abs(prob_o - prob_t).max() <= TOL
    assert np.abs(only_o - only_t).max() <= TOL
    assert prob_t.std() > 1e-3 and only_t.std() > 1e-3  # the models are not constant


def test_parity_failure_raises_and_writes_nothing(tmp_path, monkeypatch):
    model_dir = make_model_dir(tmp_path / "m", "unimp")
    export_model(model_dir)  # a previous, good export
    before = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}

    real = export_onnx._ort_run

    def off_by_a_bit(session, feed):
        out = real(session, feed)
        return out + 1e-3 if "reliability" in {o.name for o in session.get_outputs()} else out

    monkeypatch.setattr(export_onnx, "_ort_run", off_by_a_bit)
    with pytest.raises(ModelError, match=r"differs from PyTorch by 1\.0\de-03"):
        export_model(model_dir)
    after = {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file()}
    assert after == before  # old export and model.json untouched, no temporary left
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(before)


def test_export_refuses_corrupt_weights(tmp_path):
    model_dir = make_model_dir(tmp_path / "m", "gen")
    w = model_dir / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match=r"weights\.safetensors.*SHA-256"):
        export_model(model_dir)
    assert not any((model_dir / n).exists() for n in ONNX_FILES)
    assert "onnx" not in json.loads((model_dir / "model.json").read_text())
