"""Bilinear samples of a window's feature or statistic maps at point positions.

Shared by the shared-map encoder (:mod:`psirel.models.shared_map`, ConvNeXt stages) and its
summary maps (:mod:`psirel.models.summary_maps`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sample_at(fmap: Tensor, rc: Tensor, height, width) -> Tensor:
    """Bilinear samples ``[N, C]`` of ``fmap [1, C, h, w]`` at window pixel positions
    ``rc [N, 2]`` (row, col) of a ``height × width`` window: with ``align_corners=False`` ±1
    are the outer edges of the window, the same for every map resolution (H, W are multiples of
    the map's stride)."""
    gx = rc[:, 1] / width * 2.0 - 1.0
    gy = rc[:, 0] / height * 2.0 - 1.0
    grid = torch.stack([gx, gy], dim=-1)[None, :, None, :]          # [1, N, 1, 2]
    s = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)                          # [1, C, N, 1]
    return s[0, :, :, 0].transpose(0, 1)
