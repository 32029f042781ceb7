"""ONNX export (TorchScript path, dynamic batch / N) and ONNX Runtime parity ≤ 1e-4."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from psirel_testing import v1_config

from psirel.models.gnn import GNNEncoder
from psirel.models.pointwise import PointwiseEncoder
from psirel.models.reliability import ReliabilityModel

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _export(module, args, names, dynamic, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=17,
                          input_names=names, output_names=["out"], dynamic_axes=dynamic)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_pointwise_encoder_onnx(tmp_path, fusion):
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=8, n_scalars=5, fusion=fusion)
    if fusion == "film":
        torch.nn.init.normal_(enc.film.weight, std=0.1)
    for b in enc.cnn.modules():  # non-trivial residual branches
        if hasattr(b, "gamma"):
            torch.nn.init.normal_(b.gamma, std=0.3)

    def inputs(b):
        p = torch.randn(b, 4, 80, 80)
        p[:, 1] = torch.randint(0, 10, (b, 80, 80)).float()  # 8, 9 out of range
        return p, torch.randn(b, 5)

    dyn = {"patches": {0: "batch"}, "scalars": {0: "batch"}, "out": {0: "batch"}}
    sess = _export(enc, inputs(2), ["patches", "scalars"], dyn, tmp_path / "pw.onnx")
    p, s = inputs(5)  # another batch size than exported with
    got = sess.run(None, {"patches": p.numpy(), "scalars": s.numpy()})[0]
    with torch.no_grad():
        ref = enc(p, s).numpy()
    assert got.shape == (5, 64)
    assert np.abs(got - ref).max() <= 1e-4


@pytest.mark.parametrize("kind", ["unimp", "gatv2", "gen"])
def test_gnn_encoder_onnx(tmp_path, table, kind):
    torch.manual_seed(0)
    enc = GNNEncoder(16, 32, layers=2, kind=kind, heads=4, edge_dim=5)
    names = ["h", "idx", "mask", "edge_attr"]
    dyn = {"h": {0: "n"}, "idx": {0: "n", 1: "k"}, "mask": {0: "n", 1: "k"},
           "edge_attr": {0: "n", 1: "k"}, "out": {0: "n"}}
    idx, mask, ea = table(10, 4, 5, seed=0)
    sess = _export(enc, (torch.randn(10, 16), idx, mask, ea), names, dyn, tmp_path / "g.onnx")
    idx, mask, ea = table(37, 6, 5, seed=1, n_empty=4)  # other N and K, empty rows
    h = torch.randn(37, 16)
    got = sess.run(None, {"h": h.numpy(), "idx": idx.numpy(), "mask": mask.numpy(),
                          "edge_attr": ea.numpy()})[0]
    with torch.no_grad():
        ref = enc.eval()(h, idx, mask, ea).numpy()
    assert np.isfinite(got).all()
    assert np.abs(got - ref).max() <= 1e-4


def test_graph_stage_onnx(tmp_path, table):
    torch.manual_seed(0)
    model = ReliabilityModel(v1_config(n_lulc=5, n_scalars=3, depths=(1,), dims=(8,)))
    stage = model.graph_stage()
    names = ["emb", "idx", "mask", "edge_attr"]
    dyn = {n: {0: "n"} for n in [*names, "out"]}
    idx, mask, ea = table(10, 4, 5, seed=0)
    sess = _export(stage, (torch.randn(10, 64), idx, mask, ea), names, dyn, tmp_path / "s.onnx")
    idx, mask, ea = table(21, 4, 5, seed=2)
    emb = torch.randn(21, 64)
    got = sess.run(None, {"emb": emb.numpy(), "idx": idx.numpy(), "mask": mask.numpy(),
                          "edge_attr": ea.numpy()})[0]
    with torch.no_grad():
        ref = stage.eval()(emb, idx, mask, ea).numpy()
    assert got.shape == (21,) and np.abs(got - ref).max() <= 1e-4
