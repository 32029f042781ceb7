"""Everything training and evaluation need from one labelled cloud, prepared once.

Points are read and reprojected onto the DEM grid's CRS, the scalar features and the neighbour
table are computed for the whole cloud (O(N) memory), and the normalised patches go to an on-disk
float16 cache (``[N, 4, 80, 80]``, ~51 kB a point) so that a training batch is a memory-mapped
gather instead of a raster read, and RAM stays bounded whatever the cloud's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psirel.errors import PsirelError
from psirel.features.normalize import Normalizer
from psirel.features.patches import PATCH_PX
from psirel.features.scalars import scalar_features
from psirel.graph.hilbert import spatial_order
from psirel.graph.knn import NeighbourTable, knn_table
from psirel.io.cloud_grid import open_cloud, point_heights
from psirel.io.points import PointCloud
from psirel.io.rasters import RasterStack
from psirel.io.schema import PointSchema

MIN_LABELLED_POINTS = 100
"""Fewest labelled points a training cloud may hold: with fewer, the spatial validation blocks
keep a handful of points, and early stopping, the tuned threshold and Platt calibration follow
noise."""
MIN_PER_CLASS = 10
"""Fewest reliable and fewest unreliable points a training run needs (over all its clouds)."""
CLASSES = {1: "reliable (1)", 0: "unreliable (0)"}
SPLIT_HINT = ("give more labelled points of both classes, spread over a wider area, or a "
              "validation cloud (--clouds with a split column)")


@dataclass
class CloudInputs:
    """One point cloud with its rasters, features and graph (all arrays in input order)."""

    cloud: PointCloud
    stack: RasterStack
    height_m: np.ndarray          # [N] float32, from the points or sampled from the DEM
    scalars_raw: np.ndarray       # [N, S] float32, before standardisation
    scalar_names: list[str]
    table: NeighbourTable

    @property
    def n(self) -> int:
        return len(self.cloud.x)

    @property
    def labels(self) -> np.ndarray:
        if self.cloud.labels is None:
            raise PsirelError(f"{self.cloud.path}: no label column (use --label NAME)")
        return self.cloud.labels


def check_training_labels(path: Path | str, labels: np.ndarray, *,
                          classes: bool = True) -> None:
    """Refuse a cloud too small to train on and, with ``classes``, one with too few points of a
    class: a one-line error before any training step instead of a traceback from threshold
    tuning or scikit-learn after the first epoch. Several clouds are checked for classes together
    (:func:`check_label_classes`): one of them may hold only reliable points."""
    n = len(labels)
    if n < MIN_LABELLED_POINTS:
        raise PsirelError(f"{path}: {n} labelled point{'s' * (n != 1)}; training needs at "
                          f"least {MIN_LABELLED_POINTS}")
    if classes:
        check_label_classes(path, labels)


def check_label_classes(where: Path | str, labels: np.ndarray) -> None:
    """Both classes, each at least :data:`MIN_PER_CLASS` times: the class-balanced loss, the
    baselines and threshold tuning all need both."""
    n_rel = int(np.count_nonzero(labels))
    counts = {1: n_rel, 0: len(labels) - n_rel}
    few = min(counts, key=lambda c: counts[c])
    if counts[few] == 0:
        raise PsirelError(f"{where}: every labelled point is {CLASSES[1 - few]}; training needs "
                          "both classes")
    if counts[few] < MIN_PER_CLASS:
        raise PsirelError(f"{where}: only {counts[few]} of {len(labels)} labelled points are "
                          f"{CLASSES[few]}; training needs at least {MIN_PER_CLASS} of each class")


def check_split_labels(where: Path | str, y_train: np.ndarray, y_val: np.ndarray,
                       buffer_m: float) -> None:
    """Both classes on each side of the split: training seeds for the loss and the baselines,
    validation points for early stopping, threshold tuning and calibration."""
    for name, y in (("validation", y_val), ("training", y_train)):
        if len(y) == 0:
            raise PsirelError(f"{where}: no {name} point is left after the split (validation "
                              f"blocks and a {buffer_m:g} m buffer around them); {SPLIT_HINT}")
        if np.unique(y).size < 2:
            raise PsirelError(f"{where}: all {len(y)} {name} points are {CLASSES[int(y[0])]}; "
                              f"{name} needs both classes: {SPLIT_HINT}")


def load_inputs(points: Path | str, dem: Path | str, lulc: Path | str, amplitude: Path | str,
                *, label: str | None = None, crs: str | None = None, k: int = 16,
                r_max_m: float = 100.0, need_labels: bool = False,
                pixel_m: float | None = None, lulc_legend: str | None = None,
                schema: PointSchema | None = None) -> CloudInputs:
    """Read and check a cloud (columns and units as ``schema`` says) and its rasters (on a
    grid of ``pixel_m`` metres, land cover through ``lulc_legend``: see
    :class:`~psirel.io.rasters.RasterStack`); compute scalar features and the kNN graph."""
    cloud, stack = open_cloud(points, dem, lulc, amplitude,
                              {"pixel_m": pixel_m, "lulc_legend": lulc_legend}, crs=crs,
                              label=label, schema=schema)
    try:
        if need_labels and cloud.labels is None:
            raise PsirelError(f"{points}: no label column '{label or 'reliable'}'")
        return cloud_inputs(cloud, stack, k, r_max_m)
    except Exception:
        stack.close()
        raise


def cloud_inputs(cloud: PointCloud, stack: RasterStack, k: int, r_max_m: float) -> CloudInputs:
    """A cloud read on its rasters' grid with what every consumer derives from it: heights
    (own, else the DEM's), scalar features (one thread per CPU) and the kNN graph (``k``,
    ``r_max_m`` metres)."""
    height = point_heights(cloud, stack)
    feats, names = scalar_features(cloud.velocity_mm_yr, cloud.coherence, cloud.series_mm,
                                   cloud.dates, workers=None)
    table = knn_table(cloud.x, cloud.y, k=k, r_max_m=r_max_m)
    return CloudInputs(cloud, stack, height, feats, names, table)


def build_patch_cache(inputs: CloudInputs, normalizer: Normalizer, cache_dir: Path,
                      chunk: int = 4096, progress=None) -> tuple[np.ndarray, int]:
    """Normalised patches for every point in a float16 memmap; reused when already complete.

    Returns the read-only memmap ``[N, 4, P, P]`` and the number of points whose patch holds a
    land-cover code the model never saw.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    n = inputs.n
    key = {"n": n, "points": str(inputs.cloud.path), "normalizer": normalizer.to_json(),
           "x0": float(inputs.cloud.x[0]), "y0": float(inputs.cloud.y[0]), "patch_px": PATCH_PX}
    data_path, done_path = cache_dir / "patches.f16.npy", cache_dir / "patches.json"
    if done_path.exists() and data_path.exists():
        done = json.loads(done_path.read_text())
        if done.get("key") == key:
            return np.load(data_path, mmap_mode="r"), int(done["n_unknown"])
    done_path.unlink(missing_ok=True)
    arr = np.lib.format.open_memmap(data_path, mode="w+", dtype=np.float16,
                                    shape=(n, 4, PATCH_PX, PATCH_PX))
    order = spatial_order(inputs.cloud.x, inputs.cloud.y)
    n_unknown = 0
    buf = np.empty((min(chunk, n), 4, PATCH_PX, PATCH_PX), np.float32)  # reused: no page faults
    for s in range(0, n, chunk):
        sel = np.sort(order[s:s + chunk])
        norm, unk = normalizer.extract(inputs.stack, inputs.cloud.x[sel], inputs.cloud.y[sel],
                                       out=buf[:len(sel)])
        arr[sel] = norm
        n_unknown += int(unk)
        if progress is not None:
            progress(len(sel))
    arr.flush()
    del arr
    done_path.write_text(json.dumps({"key": key, "n_unknown": n_unknown}))
    return np.load(data_path, mmap_mode="r"), n_unknown
