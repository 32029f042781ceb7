from __future__ import annotations

import json

import pytest
import torch
from psirel_testing import v1_config

from psirel.models.reliability import (
    GraphStage,
    ModelConfig,
    ReliabilityModel,
    count_parameters,
)

SMALL = dict(depths=(1, 1), dims=(8, 16), emb_dim=16, gnn_hidden=16, scalar_hidden=8)


def _inputs(table, n=12, k=4, px=32, n_lulc=5, s=3):
    g = torch.Generator().manual_seed(0)
    p = torch.randn(n, 4, px, px, generator=g)
    p[:, 1] = torch.randint(0, n_lulc, (n, px, px), generator=g).float()
    p[:, 3] = 1.0
    idx, mask, ea = table(n, k, 5, seed=0, n_empty=2)
    return p, torch.randn(n, s, generator=g), idx, mask, ea


def test_config_json_round_trip():
    cfg = v1_config(n_lulc=11, n_scalars=7, fusion="film", gnn="gen", depths=[1, 2],
                      dims=[4, 8])
    assert cfg.encoder.depths == (1, 2)
    text = cfg.to_json()
    assert json.loads(text)["encoder"]["dims"] == [4, 8]
    assert ModelConfig.from_json(text) == cfg


def test_config_rejects_mistakes():
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        ModelConfig.from_dict({"n_lulc": 3, "n_scalars": 2, "colour": "red"})
    with pytest.raises(ValueError, match="colour"):
        ModelConfig.from_dict({"n_lulc": 3, "n_scalars": 2, "graph": {"colour": "red"}})
    with pytest.raises(ValueError, match="gnn must be"):
        v1_config(n_lulc=3, n_scalars=2, gnn="gcn")
    with pytest.raises(ValueError, match="multiple of heads"):
        v1_config(n_lulc=3, n_scalars=2, gnn_hidden=30, heads=4)


@pytest.mark.parametrize("gnn", ["unimp", "gatv2", "gen", "none"])
def test_forward_is_embed_then_graph(table, gnn):
    torch.manual_seed(0)
    model = ReliabilityModel(v1_config(n_lulc=5, n_scalars=3, gnn=gnn, **SMALL)).eval()
    assert (model.gnn is None) == (gnn == "none")
    p, s, idx, mask, ea = _inputs(table)
    logits = model(p, s, idx, mask, ea)
    assert logits.shape == (12,) and torch.isfinite(logits).all()
    emb = model.embed(p, s)
    assert emb.shape == (12, 16)
    torch.testing.assert_close(model.graph_logits(emb, idx, mask, ea), logits)
    stage = model.graph_stage()
    assert isinstance(stage, GraphStage)
    torch.testing.assert_close(stage(emb, idx, mask, ea), logits)


def test_pointwise_only_needs_no_graph(table):
    torch.manual_seed(0)
    model = ReliabilityModel(v1_config(n_lulc=5, n_scalars=3, gnn="none", **SMALL)).eval()
    p, s, *_ = _inputs(table)
    out = model(p, s)
    assert out.shape == (12,)
    torch.testing.assert_close(model(p[:3], s[:3]), out[:3])  # each point on its own


def test_parameter_count_and_flops():
    cfg = v1_config(n_lulc=10, n_scalars=6)
    model = ReliabilityModel(cfg)
    assert count_parameters(model.pointwise.cnn) == 285_252
    assert count_parameters(model) == (count_parameters(model.pointwise)
                                       + count_parameters(model.gnn)
                                       + count_parameters(model.edge_summary)
                                       + count_parameters(model.head))
    # the edge summary: (2 · edge_dim + 1) → emb_dim projection
    e, d = cfg.graph.edge_dim, cfg.encoder.emb_dim
    assert count_parameters(model.edge_summary) == (2 * e + 1) * d + d
    assert model.flops_per_patch() == 12_192_768  # 3 + lulc_dim = 7 input channels


def test_edge_summary_values():
    import torch

    from psirel.models.reliability import EdgeSummary

    s = EdgeSummary(edge_dim=2, emb_dim=3)
    with torch.no_grad():
        s.proj.weight.copy_(torch.eye(5)[[0, 2, 4]])  # picks mean[0], min[0], degree
        s.proj.bias.zero_()
    emb = torch.zeros(2, 3)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    ea = torch.tensor([[[1.0, 0], [-3.0, 0], [100.0, 0]], [[5.0, 0], [5.0, 0], [5.0, 0]]])
    out = s(emb, mask, ea)
    # node 0: mean |e| = 2, min |e| = 1, degree 2/3; node 1 isolated: zeros
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.0, 2 / 3], [0.0, 0.0, 0.0]]))


def test_robust_edge_summary_holds_medians_and_mad():
    from psirel.models.reliability import EdgeSummary

    s = EdgeSummary(edge_dim=1, emb_dim=2, robust=True)
    assert s.n_stats == 3 + 3
    mask = torch.tensor([[True, True, True, True, False], [False] * 5])
    ea = torch.tensor([[[1.0], [-4.0], [2.0], [50.0], [7.0]], [[5.0]] * 5])
    st = s.statistics(mask, ea)
    # node 0: Δ = 1, −4, 2, 50 → median 1.5; |Δ| 1, 4, 2, 50 → 3; |Δ − 1.5| .5, 5.5, .5, 48.5 → 3
    torch.testing.assert_close(st[0, 3:], torch.tensor([1.5, 3.0, 3.0]))
    assert torch.all(st[1] == 0)  # isolated: zeros
    # the precomputed statistics give the same output as the ones computed inside
    emb = torch.randn(2, 2)
    torch.testing.assert_close(s(emb, mask, ea, stats=st), s(emb, mask, ea))
