"""A world per seed: sensor, pixel size, terrain type, land-cover product and mix of causes.

``SceneParams()`` is one world (C band, 12-day revisit, 61 dates, hills, WorldCover); only its
random fields change with the seed. A model trained on such scenes learns that world's
constants: what λ/2 is, how many dates a series has, which codes the land cover uses, how
often each artefact occurs. ``draw(seed, n_points)`` draws the world itself, from the seed's own
``"world"`` stream (``rng.child_rng``), so that scenes of different seeds differ in every
respect a model must generalise over:

* sensor: band C (λ 55.5 mm, half the draws), X (31.0 mm) or L (236.0 mm); a revisit typical
  of the band's missions (C 6/12/24/35 d, X 11/16 d, L 12/14/16/24 d; one draw in seven any
  6–35 d); a span of 1–6 years with 20–150 dates (L band at least 60 dates over 2.5 years: its
  velocities are four times noisier per radian); ascending (heading −15 … −10°) or descending
  (−170 … −165°); incidence 25–45° (35–45° over alpine terrain);
* pixel size 5–30 m (log-uniform), the raster side from ``params.default_size_px``;
* terrain: flat coastal (relief of tens of metres, near sea level, tilted towards a sea and
  lagoons), hills (the default world's) or alpine (relief of hundreds of metres from 500–1,400
  m, rock from a lower elevation rank, steep slopes: more layover, shadow and landslides; the
  layover point density × ``ALPINE_LAYOVER``, as mountain processing masks layover);
* land-cover product: WorldCover, CORINE or NLCD (``landcover.PRODUCT_CODES``), with a UTM zone
  where that product exists (global, Europe, the USA);
* climate (the residual atmosphere: arid, temperate or humid) and the processor's DEM (SRTM
  90 m or 30 m, Copernicus GLO-30, TanDEM-X 12 m: its error and posting);
* the mix of causes: every rate of ``PointModel`` and every artefact amplitude of the scene is
  multiplied by its cause's factor, log-uniform in ``CAUSE_RANGE`` (0.3–3; the scatterers' SCR
  in ``SCR_RANGE``, 0.6–1.6, as the noise-dominated share reacts strongly to it). The factors
  are drawn around a common level, so that a world with many layover points has fewer
  outliers, and the labelled unreliable share stays within about 8–40 %.

Band physics that does not depend on the draw: L band keeps more coherence in vegetation
(SCR × 3 on fields, meadows and forest, × 2 elsewhere) and adds ionospheric delay
(turbulence × 1.5); X band loses coherence in vegetation (SCR × 0.7); the probability of
unwrapping errors from fast motion scales with the motion per revisit in cycles,
``(55.5 mm / λ) · (revisit / 12 d)`` (0.25–4).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from psirel.scene.landcover import CROPLAND, FOREST, GRASSLAND, PRODUCTS
from psirel.scene.params import PointModel, SceneParams, default_size_px
from psirel.scene.rng import child_rng

# band → (wavelength mm, typical revisits d, share of the draws, a mission like it)
BANDS: dict[str, tuple[float, tuple[int, ...], float, str]] = {
    "C": (55.5, (6, 12, 24, 35), 0.5, "Sentinel-1 / ERS / Envisat-like"),
    "X": (31.0, (11, 16), 0.25, "TerraSAR-X / COSMO-SkyMed-like"),
    "L": (236.0, (12, 14, 16, 24), 0.25, "ALOS-2 / NISAR / SAOCOM-like"),
}
TERRAINS = ("flat_coastal", "hills", "alpine")
# climate → factor on (turbulent, stratified) residual atmosphere
CLIMATES: dict[str, tuple[float, float]] = {"arid": (0.5, 0.6), "temperate": (1.0, 1.0),
                                            "humid": (1.5, 1.4)}
# the processor's DEM: name → (posting m, flat error m, slope error m, correlation m)
DEMS: dict[str, tuple[float, float, float, float]] = {
    "SRTM-like, 90 m": (90.0, 3.0, 12.0, 300.0), "SRTM-like, 30 m": (30.0, 1.5, 8.0, 200.0),
    "Copernicus GLO-30-like": (30.0, 1.0, 4.0, 150.0),
    "TanDEM-X-like, 12 m": (12.0, 0.8, 3.0, 100.0)}
# product → (UTM zones, northing range m): where the product has data
REGIONS: dict[str, tuple[tuple[int, int], tuple[float, float]]] = {
    "worldcover": ((1, 60), (1.0e6, 6.5e6)), "corine": ((29, 35), (4.0e6, 7.0e6)),
    "nlcd": ((10, 19), (3.3e6, 5.4e6))}
CAUSES = ("scr", "outlier", "temporary", "unwrapping", "spurious", "sidelobe", "layover",
          "atmosphere", "height_coupling", "moisture")
CAUSE_RANGE = (0.3, 3.0)
SCR_RANGE = (0.6, 1.6)
COMMON_WEIGHT = 0.5  # share of each log-factor removed as the mean of all: keeps the total sane
# a residual turbulent delay beyond this share of λ leaves a stack that cannot be unwrapped
# in time (date-to-date differences reach λ/4 on most points of a long stack)
MAX_TURBULENCE_CYCLES = 0.03
PIXEL_M_RANGE = (5.0, 30.0)
# L band: a velocity is 4× noisier per radian than in C band, so only long, dense stacks
# (NISAR-like) give velocities to ~1 mm/yr
L_MIN_DATES, L_MIN_SPAN_YEARS = 60, 2.5
ALPINE_LAYOVER = 0.4  # factor on the layover point density in alpine worlds (masked there)
DATES_RANGE = (20, 150)
SPAN_YEARS_RANGE = (1.0, 6.0)
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class WorldDraw:
    """What ``draw`` drew for a seed (recorded under ``"world"`` in scene.json) and the
    resulting ``params``. Lengths in m, angles in °, the wavelength in mm; ``causes``: the
    factor on each cause's rates and amplitudes (``CAUSES``)."""

    seed: int
    band: str
    wavelength_mm: float
    revisit_days: int
    n_dates: int
    span_years: float
    start_date: dt.date
    pass_direction: str
    heading_deg: float
    incidence_deg: float
    pixel_m: float
    size_px: int
    terrain: str
    lulc_product: str
    crs: str
    climate: str
    dem: str
    causes: dict[str, float]
    params: SceneParams = field(repr=False)

    @property
    def name(self) -> str:
        """A short tag, e.g. ``C-asc-12d-hills-corine``."""
        return (f"{self.band}-{self.pass_direction[:3]}-{self.revisit_days}d-{self.terrain}-"
                f"{self.lulc_product}")

    def to_dict(self) -> dict:
        """JSON-ready record of the draw (without ``params``, which scene.json holds)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if f.name != "params"}
        d["start_date"] = self.start_date.isoformat()
        d["causes"] = {k: float(round(v, 4)) for k, v in self.causes.items()}
        return {"kind": "random", "name": self.name, **d}


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw(seed: int, n_points: int) -> WorldDraw:
    """Draw the world of scene ``seed`` holding ``n_points`` points (deterministic in the
    seed; see the module docstring for what is drawn)."""
    rng = child_rng(seed, "world")
    base = SceneParams()
    # sensor
    bands = list(BANDS)
    band = bands[rng.choice(len(bands), p=[BANDS[b][2] for b in bands])]
    wavelength, revisits, _, mission = BANDS[band]
    revisit = int(rng.choice(revisits)) if rng.random() > 1 / 7 else int(rng.integers(6, 36))
    min_dates = L_MIN_DATES if band == "L" else DATES_RANGE[0]
    lo = max(SPAN_YEARS_RANGE[0], (min_dates - 1) * revisit / DAYS_PER_YEAR,
             L_MIN_SPAN_YEARS if band == "L" else 0.0)
    hi = min(SPAN_YEARS_RANGE[1], (DATES_RANGE[1] - 1) * revisit / DAYS_PER_YEAR)
    span = rng.uniform(lo, max(lo, hi))
    n_dates = int(np.clip(round(span * DAYS_PER_YEAR / revisit) + 1, *DATES_RANGE))
    start = dt.date(2015, 1, 1) + dt.timedelta(days=int(rng.integers(0, 7 * 365)))
    ascending = rng.random() < 0.5
    heading = rng.uniform(-15.0, -10.0) if ascending else rng.uniform(-170.0, -165.0)
    # grid
    pixel_m = round(_log_uniform(rng, *PIXEL_M_RANGE), 1)
    size_px = default_size_px(int(n_points), pixel_m)
    # terrain
    terrain = TERRAINS[int(rng.integers(len(TERRAINS)))]
    if terrain == "flat_coastal":
        shape = {"relief_m": rng.uniform(8.0, 30.0), "base_elevation_m": rng.uniform(0.0, 8.0),
                 "terrain_ruggedness_m": rng.uniform(4.0, 12.0),
                 "terrain_tilt_m": rng.uniform(15.0, 50.0),
                 "terrain_tilt_azimuth_deg": rng.uniform(0.0, 360.0),
                 "lake_share": rng.uniform(0.08, 0.2), "bare_rank": 0.97}
    elif terrain == "hills":
        shape = {"relief_m": rng.uniform(100.0, 250.0),
                 "base_elevation_m": rng.uniform(150.0, 600.0),
                 "terrain_ruggedness_m": rng.uniform(30.0, 60.0),
                 "lake_share": rng.uniform(0.02, 0.05), "bare_rank": rng.uniform(0.8, 0.9)}
    else:
        shape = {"relief_m": rng.uniform(300.0, 500.0),
                 "base_elevation_m": rng.uniform(500.0, 1400.0),
                 "terrain_ruggedness_m": rng.uniform(50.0, 80.0),
                 "lake_share": 0.02, "bare_rank": rng.uniform(0.6, 0.75)}
    # steep mountains are imaged from steep incidences (less layover): 35–45° there
    incidence = rng.uniform(35.0 if terrain == "alpine" else 25.0, 45.0)
    # land-cover product and where it is
    products = list(PRODUCTS)
    product = products[int(rng.integers(len(products)))]
    (z0, z1), (y0, y1) = REGIONS[product]
    zone = int(rng.integers(z0, z1 + 1))
    origin_x = round(rng.uniform(300_000.0, 700_000.0), -2)
    origin_y = round(rng.uniform(y0, y1), -2)
    # climate, DEM
    climate = list(CLIMATES)[int(rng.integers(len(CLIMATES)))]
    turb, strat = CLIMATES[climate]
    dems = [d for d in DEMS if terrain != "alpine" or DEMS[d][0] < 90.0]  # no 90 m in the Alps
    dem = dems[int(rng.integers(len(dems)))]
    dem_res, dem_flat, dem_slope, dem_corr = DEMS[dem]
    # causes: log-uniform factors, pulled towards their common level
    z = np.array([rng.uniform(math.log(SCR_RANGE[0]), math.log(SCR_RANGE[1])) if c == "scr"
                  else rng.uniform(math.log(CAUSE_RANGE[0]), math.log(CAUSE_RANGE[1]))
                  for c in CAUSES])
    z -= COMMON_WEIGHT * z.mean()
    causes = {c: float(math.exp(v)) for c, v in zip(CAUSES, z, strict=True)}
    if terrain == "alpine":  # mountain processing masks much of the layover the DEM predicts
        causes["layover"] = ALPINE_LAYOVER * min(causes["layover"], 1.0)
    turb *= {"L": 1.5, "X": 0.6}.get(band, 1.0)
    # the processor fits the height–delay relation per date: the larger the scene's height
    # range, the better constrained, the smaller the residual per km
    strat *= min(1.0, base.relief_m / shape["relief_m"])
    turbulence_mm = min(base.atmosphere_turbulence_mm * turb * causes["atmosphere"],
                        MAX_TURBULENCE_CYCLES * wavelength)
    points = _point_model(base.points, causes, band, wavelength, revisit)
    params = dataclasses.replace(
        base, n_points=int(n_points), seed=int(seed), size_px=size_px, pixel_m=pixel_m,
        crs=f"EPSG:{32600 + zone}", origin_x_m=origin_x, origin_y_m=origin_y,
        start_date=start, revisit_days=revisit, n_dates=n_dates, wavelength_mm=wavelength,
        heading_deg=heading, incidence_deg=incidence, **shape,
        atmosphere_turbulence_mm=turbulence_mm,
        atmosphere_stratified_mm_per_km=(base.atmosphere_stratified_mm_per_km * strat
                                         * causes["atmosphere"]),
        atmosphere_stratified_trend_mm_yr_per_km=(base.atmosphere_stratified_trend_mm_yr_per_km
                                                  * strat * causes["atmosphere"]),
        dem_resolution_m=dem_res, dem_error_flat_m=dem_flat, dem_error_slope_m=dem_slope,
        dem_error_corr_m=dem_corr,
        height_coupling_mm_yr_per_m=base.height_coupling_mm_yr_per_m * causes["height_coupling"],
        moisture_velocity_mm_yr=base.moisture_velocity_mm_yr * causes["moisture"],
        moisture_seasonal_mm=base.moisture_seasonal_mm * causes["moisture"],
        points=points, lulc_product=product,
        sensor_name=f"{band}-band, {mission}, right-looking", dem_name=dem)
    return WorldDraw(int(seed), band, wavelength, revisit, n_dates,
                     round((n_dates - 1) * revisit / DAYS_PER_YEAR, 3), start,
                     "ascending" if ascending else "descending", round(heading, 3),
                     round(incidence, 3), pixel_m, size_px, terrain, product,
                     params.crs, climate, dem, causes, params)


def draw_world(seed: int, n_points: int) -> SceneParams:
    """The scene parameters of the world ``draw(seed, n_points)`` draws."""
    return draw(seed, n_points).params


def _point_model(m: PointModel, f: dict[str, float], band: str, wavelength_mm: float,
                 revisit_days: int) -> PointModel:
    """``m`` with every rate scaled by its cause's factor and the band's physics (module
    docstring); rates that are probabilities stay below 0.97."""
    vegetation = {"L": 3.0, "X": 0.7}.get(band, 1.0)
    other = {"L": 2.0}.get(band, 1.0)
    scr = {c: s * f["scr"] * (vegetation if c in (GRASSLAND, CROPLAND, FOREST) else other)
           for c, s in m.scr_median.items()}
    cycles = float(np.clip((55.5 / wavelength_mm) * (revisit_days / 12.0), 0.25, 4.0))

    def p(x: float) -> float:
        return float(min(x, 0.97))

    return dataclasses.replace(
        m, scr_median=scr,
        outlier_rate=m.outlier_rate * f["outlier"],
        temporary_rate=m.temporary_rate * f["temporary"],
        temporary_rate_built=m.temporary_rate_built * f["temporary"],
        unwrap_base=m.unwrap_base * f["unwrapping"],
        unwrap_fast=m.unwrap_fast * f["unwrapping"] * cycles,
        unwrap_noisy=m.unwrap_noisy * f["unwrapping"],
        points_per_unwrap_patch=m.points_per_unwrap_patch / f["unwrapping"],
        spurious_rate={c: p(r * f["spurious"]) for c, r in m.spurious_rate.items()},
        sidelobe_rate=p(m.sidelobe_rate * f["sidelobe"]),
        layover_density=m.layover_density * f["layover"],
        distributed_rate={c: p(r * math.sqrt(f["moisture"]))
                          for c, r in m.distributed_rate.items()})
