"""Shared fixtures: tiny synthetic rasters and point tables written with rasterio / numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

UTM = "EPSG:32633"  # the projected CRS of the synthetic rasters
ORIGIN = (400_000.0, 5_000_000.0)  # top-left corner of the DEM, UTM metres


@pytest.fixture
def write_raster():
    """``write_raster(path, array, crs, transform, nodata=None) -> Path``: one-band GeoTIFF."""

    def write(path: Path, array: np.ndarray, crs: str | None, transform, nodata=None) -> Path:
        with rasterio.open(path, "w", driver="GTiff", width=array.shape[1],
                           height=array.shape[0], count=1, dtype=array.dtype, crs=crs,
                           transform=transform, nodata=nodata) as dst:
            dst.write(array, 1)
        return Path(path)

    return write


@pytest.fixture
def dem_path(tmp_path, write_raster) -> Path:
    """100 × 120 px DEM at 10 m in UTM 33N from ORIGIN; value = 1000 + row * 1000 + col
    (so a value names its pixel); pixel (0, 0) is nodata (-9999)."""
    rows, cols = np.mgrid[0:100, 0:120]
    dem = (1000 + rows * 1000 + cols).astype(np.float32)
    dem[0, 0] = -9999
    return write_raster(tmp_path / "dem.tif", dem, UTM, Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1]),
                        -9999)


@pytest.fixture
def point_columns():
    """``point_columns(n, seed=0) -> dict``: a plausible PSI attribute table of n points."""

    def make(n: int, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {
            "pid": np.array([f"P{i:05d}" for i in range(n)], dtype=object),
            "velocity": rng.normal(0, 3, n).astype(np.float32),
            "coherence": rng.uniform(0.3, 1, n).astype(np.float32),
            "height": rng.normal(300, 50, n).astype(np.float32),
            "D20200101": np.zeros(n, np.float32),
            "D20200113": rng.normal(0, 2, n).astype(np.float32),
            "D20200125": rng.normal(0, 3, n).astype(np.float32),
            "reliable": rng.integers(0, 2, n).astype(np.int8),
        }

    return make


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory) -> Path:
    """A 3,000-point synthetic scene (seed 5), generated once per session."""
    from psirel.scene import generate_scene

    d = tmp_path_factory.mktemp("tiny_scene")
    generate_scene(d, n_points=3000, seed=5)
    return d


def _train_tiny(tiny_scene, tmp_path_factory, name: str, *extra: str) -> Path:
    from psirel_testing import scene_args

    from psirel.cli import main

    out = tmp_path_factory.mktemp(name) / "model"
    code = main(["train", *scene_args(tiny_scene), "--out", str(out), "--epochs", "1",
                 "--max-steps", "2", "--batch-size", "128", "--seed", "3", "--ensemble", "2",
                 *extra])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_scene, tmp_path_factory) -> Path:
    """A model trained for one short epoch on ``tiny_scene`` (structure, not quality)."""
    return _train_tiny(tiny_scene, tmp_path_factory, "tiny_model")


@pytest.fixture(scope="session")
def tiny_patch_model(tiny_scene, tmp_path_factory) -> Path:
    """As ``tiny_model``, with the patch encoder (an 80×80 patch per point)."""
    return _train_tiny(tiny_scene, tmp_path_factory, "tiny_patch_model", "--encoder", "patch")
