"""Residual atmospheric delay: what is left of the atmospheric phase screen (APS) after the PSI
processor has estimated and removed it.

Per date, a smooth turbulent screen (Kolmogorov-like spectrum, β = 8/3, flattening beyond
about 1 km: the processor's spatial filter has removed the longer wavelengths, so the residual
is about as strong everywhere farther than a few hundred metres from the reference point) plus
a height-correlated (stratified) delay whose coefficient follows the seasons (more water vapour
in summer), with a small random part per date, and *drifts* through the stack (a wetter second
year, or an APS model that changed): ``trend`` mm/yr per km of height, drawn per scene (either
sign, 30–100 % of ``stratified_trend_mm_yr_per_km``). Both are relative to the scene's
reference point, as PSI results are: the stratified error grows with the height difference
from it. The screens are
spatially correlated, so neighbouring points share them — neighbours do not average them out —
and white in time, so they barely bias velocities; the stratified drift does: it adds
``trend · Δh`` mm/yr to a point ``Δh`` km above the reference, a smooth trend the series
residual does not reveal (see ``topography.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psirel.scene.fields import bilinear, power_law_field


@dataclass
class Atmosphere:
    """Residual APS, LOS delay in mm (positive = apparent motion towards the sensor).

    screens_mm: (n_dates, gy, gx) float32 turbulent screens on a coarse grid of ``cell_px``
    scene pixels, zero at the reference point; stratified_mm_per_km: (n_dates,) delay per km
    of height above ``ref_height_m``; stratified_trend_mm_yr_per_km: the drift of that
    coefficient (already in ``stratified_mm_per_km``): the velocity bias per km of height.
    """

    screens_mm: np.ndarray
    cell_px: float
    stratified_mm_per_km: np.ndarray
    ref_height_m: float
    stratified_trend_mm_yr_per_km: float = 0.0

    def velocity_bias_mm_yr(self, height_m: np.ndarray) -> np.ndarray:
        """Velocity bias (mm/yr, float64) of the stratified drift at heights ``height_m``."""
        dh_km = (np.asarray(height_m, np.float64) - self.ref_height_m) / 1000.0
        return self.stratified_trend_mm_yr_per_km * dh_km

    def delay_mm(self, row: np.ndarray, col: np.ndarray, height_m: np.ndarray) -> np.ndarray:
        """Delay (mm, float64, shape (n, n_dates)) at points given in fractional scene pixels
        (``row``, ``col`` from the top-left corner) with heights ``height_m`` (m)."""
        turb = bilinear(self.screens_mm, row / self.cell_px - 0.5, col / self.cell_px - 0.5)
        dh_km = (np.asarray(height_m, np.float64) - self.ref_height_m) / 1000.0
        return turb + dh_km[:, None] * self.stratified_mm_per_km[None, :]


def make_atmosphere(rng: np.random.Generator, shape: tuple[int, int], pixel_m: float,
                    day_of_year: np.ndarray, ref_row: float, ref_col: float, ref_height_m: float,
                    turbulence_mm: float = 2.0, stratified_mm_per_km: float = 3.0,
                    cell_m: float = 100.0, corner_m: float = 1000.0,
                    years: np.ndarray | None = None,
                    stratified_trend_mm_yr_per_km: float = 0.0) -> Atmosphere:
    """Draw one residual screen per date (``day_of_year``: fraction of the year per date).

    ``turbulence_mm``: median standard deviation of a date's turbulent screen on an unbounded
    plane (a few-km scene sees less); ``stratified_mm_per_km``: spread of the height-correlated
    coefficient; ``cell_m``: resolution of the coarse screens (m); ``corner_m``: the wavelength
    beyond which the turbulent spectrum flattens (m); ``years``: the dates in years
    (needed for a drift), ``stratified_trend_mm_yr_per_km``: the largest drift of the
    height-correlated coefficient (mm/yr per km). The reference point is
    (``ref_row``, ``ref_col``) in fractional scene pixels at ``ref_height_m`` (m).
    """
    cell_px = max(1.0, cell_m / pixel_m)
    gy, gx = int(np.ceil(shape[0] / cell_px)) + 1, int(np.ceil(shape[1] / cell_px)) + 1
    n = len(day_of_year)
    scale = turbulence_mm * rng.lognormal(0.0, 0.4, n)
    screens = np.empty((n, gy, gx), np.float32)
    for i in range(n):  # one screen per date (tens), each a vectorised FFT
        screens[i] = scale[i] * power_law_field(rng, (gy, gx), cell_px * pixel_m, beta=8.0 / 3.0,
                                                corner_m=corner_m)
    ref = bilinear(screens, np.array([ref_row / cell_px - 0.5]),
                   np.array([ref_col / cell_px - 0.5]))[0]
    screens -= ref[:, None, None].astype(np.float32)
    seasonal = np.cos(2.0 * np.pi * (np.asarray(day_of_year) - 0.55))  # humid mid-summer
    strat = stratified_mm_per_km * (0.6 * seasonal + 0.3 * rng.standard_normal(n))
    trend = float(stratified_trend_mm_yr_per_km * rng.uniform(0.3, 1.0)
                  * rng.choice([-1.0, 1.0]))
    if years is not None:
        t = np.asarray(years, np.float64)
        strat = strat + trend * (t - t.mean())
    else:
        trend = 0.0
    return Atmosphere(screens, cell_px, strat, float(ref_height_m), trend)
