"""Where each PS point lies and what scatterer it is, drawn per point for ``psi_points``.

``sites``: the point jittered inside its pixel and what the rasters hold there (and at its
pixel's sidelobe parent). ``draw_scatterers``: its height above ground, signal-to-clutter ratio
(SCR: drawn around its class's median, raised by its pixel's brightness), and what may go wrong
with it — outlier, temporary, a layover cell's second scatterer, spurious on water and in
forest, distributed on fields, sidelobe ghost (see ``psi_points`` for how each shows in the
series, and ``labels`` for the expert's rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from psirel.scene.amplitude import SIGMA0
from psirel.scene.fields import bilinear
from psirel.scene.landcover import BUILT_UP, FOREST
from psirel.scene.params import PointModel

if TYPE_CHECKING:
    from psirel.scene.world import World


def class_lookup(values: dict[int, float], default: float = 0.0) -> np.ndarray:
    """A 256-entry table: class code → value."""
    table = np.full(256, default)
    for code, v in values.items():
        table[code] = v
    return table


# typical (Rayleigh mean) amplitude of each class: the reference its pixels' brightness is
# measured against
AMP_REF = class_lookup({c: np.sqrt(np.pi * s) / 2.0 for c, s in SIGMA0.items()}, 1.0)


@dataclass
class Site:
    """Where the points are: pixel (row, col), fractional position (row_f, col_f, px from the
    top-left corner), map coordinates x, y (m), and what the rasters hold there; ``parent``: the
    pixel's sidelobe parent (flat index, −1 for none) at ``parent_row``, ``parent_col``, and
    what the rasters hold there (land cover, road, roof height, DEM)."""

    row: np.ndarray
    col: np.ndarray
    row_f: np.ndarray
    col_f: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lulc: np.ndarray
    road: np.ndarray
    layover: np.ndarray
    shadow: np.ndarray
    amplitude: np.ndarray
    roof_m: np.ndarray
    dem_m: np.ndarray
    slope_deg: np.ndarray
    velocity_mm_yr: np.ndarray
    parent: np.ndarray
    parent_row: np.ndarray
    parent_col: np.ndarray
    parent_lulc: np.ndarray
    parent_road: np.ndarray
    parent_roof_m: np.ndarray
    parent_dem_m: np.ndarray


def sites(world: World, rng: np.random.Generator, pixel: np.ndarray) -> Site:
    """Jitter each point inside its pixel and sample the rasters there (bilinear for the DEM
    and the velocity field, the pixel's value for the rest)."""
    p = world.params
    row, col = np.divmod(pixel, world.shape[1])
    row_f, col_f = row + rng.random(row.size), col + rng.random(row.size)
    parent = world.sidelobe_parent[row, col]
    parent_row, parent_col = np.divmod(np.maximum(parent, 0), world.shape[1])
    return Site(
        row=row, col=col, row_f=row_f, col_f=col_f,
        x=p.origin_x_m + col_f * p.pixel_m, y=p.origin_y_m - row_f * p.pixel_m,
        lulc=world.cover.lulc[row, col], road=world.cover.road[row, col],
        layover=world.geometry.layover[row, col], shadow=world.geometry.shadow[row, col],
        amplitude=world.amplitude[row, col].astype(np.float64),
        roof_m=world.cover.building_height_m[row, col].astype(np.float64),
        dem_m=bilinear(world.terrain.dem_m, row_f - 0.5, col_f - 0.5),
        slope_deg=world.terrain.slope_deg[row, col],
        velocity_mm_yr=bilinear(world.deformation.velocity_mm_yr, row_f - 0.5, col_f - 0.5),
        parent=parent, parent_row=parent_row, parent_col=parent_col,
        parent_lulc=world.cover.lulc[parent_row, parent_col],
        parent_road=world.cover.road[parent_row, parent_col],
        parent_roof_m=world.cover.building_height_m[parent_row, parent_col].astype(np.float64),
        parent_dem_m=world.terrain.dem_m[parent_row, parent_col].astype(np.float64))


@dataclass
class Scatterers:
    """The scatterers: height above ground and absolute height (m), signal-to-clutter ratio,
    outlier and temporary flags, ``absent`` (n, T): dates a temporary scatterer is missing;
    ``mix`` (amplitude ratio of a layover cell's second scatterer, 0 outside layover) and
    ``mix_dz`` (its height difference, m), ``mix_psi`` (phase offset between the two, rad);
    ``spurious`` (bool) with its own motion: ``own_v`` (mm/yr), ``own_amp`` (mm), ``own_peak``
    (fraction of the year); ``distributed`` (bool): its phase follows its field's moisture;
    ``ghost`` (bool): the point is the sidelobe of its pixel's parent target (its height, SCR
    and building flag are then the parent's scatterer's)."""

    above_m: np.ndarray
    height: np.ndarray
    building: np.ndarray
    scr: np.ndarray
    outlier: np.ndarray
    temporary: np.ndarray
    absent: np.ndarray
    mix: np.ndarray
    mix_dz: np.ndarray
    mix_psi: np.ndarray
    spurious: np.ndarray
    own_v: np.ndarray
    own_amp: np.ndarray
    own_peak: np.ndarray
    distributed: np.ndarray
    ghost: np.ndarray


def draw_scatterers(m: PointModel, rng: np.random.Generator, site: Site, n_dates: int
                    ) -> Scatterers:
    """Draw each point's scatterer. Heights: on buildings anywhere up to their roofs, in forest
    up to 3 m (rocks, poles, trunks), elsewhere up to 1.5 m. SCR: log-normal around the
    class median, × the pixel's brightness relative to its class (0.3 … 4), weaker on roads,
    pure clutter in shadow and for outliers; spurious scatterers are bright (log-normal around
    ``spurious_scr_median``). In layover a second scatterer shares the cell (``layover_mix``,
    ``layover_dz_m``). A sidelobe ghost takes its parent target's scatterer: on a building up to
    its roof, bright (``sidelobe_scr_median``), never an outlier, temporary or spurious."""
    n = site.row.size
    lulc = site.lulc
    building = (lulc == BUILT_UP) & ~site.road
    above = np.where(building, rng.uniform(0.05, 1.1, n) * site.roof_m,
                     np.where(lulc == FOREST, rng.uniform(0.0, 3.0, n), rng.uniform(0.0, 1.5, n)))
    scr = (class_lookup(m.scr_median, 1.0)[lulc]
           * np.exp(m.scr_spread_ln * rng.standard_normal(n))
           * np.clip(site.amplitude / AMP_REF[lulc], 0.3, 4.0))
    scr[site.road] *= m.road_scr
    spurious = rng.random(n) < class_lookup(m.spurious_rate)[lulc]
    scr = np.where(spurious, m.spurious_scr_median * np.exp(0.5 * rng.standard_normal(n)), scr)
    scr = np.where(site.shadow, rng.uniform(0.1, 0.6, n), scr)
    outlier = rng.random(n) < m.outlier_rate
    scr = np.where(outlier, rng.uniform(0.15, 0.7, n), scr)
    temporary = rng.random(n) < np.where(lulc == BUILT_UP, m.temporary_rate_built,
                                         m.temporary_rate)
    change = rng.integers(8, n_dates - 8, n)  # built or demolished at this date
    appears = rng.random(n) < 0.5
    idx = np.arange(n_dates)[None, :]
    absent = temporary[:, None] & np.where(appears[:, None], idx < change[:, None],
                                           idx >= change[:, None])
    mix = np.where(site.layover, rng.uniform(*m.layover_mix, n), 0.0)
    mix_dz = rng.uniform(*m.layover_dz_m, n) * rng.choice(np.array([-1.0, 1.0]), n)
    mix_psi = rng.uniform(0.0, 2 * np.pi, n)
    own_v = m.spurious_velocity_mm_yr * rng.standard_normal(n)
    own_amp = m.spurious_seasonal_mm * rng.uniform(0.2, 1.0, n)
    own_peak = rng.random(n)
    distributed = ((rng.random(n) < class_lookup(m.distributed_rate)[lulc]) & ~site.road
                   & ~spurious & (site.slope_deg < m.distributed_max_slope_deg))
    height = site.dem_m + above
    ghost = (site.parent >= 0) & (rng.random(n) < m.sidelobe_rate) & ~site.shadow
    p_building = (site.parent_lulc == BUILT_UP) & ~site.parent_road
    p_above = np.where(p_building, rng.uniform(0.05, 1.1, n) * site.parent_roof_m,
                       rng.uniform(0.0, 1.5, n))
    above = np.where(ghost, p_above, above)
    height = np.where(ghost, site.parent_dem_m + p_above, height)
    building = np.where(ghost, p_building, building)
    scr = np.where(ghost, m.sidelobe_scr_median * np.exp(0.5 * rng.standard_normal(n)), scr)
    outlier &= ~ghost
    temporary &= ~ghost
    absent &= ~ghost[:, None]
    spurious &= ~ghost
    distributed &= ~ghost
    mix = np.where(ghost, 0.0, mix)
    return Scatterers(above, height, building, scr, outlier, temporary, absent, mix, mix_dz,
                       mix_psi, spurious, own_v, own_amp, own_peak, distributed, ghost)
