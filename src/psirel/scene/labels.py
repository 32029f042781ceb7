"""Reliability labels as an expert would set them, with the reasons recorded.

A point is unreliable (0) when its measurement does not represent real deformation:

* ``NOISE``: a noise-dominated scatterer (signal-to-clutter ratio below ``noise_scr``): its
  series is mostly noise, whatever its velocity happens to be;
* ``TEMPORARY``: a scatterer present only for part of the stack (built or demolished);
* ``GEOMETRY``: in layover or shadow — the signal mixes several slopes or is only noise;
* ``UNWRAPPING``: the series holds a whole-cycle (``λ/2``) error at some date;
* ``VELOCITY``: the estimated velocity misses the true one (the line fit of the true motion)
  by more than ``max(tol_mm_yr, rel_tol · |true velocity|)``.

A large velocity alone is never a reason: a point on a landslide or in a subsidence bowl that
measures its motion well is reliable.
"""

from __future__ import annotations

import numpy as np

NOISE, TEMPORARY, GEOMETRY, UNWRAPPING, VELOCITY = 1, 2, 4, 8, 16
REASONS: dict[str, int] = {"noise_dominated": NOISE, "temporary_scatterer": TEMPORARY,
                           "layover_shadow": GEOMETRY, "unwrapping_error": UNWRAPPING,
                           "velocity_error": VELOCITY}


def velocity_tolerance(true_velocity_mm_yr: np.ndarray, tol_mm_yr: float = 2.0,
                       rel_tol: float = 0.15) -> np.ndarray:
    """Largest acceptable |velocity error| (mm/yr): ``tol_mm_yr``, or ``rel_tol`` of the true
    velocity for fast motion."""
    return np.maximum(tol_mm_yr, rel_tol * np.abs(true_velocity_mm_yr))


def expert_labels(velocity_mm_yr: np.ndarray, true_velocity_mm_yr: np.ndarray,
                  scr: np.ndarray, temporary: np.ndarray, layover_or_shadow: np.ndarray,
                  unwrapping_error: np.ndarray, noise_scr: float = 1.0, tol_mm_yr: float = 2.0,
                  rel_tol: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Labels (int8: 1 reliable, 0 unreliable) and reason bit masks (uint8, 0 if reliable)."""
    err = np.abs(velocity_mm_yr - true_velocity_mm_yr)
    reasons = (NOISE * (scr < noise_scr)
               + TEMPORARY * np.asarray(temporary, bool)
               + GEOMETRY * np.asarray(layover_or_shadow, bool)
               + UNWRAPPING * np.asarray(unwrapping_error, bool)
               + VELOCITY * (err > velocity_tolerance(true_velocity_mm_yr, tol_mm_yr, rel_tol))
               ).astype(np.uint8)
    return (reasons == 0).astype(np.int8), reasons
