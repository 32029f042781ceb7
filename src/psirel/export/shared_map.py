"""ONNX export of a shared-feature-map model (``encoder="shared-map"``).

Files, as for a patch model, but stage 1 reads windows:

* ``pointwise.onnx``: ``window [1, 4, H, W]``, ``rc [N, 2]``, ``scalars [N, S]`` → ``emb [N, D]``
  (H, W dynamic multiples of 32, see :mod:`psirel.features.tiles`);
* ``gnn.onnx``: unchanged (the graph stage does not care how embeddings were made);
* ``pointwise_only.onnx``: ``window, rc, scalars`` → ``reliability [N]``.

Parity is checked on a real window of the training scene, as for patch models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from psirel.features.tiles import crop, window_around
from psirel.graph.sampling import full_neighbourhood
from psirel.models.reliability import ReliabilityModel

WINDOW_INPUTS = ["window", "rc", "scalars"]
WINDOW_AXES = {"window": {2: "height", 3: "width"}, "rc": {0: "n"}, "scalars": {0: "n"}}


@dataclass
class WindowSample:
    """A window and its points for the parity check of a shared-map export."""

    window: np.ndarray     # [1, 4, H, W] float32
    rc: np.ndarray         # [M, 2] float32
    scalars: np.ndarray    # [M, S] float32
    idx: np.ndarray        # [M, K] int64
    mask: np.ndarray       # [M, K] bool
    edge_attr: np.ndarray  # [M, K, E] float32
    source: str

    def feed(self) -> dict[str, np.ndarray]:
        return {"window": self.window, "rc": self.rc, "scalars": self.scalars}

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        return tuple(torch.from_numpy(a) for a in (self.window, self.rc, self.scalars))


def window_sample(data, seeds: np.ndarray, hops: int) -> WindowSample:
    """The full ``hops``-hop neighbourhood of ``seeds`` in training data with a raster
    (:class:`psirel.train.loop.GraphData`), and the window around it."""
    sub = full_neighbourhood((data.idx, data.mask), seeds, hops)
    nodes = sub.nodes
    rows, cols = data.rows_px[nodes], data.cols_px[nodes]
    win = window_around(rows, cols)
    return WindowSample(window=crop(data.raster, win)[None], rc=win.local(rows, cols),
                        scalars=np.asarray(data.scalars[nodes], np.float32),
                        idx=sub.idx.astype(np.int64), mask=sub.mask,
                        edge_attr=data.edge_attr(nodes, sub.idx, sub.mask),
                        source=f"training window ({len(seeds)} seeds, {len(nodes)} nodes, "
                               f"{win.height}×{win.width} px)")


def random_window_sample(n_lulc: int, n_scalars: int, k: int, edge_dim: int,
                         n: int | None = None, seed: int = 0) -> WindowSample:
    """Random but well-formed inputs (standardised channels, vocabulary indices, a random
    neighbour table of ``k`` slots) for a model directory without training data at hand;
    ``n`` points (default: 24, or ``k + 8`` if more)."""
    n = n or max(24, k + 8)
    rng = np.random.default_rng(seed)
    h, w = 192, 224
    window = rng.standard_normal((1, 4, h, w)).astype(np.float32)
    window[0, 1] = rng.integers(0, n_lulc, (h, w))
    window[0, 3] = 1.0
    window[0, 3, :, :40] = 0.0
    rc = np.stack([rng.uniform(64, h - 64, n), rng.uniform(64, w - 64, n)], 1).astype(np.float32)
    kk = max(min(k, n - 1), 1)
    idx = np.stack([rng.choice(np.delete(np.arange(n), i), kk, replace=False) for i in range(n)])
    mask = rng.random((n, kk)) > 0.2
    return WindowSample(window=window, rc=rc,
                        scalars=rng.standard_normal((n, n_scalars)).astype(np.float32),
                        idx=idx.astype(np.int64), mask=mask,
                        edge_attr=rng.standard_normal((n, kk, edge_dim)).astype(np.float32),
                        source=f"random window ({n} points, seed {seed})")


class WindowEncoder(nn.Module):
    """``pointwise.onnx`` of a shared-map model."""

    def __init__(self, model: ReliabilityModel):
        super().__init__()
        self.model = model

    def forward(self, window: Tensor, rc: Tensor, scalars: Tensor) -> Tensor:
        return self.model.embed_window(window, rc, scalars)


class WindowPointwiseOnly(nn.Module):
    """``pointwise_only.onnx`` of a shared-map model: encoder + head, probabilities."""

    def __init__(self, model: ReliabilityModel):
        super().__init__()
        self.model = model

    def forward(self, window: Tensor, rc: Tensor, scalars: Tensor) -> Tensor:
        return self.model.reliability(self.model.embed_window(window, rc, scalars))[0]


def trace_args(model: ReliabilityModel) -> tuple[Tensor, Tensor, Tensor]:
    """Tracing inputs of another size than any check uses, so no shape is baked in."""
    g = torch.Generator().manual_seed(0)
    window = torch.randn(1, 4, 128, 160, generator=g)
    window[:, 3] = 1.0
    rc = torch.rand(5, 2, generator=g) * 60 + 40
    return window, rc, torch.randn(5, model.cfg.n_scalars, generator=g)
