"""Generate a synthetic PSI scene on disk: points, DEM, land cover, amplitude and scene.json.

Files written into ``out_dir`` (each atomically: a reader never sees a partial file):

* ``points.<ext>`` (layer ``psi``): ``pid``, ``velocity`` (mm/yr, LOS), ``coherence`` (0 … 1),
  ``height`` (m), ``reliable`` (1/0), then one ``DYYYYMMDD`` column per date (mm, 0 at the first
  date); streamed chunk by chunk through :class:`psirel.io.points.PointWriter`;
* ``dem.tif`` (float32, m), ``lulc.tif`` (the land-cover product's codes, nodata 0: uint8
  WorldCover codes in the default world, ``landcover.PRODUCT_DTYPES``), ``amplitude.tif``
  (float32, linear stack-mean amplitude): GeoTIFF, DEFLATE, 256 × 256 tiles;
* ``scene.json``: every parameter, the acquisition, class statistics, label rates and artefact
  counts, and for a random world what was drawn (``"world"``). It holds no timing, so a seed
  always gives the same bytes.

Worlds: ``"default"`` is ``SceneParams()`` (C band, 12-day revisit, hills, WorldCover) with the
seed's random fields; ``"random"`` draws the world itself from the seed (``worlds.py``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio

from psirel.errors import PsirelError
from psirel.io.atomic import atomic_path, atomic_write_text
from psirel.io.points import PointWriter
from psirel.scene.artefacts import ARTEFACTS
from psirel.scene.deformation import CREEP, LANDSLIDE, SETTLEMENT, STABLE, SUBSIDENCE
from psirel.scene.labels import REASONS
from psirel.scene.landcover import (
    CLASS_NAMES,
    NODATA,
    PRODUCT_CODES,
    PRODUCT_DTYPES,
    PRODUCTS,
    encode_lulc,
)
from psirel.scene.params import SceneParams, default_size_px
from psirel.scene.psi_points import PointBlock, simulate_block
from psirel.scene.rng import child_rng
from psirel.scene.world import BLOCK_POINTS, World, build_world
from psirel.scene.worlds import WorldDraw, draw

WORLDS = ("default", "random")

FORMATS: dict[str, str] = {"gpkg": "gpkg", "shp": "shp", "parquet": "parquet", "csv": "csv"}
SCENE_VERSION = 1
CHUNK_BLOCKS = 16  # 65,536 points per write: bounded memory at any scene size


def generate_scene(out_dir: Path | str, n_points: int = 20_000, seed: int = 0,
                   size_px: int | None = None, pixel_m: float | None = None, fmt: str = "gpkg",
                   progress: Callable[[int, int], None] | None = None,
                   world: str = "default") -> dict:
    """Generate a scene of ``n_points`` PS points on a ``size_px`` × ``size_px`` grid of
    ``pixel_m`` (m) pixels (default size: ≈ 2,500 points/km², at least 256 px) and write it to
    ``out_dir`` as ``fmt`` (gpkg, shp, parquet or csv). ``progress(done, total)`` is called after
    each chunk of points. Returns the scene description (the content of scene.json).

    ``world``: ``"default"`` (``SceneParams()``: 10 m pixels unless ``pixel_m`` is given) or
    ``"random"`` (``worlds.draw(seed, n_points)``: sensor, pixel size, terrain, land-cover
    product and causes drawn from the seed). In a random world a ``pixel_m`` or ``size_px``
    given here replaces the drawn one (``size_px`` then follows the given ``pixel_m``), and
    scene.json lists it under ``world.overrides``; everything else stays as drawn."""
    if fmt not in FORMATS:
        raise PsirelError(f"format '{fmt}': choose one of {', '.join(FORMATS)}")
    if world not in WORLDS:
        raise PsirelError(f"world '{world}': choose one of {', '.join(WORLDS)}")
    if int(n_points) < 1:
        raise PsirelError(f"--points {n_points}: need at least one point")
    if pixel_m is not None and not pixel_m > 0:
        raise PsirelError(f"--pixel-m {pixel_m}: must be positive")
    if size_px is not None and int(size_px) < 32:
        raise PsirelError(f"--size-px {size_px}: need at least 32 px")
    drawn = None
    if world == "default":
        px_m = 10.0 if pixel_m is None else float(pixel_m)
        size = default_size_px(int(n_points), px_m) if size_px is None else int(size_px)
        params = SceneParams(n_points=int(n_points), seed=int(seed), size_px=size,
                             pixel_m=px_m)
    else:
        drawn = draw(int(seed), int(n_points))
        params = drawn.params
        if pixel_m is not None or size_px is not None:
            px_m = params.pixel_m if pixel_m is None else float(pixel_m)
            size = default_size_px(int(n_points), px_m) if size_px is None else int(size_px)
            params = dataclasses.replace(params, pixel_m=px_m, size_px=size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene_world = build_world(params)
    write_rasters(scene_world, out)
    points_name = f"points.{FORMATS[fmt]}"
    stats = write_points(scene_world, out / points_name, progress)
    scene = describe(scene_world, stats, points_name)
    if drawn is not None:
        scene["world"] = _world_record(drawn, params, pixel_m, size_px)
    atomic_write_text(out / "scene.json", json.dumps(scene, indent=2) + "\n")
    return scene


def _world_record(drawn: WorldDraw, params: SceneParams, pixel_m: float | None,
                  size_px: int | None) -> dict:
    """The ``"world"`` entry of scene.json: the draw, as the scene has it (after the caller's
    overrides, which it lists)."""
    record = drawn.to_dict()
    record["pixel_m"], record["size_px"] = params.pixel_m, params.size_px
    record["overrides"] = [k for k, v in (("pixel_m", pixel_m), ("size_px", size_px))
                           if v is not None]
    return record


def lulc_raster(world: World) -> np.ndarray:
    """The land cover as written to lulc.tif: the internal classes in the codes of the scene's
    product (``landcover.encode_lulc``, from the scene's ``"lulc_codes"`` stream)."""
    p = world.params
    return encode_lulc(child_rng(p.seed, "lulc_codes"), world.cover.lulc, p.lulc_product,
                       p.pixel_m, world.cover.road, world.terrain.river)


def iter_chunks(world: World, chunk_blocks: int = CHUNK_BLOCKS):
    """Yield the scene's points as :class:`PointBlock` chunks of ``chunk_blocks`` blocks. The
    values do not depend on ``chunk_blocks``: every block has its own random stream."""
    for first in range(0, world.n_blocks, chunk_blocks):
        last = min(first + chunk_blocks, world.n_blocks)
        yield PointBlock.concat([simulate_block(world, b, BLOCK_POINTS)
                                 for b in range(first, last)])


def write_rasters(world: World, out: Path) -> None:
    """Write dem.tif, lulc.tif and amplitude.tif (GeoTIFF, DEFLATE, 256 × 256 tiles)."""
    layers = (("dem.tif", world.terrain.dem_m.astype(np.float32), None),
              ("lulc.tif", lulc_raster(world), NODATA),
              ("amplitude.tif", world.amplitude.astype(np.float32), None))
    for name, data, nodata in layers:
        profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0],
                   "count": 1, "dtype": data.dtype.name, "crs": world.params.crs,
                   "transform": world.transform, "compress": "deflate", "tiled": True,
                   "blockxsize": 256, "blockysize": 256}
        if nodata is not None:
            profile["nodata"] = nodata
        with atomic_path(out / name) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            if name == "lulc.tif":   # the product, for psirel's legend detection
                dst.update_tags(LULC_LEGEND=world.params.lulc_product)


def write_points(world: World, path: Path, progress: Callable[[int, int], None] | None = None
                 ) -> dict:
    """Stream all points to ``path`` (layer ``psi``); return the statistics for scene.json."""
    names = world.acquisition.column_names
    n = world.params.n_points
    stats = _Stats()
    done = 0
    with PointWriter(path, world.params.crs, layer="psi") as writer:
        for chunk in iter_chunks(world):
            columns = {"pid": chunk.pid, "velocity": chunk.velocity,
                       "coherence": chunk.coherence, "height": chunk.height,
                       "reliable": chunk.reliable}
            by_date = np.ascontiguousarray(chunk.series.T)  # one contiguous array per column
            columns.update({name: by_date[i] for i, name in enumerate(names)})
            writer.write(chunk.x, chunk.y, columns)
            stats.add(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, n)
    return stats.summary()


class _Stats:
    """Running counts over the point chunks (integers only, so the order cannot matter)."""

    def __init__(self) -> None:
        self.points = np.zeros(256, np.int64)
        self.unreliable = np.zeros(256, np.int64)
        self.reasons = dict.fromkeys(REASONS, 0)
        self.artefacts = dict.fromkeys(ARTEFACTS, 0)
        self.motion = {k: [0, 0] for k in ("stable", "subsidence", "landslide", "creep",
                                           "building_settlement")}

    def add(self, c: PointBlock) -> None:
        self.points += np.bincount(c.lulc, minlength=256)
        self.unreliable += np.bincount(c.lulc[c.reliable == 0], minlength=256)
        for name, bit in REASONS.items():
            self.reasons[name] += int(np.count_nonzero(c.reasons & bit))
        for name, bit in ARTEFACTS.items():
            self.artefacts[name] += int(np.count_nonzero(c.artefacts & bit))
        for name, code in (("stable", STABLE), ("subsidence", SUBSIDENCE),
                           ("landslide", LANDSLIDE), ("creep", CREEP),
                           ("building_settlement", SETTLEMENT)):
            on = c.source == code
            self.motion[name][0] += int(on.sum())
            self.motion[name][1] += int((on & (c.reliable == 0)).sum())

    def summary(self) -> dict:
        return {"points": self.points, "unreliable": self.unreliable, "reasons": self.reasons,
                "artefacts": self.artefacts, "motion": self.motion}


def _r(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def _land_cover(product: str, classes: list[dict]) -> dict:
    """scene.json's land-cover entry; the classes are the internal ones, and for another
    product than WorldCover each lists the product codes it is written with."""
    if product == "worldcover":  # as in scene version 1
        return {"scheme": "ESA WorldCover", "nodata": NODATA, "roads": "coded built-up (50)",
                "classes": classes}
    codes = PRODUCT_CODES[product]
    return {"scheme": PRODUCTS[product], "product": product, "dtype": PRODUCT_DTYPES[product],
            "nodata": NODATA, "roads": "coded built-up (the product's road code)",
            "classes": [{**c, "product_codes": list(codes[c["code"]])} for c in classes]}


def describe(world: World, stats: dict, points_name: str) -> dict:
    """The scene description written to scene.json (JSON-ready, deterministic)."""
    p, acq, look = world.params, world.acquisition, world.acquisition.look
    t = world.transform
    px_area_km2 = p.pixel_m**2 / 1e6
    n_total = int(stats["points"].sum())
    n_unrel = int(stats["unreliable"].sum())
    pixels = np.bincount(world.cover.lulc.ravel(), minlength=256)

    def xy(row: float, col: float) -> list[float]:  # pixel centre → map coordinates (m)
        return [_r(p.origin_x_m + (col + 0.5) * p.pixel_m, 1),
                _r(p.origin_y_m - (row + 0.5) * p.pixel_m, 1)]

    classes = []
    per_class = {}
    for code, name in CLASS_NAMES.items():
        n_pts, n_bad = int(stats["points"][code]), int(stats["unreliable"][code])
        area = pixels[code] * px_area_km2
        classes.append({"code": code, "name": name, "pixels": int(pixels[code]),
                        "area_km2": _r(area, 4), "points": n_pts,
                        "density_per_km2": _r(n_pts / area if area else 0.0, 1),
                        "unreliable": n_bad})
        per_class[name] = _r(n_bad / n_pts if n_pts else 0.0)
    dem = world.terrain.dem_m
    geometry = world.geometry
    return {
        "psirel_scene_version": SCENE_VERSION,
        "seed": p.seed,
        "n_points": p.n_points,
        "crs": p.crs,
        "pixel_m": p.pixel_m,
        "size_px": p.size_px,
        "transform": [_r(v, 6) for v in tuple(t)[:6]],
        "bounds": [_r(p.origin_x_m), _r(p.origin_y_m - p.size_px * p.pixel_m),
                   _r(p.origin_x_m + p.size_px * p.pixel_m), _r(p.origin_y_m)],
        "files": {"points": points_name, "layer": "psi", "dem": "dem.tif", "lulc": "lulc.tif",
                  "amplitude": "amplitude.tif"},
        "columns": {"pid": "point id", "velocity": "mm/yr, LOS, + towards the sensor",
                    "coherence": "temporal coherence, 0..1", "height": "m",
                    "reliable": "1 reliable, 0 unreliable",
                    "DYYYYMMDD": "LOS displacement, mm, 0 at the first date"},
        "acquisition": {
            "sensor": p.sensor_name,
            "wavelength_mm": p.wavelength_mm, "heading_deg": p.heading_deg,
            "incidence_deg": p.incidence_deg, "look_azimuth_deg": _r(look.look_azimuth_deg),
            "los_enu": [_r(v) for v in look.los_enu], "revisit_days": p.revisit_days,
            "n_dates": p.n_dates, "dates": [d.isoformat() for d in acq.dates]},
        "parameters": p.to_dict(),
        "terrain": {"min_m": _r(dem.min(), 2), "max_m": _r(dem.max(), 2),
                    "mean_slope_deg": _r(world.terrain.slope_deg.mean(), 3),
                    "layover_fraction": _r(geometry.layover.mean()),
                    "shadow_fraction": _r(geometry.shadow.mean()),
                    "active_layover_fraction": _r(geometry.active_layover.mean()),
                    "active_shadow_fraction": _r(geometry.active_shadow.mean())},
        "topography_bias": {
            "reference_height_m": _r(world.atmosphere.ref_height_m, 2),
            "stratified_trend_mm_yr_per_km": _r(world.atmosphere.stratified_trend_mm_yr_per_km),
            "height_coupling_mm_yr_per_m": _r(world.topo.coupling_mm_yr_per_m),
            "dem_error_m": {"rms": _r(np.sqrt(np.mean(np.square(world.topo.dem_error_m,
                                                                dtype=np.float64))), 3),
                            "p99_abs": _r(np.percentile(np.abs(world.topo.dem_error_m), 99),
                                          3)}},
        "land_cover": _land_cover(p.lulc_product, classes),
        "settlements": [{"kind": s["kind"], "xy": xy(s["row"], s["col"]),
                         "radius_m": _r(s["radius_m"], 1),
                         "building_height_m": _r(s.get("building_height_m", 0.0), 2)}
                        for s in world.cover.settlements],
        "deformation": {
            "subsidence_bowls": [{"kind": b["kind"], "xy": xy(b["row"], b["col"]),
                                  "radius_m": _r(b["radius_m"], 1),
                                  "vertical_mm_yr": _r(b["vertical_mm_yr"], 3),
                                  "los_mm_yr": _r(b["los_mm_yr"], 3)}
                                 for b in world.deformation.bowls],
            "landslides": [{"xy": xy(ls["row"], ls["col"]), "length_m": _r(ls["length_m"], 1),
                            "width_m": _r(ls["width_m"], 1), "slope_deg": _r(ls["slope_deg"], 2),
                            "downslope_azimuth_deg": _r(ls["downslope_azimuth_deg"], 2),
                            "rate_mm_yr": _r(ls["rate_mm_yr"], 3),
                            "los_mm_yr": _r(ls["los_mm_yr"], 3)}
                           for ls in world.deformation.landslides],
            "creep_area_km2": _r((world.deformation.source == CREEP).sum() * px_area_km2, 4),
            "settling_buildings": int(np.count_nonzero(world.deformation.settle_mm)),
            "buildings": int(len(world.deformation.settle_mm) - 1),
            "points_by_motion": {k: {"points": v[0], "unreliable": v[1]}
                                 for k, v in stats["motion"].items()}},
        "soil_moisture": {"fields": int(len(world.moisture.trend_mm_yr)),
                          "trend_rms_mm_yr": _r(np.sqrt(np.mean(world.moisture.trend_mm_yr**2)))},
        "sidelobes": {"targets": int(np.unique(world.sidelobe_parent[world.sidelobe_parent >= 0])
                                     .size),
                      "dominated_pixels": int(np.count_nonzero(world.sidelobe_parent >= 0))},
        "unwrapping_patches": [{"xy": xy(r["row"], r["col"]), "radius_m": _r(r["radius_m"], 1),
                                "first_date": acq.dates[r["start_index"]].isoformat(),
                                "last_date": acq.dates[r["end_index"] - 1].isoformat(),
                                "cycles": r["cycles"], "on_moving_ground": r["on_moving_ground"]}
                               for r in world.unwrap.records],
        "label_rates": {"unreliable": _r(n_unrel / n_total), "reliable": _r(1 - n_unrel / n_total),
                        "per_class": per_class},
        "label_reasons": stats["reasons"],
        "artefacts": {**stats["artefacts"], "unwrapping_patches": len(world.unwrap.records)},
    }
