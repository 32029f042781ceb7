"""Exact full-neighbourhood scoring (validation, ``psirel evaluate``) runs in compact blocks."""

from __future__ import annotations

import numpy as np
import torch
from psirel_testing import v1_config

import psirel.train.loop as loop
from psirel.graph.edges import EDGE_FEATURES, UNIT_SCALE
from psirel.graph.knn import knn_table
from psirel.models.reliability import ReliabilityModel
from psirel.train.loop import GraphData, predict_points


def _scan_line_data(cols: int = 60, rows: int = 20, step_m: float = 10.0) -> GraphData:
    """Points on a grid stored row by row, as a scan-line file is: consecutive rows are strips
    across the whole scene."""
    rng = np.random.default_rng(0)
    n = cols * rows
    x = (np.arange(n) % cols) * step_m + rng.uniform(-1, 1, n)
    y = (np.arange(n) // cols) * step_m + rng.uniform(-1, 1, n)
    table = knn_table(x, y, k=6, r_max_m=25.0)
    return GraphData(patches=rng.normal(size=(n, 4, 32, 32)).astype(np.float16),
                     scalars=rng.normal(size=(n, 3)).astype(np.float32), x_m=x, y_m=y,
                     height_m=rng.normal(0, 20, n), velocity_mm_yr=rng.normal(0, 3, n),
                     idx=table.idx, mask=table.mask, edge_scale=UNIT_SCALE)


def _model() -> ReliabilityModel:
    torch.manual_seed(0)
    cfg = v1_config(n_lulc=3, n_scalars=3, depths=(1, 1, 1, 1), dims=(8, 8, 8, 8),
                    edge_dim=len(EDGE_FEATURES))
    return ReliabilityModel(cfg).eval()


def test_blocks_are_spatially_compact_whatever_the_input_order(monkeypatch):
    data, model = _scan_line_data(), _model()
    extents = []
    real = loop.full_neighbourhood

    def spy(table, seeds, hops):
        extents.append(max(np.ptp(data.x_m[seeds]), np.ptp(data.y_m[seeds])))
        return real(table, seeds, hops)

    monkeypatch.setattr(loop, "full_neighbourhood", spy)
    predict_points(model, data, np.arange(len(data.x_m)), block=60)
    # in file order a block of 60 rows is one 590 m strip; along the Hilbert curve a block
    # covers a patch of the scene of about sqrt(60) points a side
    assert len(extents) == 20
    assert np.median(extents) < 150.0
    assert max(extents) < 590.0


def test_scores_do_not_depend_on_the_order_or_the_block_size():
    data, model = _scan_line_data(), _model()
    n = len(data.x_m)
    ref = predict_points(model, data, np.arange(n), block=n)
    perm = np.random.default_rng(1).permutation(n)
    got = predict_points(model, data, perm, block=37)
    np.testing.assert_allclose(got, ref[perm], atol=1e-5)
    assert ref.std() > 1e-4   # not a constant model
    logits = predict_points(model, data, perm[:50], block=7, logits=True)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), ref[perm[:50]], atol=1e-5)
