"""What a baseline may look at: one record of plain arrays, one row per point.

``PointData`` holds everything the baselines (and the hand features of gradient boosting) use.
It is built by the training glue from a ``PointCloud``, the raster patches and the neighbour table;
nothing here reads files except :func:`save_training_features` / :func:`load_training_features`,
which store a ``PointData`` and its labels as a compressed ``.npz`` of plain arrays (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

_FLOAT64 = ("x_m", "y_m")
_FLOAT32 = ("velocity_mm_yr", "coherence", "series_mm", "series_feats", "patch_stats", "slope_deg")
_NAMES = ("series_feat_names", "patch_stat_names")


@dataclass
class PointData:
    """Per-point inputs of the baselines, N rows.

    Attributes:
        x_m, y_m: [N] float64 projected coordinates, metres.
        velocity_mm_yr: [N] float32 line-of-sight velocity, mm/yr.
        coherence: [N] float32 temporal coherence, 0..1.
        series_mm: [N, T] float32 displacement series, mm (T may be 0; NaN = missing epoch).
        series_feats: [N, F] float32 robust series statistics; names in ``series_feat_names``.
        nbr_idx: [N, k] int64 neighbour table: row i lists neighbours of i (never i itself).
        nbr_mask: [N, k] bool, True where ``nbr_idx`` is a real neighbour (empty slots are set to
            the row's own index on construction).
        patch_stats: [N, P] float32 per-layer statistics of the point's 80×80 patch; names in
            ``patch_stat_names``.
        slope_deg: [N] float32 terrain slope at the point, degrees.
        lulc_class: [N] int64 land-cover code at the point (negative = unknown).

    Arrays are converted to the dtypes above on construction and checked for consistent shapes.
    """

    x_m: np.ndarray
    y_m: np.ndarray
    velocity_mm_yr: np.ndarray
    coherence: np.ndarray
    series_mm: np.ndarray
    series_feats: np.ndarray
    series_feat_names: list[str]
    nbr_idx: np.ndarray
    nbr_mask: np.ndarray
    patch_stats: np.ndarray
    patch_stat_names: list[str]
    slope_deg: np.ndarray
    lulc_class: np.ndarray

    def __post_init__(self) -> None:
        for name in _FLOAT64:
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        for name in _FLOAT32:
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float32))
        self.nbr_idx = np.ascontiguousarray(self.nbr_idx, dtype=np.int64)
        self.nbr_mask = np.ascontiguousarray(self.nbr_mask, dtype=bool)
        self.lulc_class = np.ascontiguousarray(self.lulc_class, dtype=np.int64)
        if self.nbr_idx.shape == self.nbr_mask.shape and self.nbr_idx.ndim == 2:
            # empty slots hold the row's own index (as psirel.graph.knn does), so gathers through
            # the table never leave the array whatever the producer put there
            own = np.arange(self.nbr_idx.shape[0], dtype=np.int64)[:, None]
            self.nbr_idx = np.where(self.nbr_mask, self.nbr_idx, own)
        self.series_feat_names = [str(s) for s in self.series_feat_names]
        self.patch_stat_names = [str(s) for s in self.patch_stat_names]
        self._validate()

    def _validate(self) -> None:
        n = self.x_m.shape[0]
        for name in ("x_m", "y_m", "velocity_mm_yr", "coherence", "slope_deg", "lulc_class"):
            a = getattr(self, name)
            if a.shape != (n,):
                raise ValueError(f"PointData.{name} has shape {a.shape}, expected ({n},)")
        for name in ("series_mm", "series_feats", "patch_stats", "nbr_idx", "nbr_mask"):
            a = getattr(self, name)
            if a.ndim != 2 or a.shape[0] != n:
                raise ValueError(f"PointData.{name} has shape {a.shape}, expected ({n}, ·)")
        if self.nbr_mask.shape != self.nbr_idx.shape:
            raise ValueError(
                f"PointData.nbr_mask {self.nbr_mask.shape} != nbr_idx {self.nbr_idx.shape}"
            )
        if len(self.series_feat_names) != self.series_feats.shape[1]:
            raise ValueError(
                f"{len(self.series_feat_names)} series_feat_names for "
                f"{self.series_feats.shape[1]} series_feats columns"
            )
        if len(self.patch_stat_names) != self.patch_stats.shape[1]:
            raise ValueError(
                f"{len(self.patch_stat_names)} patch_stat_names for "
                f"{self.patch_stats.shape[1]} patch_stats columns"
            )
        used = self.nbr_idx[self.nbr_mask]
        if used.size and (used.min() < 0 or used.max() >= n):
            raise ValueError(f"PointData.nbr_idx has valid entries outside 0..{n - 1}")
        rows = np.broadcast_to(np.arange(n)[:, None], self.nbr_idx.shape)
        if np.any(self.nbr_mask & (self.nbr_idx == rows)):
            raise ValueError("PointData.nbr_idx lists a point as its own neighbour")

    @property
    def n_points(self) -> int:
        return int(self.x_m.shape[0])

    def __len__(self) -> int:
        return self.n_points

    @classmethod
    def from_arrays(
        cls,
        x_m,
        y_m,
        velocity_mm_yr,
        coherence,
        nbr_idx,
        nbr_mask=None,
        *,
        series_mm=None,
        series_feats=None,
        series_feat_names=None,
        patch_stats=None,
        patch_stat_names=None,
        slope_deg=None,
        lulc_class=None,
    ) -> PointData:
        """Build from the arrays at hand; absent parts become empty (T = F = P = 0) or constant
        (slope 0°, land cover -1 = unknown). ``nbr_mask`` defaults to ``nbr_idx >= 0``."""
        n = np.asarray(x_m).shape[0]
        nbr_idx = np.asarray(nbr_idx, dtype=np.int64)
        if nbr_mask is None:
            nbr_mask = nbr_idx >= 0
        empty = np.zeros((n, 0), np.float32)
        return cls(
            x_m=x_m,
            y_m=y_m,
            velocity_mm_yr=velocity_mm_yr,
            coherence=coherence,
            series_mm=empty if series_mm is None else series_mm,
            series_feats=empty if series_feats is None else series_feats,
            series_feat_names=list(series_feat_names or []),
            nbr_idx=nbr_idx,
            nbr_mask=nbr_mask,
            patch_stats=empty if patch_stats is None else patch_stats,
            patch_stat_names=list(patch_stat_names or []),
            slope_deg=np.zeros(n, np.float32) if slope_deg is None else slope_deg,
            lulc_class=np.full(n, -1, np.int64) if lulc_class is None else lulc_class,
        )

    def take(self, index) -> PointData:
        """The points ``index`` (indices or a boolean mask) as a new ``PointData``.

        Neighbour indices are renumbered; neighbours that are not selected are masked out, as for a
        spatial block cut out of a larger cloud.
        """
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        new_pos = np.full(self.n_points, -1, np.int64)
        new_pos[index] = np.arange(index.size)
        idx = new_pos[self.nbr_idx[index]]
        mask = self.nbr_mask[index] & (idx >= 0)
        return PointData(
            x_m=self.x_m[index],
            y_m=self.y_m[index],
            velocity_mm_yr=self.velocity_mm_yr[index],
            coherence=self.coherence[index],
            series_mm=self.series_mm[index],
            series_feats=self.series_feats[index],
            series_feat_names=list(self.series_feat_names),
            nbr_idx=idx,
            nbr_mask=mask,
            patch_stats=self.patch_stats[index],
            patch_stat_names=list(self.patch_stat_names),
            slope_deg=self.slope_deg[index],
            lulc_class=self.lulc_class[index],
        )


@runtime_checkable
class ReliabilityEstimator(Protocol):
    """The interface shared by the baselines and the model (scikit-learn-like).

    ``fit`` learns from labelled points (1 reliable, 0 unreliable) and returns ``self``;
    ``predict_proba`` returns [N, 2] with columns P(label 0 = unreliable), P(label 1 = reliable);
    ``to_json`` returns a JSON-serialisable dict from which ``from_json`` rebuilds the estimator
    without pickle.
    """

    name: str

    def fit(self, data: PointData, y: np.ndarray) -> ReliabilityEstimator: ...

    def predict_proba(self, data: PointData) -> np.ndarray: ...

    def to_json(self) -> dict: ...

    @classmethod
    def from_json(cls, d: dict) -> ReliabilityEstimator: ...


def check_labels(y, n: int) -> np.ndarray:
    """Labels as int64 0/1 of length ``n``, both classes present (raises ``ValueError``)."""
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{y.shape[0]} labels for {n} points")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (unreliable) or 1 (reliable)")
    y = y.astype(np.int64)
    if np.unique(y).size < 2:
        raise ValueError("training needs both reliable (1) and unreliable (0) points")
    return y


def proba_columns(p_reliable: np.ndarray) -> np.ndarray:
    """[N] P(reliable) → [N, 2] float64 (P(unreliable), P(reliable)), clipped to [0, 1]."""
    p = np.clip(np.asarray(p_reliable, dtype=np.float64), 0.0, 1.0)
    return np.stack([1.0 - p, p], axis=1)


# --- training features on disk ---------------------------------------------------------------

_FORMAT = "psirel.training_features"
_FORMAT_VERSION = 1


def save_training_features(path: Path | str, data: PointData, y: np.ndarray) -> Path:
    """Store ``data`` and labels ``y`` as a compressed ``.npz`` of plain arrays.

    Names are stored as JSON strings (a 0-d unicode array), so loading never needs pickle. The file
    is written to a temporary name beside ``path`` and renamed when complete.
    """
    from psirel.io.atomic import atomic_path

    path = Path(path)
    y = check_labels(y, data.n_points)
    arrays: dict[str, Any] = {f.name: getattr(data, f.name) for f in fields(PointData)}
    for name in _NAMES:
        arrays[name] = np.array(json.dumps(arrays[name]))
    arrays["y"] = y
    arrays["_format"] = np.array(json.dumps({"format": _FORMAT, "version": _FORMAT_VERSION}))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending ".npz"
            np.savez_compressed(f, **arrays)
    return path


def load_training_features(path: Path | str) -> tuple[PointData, np.ndarray]:
    """Read a file written by :func:`save_training_features`: ``(PointData, y)``."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        if "_format" not in z.files:
            raise ValueError(f"{path}: not a psirel training-features file")
        meta = json.loads(str(z["_format"]))
        if meta.get("format") != _FORMAT or meta.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported training-features format {meta}")
        kw: dict[str, Any] = {}
        for f in fields(PointData):
            if f.name not in z.files:
                raise ValueError(f"{path}: missing array '{f.name}'")
            kw[f.name] = json.loads(str(z[f.name])) if f.name in _NAMES else z[f.name]
        y = z["y"]
    return PointData(**kw), y
