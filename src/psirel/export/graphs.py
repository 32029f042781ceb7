"""The pieces every ONNX export of psirel shares: the traced wrappers, the export call, samples.

:mod:`psirel.export.onnx` (the FP32 graphs) and :mod:`psirel.export.quantize` (the INT8 stage 1)
both trace these wrappers with :func:`export_graph` (``torch.onnx.export(dynamo=False,
opset_version=OPSET)``) and check them on an :class:`ExportSample` (:func:`random_sample` when
no real one is given).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from psirel.graph.edges import edge_features
from psirel.graph.knn import knn_table
from psirel.model_card import ModelCard
from psirel.models.ensemble import CalibratedEnsemble

OPSET = 17


@dataclass
class ExportSample:
    """Inputs for the parity check: M points' model inputs and their subgraph (local indices)."""

    patches: np.ndarray    # [M, 4, P, P] float32, normalised
    scalars: np.ndarray    # [M, S] float32, standardised
    idx: np.ndarray        # [M, K] int64
    mask: np.ndarray       # [M, K] bool
    edge_attr: np.ndarray  # [M, K, E] float32
    source: str            # how it was made, recorded in model.json


def random_sample(card: ModelCard, n: int = 32, seed: int = 0) -> ExportSample:
    """Random but realistic inputs for a model card: standardised channels ~N(0, 1),
    land-cover indices from the model's vocabulary, a validity channel with some patches cut by
    a raster edge, and a kNN graph of ``n`` points scattered over 200 m × 200 m (so with the
    card's k and r_max most rows are full and some are not)."""
    rng = np.random.default_rng(seed)
    cfg, feats = card.config, card.features
    p, s = cfg.encoder.patch_px, cfg.n_scalars
    patches = rng.standard_normal((n, 4, p, p)).astype(np.float32)
    patches[:, 1] = rng.integers(0, cfg.n_lulc, (n, p, p))
    patches[:, 3] = 1.0
    cut = rng.random(n) < 0.25          # a quarter of the patches run off a raster edge
    cols = rng.integers(p // 4, p // 2, n)
    for i in np.flatnonzero(cut):
        patches[i, :, :, :cols[i]] = 0.0
    scalars = rng.standard_normal((n, s)).astype(np.float32)
    x, y = rng.uniform(0, 200, n), rng.uniform(0, 200, n)
    table = knn_table(x, y, k=feats.k, r_max_m=feats.r_max_m)
    scale = card.edge_scale
    ea = edge_features(x, y, rng.normal(0, 10, n), rng.normal(0, 3, n), table.idx, table.mask,
                       scale, series_mm=rng.normal(0, 5, (n, 12)))
    e = cfg.graph.edge_dim   # models built with fewer edge features
    ea = ea[..., :e] if e <= ea.shape[-1] else np.pad(ea, ((0, 0), (0, 0), (0, e - ea.shape[-1])))
    return ExportSample(patches, scalars, table.idx, table.mask, ea,
                        source=f"random ({n} points, seed {seed})")


# ---------------------------------------------------------------------------- wrappers
class Pointwise(nn.Module):
    """Stage 1: ``patches [B, 4, P, P], scalars [B, S] → emb [B, D]``."""

    def __init__(self, model: CalibratedEnsemble):
        super().__init__()
        self.model = model

    def forward(self, patches: Tensor, scalars: Tensor) -> Tensor:
        return self.model.embed(patches, scalars)


class Graph(nn.Module):
    """Stage 2: ``emb, idx, mask, edge_attr → reliability [N], reliability_std [N]``."""

    def __init__(self, model: CalibratedEnsemble):
        super().__init__()
        self.model = model

    def forward(self, emb: Tensor, idx: Tensor, mask: Tensor, edge_attr: Tensor
                ) -> tuple[Tensor, Tensor]:
        return self.model.reliability(emb, idx, mask, edge_attr)


class GraphNone(nn.Module):
    """Stage 2 of a model without graph (``gnn="none"``): the head on the embedding alone."""

    def __init__(self, model: CalibratedEnsemble):
        super().__init__()
        self.model = model

    def forward(self, emb: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.reliability(emb)


class PointwiseOnly(nn.Module):
    """The graph-free variant: ``patches, scalars → reliability [B]``."""

    def __init__(self, model: CalibratedEnsemble):
        super().__init__()
        self.model = model

    def forward(self, patches: Tensor, scalars: Tensor) -> Tensor:
        return self.model.reliability(self.model.embed(patches, scalars))[0]


def export_graph(module: nn.Module, args: tuple, names: list[str], output: str | list[str],
                 dynamic: dict, path: Path) -> None:
    """Trace ``module`` on ``args`` into ``path`` (inputs ``names``, outputs ``output``, the
    ``dynamic`` axes), with the opset and options every psirel export uses."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=names,
                          output_names=[output] if isinstance(output, str) else list(output),
                          dynamic_axes=dynamic,
                          do_constant_folding=True)


def trace_table(k: int, edge_dim: int, seed: int = 0):
    """A small random neighbour table to trace stage 2 with: ``k + 5`` nodes (another N than
    the check's) of ``k`` slots each. The slot axis is the model's k, fixed in ``gnn.onnx``
    (the robust edge statistics sort the slots with a network of k inputs,
    :func:`psirel.models.neighbours.sort_slots`); every inference path builds its tables with
    the card's k."""
    g = torch.Generator().manual_seed(seed)
    n = k + 5
    idx = torch.randint(0, n, (n, k), generator=g)
    mask = torch.rand(n, k, generator=g) > 0.3
    return idx, mask, torch.randn(n, k, edge_dim, generator=g)
