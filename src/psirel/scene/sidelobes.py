"""Sidelobes of very bright scatterers: ghost points that carry another scatterer's motion.

A SAR image of a very bright target (a metal roof, a corner between a wall and the street, a
pylon) is the system's impulse response: a bright peak with sidelobes along range and azimuth,
a cross a few pixels long. Where the target outshines the pixel's own clutter many times over,
the sidelobe dominates the pixel: a PSI processor finds there a stable, coherent "scatterer"
(amplitude dispersion of the bright target) and selects it as a PS. Its series is the bright
target's — smooth, coherent, with the target's motion and the target's height — but it is
geolocated a few pixels away, on a street, a yard, a field or water. An expert removes such
points (processors filter sidelobes): the velocity belongs to another structure. Nothing in the
point's own series betrays it; the amplitude image does — the cross of the bright target
through the point, along the range or azimuth line — and so do the neighbours: a point with the
same series a few pixels away, and a height that is the target's, not the ground's.

``sidelobe_parents`` adds the sidelobe power of every target at least ``min_sigma0`` bright to
the pixels within ``reach_px`` pixels along its range and azimuth lines (``FACTORS`` of the
target's power, about −13, −17 and −20 dB at 1, 2 and 3 pixels), and records, for every pixel
whose own backscatter the strongest sidelobe exceeds ``dominance`` times, that target as the
pixel's parent.
"""

from __future__ import annotations

import numpy as np

from psirel.scene.geometry import LookGeometry

FACTORS = (0.05, 0.02, 0.01)  # sidelobe power relative to the peak at 1, 2, 3 px


def _shift(a: np.ndarray, dr: int, dc: int, fill: float) -> np.ndarray:
    """``out[r, c] = a[r - dr, c - dc]`` (``fill`` outside the grid)."""
    out = np.full(a.shape, fill, a.dtype)
    ny, nx = a.shape
    rs, rd = slice(max(0, -dr), ny - max(0, dr)), slice(max(0, dr), ny - max(0, -dr))
    cs, cd = slice(max(0, -dc), nx - max(0, dc)), slice(max(0, dc), nx - max(0, -dc))
    out[rd, cd] = a[rs, cs]
    return out


def sidelobe_offsets(look: LookGeometry, reach_px: int = 3) -> list[tuple[int, int, int]]:
    """(d_row, d_col, k) pixel offsets from a target to its sidelobes: ``k`` = 1 … ``reach_px``
    pixels along range (the look direction) and azimuth (the heading), both ways."""
    out = []
    for az in (np.radians(look.look_azimuth_deg), np.radians(look.heading_deg)):
        for k in range(1, reach_px + 1):
            for sign in (1, -1):
                dr = int(np.rint(-sign * k * np.cos(az)))
                dc = int(np.rint(sign * k * np.sin(az)))
                out.append((dr, dc, k))
    return out


def sidelobe_parents(sigma0: np.ndarray, look: LookGeometry, min_sigma0: float = 3.0,
                     dominance: float = 1.0, reach_px: int = 3
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The sidelobe-dominated pixels' parent target (flat pixel index, int64; −1 for none) and
    the backscatter with the sidelobes added (float64)."""
    s = np.asarray(sigma0, np.float64)
    flat = np.arange(s.size, dtype=np.int64).reshape(s.shape)
    added = np.zeros(s.shape)
    best = np.zeros(s.shape)
    parent = np.full(s.shape, -1, np.int64)
    bright = np.where(s >= min_sigma0, s, 0.0)
    for dr, dc, k in sidelobe_offsets(look, reach_px):
        if not bright.any():
            break
        peak = _shift(bright, dr, dc, 0.0)
        lobe = peak * FACTORS[min(k, len(FACTORS)) - 1]
        added += lobe
        take = (lobe >= dominance * s) & (lobe > best)
        best[take] = lobe[take]
        parent[take] = _shift(flat, dr, dc, -1)[take]
    return parent, s + added
