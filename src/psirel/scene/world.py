"""The scene as a whole, in memory: every raster and model the points are simulated from.

``build_world`` draws each component from its own random stream (see ``rng.py``) in a fixed
order: terrain → look geometry (active and passive layover and shadow) → land cover →
amplitude (with the sidelobes of strong targets) → deformation → atmosphere → topographic bias
(the processor's DEM error) → soil-moisture fields → unwrapping-error patches → point positions
(pixels). Points themselves are simulated later, block by block (``psi_points.simulate_block``),
so that memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.transform import Affine

from psirel.scene.acquisition import Acquisition
from psirel.scene.amplitude import backscatter, mean_amplitude
from psirel.scene.artefacts import UnwrapPatches, make_unwrap_patches
from psirel.scene.atmosphere import Atmosphere, make_atmosphere
from psirel.scene.deformation import Deformation, make_deformation
from psirel.scene.geometry import GeometryMasks, LookGeometry, look_masks
from psirel.scene.landcover import LandCover, make_landcover
from psirel.scene.params import SceneParams, point_margin_px
from psirel.scene.psi_points import density_weights, place_points
from psirel.scene.rng import child_rng
from psirel.scene.sidelobes import sidelobe_parents
from psirel.scene.surface import MoistureBias, make_moisture_bias
from psirel.scene.terrain import Terrain, make_terrain
from psirel.scene.topography import TopoBias, make_topo_bias

BLOCK_POINTS = 4096  # points per random stream: results do not depend on the writing chunk size


@dataclass
class World:
    """Everything drawn for one scene (rasters on a ``size_px`` × ``size_px`` grid, row 0 north).

    pixel_index: the pixel (row-major flat index) of every point, sorted, int64 (n_points,).
    sidelobe_parent: per pixel, the bright target whose sidelobe dominates it (flat index,
    int64; −1 for none).
    """

    params: SceneParams
    acquisition: Acquisition
    terrain: Terrain
    geometry: GeometryMasks
    cover: LandCover
    amplitude: np.ndarray
    deformation: Deformation
    atmosphere: Atmosphere
    topo: TopoBias
    moisture: MoistureBias
    unwrap: UnwrapPatches
    pixel_index: np.ndarray
    sidelobe_parent: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.terrain.dem_m.shape

    @property
    def transform(self) -> Affine:
        p = self.params
        return Affine(p.pixel_m, 0.0, p.origin_x_m, 0.0, -p.pixel_m, p.origin_y_m)

    @property
    def n_blocks(self) -> int:
        return -(-self.params.n_points // BLOCK_POINTS)


def build_world(params: SceneParams) -> World:
    """Draw all scene components for ``params`` (deterministic in ``params.seed``)."""
    p, seed = params, params.seed
    shape = (p.size_px, p.size_px)
    look = LookGeometry(p.heading_deg, p.incidence_deg)
    acq = Acquisition(p.start_date, p.revisit_days, p.n_dates, p.wavelength_mm, look)
    terrain = make_terrain(child_rng(seed, "terrain"), shape, p.pixel_m, p.relief_m,
                           p.base_elevation_m, p.terrain_ruggedness_m, p.terrain_tilt_m,
                           p.terrain_tilt_azimuth_deg)
    geometry = look_masks(terrain.dz_dx, terrain.dz_dy, look, terrain.dem_m, p.pixel_m)
    cover = make_landcover(child_rng(seed, "landcover"), terrain, p.pixel_m, p.lake_share,
                           p.bare_rank)
    rng = child_rng(seed, "amplitude")
    sigma0 = backscatter(rng, cover.lulc, cover.road, geometry, p.incidence_deg, p.pixel_m)
    sidelobe_parent, sigma0 = sidelobe_parents(sigma0, look, p.points.sidelobe_min_sigma0)
    amplitude = mean_amplitude(rng, sigma0, p.n_dates)
    del sigma0
    deformation = make_deformation(child_rng(seed, "deformation"), terrain, cover, geometry,
                                   look, p.pixel_m)
    ref_row, ref_col = shape[0] / 2.0, shape[1] / 2.0
    ref_h = float(terrain.dem_m[int(ref_row), int(ref_col)])
    atmosphere = make_atmosphere(child_rng(seed, "atmosphere"), shape, p.pixel_m,
                                 acq.day_of_year, ref_row, ref_col, ref_h,
                                 p.atmosphere_turbulence_mm, p.atmosphere_stratified_mm_per_km,
                                 years=acq.years,
                                 stratified_trend_mm_yr_per_km=p.atmosphere_stratified_trend_mm_yr_per_km)
    topo = make_topo_bias(child_rng(seed, "topography"), terrain, p.pixel_m,
                          p.height_coupling_mm_yr_per_m, p.dem_resolution_m,
                          p.dem_error_flat_m, p.dem_error_slope_m, p.dem_error_corr_m)
    moisture = make_moisture_bias(child_rng(seed, "moisture"), shape, p.pixel_m,
                                  p.moisture_field_m, p.moisture_velocity_mm_yr,
                                  p.moisture_seasonal_mm)
    weights = density_weights(cover.lulc, cover.road, geometry.layover, geometry.shadow,
                              amplitude, p.points)
    m = point_margin_px(p.size_px)
    edge = np.ones(shape, bool)
    edge[m:p.size_px - m, m:p.size_px - m] = False
    weights[edge] = 0.0
    points_per_px = weights * (p.n_points / weights.sum())
    del weights
    unwrap = make_unwrap_patches(child_rng(seed, "unwrap_patches"), deformation, points_per_px,
                                 p.pixel_m, p.n_dates, p.points.points_per_unwrap_patch)
    pixel_index = place_points(child_rng(seed, "placement"), points_per_px, p.n_points)
    return World(p, acq, terrain, geometry, cover, amplitude, deformation, atmosphere, topo,
                 moisture, unwrap, pixel_index, sidelobe_parent)
