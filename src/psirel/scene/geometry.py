"""SAR look geometry over the terrain: local incidence, layover and shadow.

The sensor is right-looking: it flies along ``heading_deg`` (clockwise from north) and looks at
``heading + 90°``. With ``r̂`` the horizontal look direction (sensor → ground), the terrain slope
along range is ``s_r = atan(∇z · r̂)``: positive on slopes facing the sensor. A slope facing the
sensor steeper than the incidence angle is in *layover* (its top images before its foot); a slope
facing away steeper than ``90° − incidence`` is in *shadow* (the beam never reaches it). These are
the local (active) criteria; passive layover and shadow beyond the slopes are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    sight; ≤ 0 where the beam grazes or misses the surface), ``layover`` and ``shadow`` (bool)."""

    range_slope_deg: np.ndarray
    cos_local_incidence: np.ndarray
    layover: np.ndarray
    shadow: np.ndarray


def look_masks(dz_dx: np.ndarray, dz_dy: np.ndarray, look: LookGeometry) -> GeometryMasks:
    """Layover/shadow masks and local incidence from the terrain's east/north gradients (m/m)."""
    a = np.radians(look.look_azimuth_deg)
    range_slope = np.degrees(np.arctan(dz_dx * np.sin(a) + dz_dy * np.cos(a)))
    e, n, u = look.los_enu
    norm = np.sqrt(dz_dx**2 + dz_dy**2 + 1.0)
    cos_loc = (-dz_dx * e - dz_dy * n + u) / norm  # surface normal (-dz/dx, -dz/dy, 1)/|.|
    layover = range_slope > look.incidence_deg
    shadow = range_slope < -(90.0 - look.incidence_deg)
    return GeometryMasks(range_slope, cos_loc, layover, shadow)
