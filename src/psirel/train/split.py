"""Spatially separated validation: whole square blocks of the cloud, with a buffer.

Random point splits leak: a validation point's neighbours, which share its deformation, its
land cover and often its label, would sit in the training set. Validation therefore takes whole
blocks, and training seeds closer than ``buffer_m`` to any validation point are dropped, so no
training seed sees a validation point through the graph (buffer ≥ L·r_max_m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class SpatialSplit:
    train: np.ndarray   # [N] bool: usable as training seeds
    val: np.ndarray     # [N] bool: validation points
    block_m: float
    buffer_m: float

    def summary(self) -> dict:
        n = len(self.train)
        return {"n_train": int(self.train.sum()), "n_val": int(self.val.sum()),
                "n_buffer": int(n - self.train.sum() - self.val.sum()),
                "block_m": self.block_m, "buffer_m": self.buffer_m}


def block_split(x_m: np.ndarray, y_m: np.ndarray, *, val_fraction: float = 0.2,
                n_blocks: int = 5, buffer_m: float = 200.0, seed: int = 0) -> SpatialSplit:
    """Split points into validation blocks and buffered training points.

    The bounding box is cut into ``n_blocks × n_blocks`` square blocks (side ``block_m``).
    Blocks are drawn at random (for ``seed``) into the validation set until it holds
    ``val_fraction`` of the points; training points within ``buffer_m`` metres of a validation
    point are excluded from training.
    """
    x_m, y_m = np.asarray(x_m, float), np.asarray(y_m, float)
    span = max(np.ptp(x_m), np.ptp(y_m), 1.0)
    block_m = span / n_blocks * (1 + 1e-9)
    bx = np.floor((x_m - x_m.min()) / block_m).astype(np.int64)
    by = np.floor((y_m - y_m.min()) / block_m).astype(np.int64)
    block = by * n_blocks + bx
    ids, counts = np.unique(block, return_counts=True)
    rng = np.random.default_rng(seed)
    val_blocks, total = [], 0
    for i in rng.permutation(len(ids)):
        if total >= val_fraction * len(x_m):
            break
        # never let validation swallow more than twice its share in one block
        if total + counts[i] > 2 * val_fraction * len(x_m) and val_blocks:
            continue
        val_blocks.append(ids[i])
        total += counts[i]
    val = np.isin(block, val_blocks)
    train = ~val
    if val.any() and train.any():
        d, _ = cKDTree(np.c_[x_m[val], y_m[val]]).query(np.c_[x_m[train], y_m[train]], k=1,
                                                          distance_upper_bound=buffer_m)
        t_idx = np.flatnonzero(train)
        train[t_idx[np.isfinite(d)]] = False
    return SpatialSplit(train=train, val=val, block_m=float(block_m), buffer_m=float(buffer_m))
