"""Patch extraction speed: patches/s for 20,000 points on a 3 km x 3 km, 10 m raster.

Not collected by pytest. Run: ``.venv/bin/python tests/features/bench_patches.py [n_points]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import Affine

from psirel.features.normalize import Normalizer
from psirel.features.patches import extract_patches, iter_patch_chunks
from psirel.graph.hilbert import spatial_order
from psirel.io.rasters import RasterStack


def write(path: Path, arr: np.ndarray, nodata=None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                       count=1, dtype=arr.dtype, crs="EPSG:32633", nodata=nodata,
                       transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0),
                       tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(arr, 1)
    return path


def main(n: int = 20_000, size_px: int = 300) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        dem = write(d / "dem.tif", rng.normal(500, 50, (size_px, size_px)).astype(np.float32))
        lulc = write(d / "lulc.tif", rng.choice([10, 20, 30, 50, 80], (size_px, size_px))
                     .astype(np.uint8))
        amp = write(d / "amp.tif", rng.gamma(2.0, 0.1, (size_px, size_px)).astype(np.float32))
        with RasterStack(dem, lulc, amp) as stack:
            left, bottom, right, top = stack.bounds
            x = rng.uniform(left, right, n)
            y = rng.uniform(bottom, top, n)
            norm = Normalizer(lulc_codes=[10, 20, 30, 50, 80], dem_rel_std_m=50.0,
                              amp_db_mean=-10.0, amp_db_std=3.0, scalar_mean=[], scalar_std=[],
                              scalar_names=[])
            for chunk in (1024, 2048, 4096):
                for reuse in (False, True):
                    t0 = time.perf_counter()
                    for _ in iter_patch_chunks(stack, x, y, chunk_size=chunk, reuse_buffer=reuse):
                        pass
                    dt = time.perf_counter() - t0
                    print(f"extract  chunk={chunk:5d} reuse={reuse!s:5}: {n / dt:9.0f} patches/s")
            t0 = time.perf_counter()
            buf = np.empty((2048, 4, 80, 80), np.float32)
            for _, raw, valid in iter_patch_chunks(stack, x, y, chunk_size=2048,
                                                   reuse_buffer=True):
                norm.patches(raw, valid, out=buf)
            dt = time.perf_counter() - t0
            print(f"extract + Normalizer.patches 2048: {n / dt:9.0f} patches/s")
            order = spatial_order(x, y)
            for reuse in (False, True):
                t0 = time.perf_counter()
                for s in range(0, n, 2048):
                    idx = order[s:s + 2048]
                    norm.extract(stack, x[idx], y[idx], out=buf if reuse else None)
                dt = time.perf_counter() - t0
                print(f"Normalizer.extract 2048 reuse={reuse!s:5}: {n / dt:9.0f} patches/s")
            # one call on unordered points (worst case for grouping)
            t0 = time.perf_counter()
            extract_patches(stack, x[:2048], y[:2048])
            dt = time.perf_counter() - t0
            print(f"extract  2048 unordered points: {2048 / dt:9.0f} patches/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
