"""PS points: where they are, how good they are, and the series a PSI processor would export.

Placement: a density per pixel from land cover (dense on buildings and rock, sparse in
vegetation, almost none on water), brighter pixels favoured — layover is bright, and a processor
selects many points there — few in shadow; the ``n_points`` are distributed over pixels with one
multinomial draw and jittered inside them.

Each point's scatterer (``scatterers.py``) has a signal-to-clutter ratio (SCR) drawn around its
class's median and raised by its pixel's brightness. Its phase at each date is the phase of
``1 + c`` with ``c`` circular Gaussian clutter of variance ``1/SCR`` (phase noise
≈ 1/√(2·SCR) rad), added to the phase of the true motion plus the residual atmosphere. The
processor then unwraps the phase in time (steps over half a cycle are taken the short way: noisy
points collect cycle errors on their own), spatial and isolated unwrapping errors are added as
whole cycles (``artefacts.py``), and the series is referred to the first date. Velocity and
temporal coherence are then estimated from the exported series (``estimation.py``), and the
point is labelled (``labels.py``).

The true motion (``_motion``) is the deformation field (``deformation.py``: subsidence bowls,
landslides, slope creep, settling buildings — real, so a point that measures it well is
reliable however fast or non-linear it is), the ground's annual cycle and the thermal dilation
of buildings.

What goes wrong — each as a PSI expert meets it:

* with a *rough* series: outliers (noise-dominated scatterers that slipped through the
  selection), temporary scatterers (present only before or after some date: a building built or
  demolished), shadow (clutter only), and the unwrapping errors (``artefacts.py``: steps of
  ``λ/2``; a spatial patch offsets a whole cluster, so its velocity stands out from the points
  around it). Noisy points whose velocity still holds are kept (``labels.py``);
* with a *smooth* series that the residual does not betray:

  - layover (active and passive, ``geometry.py``): the cell also holds a second coherent
    scatterer from the other slope imaged at the same slant range — ``Δz`` higher or lower
    (``Δg = Δz / tan θ`` further or nearer in ground range), with its own motion and atmosphere,
    and a residual height ``Δz`` that the height–velocity coupling turns into a trend. The
    point's phase is that of the phasor sum (amplitude ratio ``layover_mix``): smooth, but its
    velocity blends the two scatterers';
  - a topography-correlated velocity bias on every point (``topography.py``): the stratified
    atmosphere's drift (``trend · Δh`` from the reference height) and the processor's DEM error
    times the height–velocity coupling — linear trends, large on high, steep relief;
  - spurious scatterers on water and in forest (``spurious_rate``): a boat, floating debris or
    seasonal vegetation, bright and coherent while there, whose series is its own smooth trend
    and annual cycle, not the ground's and not its neighbours';
  - distributed scatterers on fields (``distributed_rate``, on ground gentler than
    ``distributed_max_slope_deg``): their phase adds their field's soil-moisture signal
    (``surface.py``), an annual cycle and a trend shared with the field;
  - sidelobe ghosts (``sidelobe_rate`` of the points in a pixel that a strong target's sidelobe
    dominates, ``sidelobes.py``): bright and stable, with the target's motion and height, but
    geolocated a few pixels away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

import psirel.scene.artefacts as art
from psirel.scene.artefacts import TOPO_FLAG_MM_YR, cycle_errors, error_ends, longest_run
from psirel.scene.estimation import line_fit_velocity, temporal_coherence
from psirel.scene.fields import bilinear
from psirel.scene.labels import expert_labels, velocity_noise_sigma
from psirel.scene.landcover import BUILT_UP
from psirel.scene.params import PointModel
from psirel.scene.rng import child_rng
from psirel.scene.scatterers import AMP_REF, Scatterers, Site, class_lookup, draw_scatterers, sites

if TYPE_CHECKING:
    from psirel.scene.world import World

def density_weights(lulc: np.ndarray, road: np.ndarray, layover: np.ndarray,
                    shadow: np.ndarray, amplitude: np.ndarray, model: PointModel) -> np.ndarray:
    """Relative point density per pixel (float64, unnormalised): class density, ×
    ``road_density`` on roads, × (brightness relative to the class's typical amplitude)^1.5
    clipped to 0.2 … 5, × ``layover_density`` in layover and ``shadow_density`` in shadow."""
    w = class_lookup(model.density)[lulc]
    w[road] = model.road_density * model.density.get(BUILT_UP, 1.0)
    bright = np.clip((amplitude / AMP_REF[lulc]) ** 1.5, 0.2, 5.0)
    w *= bright
    w[layover] *= model.layover_density
    w[shadow] *= model.shadow_density
    return w


def place_points(rng: np.random.Generator, weights: np.ndarray, n_points: int) -> np.ndarray:
    """Pixels (flat row-major indices, sorted, int64) of ``n_points`` points drawn with
    probability proportional to ``weights`` (one multinomial draw over all pixels)."""
    p = weights.ravel() / weights.sum()
    counts = rng.multinomial(n_points, p)
    return np.repeat(np.arange(p.size, dtype=np.int64), counts)


@dataclass
class PointBlock:
    """Simulated points (what is written, and the hidden truth for tests and analysis).

    Written: pid (int64), x, y (map coordinates, m), velocity (mm/yr), coherence (0 … 1),
    height (m), reliable (int8), series (n, T) float32 (mm, 0 at the first date).
    Truth: true_velocity (mm/yr: line fit of the true motion where the point lies), reasons
    (labels bit mask, uint16), scr (signal-to-clutter ratio), lulc (class), source (deformation
    kind: ``deformation.STABLE`` … ``SETTLEMENT``), layover, shadow (bool), unwrap_cycles (int:
    largest |cycle error|),
    artefacts (uint16 bit mask of ``artefacts.ARTEFACTS``), topo_bias (mm/yr: the
    topography-correlated part of the velocity), moisture_bias (mm/yr: the soil-moisture trend
    of a distributed scatterer, 0 for the others).
    """

    pid: np.ndarray
    x: np.ndarray
    y: np.ndarray
    velocity: np.ndarray
    coherence: np.ndarray
    height: np.ndarray
    reliable: np.ndarray
    series: np.ndarray
    true_velocity: np.ndarray
    reasons: np.ndarray
    scr: np.ndarray
    lulc: np.ndarray
    source: np.ndarray
    layover: np.ndarray
    shadow: np.ndarray
    unwrap_cycles: np.ndarray
    artefacts: np.ndarray
    topo_bias: np.ndarray
    moisture_bias: np.ndarray

    def __len__(self) -> int:
        return len(self.pid)

    @staticmethod
    def concat(blocks: list[PointBlock]) -> PointBlock:
        return PointBlock(*(np.concatenate([getattr(b, f) for b in blocks])
                            for f in PointBlock.__dataclass_fields__))


def simulate_block(world: World, block: int, block_points: int) -> PointBlock:
    """Simulate points ``block · block_points`` … ``(block + 1) · block_points − 1`` of the
    scene, from the block's own random stream."""
    p, m, acq = world.params, world.params.points, world.acquisition
    start = block * block_points
    stop = min(start + block_points, p.n_points)
    rng = child_rng(p.seed, "points", block)
    site = sites(world, rng, world.pixel_index[start:stop])
    scat = draw_scatterers(m, rng, site, acq.n_dates)
    truth, apparent = _true_motion(world, site, scat)
    series, natural, topo_bias, moisture_bias = _measure(world, rng, site, scat, truth,
                                                         apparent)
    patch, isolated = _unwrapping_errors(world, rng, site, scat)
    series += (patch + isolated) * acq.ambiguity_mm
    series = (series - series[:, :1]).astype(np.float32)
    cycles = natural + patch + isolated

    t = acq.years
    velocity = line_fit_velocity(series, t)
    coherence = temporal_coherence(series, t, acq.wavelength_mm)
    true_velocity = line_fit_velocity(truth, t)
    sigma_v = velocity_noise_sigma(scat.scr, t, acq.wavelength_mm)
    reliable, reasons = expert_labels(velocity, true_velocity, sigma_v, scat.temporary,
                                      site.layover | site.shadow,
                                      longest_run(cycles != 0) >= m.unwrap_min_dates,
                                      topo_bias, scat.spurious, moisture_bias, scat.ghost,
                                      m.noise_sigma_frac, m.velocity_tol_mm_yr,
                                      m.velocity_rel_tol)
    flags = (art.OUTLIER * scat.outlier + art.TEMPORARY * scat.temporary
             + art.LAYOVER * site.layover + art.SHADOW * site.shadow
             + art.UNWRAP_TEMPORAL * np.any(natural != 0, axis=1)
             + art.UNWRAP_PATCH * np.any(patch != 0, axis=1)
             + art.UNWRAP_ISOLATED * np.any(isolated != 0, axis=1)
             + art.SPURIOUS * scat.spurious + art.DISTRIBUTED * scat.distributed
             + art.SIDELOBE * scat.ghost
             + art.TOPO_BIAS * (np.abs(topo_bias) > TOPO_FLAG_MM_YR)).astype(np.uint16)
    return PointBlock(
        pid=np.arange(start, stop, dtype=np.int64), x=site.x, y=site.y,
        velocity=velocity.astype(np.float32), coherence=coherence.astype(np.float32),
        height=scat.height.astype(np.float32), reliable=reliable, series=series,
        true_velocity=true_velocity, reasons=reasons, scr=scat.scr, lulc=site.lulc,
        source=world.deformation.source[site.row, site.col], layover=site.layover,
        shadow=site.shadow, unwrap_cycles=np.abs(cycles).max(axis=1), artefacts=flags,
        topo_bias=topo_bias, moisture_bias=moisture_bias)


def _motion(world: World, row: np.ndarray, col: np.ndarray, velocity: np.ndarray,
            building_above_m: np.ndarray) -> np.ndarray:
    """LOS displacement (n, T) in mm, 0 at the first date, of scatterers in pixels (``row``,
    ``col``) on ground moving at ``velocity`` (mm/yr): the velocity field, settling buildings
    (non-linear, ``deformation.py``), the ground's annual cycle, and the thermal dilation of
    buildings (± ``thermal_mm_per_m`` per metre of the scatterer's height above ground,
    ``building_above_m``, 0 off buildings; peaking in mid-July)."""
    acq, m = world.acquisition, world.params.points
    ground_amp = world.deformation.seasonal_mm[row, col].astype(np.float64)
    ground_peak = world.deformation.seasonal_peak[row, col].astype(np.float64)
    doy = acq.day_of_year[None, :]
    out = velocity[:, None] * acq.years[None, :]
    out += world.deformation.settlement_mm(row, col, acq.years)
    out += ground_amp[:, None] * np.cos(2 * np.pi * (doy - ground_peak[:, None]))
    thermal = m.thermal_mm_per_m * building_above_m * acq.look.los_enu[2]
    out += thermal[:, None] * np.cos(2 * np.pi * (doy - 0.55))
    return out - out[:, :1]


def _true_motion(world: World, site: Site, scat: Scatterers
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The true motion at each point (n, T, mm; ``_motion``) — for a sidelobe ghost, of the
    ground where it is geolocated — and the motion its phase follows: the same, but for a
    ghost its parent target's (the velocity field, settlement and seasons at the parent, the
    parent scatterer's thermal dilation)."""
    on_building = np.where(scat.building, scat.above_m, 0.0)
    truth = _motion(world, site.row, site.col, site.velocity_mm_yr,
                    np.where(scat.ghost, 0.0, on_building))
    apparent = truth.copy()
    g = np.flatnonzero(scat.ghost)
    if g.size:
        pr, pc = site.parent_row[g], site.parent_col[g]
        v = world.deformation.velocity_mm_yr[pr, pc].astype(np.float64)
        apparent[g] = _motion(world, pr, pc, v, on_building[g])
    return truth, apparent


def _measure(world: World, rng: np.random.Generator, site: Site, scat: Scatterers,
             truth: np.ndarray, apparent: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The processor's unwrapped series (n, T) in mm (not yet referred to the first date), the
    whole cycles (n, T) its temporal unwrapping got wrong (relative to the first date), the
    topography-correlated velocity bias (n,) and the moisture trend (n,), both in mm/yr.

    Phase = 4π/λ · (motion + residual atmosphere + topographic bias · t + soil moisture) + the
    phase of (1 + c), c the clutter (circular Gaussian, variance 1/SCR; c alone on dates a
    temporary scatterer is absent). The motion is ``apparent`` (the ground's; for a sidelobe
    ghost its parent target's) or a spurious scatterer's own; the moisture term only for
    distributed scatterers; in layover the first term is the phase of the sum with the second
    scatterer's phasor. The wrapped phase is unwrapped in time: a step beyond half a cycle is
    taken the short way."""
    acq, p = world.acquisition, world.params
    n, n_dates = truth.shape
    years, doy = acq.years[None, :], acq.day_of_year[None, :]
    atmo = world.atmosphere.delay_mm(site.row_f, site.col_f, scat.height)  # with the drift
    dem_bias = world.topo.velocity_bias_mm_yr(site.row, site.col)
    topo_bias = world.atmosphere.velocity_bias_mm_yr(scat.height) + dem_bias
    own = (scat.own_v[:, None] * years
           + scat.own_amp[:, None] * np.cos(2 * np.pi * (doy - scat.own_peak[:, None])))
    motion = np.where(scat.spurious[:, None], own - own[:, :1], apparent)
    wet = np.flatnonzero(scat.distributed)
    moisture_bias = np.zeros(n)
    if wet.size:
        motion[wet] += world.moisture.series_mm(site.row[wet], site.col[wet], acq.years,
                                                acq.day_of_year)
        moisture_bias[wet] = world.moisture.velocity_bias_mm_yr(site.row[wet], site.col[wet])
    k = acq.rad_per_mm
    phase = k * (motion + atmo + dem_bias[:, None] * years)
    mixed = np.flatnonzero(scat.mix > 0)
    if mixed.size:  # layover: the phasor sum with the second scatterer of the cell
        look = np.radians(acq.look.look_azimuth_deg)
        dz = scat.mix_dz[mixed]
        dg_px = dz / np.tan(np.radians(acq.look.incidence_deg)) / p.pixel_m
        row2 = np.clip(site.row_f[mixed] - dg_px * np.cos(look), 0.0, world.shape[0] - 1e-6)
        col2 = np.clip(site.col_f[mixed] + dg_px * np.sin(look), 0.0, world.shape[1] - 1e-6)
        # its own ground motion, the cell's DEM-error bias, and its height offset Δz coupled
        v2 = (bilinear(world.deformation.velocity_mm_yr, row2 - 0.5, col2 - 0.5)
              + dem_bias[mixed] + world.topo.coupling_mm_yr_per_m * dz)
        ground = truth[mixed] - site.velocity_mm_yr[mixed, None] * years  # seasons, settling
        second = (v2[:, None] * years + ground
                  + world.atmosphere.delay_mm(row2, col2, scat.height[mixed] + dz))
        diff = k * second - phase[mixed] + scat.mix_psi[mixed, None]
        rho = scat.mix[mixed, None]
        phase[mixed] += np.arctan2(rho * np.sin(diff), 1.0 + rho * np.cos(diff))
    sd = np.sqrt(0.5 / scat.scr)[:, None]
    c_re = rng.standard_normal((n, n_dates)) * sd
    c_im = rng.standard_normal((n, n_dates)) * sd
    phase += np.arctan2(c_im, c_re + ~scat.absent)
    unwrapped = np.unwrap((phase + np.pi) % (2 * np.pi) - np.pi, axis=1)
    slip = unwrapped - phase  # a multiple of 2π on every date
    natural = np.rint((slip - slip[:, :1]) / (2 * np.pi)).astype(np.int64)
    return unwrapped / k, natural, topo_bias, moisture_bias


def _unwrapping_errors(world: World, rng: np.random.Generator, site: Site,
                       scat: Scatterers) -> tuple[np.ndarray, np.ndarray]:
    """Injected whole-cycle errors (n, T): from the spatial patches the point lies in (it takes
    the patch's error with probability ``unwrap_patch_hit``), and isolated ones (probability
    from the motion's speed and the scatterer's noise; against the motion when it is fast;
    half persistent steps, the rest runs of one to a few dates)."""
    m, n_dates = world.params.points, world.acquisition.n_dates
    n = site.row.size
    v = site.velocity_mm_yr
    patch = world.unwrap.patch_id[site.row, site.col]
    hit = (patch > 0) & (rng.random(n) < m.unwrap_patch_hit)
    from_patch = cycle_errors(world.unwrap.start[patch], world.unwrap.end[patch],
                              np.where(hit, world.unwrap.sign[patch], 0), n_dates)
    p_isolated = (m.unwrap_base + m.unwrap_fast * np.minimum(np.abs(v) / 40.0, 1.0)
                  + m.unwrap_noisy * np.clip((5.0 - scat.scr) / 4.0, 0.0, 1.0))
    isolated = rng.random(n) < p_isolated
    against = np.where(v < 0, 1, -1)  # the short way round undoes part of the motion
    sign = np.where((np.abs(v) > 5.0) & (rng.random(n) < 0.7), against,
                    rng.choice(np.array([-1, 1]), n))
    start = rng.integers(1, n_dates, n)
    end = error_ends(rng, start, n_dates, (0.2, 0.3, 0.5))
    return from_patch, cycle_errors(start, end, np.where(isolated, sign, 0), n_dates)
