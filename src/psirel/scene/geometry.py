"""SAR look geometry over the terrain: local incidence, layover and shadow.

The sensor is right-looking: it flies along ``heading_deg`` (clockwise from north) and looks at
``heading + 90°``. With ``r̂`` the horizontal look direction (sensor → ground), the terrain slope
along range is ``s_r = atan(∇z · r̂)``: positive on slopes facing the sensor. A slope facing the
sensor steeper than the incidence angle is in *active layover* (its top images before its foot); a
slope facing away steeper than ``90° − incidence`` is in *active shadow* (the beam never reaches
it). These local criteria miss most of what a real layover/shadow mask holds:

* *passive layover*: the ground in front of an active-layover slope (towards the sensor) and the
  ground behind its crest whose slant range equals that of some point of the slope — their
  returns land in the same range cells and mix with the slope's;
* *passive shadow*: the ground behind a ridge that the grazing beam cannot reach although it is
  not steep itself.

Both are found along range lines (``range_masks``): the DEM is resampled onto a grid whose rows
run along the look direction, and on each row a pixel at ground range ``g`` and height ``z`` has
slant range ``r = g sin θ − z cos θ``. It is in layover when another pixel of the row has the same
slant range (an earlier pixel with a larger ``r`` or a later one with a smaller ``r``), and in
shadow when an earlier pixel rises above the ray through it (``u = z + g cot θ`` below the
running maximum of ``u``). The masks are mapped back to the scene grid (nearest pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class LookGeometry:
    """Look direction of the sensor. Angles in degrees; ``incidence_deg`` on flat ground."""

    heading_deg: float = -10.0
    incidence_deg: float = 35.0

    @property
    def look_azimuth_deg(self) -> float:
        """Horizontal look direction, sensor → ground, clockwise from north (°)."""
        return (self.heading_deg + 90.0) % 360.0

    @property
    def los_enu(self) -> np.ndarray:
        """Unit vector ground → sensor in (east, north, up): a displacement ``d`` (east, north,
        up) moves the point towards the sensor by ``d · los_enu`` (positive LOS = towards)."""
        a, t = np.radians(self.look_azimuth_deg), np.radians(self.incidence_deg)
        return np.array([-np.sin(t) * np.sin(a), -np.sin(t) * np.cos(a), np.cos(t)])


@dataclass
class GeometryMasks:
    """Per-pixel look geometry: ``range_slope_deg`` (slope along range, + facing the sensor),
    ``cos_local_incidence`` (cosine of the angle between the surface normal and the line of
    sight; ≤ 0 where the beam grazes or misses the surface), ``layover`` and ``shadow`` (bool,
    active and passive), and ``active_layover``, ``active_shadow`` (bool, the local criteria)."""

    range_slope_deg: np.ndarray
    cos_local_incidence: np.ndarray
    layover: np.ndarray
    shadow: np.ndarray
    active_layover: np.ndarray
    active_shadow: np.ndarray


def look_masks(dz_dx: np.ndarray, dz_dy: np.ndarray, look: LookGeometry,
               dem_m: np.ndarray | None = None, pixel_m: float = 10.0) -> GeometryMasks:
    """Layover/shadow masks and local incidence from the terrain's east/north gradients (m/m);
    with ``dem_m`` (m, ``pixel_m`` pixels) the masks include passive layover and shadow."""
    a = np.radians(look.look_azimuth_deg)
    range_slope = np.degrees(np.arctan(dz_dx * np.sin(a) + dz_dy * np.cos(a)))
    e, n, u = look.los_enu
    norm = np.sqrt(dz_dx**2 + dz_dy**2 + 1.0)
    cos_loc = (-dz_dx * e - dz_dy * n + u) / norm  # surface normal (-dz/dx, -dz/dy, 1)/|.|
    active_layover = range_slope > look.incidence_deg
    active_shadow = range_slope < -(90.0 - look.incidence_deg)
    layover, shadow = active_layover.copy(), active_shadow.copy()
    if dem_m is not None:
        passive_layover, passive_shadow = range_masks(dem_m, pixel_m, look)
        layover |= passive_layover
        shadow |= passive_shadow & ~layover
    return GeometryMasks(range_slope, cos_loc, layover, shadow, active_layover, active_shadow)


def range_masks(dem_m: np.ndarray, pixel_m: float, look: LookGeometry
                ) -> tuple[np.ndarray, np.ndarray]:
    """Layover and shadow (bool, the DEM's shape) found along range lines (module docstring)."""
    ny, nx = dem_m.shape
    a = np.radians(look.look_azimuth_deg)
    theta = np.radians(look.incidence_deg)
    ra, az = np.array([np.sin(a), np.cos(a)]), np.array([np.cos(a), -np.sin(a)])  # (east, north)
    # scene pixel centres (east, north) in px, relative to the grid centre
    cy, cx = (ny - 1) / 2.0, (nx - 1) / 2.0
    corners = np.array([[-cx, -cy], [cx, -cy], [-cx, cy], [cx, cy]])
    g_half = np.abs(corners @ ra).max() + 1.0
    s_half = np.abs(corners @ az).max() + 1.0
    ng, ns = int(np.ceil(2 * g_half)) + 1, int(np.ceil(2 * s_half)) + 1
    g = np.arange(ng) - (ng - 1) / 2.0
    s = (np.arange(ns) - (ns - 1) / 2.0)[:, None]
    east, north = g[None, :] * ra[0] + s * az[0], g[None, :] * ra[1] + s * az[1]
    z = ndimage.map_coordinates(dem_m.astype(np.float32), [cy - north, cx + east], order=1,
                                mode="nearest")  # rows along the look direction
    slant = g[None, :] * pixel_m * np.sin(theta) - z * np.cos(theta)
    later_min = np.minimum.accumulate(slant[:, ::-1], axis=1)[:, ::-1]
    layover = np.zeros(slant.shape, bool)
    layover[:, 1:] = np.maximum.accumulate(slant, axis=1)[:, :-1] > slant[:, 1:]
    layover[:, :-1] |= later_min[:, 1:] < slant[:, :-1]
    ray = z + g[None, :] * pixel_m / np.tan(theta)
    shadow = np.zeros(slant.shape, bool)
    shadow[:, 1:] = np.maximum.accumulate(ray, axis=1)[:, :-1] > ray[:, 1:]
    del slant, later_min, ray, z
    # back to the scene grid: each scene pixel takes its nearest range-line pixel
    rows, cols = np.mgrid[0:ny, 0:nx]
    east, north = cols - cx, cy - rows
    gi = np.rint(east * ra[0] + north * ra[1] + (ng - 1) / 2.0).astype(np.int64)
    si = np.rint(east * az[0] + north * az[1] + (ns - 1) / 2.0).astype(np.int64)
    return layover[si, gi], shadow[si, gi]
