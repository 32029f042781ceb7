"""Neighbour consistency, in the spirit of StaMPS PS weeding.

StaMPS keeps a scatterer when its phase agrees with that of its neighbours, as real deformation
is spatially smooth and noise is not (Hooper et al., 2007, "Persistent scatterer interferometric
synthetic aperture radar for crustal deformation analysis", JGR 112, B07407,
https://doi.org/10.1029/2006JB004763). Here, on displacements, for every point i with valid
neighbours N(i) from the neighbour table:

* reference velocity ``v̂_i = median_{j ∈ N(i)} v_j`` and deviation ``Δv_i = v_i − v̂_i`` (mm/yr);
* reference series ``ŝ_i(t) = median_{j ∈ N(i)} s_j(t)``; residual ``r_i = s_i − ŝ_i`` with its
  own mean and linear trend in the acquisition index removed (the trend is ``Δv_i``'s business);
  ``rms_i = sqrt(mean_t r_i(t)²)`` (mm): noise, unwrapping steps, outlier epochs.

A plain (unweighted) median: the neighbour table is already the k nearest within r_max, and a
median ignores the minority of bad neighbours that distance weights would not. The score is a
logistic model on ``log1p|Δv|``, ``log1p(rms)`` and coherence (three weights and an intercept,
signs constrained so that larger deviations never raise reliability), fitted with scipy; its
parameters go to JSON. Points without valid neighbours (or without series) get the training mean
for the missing feature.
"""

from __future__ import annotations

import warnings

import numpy as np

from psirel.baselines.data import PointData, check_labels, proba_columns
from psirel.baselines.logistic import Logistic, fit_logistic
from psirel.report.metrics import tune_threshold

NEIGHBOUR_STAT_NAMES: list[str] = [
    "nbr_count",
    "nbr_mean_dist_m",
    "nbr_coh_mean",
    "nbr_vel_dev_mm_yr",
    "nbr_vel_mad_mm_yr",
    "nbr_series_rms_mm",
]

# gathered neighbour series are [rows, k, T]; bound that to ~64 MB of float32
_CHUNK_ELEMS = 1 << 24


def _nanmedian_axis1(a: np.ndarray) -> np.ndarray:
    """Median over axis 1 ignoring NaN (NaN where a slice is all NaN); like ``np.nanmedian``
    but by one sort, several times faster on the short neighbour axis."""
    s = np.sort(a, axis=1)  # NaN sort last
    c = np.sum(~np.isnan(a), axis=1, keepdims=True)
    lo = np.maximum((c - 1) // 2, 0)
    hi = np.minimum(c // 2, a.shape[1] - 1)
    with np.errstate(invalid="ignore"):
        med = 0.5 * (np.take_along_axis(s, lo, axis=1) + np.take_along_axis(s, hi, axis=1))
    med = np.where(c > 0, med, np.nan)
    return np.squeeze(med, axis=1)


def _series_residual_rms(own: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """RMS (mm) of ``own − ref`` ([n, T]) after removing its mean and its linear trend in the
    acquisition index; NaN epochs are ignored, rows with < 3 valid epochs give NaN."""
    r = (own - ref).astype(np.float64)
    w = np.isfinite(r)
    r = np.where(w, r, 0.0)
    t = np.broadcast_to(np.arange(r.shape[1], dtype=np.float64), r.shape)
    nw = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean = (w * t).sum(axis=1) / nw
        r_mean = r.sum(axis=1) / nw
        dt = np.where(w, t - t_mean[:, None], 0.0)
        dr = np.where(w, r - r_mean[:, None], 0.0)
        slope = (dt * dr).sum(axis=1) / (dt * dt).sum(axis=1)
        res = dr - np.nan_to_num(slope)[:, None] * dt
        rms = np.sqrt((res * res).sum(axis=1) / nw)
    rms[nw < 3] = np.nan
    return rms


def neighbour_statistics(data: PointData) -> tuple[np.ndarray, list[str]]:
    """Per-point statistics of the neighbourhood.

    Returns:
        ``(X [N, 6] float32, names)`` with columns :data:`NEIGHBOUR_STAT_NAMES`: valid neighbour
        count; mean neighbour distance (m); neighbours' mean coherence; velocity deviation from the
        neighbours' median (signed, mm/yr); median absolute deviation of the neighbours' velocities
        (mm/yr, the local spread of real motion); residual RMS of the series against the neighbours'
        median series (mm). Undefined values (no neighbours, no series) are NaN.
    """
    n, k = data.nbr_idx.shape
    t_len = data.series_mm.shape[1]
    out = np.full((n, len(NEIGHBOUR_STAT_NAMES)), np.nan, np.float32)
    if n == 0:
        return out, list(NEIGHBOUR_STAT_NAMES)
    rows = max(1, _CHUNK_ELEMS // max(1, k * max(t_len, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of isolated points
        for s in range(0, n, rows):
            e = min(n, s + rows)
            idx = data.nbr_idx[s:e]
            m = data.nbr_mask[s:e]
            cnt = m.sum(axis=1)
            dx = data.x_m[idx] - data.x_m[s:e, None]
            dy = data.y_m[idx] - data.y_m[s:e, None]
            dist = np.where(m, np.hypot(dx, dy), np.nan)
            coh = np.where(m, data.coherence[idx].astype(np.float64), np.nan)
            vel = np.where(m, data.velocity_mm_yr[idx].astype(np.float64), np.nan)
            v_ref = _nanmedian_axis1(vel)
            mad = _nanmedian_axis1(np.abs(vel - v_ref[:, None]))
            out[s:e, 0] = cnt
            out[s:e, 1] = np.nanmean(dist, axis=1)
            out[s:e, 2] = np.nanmean(coh, axis=1)
            out[s:e, 3] = data.velocity_mm_yr[s:e] - v_ref
            out[s:e, 4] = mad
            if t_len:
                ser = data.series_mm[idx]  # [rows, k, T]
                ser = np.where(m[:, :, None], ser, np.nan)
                s_ref = _nanmedian_axis1(ser)
                out[s:e, 5] = _series_residual_rms(data.series_mm[s:e], s_ref)
    return out, list(NEIGHBOUR_STAT_NAMES)


def consistency_features(data: PointData) -> np.ndarray:
    """[N, 3] float64: ``log1p|Δv|``, ``log1p(rms)``, coherence — the inputs of the score."""
    stats, _ = neighbour_statistics(data)
    dv = np.log1p(np.abs(stats[:, 3].astype(np.float64)))
    rms = np.log1p(stats[:, 5].astype(np.float64))
    return np.stack([dv, rms, data.coherence.astype(np.float64)], axis=1)


FEATURE_NAMES = ["log1p_abs_vel_dev", "log1p_series_rms", "coherence"]


class NeighbourConsistency:
    """Logistic score on a point's disagreement with its neighbours, plus coherence.

    ``P(reliable) = σ(b + w₁ z(log1p|Δv|) + w₂ z(log1p rms) + w₃ z(coherence))``, ``z`` the
    training standardisation, ``w₁, w₂ ≤ 0 ≤ w₃``.

    Args:
        l2: ridge penalty on the standardised weights.

    Fitted attributes: ``model_`` (:class:`~psirel.baselines.logistic.Logistic`), ``threshold_``
    (threshold on P(reliable) maximising balanced accuracy on the training points).
    """

    name = "neighbour_consistency"

    def __init__(self, l2: float = 1e-4):
        self.l2 = l2

    def fit(self, data: PointData, y: np.ndarray) -> NeighbourConsistency:
        y = check_labels(y, data.n_points)
        x = consistency_features(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column when T = 0
            self.model_ = fit_logistic(x, y, l2=self.l2, signs=[-1, -1, 1])
        self.threshold_ = tune_threshold(y, self.model_.predict(x))
        return self

    def predict_proba(self, data: PointData) -> np.ndarray:
        """[N, 2]: P(unreliable), P(reliable)."""
        return proba_columns(self.model_.predict(consistency_features(data)))

    def predict(self, data: PointData) -> np.ndarray:
        """[N] int64, 1 = reliable at ``threshold_``."""
        return (self.predict_proba(data)[:, 1] >= self.threshold_).astype(np.int64)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "l2": self.l2,
            "features": list(FEATURE_NAMES),
            "logistic": self.model_.to_json(),
            "threshold": self.threshold_,
        }

    @classmethod
    def from_json(cls, d: dict) -> NeighbourConsistency:
        if d.get("name", cls.name) != cls.name:
            raise ValueError(f"not a {cls.name} baseline: {d.get('name')!r}")
        if d.get("features", FEATURE_NAMES) != FEATURE_NAMES:
            raise ValueError(f"unexpected {cls.name} features {d.get('features')}")
        est = cls(l2=float(d["l2"]))
        est.model_ = Logistic.from_json(d["logistic"])
        est.threshold_ = float(d["threshold"])
        return est

    def __repr__(self) -> str:
        return f"NeighbourConsistency(l2={self.l2})"
