"""The reliability colour scale, shared by the quick-look figure, its HTML page and the QGIS style.

ColorBrewer's diverging RdYlBu (red unreliable, blue reliable) split at the model's threshold,
with its pale centre left out: values below the threshold run from dark red (0) to light orange
(just below), values at or above it from light blue (at the threshold) to dark blue (1). A
continuous diverging map would give the two sides of the threshold the same pale yellow, which
is exactly where a reader needs to tell flagged from kept points; the gap makes the threshold a
visible jump. Pure numpy, so the QGIS style can be written without matplotlib.
"""

from __future__ import annotations

import numpy as np

# ColorBrewer RdYlBu, 11 classes, from red to blue (Brewer, colorbrewer2.org)
RDYLBU_11 = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee090", "#ffffbf", "#e0f3f8",
             "#abd9e9", "#74add1", "#4575b4", "#313695")
# the parts of RdYlBu (positions in 0..1) used below and above the threshold
BELOW_SPAN = (0.0, 0.35)
ABOVE_SPAN = (0.65, 1.0)
NO_SCORE_RGBA = (0.0, 0.0, 0.0, 1.0)  # a point whose reliability is NaN

_ANCHORS = np.array([[int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in RDYLBU_11])
_ANCHOR_POS = np.linspace(0.0, 1.0, len(RDYLBU_11))


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float, or ValueError when it is not in [0, 1]."""
    t = float(threshold)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return t


def scale_position(reliability: np.ndarray, threshold: float) -> np.ndarray:
    """Position (0..1) on RdYlBu of each reliability value: ``r < threshold`` maps into
    :data:`BELOW_SPAN`, ``r >= threshold`` into :data:`ABOVE_SPAN`; NaN stays NaN."""
    t = check_threshold(threshold)
    r = np.clip(np.asarray(reliability, np.float64), 0.0, 1.0)
    below = r < t
    u_below = r / t if t > 0 else np.zeros_like(r)
    u_above = (r - t) / (1.0 - t) if t < 1 else np.ones_like(r)
    pos = np.where(below, BELOW_SPAN[0] + u_below * (BELOW_SPAN[1] - BELOW_SPAN[0]),
                   ABOVE_SPAN[0] + u_above * (ABOVE_SPAN[1] - ABOVE_SPAN[0]))
    return np.where(np.isnan(r), np.nan, pos)


def reliability_rgba(reliability: np.ndarray, threshold: float) -> np.ndarray:
    """RGBA colours in 0..1, shape ``reliability.shape + (4,)``; NaN gets :data:`NO_SCORE_RGBA`."""
    pos = scale_position(reliability, threshold)
    nan = np.isnan(pos)
    p = np.where(nan, 0.0, pos)
    rgba = np.empty(p.shape + (4,), np.float32)
    for c in range(3):
        rgba[..., c] = np.interp(p, _ANCHOR_POS, _ANCHORS[:, c])
    rgba[..., 3] = 1.0
    rgba[nan] = NO_SCORE_RGBA
    return rgba


def rgba_to_hex(rgba) -> str:
    """``#rrggbb`` of one RGB(A) colour in 0..1."""
    r, g, b = (int(round(float(v) * 255)) for v in tuple(rgba)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"
