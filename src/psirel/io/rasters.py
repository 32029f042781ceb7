"""Raster inputs: DEM, land cover (LULC) and mean SAR amplitude, aligned on the DEM's grid.

The three layers may come in different CRSs and resolutions. Patches are sampled on one grid, the
DEM's, so the LULC and amplitude rasters are wrapped in a lazy :class:`rasterio.vrt.WarpedVRT`
onto that grid (nearest for class codes, bilinear for continuous values). Nothing is read until
a window is asked for, so a chunk of points only ever touches the pixels around it.

No data becomes NaN: a layer's nodata value, and every DEM pixel a warped layer does not cover.
A source without a nodata value is warped with an alpha band, because a warped VRT otherwise
fills what lies outside the source with 0, which would pass for a valid land-cover class or a
zero amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from psirel.errors import InputFileNotFound, MissingCRS, RasterMismatch, UnreadableFile

LAYERS = ("dem", "lulc", "amplitude")
# Class codes must never be interpolated; heights and amplitudes may.
RESAMPLING = {"dem": Resampling.bilinear, "lulc": Resampling.nearest,
              "amplitude": Resampling.bilinear}


@dataclass(frozen=True)
class LayerInfo:
    """What a user should know about one input raster, in its own CRS."""

    name: str
    path: Path
    crs: str
    res_m: tuple[float, float]
    bounds: tuple[float, float, float, float]
    shape: tuple[int, int]
    nodata: float | None
    dtype: str
    warped: bool  # True when resampled onto the DEM grid
    units: str = "m"  # of res_m and bounds: the raster CRS's unit ("degree" for EPSG:4326)


def open_raster(path: Path | str, name: str) -> rasterio.DatasetReader:
    """Open one raster with a one-line error for every way it can fail."""
    path = Path(path)
    if not path.exists():
        raise InputFileNotFound(path, f"{name} raster")
    try:
        src = rasterio.open(path)
    except (RasterioIOError, rasterio.errors.RasterioError) as exc:
        raise UnreadableFile(path, _reason(exc)) from None
    if not src.crs:
        src.close()
        raise MissingCRS(path, "assign one, e.g. gdal_edit.py -a_srs EPSG:32633")
    if src.count < 1:
        src.close()
        raise UnreadableFile(path, "no band")
    return src


class RasterStack:
    """DEM, LULC and amplitude on the DEM's pixel grid, read lazily by window.

    ``read_window`` returns ``[3, h, w]`` float32 (layers in :data:`LAYERS` order, NaN where a
    layer has no data or the window leaves the raster) and a ``[h, w]`` validity mask.
    """

    def __init__(self, dem: Path | str, lulc: Path | str, amplitude: Path | str):
        self.paths = {"dem": Path(dem), "lulc": Path(lulc), "amplitude": Path(amplitude)}
        self._sources = {}
        self._readers = {}
        self._alpha = {}  # layer → alpha band index of its warped VRT (source without nodata)
        try:
            for name in LAYERS:
                self._sources[name] = open_raster(self.paths[name], name)
        except Exception:
            self.close()
            raise
        ref = self._sources["dem"]
        self.crs = ref.crs
        if not self.crs.is_projected:
            self.close()
            raise RasterMismatch(self.paths["dem"], "DEM must be in a projected CRS (metres), "
                                 f"got {self.crs.to_string()}")
        self.transform = ref.transform
        self.width, self.height = ref.width, ref.height
        self.pixel_m = float(abs(ref.transform.a))
        if abs(abs(ref.transform.e) - self.pixel_m) > 1e-6 * self.pixel_m:
            self.close()
            raise RasterMismatch(self.paths["dem"], "DEM pixels must be square")
        for name, src in self._sources.items():
            same_grid = (src.crs == ref.crs and src.transform == ref.transform
                         and src.width == ref.width and src.height == ref.height)
            if same_grid:
                self._readers[name] = src
            elif src.nodata is not None:
                self._readers[name] = WarpedVRT(
                    src, crs=ref.crs, transform=ref.transform, width=ref.width,
                    height=ref.height, resampling=RESAMPLING[name],
                    src_nodata=src.nodata, nodata=src.nodata)
            else:
                vrt = WarpedVRT(src, crs=ref.crs, transform=ref.transform, width=ref.width,
                                height=ref.height, resampling=RESAMPLING[name], add_alpha=True)
                self._readers[name] = vrt
                self._alpha[name] = vrt.count

    # ------------------------------------------------------------------ context management
    def close(self) -> None:
        for r in self._readers.values():
            if isinstance(r, WarpedVRT):
                r.close()
        for s in self._sources.values():
            s.close()
        self._readers, self._sources = {}, {}

    def __enter__(self) -> RasterStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):  # reopen in another process (dask workers) instead of pickling GDAL
        return {"paths": self.paths}

    def __setstate__(self, state):
        self.__init__(**state["paths"])

    # ------------------------------------------------------------------ geometry
    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the DEM grid in CRS metres."""
        b = rasterio.transform.array_bounds(self.height, self.width, self.transform)
        return (b[0], b[1], b[2], b[3])

    def to_pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of map coordinates on the DEM grid; pixel centres at .5."""
        inv = ~self.transform
        col = inv.a * np.asarray(x, float) + inv.b * np.asarray(y, float) + inv.c
        row = inv.d * np.asarray(x, float) + inv.e * np.asarray(y, float) + inv.f
        return row, col

    def layer_infos(self) -> list[LayerInfo]:
        infos = []
        for name in LAYERS:
            s = self._sources[name]
            infos.append(LayerInfo(
                name=name, path=self.paths[name], crs=s.crs.to_string(),
                res_m=(float(abs(s.transform.a)), float(abs(s.transform.e))),
                bounds=tuple(float(v) for v in s.bounds), shape=(s.height, s.width),
                nodata=None if s.nodata is None else float(s.nodata), dtype=s.dtypes[0],
                warped=isinstance(self._readers[name], WarpedVRT),
                units="degree" if s.crs.is_geographic else _unit(s.crs.linear_units)))
        return infos

    def inside(self, x: np.ndarray, y: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        """True where a point lies at least ``margin_px`` pixels inside the DEM grid."""
        row, col = self.to_pixel(x, y)
        return ((row >= margin_px) & (row < self.height - margin_px)
                & (col >= margin_px) & (col < self.width - margin_px))

    # ------------------------------------------------------------------ reading
    def read_window(self, row0: int, col0: int, height: int, width: int
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Read a window that may extend past the raster edges.

        Returns ``values [3, height, width]`` float32 with NaN outside the raster or at nodata,
        and ``valid [height, width]`` bool, True where all three layers have data.
        """
        out = np.full((len(LAYERS), height, width), np.nan, dtype=np.float32)
        r0, c0 = max(row0, 0), max(col0, 0)
        r1, c1 = min(row0 + height, self.height), min(col0 + width, self.width)
        if r1 > r0 and c1 > c0:
            win = Window(c0, r0, c1 - c0, r1 - r0)
            for i, name in enumerate(LAYERS):
                out[i, r0 - row0:r1 - row0, c0 - col0:c1 - col0] = self._read_layer(name, win)
        valid = np.isfinite(out).all(axis=0)
        return out, valid

    def _read_layer(self, name: str, win: Window) -> np.ndarray:
        """One layer's window on the DEM grid as float32, NaN at nodata / outside the source."""
        reader = self._readers[name]
        try:
            if name in self._alpha:  # one read: the band and its alpha share the warp
                band, alpha = reader.read([1, self._alpha[name]], window=win)
                band = band.astype(np.float32)
                band[alpha == 0] = np.nan
                return band
            band = reader.read(1, window=win, masked=True)
        except rasterio.errors.RasterioError as exc:  # a truncated or corrupt file
            raise UnreadableFile(self.paths[name], _reason(exc)) from None
        return np.ma.filled(band.astype(np.float32), np.nan)

    def sample(self, x: np.ndarray, y: np.ndarray, layer: str = "dem",
               tile_px: int = 512) -> np.ndarray:
        """Values of one layer at map coordinates, from the DEM-grid pixel each point falls in
        (NaN outside or at nodata).

        Points are grouped by ``tile_px`` × ``tile_px`` tiles and each tile's window is read
        once, so memory stays bounded however far apart the points are.
        """
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
        row, col = self.to_pixel(x, y)
        r, c = np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)
        out = np.full(len(r), np.nan, dtype=np.float32)
        ok = np.flatnonzero((r >= 0) & (r < self.height) & (c >= 0) & (c < self.width))
        if len(ok) == 0:
            return out
        tiles = (r[ok] // tile_px) * ((self.width + tile_px - 1) // tile_px) + c[ok] // tile_px
        order = np.argsort(tiles, kind="stable")
        bounds = np.flatnonzero(np.diff(tiles[order])) + 1
        for group in np.split(ok[order], bounds):
            rg, cg = r[group], c[group]
            r0, c0 = int(rg.min()), int(cg.min())
            win = Window(c0, r0, int(cg.max()) + 1 - c0, int(rg.max()) + 1 - r0)
            out[group] = self._read_layer(layer, win)[rg - r0, cg - c0]
        return out


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _unit(name: str | None) -> str:
    return "m" if not name or name.lower() in ("metre", "meter", "metres", "meters") else name
