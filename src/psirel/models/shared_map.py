"""Shared-feature-map encoder: the ConvNeXt runs once over a raster window, points sample it.

The seed's "future optimisation": apply the CNN directly to the external layers and associate
the feature maps with the points, as Faster R-CNN shares one backbone pass among its regions of
interest. The patch encoder (:mod:`psirel.models.pointwise`) pays 11.6 MFLOP per point whatever
the density; this one pays per *pixel* of the window, once, so its cost grows with the area and
not with the number of points (a 20,000-point scene on a 363×363 raster is ~20 patches' worth).

For a point at continuous pixel position ``(r, c)`` of the window (see
:mod:`psirel.features.tiles`):

* stages 1–3 (strides 4, 8, 16) are sampled bilinearly at the point: fine detail where it is;
* stage 4 (stride 32) is pooled RoIAlign-style over the point's 80×80-pixel footprint (the patch
  model's view): the mean of bilinear samples on a ``G × G`` grid of bin centres;
* the ``12 + 24 + 48 + 96`` sampled features are layer-normalised and fused with the scalar MLP
  by concatenation, as in the patch encoder.

.. math::
    f_i &= [\\,S_1(r, c) \\Vert S_2(r, c) \\Vert S_3(r, c) \\Vert
            \\tfrac{1}{G^2}\\textstyle\\sum_{u,v} S_4(r + \\delta_u, c + \\delta_v)\\,] \\\\
    e_i &= \\mathrm{GELU}(W [\\mathrm{LN}(f_i) \\,\\Vert\\, \\mathrm{MLP}(z_i)])

Shapes: window ``[1, 4, H, W]`` (H, W multiples of 32), positions ``[N, 2]`` float (row, col in
window pixels), scalars ``[N, S]`` → embeddings ``[N, D]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from psirel.models.convnext import ConvNeXt
from psirel.models.lulc import lulc_indices
from psirel.models.map_sampling import footprint_mean, sample_at
from psirel.models.summary_maps import SummaryMaps
from psirel.models.temporal import scalar_branch

FOOTPRINT_PX = 80
FOOTPRINT_GRID = 4


class SharedMapEncoder(nn.Module):
    """ConvNeXt feature maps of a window, sampled at the points, fused with the scalars.

    Args:
        n_lulc (int): LULC vocabulary size, unknown (0) included.
        n_scalars (int): scalar features S per point.
        lulc_dim (int): LULC embedding width. (default: 4)
        emb_dim (int): output embedding width D. (default: 64)
        depths, dims: ConvNeXt architecture. (default: ``(2, 2, 4, 2)``, ``(12, 24, 48, 96)``)
        scalar_hidden (int): width of the scalar MLP. (default: 32)
        summary (bool): feed the scalar MLP the patch summary statistics computed as maps
            (:class:`~psirel.models.summary_maps.SummaryMaps`). (default: False)
        footprint_px (int): side of the pooled footprint of the last stage. (default: 80)
        grid (int): bins per side of that pooling. (default: 4)
        temporal, temporal_start, temporal_quantiles, temporal_lags, temporal_extra,
            temporal_dim: embed the scalars' temporal block with a
            :class:`~psirel.models.temporal.TemporalEncoder` before the scalar MLP, as in
            :class:`~psirel.models.pointwise.PointwiseEncoder`. (default: False, 0, 16, 6, 5, 32)
    """

    def __init__(self, n_lulc: int, n_scalars: int, lulc_dim: int = 4, emb_dim: int = 64,
                 depths: Sequence[int] = (2, 2, 4, 2), dims: Sequence[int] = (12, 24, 48, 96),
                 scalar_hidden: int = 32, footprint_px: int = FOOTPRINT_PX,
                 grid: int = FOOTPRINT_GRID, drop_path_rate: float = 0.0,
                 summary: bool = False, temporal: bool = False, temporal_start: int = 0,
                 temporal_quantiles: int = 16, temporal_lags: int = 6, temporal_extra: int = 5,
                 temporal_dim: int = 32):
        super().__init__()
        if n_lulc < 1:
            raise ValueError(f"n_lulc must be ≥ 1 (class 0 = unknown), not {n_lulc}")
        self.n_lulc, self.n_scalars, self.emb_dim = n_lulc, n_scalars, emb_dim
        self.lulc = nn.Embedding(n_lulc, lulc_dim)
        self.cnn = ConvNeXt(3 + lulc_dim, depths, dims, drop_path_rate=drop_path_rate)
        n_feat = sum(self.cnn.dims)
        self.sample_norm = nn.LayerNorm(n_feat, eps=1e-6)
        self.summary = SummaryMaps(n_lulc) if summary else None
        self.temporal, self.scalar_mlp = scalar_branch(
            n_scalars, self.summary.num_features if self.summary is not None else 0,
            scalar_hidden, temporal, temporal_start, temporal_quantiles, temporal_lags,
            temporal_extra, temporal_dim)
        self.proj = nn.Linear(n_feat + scalar_hidden, emb_dim)
        self.act = nn.GELU()
        step = footprint_px / grid
        off = torch.tensor([(j + 0.5) * step - footprint_px / 2 for j in range(grid)])
        self.register_buffer("offsets", off, persistent=False)    # [G] on each axis
        nn.init.normal_(self.lulc.weight, std=1.0)

    def feature_maps(self, window: Tensor) -> list[Tensor]:
        """``[1, 4, H, W]`` → the four stages' maps ``[1, C_s, H / stride_s, W / stride_s]``."""
        lulc = self.lulc(lulc_indices(window[:, 1], self.n_lulc)).permute(0, 3, 1, 2)
        x = torch.cat([window[:, 0:1], lulc, window[:, 2:4]], dim=1)
        h = self.cnn.stem(x)
        maps = []
        for stage in self.cnn.stages:
            h = stage(h)
            maps.append(h)
        return maps

    def point_features(self, maps: list[Tensor], rc: Tensor, height, width) -> Tensor:
        """``[N, sum(dims)]``: stages 1–3 at the point, stage 4 pooled over the footprint."""
        feats = [sample_at(m, rc, height, width) for m in maps[:-1]]
        pooled = footprint_mean(maps[-1], rc, height, width, self.offsets)
        return self.sample_norm(torch.cat([*feats, pooled], dim=-1))

    def forward(self, window: Tensor, rc: Tensor, scalars: Tensor,
                summary_raw: Tensor | None = None) -> Tensor:
        """``summary_raw``: ``self.summary.raw(window, rc)`` if computed beforehand (it has no
        parameters: an ensemble computes it once for all its members)."""
        f = self.point_features(self.feature_maps(window), rc, window.shape[-2], window.shape[-1])
        if self.temporal is not None:
            scalars = self.temporal(scalars)
        if self.summary is not None:
            if summary_raw is None:
                summary_raw = self.summary.raw(window, rc)
            scalars = torch.cat([scalars, self.summary.standardise(summary_raw)], dim=-1)
        return self.act(self.proj(torch.cat([f, self.scalar_mlp(scalars)], dim=-1)))

    def flops_per_pixel(self) -> float:
        """ConvNeXt FLOPs per window pixel (the map costs this × H × W, whatever N)."""
        from psirel.models.convnext import convnext_flops

        return convnext_flops(self.cnn.in_chans, self.cnn.depths, self.cnn.dims, 32) / 32 ** 2
