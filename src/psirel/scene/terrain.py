"""Terrain: a DEM by spectral synthesis, carved by valleys and raised by ridges; slope and aspect.

The DEM is the sum of a smooth macro relief and a fractal detail whose amplitude grows with the
macro elevation (plains are smooth, mountains rough), so that gentle valley floors (towns,
fields, water) and steep high slopes (bare rock, landslides, layover) both occur. Meandering
valleys with flat floors and sharp-crested ridges are then drawn along random smooth paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from psirel.scene.fields import power_law_field


@dataclass
class Terrain:
    """DEM and its derivatives on the scene grid (row 0 is north).

    dem_m: elevation (m, float64); slope_deg: steepest slope (°); aspect_deg: direction the
    slope faces, clockwise from north (°); dz_dx, dz_dy: east and north gradients (m/m);
    valley_dist_m: distance to the nearest valley axis (m; inf without valleys);
    river: river pixels (bool); valleys, ridges: the axes as (row, col) px polylines.
    """

    dem_m: np.ndarray
    slope_deg: np.ndarray
    aspect_deg: np.ndarray
    dz_dx: np.ndarray
    dz_dy: np.ndarray
    valley_dist_m: np.ndarray
    river: np.ndarray
    valleys: list[np.ndarray] = field(default_factory=list)
    ridges: list[np.ndarray] = field(default_factory=list)


def slope_aspect(dem_m: np.ndarray, pixel_m: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slope (°), aspect (° clockwise from north, the direction the slope faces) and the east and
    north gradients dz/dx, dz/dy (m/m) of a north-up DEM (m) with ``pixel_m`` pixels."""
    gy, gx = np.gradient(dem_m, pixel_m)
    dz_dx, dz_dy = gx, -gy  # rows run southwards
    slope = np.degrees(np.arctan(np.hypot(dz_dx, dz_dy)))
    aspect = np.degrees(np.arctan2(-dz_dx, -dz_dy)) % 360.0
    return slope, aspect, dz_dx, dz_dy


def meander_path(rng: np.random.Generator, shape: tuple[int, int], wiggle: float = 0.35,
                 step_px: float = 1.0) -> np.ndarray:
    """A smooth random path (row, col in px, float) that crosses the grid from one edge to the
    opposite one, with direction changes correlated over ~50 steps."""
    ny, nx = shape
    n_steps = int(3 * (ny + nx) / step_px)
    horizontal = rng.random() < 0.5
    start_frac = rng.uniform(0.15, 0.85)
    heading = rng.uniform(-0.5, 0.5)  # rad, relative to the crossing direction
    turn = ndimage.gaussian_filter1d(rng.standard_normal(n_steps), 50.0, mode="nearest")
    turn *= wiggle / max(turn.std(), 1e-9)
    angle = heading + turn  # keep heading near the crossing direction: no loops back
    angle = np.clip(angle, -1.2, 1.2)
    along, across = np.cumsum(np.cos(angle)) * step_px, np.cumsum(np.sin(angle)) * step_px
    if horizontal:
        rows, cols = start_frac * ny + across, along - 2.0
    else:
        rows, cols = along - 2.0, start_frac * nx + across
    inside = (rows > -2) & (rows < ny + 1) & (cols > -2) & (cols < nx + 1)
    first_out = np.argmin(inside[1:]) + 1 if not inside[1:].all() else len(inside)
    return np.column_stack([rows[:first_out], cols[:first_out]])


def path_distance_m(paths: list[np.ndarray], shape: tuple[int, int], pixel_m: float
                    ) -> np.ndarray:
    """Distance (m) from every pixel to the nearest of ``paths`` (px polylines); inf if none."""
    if not paths:
        return np.full(shape, np.inf)
    mask = np.ones(shape, bool)
    for p in paths:
        r, c = np.round(p[:, 0]).astype(int), np.round(p[:, 1]).astype(int)
        ok = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
        mask[r[ok], c[ok]] = False
    if mask.all():
        return np.full(shape, np.inf)
    return ndimage.distance_transform_edt(mask) * pixel_m


def make_terrain(rng: np.random.Generator, shape: tuple[int, int], pixel_m: float,
                 relief_m: float = 160.0, base_m: float = 320.0, ruggedness_m: float = 45.0,
                 tilt_m: float = 0.0, tilt_azimuth_deg: float = 0.0) -> Terrain:
    """Draw a DEM (m) on a ``shape`` grid of ``pixel_m`` (m) pixels.

    ``relief_m`` is the standard deviation of the macro relief (the total range is a few times
    larger); ``base_m`` the lowest elevation; ``ruggedness_m`` the amplitude of the fractal
    detail on rugged ground (1.5 m on plains). ``tilt_m``: a plane that lowers the scene by
    that many metres across its width towards ``tilt_azimuth_deg`` (clockwise from north), so
    that one side holds the lowest ground (a coast); it draws nothing, so ``tilt_m = 0`` leaves
    the DEM unchanged. About one valley per 25 km² and one ridge per 50 km² (at least one of
    each).
    """
    ny, nx = shape
    area_km2 = ny * nx * pixel_m**2 / 1e6
    macro = power_law_field(rng, shape, pixel_m, beta=5.0, corner_m=5000.0, coarse=4)
    detail = power_law_field(rng, shape, pixel_m, beta=3.8, corner_m=1500.0)
    ruggedness = 1.0 / (1.0 + np.exp(-3.0 * (macro - 0.3)))  # 0 on plains, 1 in mountains
    # softplus: the low ground flattens into plains, the high ground steepens into mountains
    h = (relief_m * 1.6 * np.logaddexp(0.0, 2.0 * macro) / 2.0
         + (1.5 + ruggedness_m * ruggedness) * detail)

    valleys = [meander_path(rng, shape) for _ in range(max(1, int(round(area_km2 / 25.0))))]
    ridges = [meander_path(rng, shape, wiggle=0.5)
              for _ in range(max(1, int(round(area_km2 / 50.0))))]
    valley_dist = path_distance_m(valleys, shape, pixel_m)
    ridge_dist = path_distance_m(ridges, shape, pixel_m)
    if valleys:
        floor_m, wall_m = rng.uniform(100, 250), rng.uniform(300, 600)
        # the floor sits a quarter of the way from the scene's low ground up to the local
        # mean: deep steep-walled valleys in the mountains, shallow ones in the plains
        local = ndimage.gaussian_filter(h, sigma=max(2.0, 500.0 / pixel_m))
        low = np.quantile(h, 0.05)
        floor_level = low + 0.25 * np.maximum(local - low, 0.0)
        # 1 on the flat floor, a smooth cosine wall up to the valley shoulders, 0 beyond
        g = np.clip((valley_dist - floor_m) / wall_m, 0.0, 1.0)
        carve = 0.5 * (1.0 + np.cos(np.pi * g))
        h = np.minimum(h, h * (1.0 - carve) + floor_level * carve)
    if ridges:
        width_m = rng.uniform(250, 500)
        crest = rng.uniform(0.6, 1.0) * relief_m
        g = np.clip(ridge_dist / width_m, 0.0, 1.0)
        # the crest rises and falls along the ridge: a chain of summits and saddles, not a wall
        summits = np.clip(0.6 + 0.5 * power_law_field(rng, shape, pixel_m, beta=4.0,
                                                      corner_m=2000.0, coarse=8), 0.1, 1.3)
        h = h + crest * 0.5 * (1.0 + np.cos(np.pi * g)) * summits * (0.6 + 0.4 * ruggedness)
    if tilt_m:
        a = np.radians(tilt_azimuth_deg)
        rows, cols = np.mgrid[0:ny, 0:nx]
        east, north = cols - (nx - 1) / 2.0, (ny - 1) / 2.0 - rows
        h = h - tilt_m * (east * np.sin(a) + north * np.cos(a)) / max(nx - 1, 1)
    h = h - h.min() + base_m
    slope, aspect, dz_dx, dz_dy = slope_aspect(h, pixel_m)
    river_half_m = rng.uniform(8.0, 16.0)
    river = valley_dist <= river_half_m
    return Terrain(h, slope, aspect, dz_dx, dz_dy, valley_dist, river, valleys, ridges)
