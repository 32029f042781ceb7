"""Topography-correlated velocity biases: smooth in time, so the series looks clean, yet the
velocity is not deformation.

Two mechanisms a PSI expert knows from mountainous scenes (both are linear trends in the series,
so the residual around a linear + annual fit stays small; the bias shows only as velocities that
follow the topography — across neighbours, with their height differences — not the ground):

* *stratified-atmosphere trend* (in ``atmosphere.py``): the residual height-correlated delay
  drifts through the stack (a wetter second year, a change of the processor's APS model), so
  every point gets ``trend · Δh`` mm/yr, ``Δh`` its height above the reference point: high
  ground far above the reference seems to move;
* *DEM error leaking into the velocity* (here): the processor removes the topographic phase
  with a coarser DEM than the terrain (``dem_resolution_m``, SRTM-like) whose error grows with
  the slope — it misses crests and gullies (the resolution loss: the coarse DEM minus the
  terrain) and carries a random error of ``flat_m + slope_m · tan(slope)`` metres correlated
  over ``corr_m`` (hundreds of metres, as SRTM's errors are: radar penetration, filled voids,
  the slope-dependent bias of its own interferometry). The residual height the processor fails
  to estimate couples into the velocity when the perpendicular baselines drift through the
  stack (the height–velocity trade-off): ``coupling · ε`` mm/yr for a height error ``ε`` m,
  ``coupling`` (mm/yr per m) drawn per scene, ``B⊥ drift / (R sin θ)`` (e.g. 0.1 mm/yr per m
  for a drift of about 50 m/yr at R ≈ 850 km). On steep relief this reaches several mm/yr;
  neighbours on the same slope share most of it, so the bias shows as velocities that follow
  the relief (steep, high, crests and gullies) rather than a deformation pattern.

The same coupling turns the height difference of the scatterers mixed in a layover cell into a
velocity bias (``psi_points.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from psirel.scene.fields import power_law_field
from psirel.scene.terrain import Terrain


@dataclass
class TopoBias:
    """``dem_error_m``: error of the processor's DEM (m, float32, scene grid: its DEM minus the
    terrain); ``coupling_mm_yr_per_m``: velocity bias per metre of residual height error."""

    dem_error_m: np.ndarray
    coupling_mm_yr_per_m: float

    def velocity_bias_mm_yr(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Velocity bias (mm/yr, float64) of points in pixels (``row``, ``col``)."""
        return self.coupling_mm_yr_per_m * self.dem_error_m[row, col].astype(np.float64)


def make_topo_bias(rng: np.random.Generator, terrain: Terrain, pixel_m: float,
                   coupling_max_mm_yr_per_m: float = 0.25, dem_resolution_m: float = 30.0,
                   flat_m: float = 1.5, slope_m: float = 12.0, corr_m: float = 200.0
                   ) -> TopoBias:
    """Draw the processor's DEM error and the scene's height–velocity coupling (± 40–100 % of
    ``coupling_max_mm_yr_per_m``, either sign). ``dem_resolution_m``: posting of the coarse DEM;
    ``flat_m``, ``slope_m``: its random error (m) is ``flat_m + slope_m · tan(slope)``, with a
    correlation length of about ``corr_m`` (m)."""
    sigma_px = max(0.5, 0.5 * dem_resolution_m / pixel_m)
    coarse = ndimage.gaussian_filter(terrain.dem_m, sigma_px)
    spread = flat_m + slope_m * np.tan(np.radians(np.minimum(terrain.slope_deg, 70.0)))
    noise = power_law_field(rng, terrain.dem_m.shape, pixel_m, beta=3.0, corner_m=corr_m,
                            coarse=max(1, int(round(dem_resolution_m / pixel_m))))
    noise /= max(float(noise.std()), 1e-9)
    error = (coarse - terrain.dem_m) + spread * noise
    coupling = float(coupling_max_mm_yr_per_m * rng.uniform(0.4, 1.0) * rng.choice([-1.0, 1.0]))
    return TopoBias(error.astype(np.float32), coupling)
