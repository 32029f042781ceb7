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
        height = point_heights(cloud, stack)
        feats, names = scalar_features(cloud.velocity_mm_yr, cloud.coherence, cloud.series_mm,
                                       cloud.dates)
        table = knn_table(cloud.x, cloud.y, k=k, r_max_m=r_max_m)
    except Exception:
        stack.close()
        raise
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
