"""Raster inputs: DEM, land cover (LULC) and mean SAR amplitude, aligned on one pixel grid.

The three layers may come in any CRS (geographic included) and any resolution. Patches are
sampled on one grid, :attr:`RasterStack.grid`:

* ``pixel_m=None`` with a DEM projected in metres (square pixels): the DEM's own grid, the DEM
  read as it is and the other layers warped onto it exactly as before model grids existed
  (nearest for class codes, bilinear otherwise).
* otherwise the model's grid (:func:`psirel.io.grid.model_grid`: the given CRS, the DEM's, or
  the UTM zone of a geographic DEM, at ``pixel_m`` — or at the DEM's own resolution,
  :func:`~psirel.io.grid.native_pixel_m`, when ``pixel_m`` is None), every layer, the DEM
  included, a lazy :class:`rasterio.vrt.WarpedVRT` onto it: nearest for land cover (codes are
  never blended), bilinear for DEM and amplitude, and ``Resampling.average`` when a source is
  more than :data:`AVERAGE_RATIO` times finer than the grid (bilinear would read 4 of its
  pixels and alias the rest away). Continuous layers are warped in float32, so interpolated
  heights of an integer DEM keep their fractions.

Nothing is read until a window is asked for, so a chunk of points only ever touches the pixels
around it.

No data becomes NaN: a layer's nodata value, and every grid pixel a warped layer does not cover.
A source without a nodata value is warped with an alpha band, because a warped VRT otherwise
fills what lies outside the source with 0, which would pass for a valid land-cover class or a
zero amplitude.

DEM heights are returned in metres: a DEM whose band unit (or vertical CRS) is in feet
(``ft``, ``foot``, ``us-ft``, …) is converted (× 0.3048, US survey feet × 1200/3937; see
:func:`psirel.io.raster_sources.dem_scale_m`). Land cover
is returned as raw codes (``lulc_legend=None``) or as :mod:`psirel.io.legends` semantic classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from psirel.errors import LandCoverLegendError, UnreadableFile, first_line
from psirel.io import legends
from psirel.io.grid import Grid, is_metric_projected, model_grid, native_pixel_m
from psirel.io.raster_sources import (  # noqa: F401  (AVERAGE_RATIO, DETECT_MAX_SIDE_PX re-exported)
    AVERAGE_RATIO,
    DETECT_MAX_SIDE_PX,
    choose_resampling,
    crs_wkt,
    dem_scale_m,
    open_raster,
    overview_codes,
    unit_name,
)

LAYERS = ("dem", "lulc", "amplitude")
# GeoTIFF metadata item naming a land-cover raster's legend (``lulc_legend="auto"`` reads it
# before guessing from the codes); e.g. ``gdal_edit.py -mo LULC_LEGEND=corine lulc.tif``
LEGEND_TAG = "LULC_LEGEND"
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
    warped: bool  # True when resampled onto the stack's grid
    units: str = "m"  # of res_m and bounds: the raster CRS's unit ("degree" for EPSG:4326)
    resampling: str = "none"  # how it is warped onto the grid ("none" when read as it is)
    value_scale: float = 1.0  # values are multiplied by this (DEM in feet → metres)

def stack_grid(dem, pixel_m: float | None = None, crs=None, bbox=None) -> Grid:
    """The grid a :class:`RasterStack` with these arguments samples on (``dem``: an open
    dataset): the DEM's own grid (``crs_source="legacy"``) when ``pixel_m`` is None, there is no
    ``bbox``, the DEM is projected in metres with square north-up pixels and ``crs`` is absent,
    geographic or the DEM's; else :func:`~psirel.io.grid.model_grid` at ``pixel_m`` or at
    :func:`~psirel.io.grid.native_pixel_m`."""
    t = dem.transform
    square = t.b == 0 and t.d == 0 and abs(abs(t.e) - abs(t.a)) <= 1e-6 * abs(t.a)
    own_crs = crs is None or not is_metric_projected(crs) or CRS.from_user_input(crs_wkt(crs)) \
        == dem.crs
    if pixel_m is None and bbox is None and own_crs and square and is_metric_projected(dem.crs):
        return Grid(dem.crs, t, dem.width, dem.height, crs_source="legacy")
    px = native_pixel_m(dem) if pixel_m is None else float(pixel_m)
    return model_grid(dem, px, crs=crs, bbox=bbox)


class RasterStack:
    """DEM, LULC and amplitude on one pixel grid (:attr:`grid`), read lazily by window.

    ``read_window`` returns ``[3, h, w]`` float32 (layers in :data:`LAYERS` order, NaN where a
    layer has no data or the window leaves the raster) and a ``[h, w]`` validity mask.

    Args:
        dem, lulc, amplitude: single-band rasters, each in any CRS and resolution.
        pixel_m: the model's pixel size in metres. None with a DEM projected in metres (square
            pixels) and no ``crs``/``bbox`` to honour: the DEM's own grid, as before model grids.
            None otherwise: a model grid at the DEM's own resolution
            (:func:`~psirel.io.grid.native_pixel_m`; a 1" geographic DEM gives 25–30 m).
        crs: preferred grid CRS, e.g. the points' (used when projected in metres; see
            :func:`~psirel.io.grid.model_grid`).
        bbox: ``(left, bottom, right, top)`` in ``crs`` (or the DEM's CRS without ``crs``): the
            grid covers only this area plus a margin of
            :data:`~psirel.io.grid.DEFAULT_MARGIN_PX` pixels.
        lulc_legend: None: land cover as raw codes (models saved before legends existed). A
            legend name (:data:`psirel.io.legends.LEGENDS`): codes mapped to semantic classes.
            ``"auto"``: the legend detected from a decimated read of the land-cover raster over
            the grid (:class:`~psirel.errors.LandCoverLegendError` when that is ambiguous).

    Attributes:
        grid: the :class:`~psirel.io.grid.Grid`; ``crs``, ``transform``, ``width``, ``height``
            and ``pixel_m`` are its.
        lulc_legend: the legend in use (canonical name) or None.
        dem_scale: metres per DEM unit (0.3048 for a DEM in feet).
    """

    def __init__(self, dem: Path | str, lulc: Path | str, amplitude: Path | str, *,
                 pixel_m: float | None = None, crs=None,
                 bbox: tuple[float, float, float, float] | None = None,
                 lulc_legend: str | None = None):
        self.paths = {"dem": Path(dem), "lulc": Path(lulc), "amplitude": Path(amplitude)}
        self._options = {"pixel_m": None if pixel_m is None else float(pixel_m),
                         "crs": None if crs is None else crs_wkt(crs),
                         "bbox": None if bbox is None else tuple(float(v) for v in bbox)}
        self._sources = {}
        self._readers = {}
        self._alpha = {}  # layer → alpha band index of its warped VRT (source without nodata)
        self._resampling = {}  # layer → Resampling used to warp it (absent: read as it is)
        self._unknown_lulc: set[int] = set()
        try:
            for name in LAYERS:
                self._sources[name] = open_raster(self.paths[name], name)
            self.dem_scale = dem_scale_m(self._sources["dem"])
            self.grid = stack_grid(self._sources["dem"], **self._options)
            self.crs, self.transform = self.grid.crs, self.grid.transform
            self.width, self.height = self.grid.width, self.grid.height
            self.pixel_m = self.grid.pixel_m
            self._open_readers(legacy=self.grid.crs_source == "legacy")
            self.lulc_legend = self._legend(lulc_legend)
        except Exception:
            self.close()
            raise

    def _open_readers(self, legacy: bool) -> None:
        """Each layer as it is when already on the grid, else a warped VRT onto it."""
        g = self.grid
        for name, src in self._sources.items():
            same_grid = (src.crs == g.crs and src.transform == g.transform
                         and src.width == g.width and src.height == g.height)
            if same_grid:
                self._readers[name] = src
                continue
            if legacy:  # exactly the warp of the DEM-grid stack, bit for bit
                resampling, dtype = RESAMPLING[name], None
            else:
                resampling = choose_resampling(name, src, g.pixel_m)
                dtype = None if name == "lulc" else "float32"
            kw = dict(crs=g.crs, transform=g.transform, width=g.width, height=g.height,
                      resampling=resampling)
            if dtype is not None:
                kw["dtype"] = dtype
            if src.nodata is not None:
                self._readers[name] = WarpedVRT(src, src_nodata=src.nodata, nodata=src.nodata,
                                                **kw)
            else:
                vrt = WarpedVRT(src, add_alpha=True, **kw)
                self._readers[name] = vrt
                self._alpha[name] = vrt.count
            self._resampling[name] = resampling

    def _legend(self, lulc_legend: str | None) -> str | None:
        if lulc_legend is None:
            return None
        if str(lulc_legend).strip().lower() != "auto":
            return legends.canonical(lulc_legend)
        src, path = self._sources["lulc"], self.paths["lulc"]
        tagged = src.tags().get(LEGEND_TAG) or src.tags(1).get(LEGEND_TAG)
        if tagged:   # a raster that says its legend (psirel synth writes the tag)
            try:
                return legends.canonical(tagged)
            except LandCoverLegendError:
                pass   # an unknown name: detect from the codes as for any other raster
        codes = overview_codes(src, self.bounds, self.crs)
        found = legends.detect_legend(codes)
        if found is None:
            shown = ", ".join(map(str, codes[:12])) + (" …" if len(codes) > 12 else "")
            fits = legends.legend_candidates(codes)
            why = (f"fits {' and '.join(fits)}" if fits else "no known legend has all of them")
            raise LandCoverLegendError(
                path, f"cannot tell the land-cover legend from its codes ({shown or 'none'}; "
                      f"{why}): name it (one of {', '.join(legends.LEGENDS)})")
        return found

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
        # the resolved legend, so a worker does not detect it again
        return {"paths": self.paths, "options": self._options, "lulc_legend": self.lulc_legend}

    def __setstate__(self, state):
        self.__init__(**state["paths"], **state.get("options", {}),
                      lulc_legend=state.get("lulc_legend"))

    @property
    def unknown_lulc_codes(self) -> list[int]:
        """Raw land-cover codes read so far that :attr:`lulc_legend` does not have (sorted)."""
        return sorted(self._unknown_lulc)

    # ------------------------------------------------------------------ geometry
    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of the grid in CRS metres."""
        b = rasterio.transform.array_bounds(self.height, self.width, self.transform)
        return (b[0], b[1], b[2], b[3])

    def dem_median_m(self, most_px: int = 512) -> float:
        """Median height (m) of the DEM's valid pixels, from a read decimated to at most
        ``most_px`` per side of the source itself (not the grid, so every tile gets the same
        value); NaN when it has none."""
        src = self._sources["dem"]
        f = max(1, -(-max(src.height, src.width) // most_px))
        try:
            band = src.read(1, out_shape=(max(1, src.height // f), max(1, src.width // f)),
                            masked=True)
        except rasterio.errors.RasterioError as exc:
            raise UnreadableFile(self.paths["dem"], first_line(exc)) from None
        vals = np.ma.compressed(band).astype(np.float64)
        vals = vals[np.isfinite(vals)]
        return float(np.median(vals)) * self.dem_scale if vals.size else float("nan")

    def to_pixel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of map coordinates on the grid; pixel centres at .5."""
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
                units="degree" if s.crs.is_geographic else unit_name(s.crs.linear_units),
                resampling=self._resampling[name].name if name in self._resampling else "none",
                value_scale=self.dem_scale if name == "dem" else 1.0))
        return infos

    def inside(self, x: np.ndarray, y: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        """True where a point lies at least ``margin_px`` pixels inside the grid."""
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
        """One layer's window on the grid as float32, NaN at nodata / outside the source; DEM in
        metres, land cover as semantic classes when a legend is set."""
        reader = self._readers[name]
        try:
            if name in self._alpha:  # one read: the band and its alpha share the warp
                band, alpha = reader.read([1, self._alpha[name]], window=win)
                band = band.astype(np.float32)
                band[alpha == 0] = np.nan
            else:
                band = np.ma.filled(reader.read(1, window=win, masked=True)
                                    .astype(np.float32), np.nan)
        except rasterio.errors.RasterioError as exc:  # a truncated or corrupt file
            raise UnreadableFile(self.paths[name], first_line(exc)) from None
        if name == "dem" and self.dem_scale != 1.0:
            band *= np.float32(self.dem_scale)
        elif name == "lulc" and self.lulc_legend is not None:
            raw = band
            band = legends.to_semantic(raw, self.lulc_legend)
            unknown = band == legends.UNKNOWN
            if unknown.any():
                self._unknown_lulc.update(int(c) for c in np.unique(np.trunc(raw[unknown])))
        return band

    def sample(self, x: np.ndarray, y: np.ndarray, layer: str = "dem",
               tile_px: int = 512) -> np.ndarray:
        """Values of one layer at map coordinates, from the grid pixel each point falls in
        (NaN outside or at nodata; DEM in metres, land cover mapped as in :meth:`read_window`).

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
