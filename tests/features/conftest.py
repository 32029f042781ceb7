"""Small GeoTIFF scenes for the feature tests.

The reference scene is a 200 x 240 grid of 10 m pixels in UTM 33N whose DEM value encodes the
pixel (``row * 1000 + col``), so every patch value says where it was read from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from psirel.io.rasters import RasterStack

CRS = "EPSG:32633"
X0, Y0, PIXEL_M = 500_000.0, 5_000_000.0, 10.0
HEIGHT, WIDTH = 200, 240
LULC_CODES = (10, 20, 30, 40, 50)


def write_tif(path: Path, arr: np.ndarray, *, crs: str = CRS, x0: float = X0, y0: float = Y0,
              pixel_m: float = PIXEL_M, nodata: float | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                       count=1, dtype=arr.dtype, crs=crs, nodata=nodata,
                       transform=Affine(pixel_m, 0.0, x0, 0.0, -pixel_m, y0)) as dst:
        dst.write(arr, 1)
    return path


def pixel_xy(row: float, col: float, pixel_m: float = PIXEL_M) -> tuple[float, float]:
    """Map coordinates of fractional pixel position (row, col) on the reference grid."""
    return X0 + col * pixel_m, Y0 - row * pixel_m


def encoded_dem(height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    r, c = np.mgrid[0:height, 0:width]
    return (r * 1000 + c).astype(np.float32)


def lulc_of(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Land-cover code of the reference scene at pixel (r, c)."""
    return np.asarray(LULC_CODES, dtype=np.uint8)[(np.asarray(r) // 7 + np.asarray(c) // 11) % 5]


def amp_of(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    return (0.05 + 0.001 * np.asarray(r) + 0.002 * np.asarray(c)).astype(np.float32)


@pytest.fixture(scope="session")
def scene_paths(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("scene")
    r, c = np.mgrid[0:HEIGHT, 0:WIDTH]
    return {"dem": write_tif(d / "dem.tif", encoded_dem()),
            "lulc": write_tif(d / "lulc.tif", lulc_of(r, c)),
            "amplitude": write_tif(d / "amp.tif", amp_of(r, c))}


@pytest.fixture
def stack(scene_paths) -> RasterStack:
    with RasterStack(**scene_paths) as s:
        yield s


@pytest.fixture
def make_stack(tmp_path) -> Callable[..., RasterStack]:
    """Build a stack from arrays (reference grid unless keyword overrides are given)."""
    opened: list[RasterStack] = []

    def make(dem_arr: np.ndarray, lulc_arr: np.ndarray, amp_arr: np.ndarray, **kw) -> RasterStack:
        i = len(opened)
        paths = {}
        for name, arr in (("dem", dem_arr), ("lulc", lulc_arr), ("amplitude", amp_arr)):
            opts = kw.get(name, {})
            paths[name] = write_tif(tmp_path / f"{name}{i}.tif", arr, **opts)
        s = RasterStack(**paths)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture(scope="session")
def grid():
    """The reference grid's constants and helpers, for tests (no conftest imports needed)."""
    from types import SimpleNamespace

    return SimpleNamespace(crs=CRS, x0=X0, y0=Y0, pixel_m=PIXEL_M, height=HEIGHT, width=WIDTH,
                           codes=LULC_CODES, pixel_xy=pixel_xy, lulc_of=lulc_of, amp_of=amp_of,
                           encoded_dem=encoded_dem, write_tif=write_tif)
