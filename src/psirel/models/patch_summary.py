"""Parameter-free summary statistics of a patch: what an expert reads off the layers at a glance.

The ConvNeXt learns its own features, but from one training scene it learns them from a few
thousand gradient steps, and a feature like "the terrain at the point faces the sensor at 30°"
must emerge from 7×7 filters over standardised relief. Experts (and the gradient-boosting
baseline) use such quantities directly. This module computes them from the patch inside the
model, so they are exported to ONNX with it and need no change to the feature contract:

====================  ==========================================================================
``valid``             fraction of valid pixels (1 inside the rasters)
``dem_mean/std``      masked mean / std of the relief channel (the point is 0: a negative mean
                      says the point stands above its surroundings)
``dem_gx/gy@s``       relief gradient at the point over ±s pixels (s = 1, 4, 12), per pixel, in
                      standardised relief units: slope *and aspect*, which decide layover and
                      shadow for a given look direction, at three scales
``amp_mean/std``      masked mean / std of the amplitude channel (dB, standardised)
``amp_centre``        mean amplitude of the 3×3 pixels around the point
``amp_local_max``     brightest pixel within ±4 pixels: a very bright neighbour casts sidelobes
``dem_centre_step``   relief of the point above the mean of its 3×3 pixels (a roof, a spike)
``dem_min``           lowest relief in the patch (how deep the valley below the point is)
``lulc_centre[c]``    one-hot land-cover class at the point (class 0 = unknown)
``lulc_frac[c]``      masked fraction of each class over the patch
====================  ==========================================================================

The raw statistics go through ``asinh((s − centre) / scale)`` with a per-feature robust centre
and scale (median, 1.4826·MAD) fitted once on training patches (:meth:`PatchSummary.fit`) and
stored as buffers, like the scalar features' normaliser; before ``fit`` they are 0 and 1.

Shapes: patches ``[B, 4, P, P]`` (channels of :mod:`psirel.models.pointwise`) → ``[B, F]`` with
``F = 9 + 2·len(scales) + 2·n_lulc``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from psirel.features.robust import MAD_TO_STD
from psirel.models.lulc import lulc_indices

GRADIENT_SCALES = (1, 4, 12)
LOCAL_MAX_PX = 4


class SummaryStatistics(nn.Module):
    """What :class:`PatchSummary` and the shared-map encoder's
    :class:`~psirel.models.summary_maps.SummaryMaps` share: the feature names, the robust
    centre/scale buffers and the standardisation ``asinh((raw − centre) / scale)``.
    Subclasses define ``raw(*inputs) -> [N, F]``."""

    def __init__(self, n_lulc: int, scales: Sequence[int] = GRADIENT_SCALES):
        super().__init__()
        self.n_lulc, self.scales = int(n_lulc), tuple(int(s) for s in scales)
        n = self.num_features
        self.register_buffer("centre", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))

    @property
    def num_features(self) -> int:
        return 9 + 2 * len(self.scales) + 2 * self.n_lulc

    def names(self) -> list[str]:
        grads = [f"dem_{a}@{s}" for s in self.scales for a in ("gx", "gy")]
        return (["valid", "dem_mean", "dem_std", *grads, "amp_mean", "amp_std", "amp_centre",
                 "amp_local_max", "dem_centre_step", "dem_min"]
                + [f"lulc_centre[{c}]" for c in range(self.n_lulc)]
                + [f"lulc_frac[{c}]" for c in range(self.n_lulc)])

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.standardise(self.raw(*inputs))

    def standardise(self, raw: Tensor) -> Tensor:
        """``asinh((raw − centre) / scale)`` of raw statistics ``[N, F]``."""
        z = (raw - self.centre) / self.scale
        # asinh, written out: the TorchScript ONNX exporter has no aten::asinh; the odd form
        # avoids the cancellation of log(x + sqrt(x² + 1)) for large negative x
        a = z.abs()
        return torch.sign(z) * torch.log(a + torch.sqrt(a * a + 1.0))

    @torch.no_grad()
    def fit_rows(self, x: Tensor) -> None:
        """Robust centre/scale from raw statistics ``[N, F]``: median and 1.4826·MAD (the
        std where the MAD is 0, 1 where both are)."""
        x = x.double()
        med = x.median(dim=0).values
        mad = (x - med).abs().median(dim=0).values * MAD_TO_STD
        std = x.std(dim=0, unbiased=False) if len(x) > 1 else torch.zeros_like(med)
        scale = torch.where(mad > 1e-6, mad, torch.where(std > 1e-6, std, torch.ones_like(mad)))
        self.centre.copy_(med.float())
        self.scale.copy_(scale.float())


class PatchSummary(SummaryStatistics):
    """Summary statistics of a patch (see the module docstring), robustly standardised.

    Args:
        n_lulc (int): LULC vocabulary size, unknown (0) included.
        scales (sequence of int): half-widths (pixels) of the relief gradients.
            (default: ``(1, 4, 12)``)
    """

    def raw(self, patches: Tensor) -> Tensor:
        """Unstandardised statistics ``[B, F]``."""
        p = patches.shape[-1]
        c = p // 2
        if max(max(self.scales), LOCAL_MAX_PX) >= c:
            raise ValueError(f"patch of {p} px is too small for gradient scales {self.scales}")
        dem, amp, m = patches[:, 0], patches[:, 2], patches[:, 3]
        cnt = m.sum(dim=(1, 2)).clamp(min=1.0)
        valid = m.mean(dim=(1, 2))

        def masked_moments(a: Tensor) -> tuple[Tensor, Tensor]:
            mean = (a * m).sum(dim=(1, 2)) / cnt
            var = (((a - mean[:, None, None]) ** 2) * m).sum(dim=(1, 2)) / cnt
            return mean, torch.sqrt(var + 1e-8)

        dem_mean, dem_std = masked_moments(dem)
        amp_mean, amp_std = masked_moments(amp)
        grads = []
        for s in self.scales:
            # mean difference across the point over a (2s+1)-wide band, per pixel of distance
            band = slice(c - s, c + s + 1)
            gx = (dem[:, band, c + s] - dem[:, band, c - s]).mean(dim=1) / (2 * s)
            gy = (dem[:, c + s, band] - dem[:, c - s, band]).mean(dim=1) / (2 * s)
            grads += [gx, gy]
        amp_centre = amp[:, c - 1:c + 2, c - 1:c + 2].mean(dim=(1, 2))
        w = LOCAL_MAX_PX
        local = amp[:, c - w:c + w + 1, c - w:c + w + 1] * m[:, c - w:c + w + 1, c - w:c + w + 1]
        amp_local_max = local.flatten(1).max(dim=1).values
        # how far the point's pixel stands above / below its 3×3 ring (a roof, a spike)
        ring = dem[:, c - 1:c + 2, c - 1:c + 2].mean(dim=(1, 2))
        dem_min = (dem * m + (1.0 - m) * 1e3).flatten(1).min(dim=1).values.clamp(max=1e2)
        codes = lulc_indices(patches[:, 1], self.n_lulc).to(patches.dtype)
        classes = torch.arange(self.n_lulc, dtype=patches.dtype, device=patches.device)
        onehot_c = (codes[:, c, c, None] == classes).to(patches.dtype)           # [B, n_lulc]
        frac = ((codes[..., None] == classes).to(patches.dtype)
                * m[..., None]).sum(dim=(1, 2)) / cnt[:, None]                   # [B, n_lulc]
        cols = [valid, dem_mean, dem_std, *grads, amp_mean, amp_std, amp_centre, amp_local_max,
                -ring, dem_min]
        return torch.cat([torch.stack(cols, dim=1), onehot_c, frac], dim=1)

    @torch.no_grad()
    def fit(self, patches: Tensor | np.ndarray, batch: int = 1024) -> PatchSummary:
        """Set the robust centre/scale from training patches ``[N, 4, P, P]`` (any float type);
        a feature with zero spread keeps scale 1."""
        n = len(patches)
        rows = [self.raw(torch.as_tensor(np.asarray(patches[s:s + batch], np.float32)))
                for s in range(0, n, batch)] or [torch.zeros(0, self.num_features)]
        self.fit_rows(torch.cat(rows))
        return self

