"""Temporal encoder: shapes, gradients, ONNX parity, and its wiring into the PW encoders."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from psirel_testing import card_meta, v1_config

from psirel.features.scalars import SCALAR_FEATURES, TEMPORAL_START
from psirel.features.temporal import TEMPORAL_FEATURES, TEMPORAL_LAYOUT
from psirel.models.pointwise import PointwiseEncoder
from psirel.models.reliability import ModelConfig, ReliabilityModel
from psirel.models.shared_map import SharedMapEncoder
from psirel.models.temporal import TemporalEncoder, TemporalScalars

SMALL = {"depths": (1, 1, 1, 1), "dims": (8, 8, 8, 8)}
N_BLOCK = len(TEMPORAL_FEATURES)


def test_encoder_shapes_and_gradients():
    torch.manual_seed(0)
    enc = TemporalEncoder(16, 6, 5, out_dim=32)
    assert enc.n_inputs == N_BLOCK == 16 + 2 * 6 + 5
    x = torch.randn(7, N_BLOCK, requires_grad=True)
    y = enc(x)
    assert y.shape == (7, 32)
    y.square().sum().backward()
    assert x.grad is not None and (x.grad.abs().sum(0) > 0).all()   # every column matters
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert "out_dim=32" in repr(enc)


def test_encoder_rows_independent():
    torch.manual_seed(0)
    enc = TemporalEncoder().eval()
    x = torch.randn(5, N_BLOCK)
    with torch.no_grad():
        torch.testing.assert_close(enc(x)[2:3], enc(x[2:3]))


def test_scalars_split_keeps_plain_columns():
    torch.manual_seed(0)
    n_s = 4 + N_BLOCK + 2
    split = TemporalScalars(n_s, start=4, out_dim=8)
    s = torch.randn(3, n_s)
    out = split(s)
    assert out.shape == (3, split.num_features) and split.num_features == 6 + 8
    torch.testing.assert_close(out[:, :4], s[:, :4])
    torch.testing.assert_close(out[:, 4:6], s[:, 4 + N_BLOCK:])
    torch.testing.assert_close(out[:, 6:], split.encoder(s[:, 4:4 + N_BLOCK]))
    at_end = TemporalScalars(3 + N_BLOCK, start=3)
    assert at_end(torch.randn(2, 3 + N_BLOCK)).shape == (2, 3 + 32)
    with pytest.raises(ValueError, match="outside"):
        TemporalScalars(10, start=0)


def test_encoder_onnx_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from psirel.export.onnx import OPSET

    torch.manual_seed(0)
    enc = TemporalEncoder().eval()
    path = tmp_path / "temporal.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(enc, (torch.randn(2, N_BLOCK),), str(path), dynamo=False,
                          opset_version=OPSET, input_names=["block"], output_names=["out"],
                          dynamic_axes={"block": {0: "batch"}, "out": {0: "batch"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(9, N_BLOCK) * 3
    got = sess.run(None, {"block": x.numpy()})[0]
    with torch.no_grad():
        ref = enc(x).numpy()
    assert got.shape == (9, 32)
    assert np.abs(got - ref).max() <= 1e-5


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_pointwise_encoder_with_temporal(fusion):
    torch.manual_seed(0)
    n_s = len(SCALAR_FEATURES)
    enc = PointwiseEncoder(n_lulc=4, n_scalars=n_s, fusion=fusion, temporal=True,
                           temporal_start=TEMPORAL_START, **SMALL).eval()
    if fusion == "film":                         # starts as the identity: let scalars act
        torch.nn.init.normal_(enc.film.weight, std=0.1)
    p, s = torch.randn(3, 4, 32, 32), torch.randn(3, n_s)
    p[:, 1] = 1.0
    out = enc(p, s)
    assert out.shape == (3, 64)
    s2 = s.clone()
    s2[:, TEMPORAL_START] += 1.0                 # a quantile changes the embedding
    assert not torch.allclose(enc(p, s2), out)
    plain = PointwiseEncoder(n_lulc=4, n_scalars=n_s, fusion=fusion, **SMALL)
    assert plain.temporal is None
    assert not any(k.startswith("temporal") for k in plain.state_dict())


def test_shared_map_encoder_with_temporal():
    torch.manual_seed(0)
    n_s = len(SCALAR_FEATURES)
    enc = SharedMapEncoder(n_lulc=4, n_scalars=n_s, temporal=True,
                           temporal_start=TEMPORAL_START, **SMALL).eval()
    window = torch.randn(1, 4, 64, 64)
    window[:, 1] = 1.0
    rc = torch.tensor([[10.0, 20.0], [40.5, 33.2]])
    assert enc(window, rc, torch.randn(2, n_s)).shape == (2, 64)


def test_model_config_old_and_new():
    old = {"n_lulc": 5, "n_scalars": 13, "gnn": "none", "depths": [1], "dims": [8]}
    cfg = v1_config(**old)                                 # a model.json from before
    assert cfg.encoder.temporal is False
    assert ReliabilityModel(cfg).pointwise.temporal is None
    n_s = len(SCALAR_FEATURES)
    new = v1_config(n_lulc=5, n_scalars=n_s, gnn="none", temporal=True,
                      temporal_start=TEMPORAL_START, depths=(1,), dims=(8,))
    assert ModelConfig.from_json(new.to_json()) == new
    for encoder in ("patch", "shared-map"):
        model = ReliabilityModel(new.replace(encoder=encoder))
        assert isinstance(model.pointwise.temporal.encoder, TemporalEncoder)
    model = ReliabilityModel(new).eval()
    p = torch.randn(2, 4, 32, 32)
    p[:, 1] = 1.0
    assert model(p, torch.randn(2, n_s)).shape == (2,)
    with pytest.raises(ValueError, match="temporal block"):
        v1_config(n_lulc=5, n_scalars=10, temporal=True)


def test_train_model_config_derives_the_block_from_names():
    from psirel.config import TrainSettings

    n_s = len(SCALAR_FEATURES)
    cfg = TrainSettings().model_config(n_lulc=3, n_scalars=n_s, gnn="unimp")
    e = cfg.encoder
    assert e.temporal and TrainSettings().temporal
    block = SCALAR_FEATURES[e.temporal_start:e.temporal_start + N_BLOCK]
    assert block == TEMPORAL_FEATURES
    assert (e.temporal_quantiles, e.temporal_lags, e.temporal_extra) == (
        TEMPORAL_LAYOUT["n_quantiles"], TEMPORAL_LAYOUT["n_lags"], TEMPORAL_LAYOUT["n_extra"])
    off = TrainSettings(temporal=False).model_config(n_lulc=3, n_scalars=7, gnn="none")
    assert off.encoder.temporal is False
    with pytest.raises(ValueError, match="temporal encoder"):
        TrainSettings().model_config(n_lulc=3, n_scalars=7, gnn="none")


def test_temporal_model_exports_with_the_same_interface(tmp_path):
    """export_model on a temporal=True model: the block travels inside ``scalars``, the ONNX
    inputs stay patches/scalars, and the graphs match torch (the parity check of the export)."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from psirel.export.onnx import export_model
    from psirel.model_dir import register_artifact, save_card
    from psirel.train.checkpoint import save_weights

    torch.manual_seed(0)
    n_s = len(SCALAR_FEATURES)
    cfg = v1_config(n_lulc=6, n_scalars=n_s, gnn="unimp", depths=(1, 1, 1, 1),
                      dims=(8, 16, 24, 32), temporal=True, temporal_start=TEMPORAL_START)
    save_weights(ReliabilityModel(cfg).eval(), tmp_path / "weights.safetensors")
    pw = cfg.replace(gnn="none")
    save_weights(ReliabilityModel(pw).eval(), tmp_path / "pointwise_only.safetensors")
    meta = card_meta(cfg=cfg, pointwise_only=True, threshold=0.5,
                     edge_scale={"xy_m": 100.0, "height_m": 5.0, "velocity_mm_yr": 2.0})
    for name in ("weights.safetensors", "pointwise_only.safetensors"):
        register_artifact(meta, tmp_path, name)
    save_card(tmp_path, meta)
    meta = export_model(tmp_path)
    assert all(0 <= v <= 1e-4 for v in meta["onnx"]["parity_max_abs_prob"].values())
    sess = ort.InferenceSession(str(tmp_path / "pointwise.onnx"),
                                providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in sess.get_inputs()}
    assert set(inputs) == {"patches", "scalars"} and inputs["scalars"][1] == n_s


def test_scalar_branch_widths():
    from psirel.models.temporal import TemporalScalars, scalar_branch

    n_s = len(SCALAR_FEATURES)
    t, mlp = scalar_branch(n_s, 5, 16, True, TEMPORAL_START)
    assert isinstance(t, TemporalScalars)
    assert mlp[0].in_features == t.num_features + 5 and mlp[-2].out_features == 16
    none, plain = scalar_branch(7, 0, 8, False)
    assert none is None and plain[0].in_features == 7
    assert plain(torch.randn(3, 7)).shape == (3, 8)
