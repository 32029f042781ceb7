"""True ground motion, projected on the line of sight (LOS, positive towards the sensor).

Five kinds of real deformation, on top of stable ground with a faint smooth drift:

* subsidence bowls under about half the towns, at least one (groundwater pumping, compaction
  of young sediments), and under farmland (irrigation wells, about one per 8 km²): vertical,
  Gaussian in shape, 3–25 mm/yr;
* landslides on steep bare or grass slopes: a plateau of fast downslope motion (15–60 mm/yr
  along the slope) with sharp edges, elongated downhill; placed only where the slope is neither
  in layover nor in shadow and where the LOS sees at least a third of the motion;
* slow slope creep on the steeper natural ground (grass, rock, forest over 12°): soil and
  debris creeping downslope at 1–8 mm/yr over hillsides hundreds of metres across, where a
  smooth random field is positive, growing with the slope. Seen in the LOS towards the sensor
  on slopes that face it and away on the others — a velocity pattern that follows the aspect,
  unlike the topography-correlated biases of ``topography.py``;
* settling buildings: about one building in ten (buildings: Voronoi cells of ~25 m over the
  built-up land) consolidates on soft ground — new construction or added load — by 4–20 mm
  (LOS) with a time constant of 0.4–1.5 years, from a date before or during the stack. The
  motion is non-linear (it decelerates, or starts mid-stack), real, and local: all the points on
  the building share it while the street around does not — a velocity anomaly that an expert
  keeps;
* seasonal motion: soils swell and shrink with their water content (annual, 0.5–5 mm vertical,
  largest on farmland and grassland, peak in early spring); buildings expand with summer heat
  (thermal dilation, proportional to the scatterer's height, applied per point).

Fields are sampled per pixel: velocity (mm/yr, LOS), seasonal amplitude (mm, LOS) and the peak
of the seasonal cycle (fraction of the year).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from psirel.scene.fields import power_law_field
from psirel.scene.geometry import GeometryMasks, LookGeometry
from psirel.scene.landcover import BARE, BUILT_UP, CROPLAND, FOREST, GRASSLAND, LandCover
from psirel.scene.terrain import Terrain

STABLE, SUBSIDENCE, LANDSLIDE, CREEP, SETTLEMENT = 0, 1, 2, 3, 4


@dataclass
class Deformation:
    """Deformation fields on the scene grid.

    velocity_mm_yr: LOS velocity (mm/yr, + towards the sensor); seasonal_mm: LOS amplitude of
    the annual ground cycle (mm); seasonal_peak: when it peaks (fraction of the year, 0 … 1);
    source: STABLE / SUBSIDENCE / LANDSLIDE / CREEP / SETTLEMENT per pixel (uint8); bowls,
    landslides: records (px centres, sizes in m, rates in mm/yr) for the scene description.
    building_id: the building of each built-up pixel (int32, 0 elsewhere); per building id
    (index 0: none) its consolidation ``settle_mm`` (LOS mm, 0 if it does not settle), start
    ``settle_start_yr`` (years from the first date) and time constant ``settle_tau_yr``.
    """

    velocity_mm_yr: np.ndarray
    seasonal_mm: np.ndarray
    seasonal_peak: np.ndarray
    source: np.ndarray
    bowls: list[dict] = field(default_factory=list)
    landslides: list[dict] = field(default_factory=list)
    building_id: np.ndarray | None = None
    settle_mm: np.ndarray = field(default_factory=lambda: np.zeros(1))
    settle_start_yr: np.ndarray = field(default_factory=lambda: np.zeros(1))
    settle_tau_yr: np.ndarray = field(default_factory=lambda: np.ones(1))

    def settlement_mm(self, row: np.ndarray, col: np.ndarray, years: np.ndarray) -> np.ndarray:
        """LOS displacement (mm, (n, T)) of the building settlement at pixels (``row``,
        ``col``) at ``years`` (0 where no building settles)."""
        if self.building_id is None:
            return np.zeros((len(row), len(years)))
        b = self.building_id[row, col]
        since = np.maximum(years[None, :] - self.settle_start_yr[b, None], 0.0)
        return self.settle_mm[b, None] * -np.expm1(-since / self.settle_tau_yr[b, None])


def make_deformation(rng: np.random.Generator, terrain: Terrain, cover: LandCover,
                     geometry: GeometryMasks, look: LookGeometry, pixel_m: float
                     ) -> Deformation:
    """Draw the deformation fields for a scene (see the module docstring for the model)."""
    shape = terrain.dem_m.shape
    ny, nx = shape
    area_km2 = ny * nx * pixel_m**2 / 1e6
    los = look.los_enu
    up = los[2]  # LOS sensitivity to vertical motion (cos θ)
    velocity = 0.4 * power_law_field(rng, shape, pixel_m, beta=3.5, corner_m=8000.0, coarse=8)
    source = np.zeros(shape, np.uint8)

    bowls = []
    towns = [s for s in cover.settlements if s["kind"] == "town"]
    for i, s in enumerate(towns):
        if rng.random() < 0.6 or i == 0:  # at least one subsiding town per scene
            r = s["radius_m"]
            bowls.append({"kind": "town", "row": s["row"] + rng.uniform(-0.3, 0.3) * r / pixel_m,
                          "col": s["col"] + rng.uniform(-0.3, 0.3) * r / pixel_m,
                          "radius_m": r * rng.uniform(0.7, 1.4),
                          "vertical_mm_yr": -rng.uniform(4.0, 25.0)})
    farmland = np.flatnonzero(cover.lulc.ravel() == CROPLAND)
    for _ in range(rng.poisson(area_km2 / 8.0) if farmland.size else 0):
        row, col = divmod(int(rng.choice(farmland)), nx)
        bowls.append({"kind": "farmland", "row": float(row), "col": float(col),
                      "radius_m": rng.uniform(600.0, 1500.0),
                      "vertical_mm_yr": -rng.uniform(3.0, 10.0)})
    for b in bowls:
        w = _window(shape, b["row"], b["col"], 2.5 * b["radius_m"] / pixel_m)
        d2 = ((w.rows - b["row"]) ** 2 + (w.cols - b["col"]) ** 2) * (pixel_m / b["radius_m"]) ** 2
        profile = np.exp(-2.0 * d2)
        velocity[w.slices] += b["vertical_mm_yr"] * up * profile
        source[w.slices][profile > 0.25] = SUBSIDENCE
        b["los_mm_yr"] = b["vertical_mm_yr"] * up

    creep_los, creep_on = _creep(rng, terrain, cover, los, pixel_m)
    velocity += creep_los
    source[creep_on & (source == STABLE)] = CREEP
    landslides = _landslides(rng, terrain, cover, geometry, los, pixel_m, area_km2)
    for ls in landslides:
        w = _window(shape, ls["row"], ls["col"], 1.5 * ls["length_m"] / pixel_m)
        a = np.radians(ls["downslope_azimuth_deg"])
        east, south = (w.cols - ls["col"]) * pixel_m, (w.rows - ls["row"]) * pixel_m
        u = east * np.sin(a) - south * np.cos(a)   # along the downslope direction (m)
        v = east * np.cos(a) + south * np.sin(a)   # across it (m)
        r2 = (u / (0.5 * ls["length_m"])) ** 2 + (v / (0.5 * ls["width_m"])) ** 2
        profile = np.exp(-(r2**3))  # plateau with sharp edges (super-Gaussian)
        velocity[w.slices] += ls["los_mm_yr"] * profile
        source[w.slices][profile > 0.3] = LANDSLIDE

    building_id, settle = _buildings(rng, cover, pixel_m, up)
    settling = settle[0][building_id] != 0
    source[settling & (source == STABLE)] = SETTLEMENT

    wet = np.isin(cover.lulc, (CROPLAND, GRASSLAND))
    swell = np.clip(power_law_field(rng, shape, pixel_m, beta=3.0, corner_m=1500.0, coarse=4),
                    -1.5, 2.5)
    seasonal = (0.8 + wet * (2.0 + 1.2 * swell)) * up
    peak = (rng.uniform(0.12, 0.25)
            + 0.03 * power_law_field(rng, shape, pixel_m, beta=3.0, corner_m=3000.0, coarse=8))
    return Deformation(velocity.astype(np.float32), np.maximum(seasonal, 0.0).astype(np.float32),
                       (peak % 1.0).astype(np.float32), source, bowls, landslides, building_id,
                       *settle)


def _buildings(rng: np.random.Generator, cover: LandCover, pixel_m: float, up: float,
               size_m: float = 25.0, share: float = 0.1
               ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Buildings (Voronoi cells of about ``size_m`` over built-up, non-road land: int32 ids, 0
    elsewhere) and, per id, the settlement of the ``share`` that settle: LOS consolidation (mm,
    negative: away from the sensor), start (yr) and time constant (yr)."""
    built = (cover.lulc == BUILT_UP) & ~cover.road
    where = np.flatnonzero(built)
    n = max(1, int(round(where.size * pixel_m**2 / size_m**2))) if where.size else 0
    ids = np.zeros(built.shape, np.int32)
    if n:
        seeds = rng.choice(where, size=min(n, where.size), replace=False)
        marker = np.ones(built.shape, bool)
        marker.flat[seeds] = False
        ids.flat[seeds] = np.arange(1, seeds.size + 1, dtype=np.int32)
        _, (ri, ci) = ndimage.distance_transform_edt(marker, return_indices=True)
        ids = np.where(built, ids[ri, ci], 0).astype(np.int32)
        n = seeds.size
    settles = rng.random(n + 1) < share
    settles[0] = False
    amount = np.where(settles, -up * rng.uniform(5.0, 24.0, n + 1), 0.0)
    start = rng.uniform(-1.5, 1.2, n + 1)
    tau = rng.uniform(0.4, 1.5, n + 1)
    return ids, (amount, start, tau)


def _downslope(terrain: Terrain, los: np.ndarray, pixel_m: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope (°) and downslope azimuth (rad) smoothed over ~40 m, and the LOS sensitivity to
    motion down that slope (LOS mm per mm along the slope, + towards the sensor)."""
    sigma = max(1.0, 40.0 / pixel_m)
    slope = ndimage.gaussian_filter(terrain.slope_deg, sigma)
    gx = ndimage.gaussian_filter(terrain.dz_dx, sigma)
    gy = ndimage.gaussian_filter(terrain.dz_dy, sigma)
    down_az = np.arctan2(-gx, -gy)  # downslope = the direction the slope faces
    s = np.radians(slope)
    motion = np.stack([np.sin(down_az) * np.cos(s), np.cos(down_az) * np.cos(s), -np.sin(s)])
    return slope, down_az, np.tensordot(los, motion, axes=1)


def _creep(rng: np.random.Generator, terrain: Terrain, cover: LandCover, los: np.ndarray,
           pixel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Slow slope creep: LOS velocity (mm/yr) and where it creeps (bool). Downslope rate
    ``8 · clip(field, 0, 1) · clip((slope − 12°) / 18°, 0, 1)`` mm/yr on natural ground, with
    ``field`` a smooth random field (~600 m hillsides); creeping where the rate exceeds 1."""
    slope, _, sensitivity = _downslope(terrain, los, pixel_m)
    field = 0.2 + 0.8 * power_law_field(rng, slope.shape, pixel_m, beta=4.0, corner_m=600.0,
                                        coarse=4)
    natural = np.isin(cover.lulc, (BARE, GRASSLAND, FOREST))
    rate = (8.0 * np.clip(field, 0.0, 1.0) * np.clip((slope - 12.0) / 18.0, 0.0, 1.0)
            * natural)
    return (rate * sensitivity).astype(np.float32), rate > 1.0


def _landslides(rng: np.random.Generator, terrain: Terrain, cover: LandCover,
                geometry: GeometryMasks, los: np.ndarray, pixel_m: float, area_km2: float
                ) -> list[dict]:
    """About one landslide per 3 km² (at least one where a site exists): steep (18–40°) bare
    rock or grassland, away from layover and shadow, well seen by the LOS."""
    slope, down_az, sensitivity = _downslope(terrain, los, pixel_m)
    bad_geometry = ndimage.binary_dilation(geometry.layover | geometry.shadow,
                                           iterations=max(1, int(30.0 / pixel_m)))
    ok = ((slope > 18.0) & (slope < 40.0) & np.isin(cover.lulc, (BARE, GRASSLAND))
          & ~bad_geometry & (np.abs(sensitivity) > 0.35))
    cand = np.flatnonzero(ok)
    count = max(1, int(round(area_km2 / 3.0)))
    if cand.size == 0:
        return []
    out: list[dict] = []
    placed = np.empty((0, 2))
    nx = slope.shape[1]
    for idx in rng.choice(cand, size=min(cand.size, 30 * count), replace=False):
        rc = np.array(divmod(int(idx), nx), float)
        if placed.size and np.min(np.hypot(*(placed - rc).T)) * pixel_m < 700.0:
            continue
        r, c = int(rc[0]), int(rc[1])
        rate = rng.uniform(15.0, 60.0)  # along the slope, downhill (mm/yr)
        length = rng.uniform(150.0, 500.0)
        out.append({"row": float(r), "col": float(c), "length_m": length,
                    "width_m": length * rng.uniform(0.35, 0.7),
                    "slope_deg": float(slope[r, c]),
                    "downslope_azimuth_deg": float(np.degrees(down_az[r, c]) % 360.0),
                    "rate_mm_yr": rate, "los_mm_yr": float(rate * sensitivity[r, c])})
        placed = np.vstack([placed, rc])
        if len(out) == count:
            break
    return out


@dataclass
class _Window:
    slices: tuple[slice, slice]
    rows: np.ndarray
    cols: np.ndarray


def _window(shape: tuple[int, int], row: float, col: float, half_px: float) -> _Window:
    """The part of the grid within ``half_px`` of (row, col), with its pixel coordinates."""
    h = int(np.ceil(half_px))
    r0, r1 = max(0, int(row) - h), min(shape[0], int(row) + h + 1)
    c0, c1 = max(0, int(col) - h), min(shape[1], int(col) + h + 1)
    rows, cols = np.mgrid[r0:max(r0, r1), c0:max(c0, c1)]
    return _Window((slice(r0, max(r0, r1)), slice(c0, max(c0, c1))), rows, cols)
