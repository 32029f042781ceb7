"""The patch summary statistics as maps over a raster window, for the shared-map encoder.

:class:`~psirel.models.patch_summary.PatchSummary` reads each point's 80×80 patch; a shared-map
model has no patches, so the same statistics are computed for *every pixel* of its window with
separable box and max filters (cost per pixel, not per point) and sampled at the points
bilinearly, like the feature maps. Relief in a window is the high-passed DEM
(:mod:`psirel.features.tiles`), so "relative to the point" becomes "minus the relief at the
point's pixel": the box mean and minimum of the relief are reported relative to the centre.

Columns, in :meth:`SummaryMaps.names` order: valid fraction, relief mean / std, relief
gradients (gx, gy) at ±1, ±4, ±12 px, amplitude mean / std, amplitude over the 3×3 centre,
brightest amplitude within ±4 px, centre relief above its 3×3 mean, lowest relief in the box,
land-cover one-hot at the point, land-cover mix of the box (81×81, the patch's 80 made odd).

Shapes: window ``[1, 4, H, W]``, positions ``[N, 2]`` (window pixels) → ``[N, F]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from psirel.models.lulc import lulc_indices
from psirel.models.map_sampling import sample_at
from psirel.models.patch_summary import LOCAL_MAX_PX, SummaryStatistics

BOX_PX = 81
RUNNING_SUM_FROM_PX = 15   # box side from which _box is a running sum (below: avg_pool2d)


def _box(x: Tensor, k: int) -> Tensor:
    """Mean over a ``k × k`` box (zero outside), separable; same size as ``x [1, C, H, W]``.

    Each pass is a running sum: ``cumsum`` of the zero-padded rows (or columns), then the
    difference of sums ``k`` apart, so its cost does not grow with ``k``. ONNX Runtime's
    AveragePool costs ``k`` per pixel: with the 81-px land-cover and moment boxes it was 85 %
    of the shared-map encoder's time (a 384² window: 520 ms, 84 ms as running sums). The
    same numbers as ``avg_pool2d`` (zeros counted) up to float32 rounding of the sums; small
    boxes keep ``avg_pool2d``, which is cheap and exact there."""
    h = k // 2
    if k <= RUNNING_SUM_FROM_PX:
        x = F.avg_pool2d(x, (k, 1), stride=1, padding=(h, 0))
        return F.avg_pool2d(x, (1, k), stride=1, padding=(0, h))
    x = F.pad(x, (0, 0, h + 1, h))                 # rows: one zero before for the difference
    c = torch.cumsum(x, dim=2)
    x = (c[:, :, k:, :] - c[:, :, :-k, :]) / k
    x = F.pad(x, (h + 1, h, 0, 0))
    c = torch.cumsum(x, dim=3)
    return (c[:, :, :, k:] - c[:, :, :, :-k]) / k


def _box_max(x: Tensor, k: int) -> Tensor:
    h = k // 2
    x = F.max_pool2d(x, (k, 1), stride=1, padding=(h, 0))
    return F.max_pool2d(x, (1, k), stride=1, padding=(0, h))


def _shift(x: Tensor, dy: int, dx: int) -> Tensor:
    """``out[..., i, j] = x[..., i + dy, j + dx]`` (edge-replicated)."""
    p = max(abs(dy), abs(dx))
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    h, w = x.shape[-2], x.shape[-1]
    return xp[..., p + dy:p + dy + h, p + dx:p + dx + w]


class SummaryMaps(SummaryStatistics):
    """Per-pixel summary statistics of a window, sampled at points, robustly standardised."""

    def __init__(self, n_lulc: int, box_px: int = BOX_PX):
        super().__init__(n_lulc)
        self.box_px = int(box_px)

    def maps(self, window: Tensor) -> Tensor:
        """``[1, F, H, W]`` unstandardised statistics of every pixel."""
        k = self.box_px
        r, amp, m = window[:, 0:1], window[:, 2:3], window[:, 3:4]
        valid = _box(m, k)
        cnt = valid.clamp(min=1e-6)

        def moments(a: Tensor) -> tuple[Tensor, Tensor]:
            mean = _box(a * m, k) / cnt
            var = (_box(a * a * m, k) / cnt - mean * mean).clamp(min=0.0)
            return mean, torch.sqrt(var + 1e-8)

        r_mean, r_std = moments(r)
        a_mean, a_std = moments(amp)
        grads = []
        for s in self.scales:
            gx = (_shift(r, 0, s) - _shift(r, 0, -s)) / (2 * s)
            gy = (_shift(r, s, 0) - _shift(r, -s, 0)) / (2 * s)
            grads += [F.avg_pool2d(gx, (2 * s + 1, 1), stride=1, padding=(s, 0)),
                      F.avg_pool2d(gy, (1, 2 * s + 1), stride=1, padding=(0, s))]
        amp_centre = _box(amp, 3)
        amp_max = _box_max(amp * m, 2 * LOCAL_MAX_PX + 1)
        step = r - _box(r, 3)
        r_min = -_box_max(-(r * m + (1.0 - m) * 1e3), k)
        codes = lulc_indices(window[:, 1], self.n_lulc).to(window.dtype)       # [1, H, W]
        classes = torch.arange(self.n_lulc, dtype=window.dtype, device=window.device)
        onehot = (codes[:, None] == classes[None, :, None, None]).to(window.dtype)
        frac = _box(onehot * m, k) / cnt
        cols = [valid, r_mean - r, r_std, *grads, a_mean, a_std, amp_centre, amp_max, step,
                (r_min - r).clamp(max=1e2), onehot, frac]
        return torch.cat(cols, dim=1)

    def raw(self, window: Tensor, rc: Tensor) -> Tensor:
        """Unstandardised statistics ``[N, F]`` at window positions ``rc``."""
        return sample_at(self.maps(window), rc, window.shape[-2], window.shape[-1])

    @torch.no_grad()
    def fit(self, window: np.ndarray, rc: np.ndarray) -> SummaryMaps:
        """Robust centre/scale (median, 1.4826·MAD; std or 1 where that is 0) from a training
        window ``[4, H, W]`` and point positions in it ``[N, 2]``."""
        self.fit_rows(self.raw(torch.as_tensor(np.asarray(window, np.float32))[None],
                               torch.as_tensor(np.asarray(rc, np.float32))))
        return self
