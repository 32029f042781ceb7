"""Training feeds the edge summary each node's statistics on the full graph, not the sample's."""

from __future__ import annotations

import numpy as np
import torch
from psirel_testing import v1_config

from psirel.graph.edges import EDGE_FEATURES, UNIT_SCALE, edge_features
from psirel.graph.knn import knn_table
from psirel.graph.sampling import sample_subgraph
from psirel.models.reliability import ReliabilityModel
from psirel.train.loop import GraphData, node_statistics


def _data(n: int = 300, seed: int = 0) -> GraphData:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 500, n), rng.uniform(0, 500, n)
    table = knn_table(x, y, k=8, r_max_m=80.0)
    return GraphData(patches=np.zeros((n, 4, 8, 8), np.float16),
                     scalars=rng.normal(size=(n, 3)).astype(np.float32), x_m=x, y_m=y,
                     height_m=rng.normal(0, 20, n), velocity_mm_yr=rng.normal(0, 3, n),
                     idx=table.idx, mask=table.mask, edge_scale=UNIT_SCALE,
                     series_mm=rng.normal(0, 2, (n, 12)).astype(np.float32))


def _model(**kw) -> ReliabilityModel:
    torch.manual_seed(0)
    cfg = v1_config(n_lulc=3, n_scalars=3, depths=(1, 1, 1, 1), dims=(8, 8, 8, 8),
                      edge_dim=len(EDGE_FEATURES), **kw)
    return ReliabilityModel(cfg).eval()


def test_node_statistics_are_the_full_rows_statistics_in_any_block_size():
    data = _data()
    model = _model(edge_summary_signed=True, edge_summary_robust=True)
    stats = node_statistics(model, data, block=64)
    ea = edge_features(data.x_m, data.y_m, data.height_m, data.velocity_mm_yr, data.idx,
                       data.mask, data.edge_scale, series_mm=data.series_mm)
    full = model.edge_summary.statistics(torch.from_numpy(data.mask), torch.from_numpy(ea))
    assert stats.shape == (300, model.edge_summary.n_stats)
    np.testing.assert_allclose(stats, full.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(stats, node_statistics(model, data, block=1000))


def test_sampled_subgraph_sees_full_graph_statistics():
    data = _data(seed=1)
    model = _model(edge_summary_robust=True)
    stats = node_statistics(model, data)
    sub = sample_subgraph((data.idx, data.mask), np.arange(10), [2, 2],
                          np.random.default_rng(0))
    t = data.subgraph_tensors(sub, stats=stats)
    np.testing.assert_array_equal(t["stats"].numpy(), stats[sub.nodes])
    # a two-of-eight sample's own statistics differ: that is what the full-graph ones fix
    own = model.edge_summary.statistics(t["mask"], t["edge_attr"]).numpy()
    assert np.abs(own[:10] - stats[:10]).max() > 1e-2


def test_no_edge_summary_no_statistics():
    assert node_statistics(_model(edge_summary=False), _data(n=50)) is None
