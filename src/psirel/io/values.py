"""The values of a point file's role columns, checked: numbers, coherence, labels, units.

Each function takes the columns :func:`psirel.io.points.read_points` resolved and raises the
:mod:`psirel.errors` type of each user mistake, naming the file, the column and the first ids.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from psirel.errors import InvalidColumn, InvalidValues

SENTINEL1_WAVELENGTH_MM = 55.465763  # C band; every EGMS product is Sentinel-1
# Plausibility thresholds (DESIGN §3): a series in metres has all |d| < 0.5; a velocity in
# m/yr has 99 % of |v| below 0.05 (50 mm/yr), which no real mm/yr cloud does (noise alone is
# ~1 mm/yr).
SERIES_METRES_MAX = 0.5
VELOCITY_M_YR_P99 = 0.05


def numeric(path: Path, name: str, a: np.ndarray) -> np.ndarray:
    """float64 copy of a column; None → NaN; words are an error naming the column."""
    if a.dtype.kind in "fiub":
        return a.astype(np.float64)
    if a.dtype.kind == "O":
        try:
            return np.where(np.equal(a, None), np.nan, a).astype(np.float64)
        except (TypeError, ValueError):  # words, or lists (a Parquet list column)
            for v in a:
                try:
                    if v is not None:
                        float(v)
                except (TypeError, ValueError):
                    raise InvalidColumn(path, name, f"is not numeric (found '{v}')") from None
    raise InvalidColumn(path, name, f"is not numeric (type {a.dtype})")


def finite(path: Path, name: str, v: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``v`` itself; NaN or infinite values are an error counting them."""
    bad = ~np.isfinite(v)
    if bad.any():
        raise InvalidValues(path, name, int(bad.sum()), "NaN or infinite values", ids[bad])
    return v


def to_float32(path: Path, name: str, v: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``v`` as float32; values beyond its range (|v| > 3.4e38, infinite once cast) are an
    error counting them."""
    with np.errstate(over="ignore"):
        out = v.astype(np.float32)
    bad = ~np.isfinite(out) & np.isfinite(v)
    if bad.any():
        raise InvalidValues(path, name, int(bad.sum()), "values beyond the float32 range "
                            "(|v| > 3.4e38)", ids[bad])
    return out


def coherence(path: Path, name: str, a: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Temporal coherence (float32) of column ``name``; values outside [0, 1] are an error."""
    coh = finite(path, name, numeric(path, name, a), ids)
    bad = (coh < 0) | (coh > 1)
    if bad.any():
        hint = " (percent? divide by 100)" if coh.max() <= 100 else ""
        raise InvalidValues(path, name, int(bad.sum()), f"values outside 0..1{hint}", ids[bad])
    return coh.astype(np.float32)


def coherence_from_rmse(path: Path, name: str, a: np.ndarray, ids: np.ndarray
                        ) -> tuple[np.ndarray, str]:
    """Temporal coherence derived from EGMS ``rmse`` (mm), and the warning saying so.

    The EGMS L3 / ortho export has no coherence but an ``rmse`` (mm) of the residuals w.r.t.
    the fitted motion model. Temporal coherence is |mean(exp(jφ_res))|, and for Gaussian phase
    residuals of standard deviation σ = 4π·rmse/λ that is exp(−σ²/2): the same quantity,
    computed from the producer's own residuals.
    """
    rmse = finite(path, name, numeric(path, name, a), ids)
    if (rmse < 0).any():
        raise InvalidValues(path, name, int((rmse < 0).sum()), "negative values", ids[rmse < 0])
    sigma = 4 * math.pi * rmse / SENTINEL1_WAVELENGTH_MM
    warning = (f"no coherence column; coherence derived from '{name}' (mm) as "
               f"exp(-(4π·rmse/λ)²/2), λ = {SENTINEL1_WAVELENGTH_MM} mm (Sentinel-1)")
    return np.exp(-0.5 * sigma**2).astype(np.float32), warning


def labels(path: Path, name: str, a: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """int8 labels, 1 reliable / 0 unreliable; anything else is an error."""
    if a.dtype.kind == "b":
        return a.astype(np.int8)
    if a.dtype.kind in "OU":
        words = {"1": 1, "true": 1, "0": 0, "false": 0}
        v = np.array([words.get(str(s).strip().lower(), -1) for s in a], dtype=np.int8)
        bad = v < 0
    else:
        v = np.asarray(a, dtype=np.float64)
        bad = ~((v == 0) | (v == 1))
    if bad.any():
        raise InvalidValues(path, name, int(bad.sum()), "labels other than 0 and 1", ids[bad])
    return v.astype(np.int8)


def series(path: Path, cols: dict[str, np.ndarray], dated: list[tuple[str, np.datetime64]],
           ids: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``[n, T]`` float32 displacements of the date columns ``dated``, times ``scale`` (in
    float64, before the cast); a point with a NaN or infinite value is an error."""
    n = len(ids)
    out = np.empty((n, len(dated)), dtype=np.float32)
    for j, (c, _) in enumerate(dated):
        v = numeric(path, c, cols[c])
        out[:, j] = v * scale if scale != 1.0 else v
    if dated:
        bad_pt = ~np.isfinite(out).all(axis=1)
        if bad_pt.any():
            first = dated[int(np.argmax(~np.isfinite(out[bad_pt][0])))][0]
            raise InvalidValues(path, first, int(bad_pt.sum()),
                                "points with NaN or infinite time-series values", ids[bad_pt])
    return out


def looks_metric(velocity: np.ndarray, series_mm: np.ndarray) -> tuple[bool | None, bool | None]:
    """Whether the velocity looks like m/yr (99 % of |v| < 0.05) and the series like metres
    (all |d| < 0.5); None for a quantity that is absent or all zero."""
    av = np.abs(velocity)
    vel = None
    if len(av) and av.max() > 0:
        vel = bool(np.quantile(av, 0.99) < VELOCITY_M_YR_P99)
    ser = None
    if series_mm.size:
        m = max(float(series_mm.max()), -float(series_mm.min()))  # max |d| without a copy
        ser = bool(m < SERIES_METRES_MAX) if m > 0 else None
    return vel, ser


def detect_units(velocity: np.ndarray, vc: str, series_mm: np.ndarray,
                 dated: list[tuple[str, np.datetime64]]) -> tuple[str, list[str]]:
    """Units of a file that names none: ``"m"`` when what is present looks metric (both the
    velocity and the series when both are there), else ``"mm"``; and the warnings to give.

    When only one of the two looks metric they disagree: nothing is converted and both findings
    are reported, as before the conversion existed.
    """
    vel, ser = looks_metric(velocity, series_mm)
    v_msg = (f"column '{vc}' looks like m/yr (99 % of |v| < {VELOCITY_M_YR_P99})")
    s_msg = (f"time series ({dated[0][0]} … {dated[-1][0]}) look like metres "
             f"(all |d| < {SERIES_METRES_MAX})") if dated else ""
    override = "; pass --units mm to read the values as they are"
    metric = [q for q in (vel, ser) if q is not None]
    if metric and all(metric):
        out = []
        if vel:
            out.append(f"{v_msg}: converted to mm/yr (×1000){override}")
        if ser:
            out.append(f"{s_msg}: converted to mm (×1000){override}")
        return "m", out
    out = []
    if vel:
        out.append(f"{v_msg}; expected mm/yr (not converted: the time series look like mm; "
                   "pass --units m to convert both)")
    if ser:
        out.append(f"{s_msg}; expected mm (not converted: the velocity looks like mm/yr; "
                   "pass --units m to convert both)")
    return "mm", out


def unit_warnings(velocity: np.ndarray, vc: str, series_mm: np.ndarray,
                  dated: list[tuple[str, np.datetime64]]) -> list[str]:
    """What looks wrong with values read as mm (``--units mm`` given): reported, not
    changed."""
    vel, ser = looks_metric(velocity, series_mm)
    out = []
    if vel:
        out.append(f"column '{vc}' looks like m/yr (99 % of |v| < {VELOCITY_M_YR_P99}); "
                   "expected mm/yr")
    if ser:
        out.append(f"time series ({dated[0][0]} … {dated[-1][0]}) look like metres "
                   f"(all |d| < {SERIES_METRES_MAX}); expected mm")
    return out
