"""Soil moisture and vegetation on fields: a phase bias that looks like smooth motion.

On cropland and grassland many selected "PS" are not point scatterers but distributed ones (bare
soil, stubble, short vegetation) that happened to pass the selection. Their phase follows the
soil moisture and the vegetation of the field they lie in as well as the ground (the moisture
phase bias, or "fading signal", of C-band interferometry: De Zan et al. 2014, IEEE TGRS 52(1);
Ansari et al. 2021, IEEE TGRS 59(9)): an annual cycle, and a trend of a few mm/yr when one year
is wetter than the other or the crop rotation changes. Both are smooth in time — the residual
around a linear + annual fit stays small — and they differ from field to field: a point on a
field seems to move while the buildings and roads around it do not, and its neighbours on the
same field move with it. An expert who sees the land cover around the point and the velocities
of the other points distrusts it.

Fields are Voronoi cells of about ``field_m`` (a seed per ``field_m²``); each draws a trend
(normal, ``velocity_mm_yr`` spread) and an annual cycle (up to ``seasonal_mm``, its own peak).
Which points are distributed scatterers is drawn per point (``psi_points.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class MoistureBias:
    """``field_id`` (int32, scene grid): the field each pixel belongs to; per field the trend
    ``trend_mm_yr`` (mm/yr), the annual amplitude ``seasonal_mm`` (mm) and its ``peak``
    (fraction of the year)."""

    field_id: np.ndarray
    trend_mm_yr: np.ndarray
    seasonal_mm: np.ndarray
    peak: np.ndarray

    def series_mm(self, row: np.ndarray, col: np.ndarray, years: np.ndarray,
                  day_of_year: np.ndarray) -> np.ndarray:
        """The moisture phase (mm of LOS, (n, T), 0 at the first date) of points in pixels
        (``row``, ``col``)."""
        f = self.field_id[row, col]
        out = (self.trend_mm_yr[f, None] * years[None, :]
               + self.seasonal_mm[f, None] * np.cos(2 * np.pi * (day_of_year[None, :]
                                                                 - self.peak[f, None])))
        return out - out[:, :1]

    def velocity_bias_mm_yr(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """The trend (mm/yr) of the fields of pixels (``row``, ``col``)."""
        return self.trend_mm_yr[self.field_id[row, col]].astype(np.float64)


def make_moisture_bias(rng: np.random.Generator, shape: tuple[int, int], pixel_m: float,
                       field_m: float = 250.0, velocity_mm_yr: float = 3.0,
                       seasonal_mm: float = 2.5) -> MoistureBias:
    """Draw the fields (Voronoi cells, about one per ``field_m``² m²) and their moisture
    signals."""
    n_fields = max(1, int(round(shape[0] * shape[1] * pixel_m**2 / field_m**2)))
    seeds = rng.integers(0, shape[0] * shape[1], n_fields)
    marker = np.ones(shape, bool)
    marker.flat[seeds] = False
    ids = np.zeros(shape, np.int32)
    ids.flat[seeds] = np.arange(n_fields, dtype=np.int32)
    _, (ri, ci) = ndimage.distance_transform_edt(marker, return_indices=True)
    field_id = ids[ri, ci]
    trend = velocity_mm_yr * rng.standard_normal(n_fields)
    amp = seasonal_mm * rng.random(n_fields)
    peak = rng.random(n_fields)
    return MoistureBias(field_id.astype(np.int32), trend, amp, peak)
