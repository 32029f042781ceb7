"""Every parameter of a synthetic scene, with units; all of them are recorded in scene.json."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

from psirel.scene.landcover import BARE, BUILT_UP, CROPLAND, FOREST, GRASSLAND, WATER

TARGET_DENSITY_PER_KM2 = 2500.0
MIN_SIZE_PX = 256
# Rasters reach beyond the PSI processing area (as real DEMs and land-cover maps do), so that
# most points' 80 px patches lie on data rather than on edge padding.
POINT_MARGIN_PX = 40


def point_margin_px(size_px: int) -> int:
    """No points closer than this to the raster edge (half a patch, less on tiny rasters)."""
    return min(POINT_MARGIN_PX, size_px // 8)


def default_size_px(n_points: int, pixel_m: float) -> int:
    """Raster side (px): the point area at a mean density of ≈ 2,500 points/km² plus a
    ``POINT_MARGIN_PX`` margin on each side, at least 256 px."""
    side_m = math.sqrt(n_points / TARGET_DENSITY_PER_KM2) * 1000.0
    return max(MIN_SIZE_PX, int(round(side_m / pixel_m)) + 2 * POINT_MARGIN_PX)


@dataclass(frozen=True)
class PointModel:
    """How PS points are placed, how good they are, and what goes wrong with them.

    density: relative point density per land-cover class (per unit area; scaled so the scene
    holds ``n_points``); road_density: relative density on roads; layover_density,
    shadow_density: factors in layover (bright: processors select many points there) and in
    shadow. scr_median: median signal-to-clutter ratio per class (phase noise ≈ 1/√(2·SCR) rad),
    scr_spread_ln: its log-normal spread; road_scr: SCR factor on roads. layover_mix: range of
    the amplitude ratio of the second scatterer mixed into a layover point's cell;
    layover_dz_m: range of its height difference (m). outlier_rate: share of noise-dominated
    outliers (SCR 0.15–0.7); temporary_rate, temporary_rate_built: share of scatterers present
    for part of the stack. spurious_rate: share of points per class that are spurious
    scatterers (boats, floating debris, seasonal vegetation: their own smooth motion, not the
    ground's); spurious_velocity_mm_yr, spurious_seasonal_mm: spread of their trend and largest
    annual amplitude; spurious_scr_median: their median SCR (bright, coherent while present).
    distributed_rate: share of points per class that are distributed scatterers whose phase
    also follows the soil moisture of their field (``surface.py``), on ground gentler than
    distributed_max_slope_deg (fields and meadows, not rocky slopes). sidelobe_min_sigma0: the
    backscatter (linear σ0) from which a target's sidelobes count (``sidelobes.py``);
    sidelobe_rate: share of the points in a sidelobe-dominated pixel that are the sidelobe;
    sidelobe_scr_median: their median SCR (the bright target's).
    unwrap_*: isolated unwrapping-error probability = base + fast · min(|v|/40 mm/yr, 1)
    + noisy · (how far SCR is below 5); points_per_unwrap_patch: one spatial
    unwrapping-error patch per that many points; unwrap_patch_hit: the share of points inside
    a patch that take its jump; unwrap_min_dates: a point is labelled for unwrapping errors when
    its series is a cycle off on at least that many consecutive dates (a single wrong date is an
    outlier the expert tolerates as long as the velocity holds).
    thermal_mm_per_m: amplitude of buildings' annual thermal dilation (mm per m of height).
    noise_sigma_frac, velocity_tol_mm_yr, velocity_rel_tol: labelling thresholds (labels.py): a
    point is noise-dominated when the velocity's standard error from its phase noise exceeds
    ``noise_sigma_frac`` × the velocity tolerance.
    """

    density: dict[int, float] = field(default_factory=lambda: {
        BUILT_UP: 1.0, BARE: 0.55, GRASSLAND: 0.06, CROPLAND: 0.045, FOREST: 0.012,
        WATER: 0.002})
    road_density: float = 0.5
    layover_density: float = 0.4
    shadow_density: float = 0.15
    scr_median: dict[int, float] = field(default_factory=lambda: {
        BUILT_UP: 10.0, BARE: 10.0, GRASSLAND: 4.0, CROPLAND: 3.5, FOREST: 3.0, WATER: 1.2})
    scr_spread_ln: float = 0.6
    road_scr: float = 0.6
    layover_mix: tuple[float, float] = (0.1, 0.45)
    layover_dz_m: tuple[float, float] = (15.0, 80.0)
    outlier_rate: float = 0.03
    temporary_rate: float = 0.008
    temporary_rate_built: float = 0.02
    spurious_rate: dict[int, float] = field(default_factory=lambda: {WATER: 0.85, FOREST: 0.3})
    spurious_velocity_mm_yr: float = 4.0
    spurious_seasonal_mm: float = 3.0
    spurious_scr_median: float = 15.0
    distributed_rate: dict[int, float] = field(default_factory=lambda: {
        CROPLAND: 0.85, GRASSLAND: 0.6})
    distributed_max_slope_deg: float = 12.0
    sidelobe_min_sigma0: float = 3.0
    sidelobe_rate: float = 0.8
    sidelobe_scr_median: float = 20.0
    unwrap_base: float = 0.006
    unwrap_fast: float = 0.04
    unwrap_noisy: float = 0.02
    points_per_unwrap_patch: float = 2500.0
    unwrap_patch_hit: float = 0.85
    unwrap_min_dates: int = 2
    thermal_mm_per_m: float = 0.08
    noise_sigma_frac: float = 0.5
    velocity_tol_mm_yr: float = 2.0
    velocity_rel_tol: float = 0.15


@dataclass(frozen=True)
class SceneParams:
    """Scene-level parameters. Lengths in m, angles in degrees, the wavelength in mm.

    origin_x_m, origin_y_m: map coordinates of the raster's top-left corner in ``crs``
    (default: UTM 32N, in the foothills of the Alps). relief_m, base_elevation_m: see
    ``terrain.make_terrain``; atmosphere_*: ``atmosphere.make_atmosphere`` (the stratified trend
    is the largest drift of the height-correlated delay, mm/yr per km); dem_*,
    height_coupling_mm_yr_per_m: ``topography.make_topo_bias`` (the processor's DEM and the
    largest height–velocity coupling); moisture_*: ``surface.make_moisture_bias`` (field size,
    spread of the fields' moisture trends, largest annual amplitude).

    Fields added after scene version 1 (``EXTENSION_DEFAULTS``) shape the world that
    ``worlds.draw_world`` draws and appear in ``to_dict`` only when they differ from their
    defaults, so that a default scene keeps its bytes: terrain_ruggedness_m, terrain_tilt_m,
    terrain_tilt_azimuth_deg (``terrain.make_terrain``: the fractal detail's amplitude on rugged
    ground, and a plane tilting the scene by that many metres across its width, descending
    towards the azimuth, e.g. to the sea); lake_share, bare_rank (``landcover.make_landcover``:
    the lowest share of the scene that may hold lakes, and the elevation rank above which rock
    takes over); lulc_product: the product whose codes ``lulc.tif`` is written with
    (``landcover.PRODUCT_CODES``); sensor_name, dem_name: names recorded in scene.json.
    """

    n_points: int = 20_000
    seed: int = 0
    size_px: int = 283
    pixel_m: float = 10.0
    crs: str = "EPSG:32632"
    origin_x_m: float = 652_000.0
    origin_y_m: float = 5_182_000.0
    start_date: dt.date = dt.date(2019, 1, 6)
    revisit_days: int = 12
    n_dates: int = 61
    wavelength_mm: float = 55.5
    heading_deg: float = -10.0
    incidence_deg: float = 35.0
    relief_m: float = 160.0
    base_elevation_m: float = 320.0
    atmosphere_turbulence_mm: float = 0.8
    atmosphere_stratified_mm_per_km: float = 1.5
    atmosphere_stratified_trend_mm_yr_per_km: float = 6.0
    dem_resolution_m: float = 30.0
    dem_error_flat_m: float = 1.5
    dem_error_slope_m: float = 8.0
    dem_error_corr_m: float = 200.0
    height_coupling_mm_yr_per_m: float = 0.15
    moisture_field_m: float = 250.0
    moisture_velocity_mm_yr: float = 3.0
    moisture_seasonal_mm: float = 1.0
    points: PointModel = field(default_factory=PointModel)
    terrain_ruggedness_m: float = 45.0
    terrain_tilt_m: float = 0.0
    terrain_tilt_azimuth_deg: float = 0.0
    lake_share: float = 0.03
    bare_rank: float = 0.85
    lulc_product: str = "worldcover"
    sensor_name: str = "C-band, Sentinel-1-like, right-looking"
    dem_name: str = "SRTM-like, 30 m"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["start_date"] = self.start_date.isoformat()
        for name, default in EXTENSION_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d


# Fields added after scene version 1, with their defaults: left out of ``to_dict`` when at
# the default, so that scene.json of a default scene is unchanged.
EXTENSION_DEFAULTS: dict[str, object] = {
    f.name: f.default for f in dataclasses.fields(SceneParams)
    if f.name in ("terrain_ruggedness_m", "terrain_tilt_m", "terrain_tilt_azimuth_deg",
                  "lake_share", "bare_rank", "lulc_product", "sensor_name", "dem_name")}
