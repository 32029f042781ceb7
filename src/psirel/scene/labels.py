"""Reliability labels as an expert would set them, with the reasons recorded.

A point is unreliable (0) when its measurement does not represent real deformation. The expert
judges whether the *velocity* can be trusted, not how clean the series looks: a noisy point on
bare rock or a rural building whose velocity is within the tolerance, and agrees with its
neighbours, is kept; a smooth series whose velocity follows the topography, mixes the slopes of
a layover cell, or belongs to something that cannot be a persistent scatterer is not.

* ``NOISE``: noise-dominated — the phase noise is so strong that the velocity's standard error
  (from the scatterer's signal-to-clutter ratio, :func:`velocity_noise_sigma`) exceeds
  ``noise_sigma_frac`` × the velocity tolerance: whatever the velocity happens to be, it cannot
  be trusted to within the tolerance;
* ``TEMPORARY``: a scatterer present only for part of the stack (built or demolished);
* ``GEOMETRY``: in layover (active or passive) or shadow — the cell mixes scatterers of several
  slopes (the velocity blends theirs) or holds only noise;
* ``UNWRAPPING``: the series is a whole cycle (``λ/2``) off on a run of at least
  ``unwrap_min_dates`` consecutive dates (decided by the caller; 2 by default): a step, or a
  stretch of wrong dates. A single wrong date — a noise excursion beyond half a cycle that the
  temporal unwrapping took the short way, or a one-date error of the network — is an outlier
  date the expert tolerates as long as the velocity holds (``VELOCITY`` decides then);
* ``VELOCITY``: the estimated velocity misses the true one (the line fit of the true motion)
  by more than ``max(tol_mm_yr, rel_tol · |true velocity|)``;
* ``TOPOGRAPHIC``: a topography-correlated velocity bias (stratified-atmosphere drift, DEM error
  through the height–velocity coupling; ``topography.py``) beyond the tolerance — smooth in time,
  so only the velocity's relation to the terrain and to the neighbours' heights betrays it;
* ``SPURIOUS``: a scatterer the land cover makes implausible as a persistent one (a boat or
  debris on water, seasonal vegetation in a forest), whatever its series looks like;
* ``MOISTURE``: a distributed scatterer on a field whose soil-moisture phase trend
  (``surface.py``) exceeds the tolerance — smooth, shared with the field, not with the
  buildings and roads around it;
* ``SIDELOBE``: the point is the sidelobe of a very bright target a few pixels away
  (``sidelobes.py``): its smooth series is the target's, not the motion where it lies.

A large velocity alone is never a reason: a point on a landslide or in a subsidence bowl that
measures its motion well is reliable.
"""

from __future__ import annotations

import numpy as np

NOISE, TEMPORARY, GEOMETRY, UNWRAPPING, VELOCITY = 1, 2, 4, 8, 16
TOPOGRAPHIC, SPURIOUS, MOISTURE, SIDELOBE = 32, 64, 128, 256
REASONS: dict[str, int] = {"noise_dominated": NOISE, "temporary_scatterer": TEMPORARY,
                           "layover_shadow": GEOMETRY, "unwrapping_error": UNWRAPPING,
                           "velocity_error": VELOCITY, "topographic_bias": TOPOGRAPHIC,
                           "spurious_scatterer": SPURIOUS, "moisture_bias": MOISTURE,
                           "sidelobe": SIDELOBE}


def velocity_tolerance(true_velocity_mm_yr: np.ndarray, tol_mm_yr: float = 2.0,
                       rel_tol: float = 0.15) -> np.ndarray:
    """Largest acceptable |velocity error| (mm/yr): ``tol_mm_yr``, or ``rel_tol`` of the true
    velocity for fast motion."""
    return np.maximum(tol_mm_yr, rel_tol * np.abs(true_velocity_mm_yr))


def velocity_noise_sigma(scr: np.ndarray, years: np.ndarray, wavelength_mm: float) -> np.ndarray:
    """Standard error (mm/yr) of a line-fit velocity from phase noise of a scatterer with
    signal-to-clutter ratio ``scr``: phase noise ``1/√(2·SCR)`` rad (at most that of a uniform
    phase, ``π/√3``), in mm ``× λ/4π``, over ``√Σ(t − t̄)²`` years."""
    t = np.asarray(years, np.float64)
    sigma_rad = np.minimum(np.sqrt(0.5 / np.asarray(scr, np.float64)), np.pi / np.sqrt(3.0))
    return sigma_rad * wavelength_mm / (4.0 * np.pi) / np.sqrt(np.sum((t - t.mean()) ** 2))


def expert_labels(velocity_mm_yr: np.ndarray, true_velocity_mm_yr: np.ndarray,
                  velocity_sigma_mm_yr: np.ndarray, temporary: np.ndarray,
                  layover_or_shadow: np.ndarray, unwrapping_error: np.ndarray,
                  topo_bias_mm_yr: np.ndarray | None = None, spurious: np.ndarray | None = None,
                  moisture_bias_mm_yr: np.ndarray | None = None,
                  sidelobe: np.ndarray | None = None, noise_sigma_frac: float = 0.5,
                  tol_mm_yr: float = 2.0, rel_tol: float = 0.15
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int8: 1 reliable, 0 unreliable) and reason bit masks (uint16, 0 if reliable).

    ``velocity_sigma_mm_yr``: the velocity's standard error from phase noise
    (:func:`velocity_noise_sigma`); ``topo_bias_mm_yr``: the topography-correlated part of the
    velocity; ``spurious``: implausible scatterers; ``moisture_bias_mm_yr``: the soil-moisture
    trend of distributed scatterers (0 for the others); ``sidelobe``: sidelobe ghosts. The last
    four are optional."""
    true_velocity_mm_yr = np.asarray(true_velocity_mm_yr, np.float64)
    tol = velocity_tolerance(true_velocity_mm_yr, tol_mm_yr, rel_tol)
    err = np.abs(velocity_mm_yr - true_velocity_mm_yr)
    topo = np.zeros(err.shape) if topo_bias_mm_yr is None else np.abs(topo_bias_mm_yr)
    odd = np.zeros(err.shape, bool) if spurious is None else np.asarray(spurious, bool)
    wet = np.zeros(err.shape) if moisture_bias_mm_yr is None else np.abs(moisture_bias_mm_yr)
    ghost = np.zeros(err.shape, bool) if sidelobe is None else np.asarray(sidelobe, bool)
    reasons = (NOISE * (np.asarray(velocity_sigma_mm_yr) > noise_sigma_frac * tol)
               + TEMPORARY * np.asarray(temporary, bool)
               + GEOMETRY * np.asarray(layover_or_shadow, bool)
               + UNWRAPPING * np.asarray(unwrapping_error, bool)
               + VELOCITY * (err > tol)
               + TOPOGRAPHIC * (topo > tol)
               + SPURIOUS * odd
               + MOISTURE * (wet > tol)
               + SIDELOBE * ghost).astype(np.uint16)
    return (reasons == 0).astype(np.int8), reasons
