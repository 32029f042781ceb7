"""A quick-look of one prediction: where the flagged points are, how reliability is spread, how
many points fall below the model's threshold.

:func:`write_quicklook` writes into ``out_dir``

* ``quicklook.png``: one figure (:data:`FIGSIZE_IN` × :data:`DPI`): the map of reliability over
  a hillshade of the DEM, the histogram of reliability with the threshold marked, the counts;
* ``quicklook.html``: the same map, zoomable and pannable, with the histogram and the counts, in
  one self-contained page (:mod:`psirel.report.quicklook_html`).

Colours are :mod:`psirel.report.colours` (RdYlBu split at the threshold: reds flagged, blues
kept, black no score). Up to :data:`SCATTER_MAX_POINTS` points are drawn as markers, least
reliable on top; beyond that they are binned onto a grid (:mod:`psirel.report.rasterise`) whose
cells show their least reliable point, so a million points cost a few hundred milliseconds, not
the minutes of a million markers. The DEM is read decimated, over the points only
(:mod:`psirel.report.hillshade`).

Needs matplotlib (a core dependency). Files are written atomically.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from psirel.errors import MissingExtra
from psirel.io.atomic import atomic_path
from psirel.report.colours import check_threshold, reliability_rgba, rgba_to_hex
from psirel.report.hillshade import hillshade, read_dem_on_grid
from psirel.report.quicklook_html import counts_rows, render_html
from psirel.report.rasterise import STATS, MapGrid, bin_points, map_grid, splat

PNG_NAME, HTML_NAME = "quicklook.png", "quicklook.html"
FIGSIZE_IN = (14.0, 8.0)
DPI = 110  # 1540 × 880 px
# The map axes of the figure are about 900 × 750 px: a finer grid would only be resampled away
# (and nearest-neighbour resampling could drop a flagged cell).
PNG_MAP_CELLS = 700
SCATTER_MAX_POINTS = 20_000
HIST_BIN_WIDTH = 0.02
_HTML_DPI = 100
_SHADE_RANGE = (-0.4, 1.0)  # hillshade grey scale: light, so that the colours stand out
_BACKGROUND = "#f0f0f0"  # the map without a DEM, and off the DEM
_PNG_COMPRESS_LEVEL = 3  # zlib level: as small as the default 6 on these images, and faster


@dataclass(frozen=True)
class QuickLook:
    """What :func:`write_quicklook` wrote, and the counts it shows."""

    png: Path
    html: Path
    counts: dict = field(default_factory=dict)


def quicklook_counts(reliability: np.ndarray, threshold: float, *,
                     reliability_std: np.ndarray | None = None,
                     n_no_position: int = 0) -> dict:
    """Counts of a prediction: ``n_points``, ``n_scored`` (finite reliability), ``n_no_score``
    (NaN), ``n_below_threshold`` (scored and ``reliability < threshold``: flagged),
    ``pct_below_threshold`` (% of scored, None when none is), ``mean_reliability``, ``threshold``,
    ``n_no_position`` (as given: points that could not be mapped) and, when ``reliability_std``
    is given, ``mean_reliability_std`` (over its finite values). Means are None when empty."""
    t = check_threshold(threshold)
    r = np.asarray(reliability, np.float64).reshape(-1)
    scored = np.isfinite(r)
    n_scored = int(scored.sum())
    n_below = int((r[scored] < t).sum())
    counts = {
        "n_points": int(r.size), "n_scored": n_scored, "n_no_score": int(r.size - n_scored),
        "n_below_threshold": n_below,
        "pct_below_threshold": 100.0 * n_below / n_scored if n_scored else None,
        "mean_reliability": float(r[scored].mean()) if n_scored else None,
        "threshold": t, "n_no_position": int(n_no_position),
    }
    if reliability_std is not None:
        s = np.asarray(reliability_std, np.float64).reshape(-1)
        s = s[np.isfinite(s)]
        counts["mean_reliability_std"] = float(s.mean()) if s.size else None
    return counts


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover - the core install has no matplotlib
        raise MissingExtra("the prediction quick-look (--report)", "train") from None


@dataclass(frozen=True)
class _Scene:
    """What both the figure and the page draw."""

    grid: MapGrid  # the fine (HTML) grid; the figure's is grid.with_max_cells(PNG_MAP_CELLS)
    shade: np.ndarray | None  # hillshade on ``grid``
    x: np.ndarray  # mapped points (finite coordinates)
    y: np.ndarray
    r: np.ndarray
    threshold: float
    stat: str
    units: tuple[str, str]  # axis labels

    @property
    def as_points(self) -> bool:
        return self.x.size <= SCATTER_MAX_POINTS


def _cell_rgba(scene: _Scene, grid: MapGrid, splat_cells: int = 1) -> np.ndarray:
    value, n_scored, n_unscored = splat(
        *bin_points(grid, scene.x, scene.y, scene.r, scene.stat), splat_cells)
    rgba = reliability_rgba(value, scene.threshold)  # NaN (empty or unscored) -> black
    rgba[..., 3] = ((n_scored > 0) | (n_unscored > 0)).astype(np.float32)
    return rgba


def _draw_map(ax, scene: _Scene, grid: MapGrid, width_px: float) -> None:
    """Hillshade, then the points (markers or cells), on ``ax``, limits set to the grid."""
    extent = grid.extent
    ax.set_facecolor(_BACKGROUND)
    if scene.shade is not None:
        ax.imshow(scene.shade, cmap="gray", vmin=_SHADE_RANGE[0], vmax=_SHADE_RANGE[1],
                  extent=extent, origin="upper", interpolation="antialiased", zorder=1)
    if scene.as_points:
        # NaN first (bottom), then descending reliability: the least reliable drawn last
        order = np.argsort(-np.where(np.isnan(scene.r), np.inf, scene.r), kind="stable")
        area_px = width_px * width_px * grid.height / grid.width
        d_px = float(np.clip(0.6 * math.sqrt(area_px / max(scene.x.size, 1)), 2.5, 9.0))
        dpi = ax.figure.dpi
        ax.scatter(scene.x[order], scene.y[order], s=(d_px * 72.0 / dpi) ** 2,
                   c=reliability_rgba(scene.r[order], scene.threshold), linewidths=0, zorder=3)
    else:
        ax.imshow(_cell_rgba(scene, grid), extent=extent, origin="upper",
                  interpolation="nearest", zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])


def _hist(ax, scene_r: np.ndarray, counts: dict) -> None:
    t = counts["threshold"]
    r = scene_r[np.isfinite(scene_r)]
    # the threshold is a bin edge, so that no bar mixes flagged and kept points
    nb, na = max(1, round(t / HIST_BIN_WIDTH)), max(1, round((1 - t) / HIST_BIN_WIDTH))
    edges = np.unique(np.concatenate([np.linspace(0, t, nb + 1) if t > 0 else [0.0],
                                      np.linspace(t, 1, na + 1) if t < 1 else [1.0]]))
    n, _ = np.histogram(np.clip(r, 0, 1), bins=edges)
    mids = 0.5 * (edges[:-1] + edges[1:])
    ax.bar(edges[:-1], n, width=np.diff(edges), align="edge",
           color=reliability_rgba(mids, t), edgecolor="none")
    ax.axvline(t, color="black", ls="--", lw=1.2)
    pct = counts["pct_below_threshold"]
    note = f"threshold {t:g}\n{counts['n_below_threshold']:,} flagged" + (
        f" ({pct:.1f} %)" if pct is not None else "")
    ax.text(t, 0.97, " " + note.replace("\n", "\n "), transform=ax.get_xaxis_transform(),
            va="top", ha="left" if t < 0.6 else "right", fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Reliability")
    ax.set_ylabel("Points")
    ax.set_title("Reliability histogram", fontsize="medium")
    ax.grid(alpha=0.3, axis="y")


def _colour_bar(fig, ax, threshold: float, label: str) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    cmap = ListedColormap(reliability_rgba(np.linspace(0, 1, 512), threshold))
    cbar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, shrink=0.8, pad=0.01)
    cbar.set_label(label)
    cbar.ax.axhline(threshold, color="black", lw=1.5)


def _scale_bar(ax, grid: MapGrid) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    from psirel.report.plots import _nice_length

    units_per_m = grid.cell_x / grid.cell_m
    bar_m = _nice_length(grid.width * grid.cell_m)
    label = f"{bar_m / 1000:g} km" if bar_m >= 1000 else f"{bar_m:g} m"
    ax.add_artist(AnchoredSizeBar(ax.transData, bar_m * units_per_m, label, loc="lower left",
                                  pad=0.5, borderpad=0.8, sep=4, frameon=True,
                                  size_vertical=grid.height * grid.cell_y / 150, color="black"))


def _figure_png(scene: _Scene, counts: dict, title: str) -> bytes:
    from matplotlib.figure import Figure

    grid = scene.grid.with_max_cells(PNG_MAP_CELLS)
    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(1.9, 1.0), height_ratios=(1.1, 1.0))
    ax = fig.add_subplot(gs[:, 0])
    _draw_map(ax, scene, grid, width_px=0.55 * FIGSIZE_IN[0] * DPI)
    ax.set_aspect(grid.cell_x / grid.cell_y)  # square on the ground (1 when projected)
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_xlabel(scene.units[0])
    ax.set_ylabel(scene.units[1])
    if scene.x.size:
        _scale_bar(ax, grid)
    else:
        ax.text(0.5, 0.5, "no points to map", transform=ax.transAxes, ha="center")
    kind = "reliability" if scene.as_points else f"reliability (cell {scene.stat})"
    _colour_bar(fig, ax, scene.threshold, kind)
    _hist(fig.add_subplot(gs[0, 1]), scene.r, counts)
    tax = fig.add_subplot(gs[1, 1])
    tax.axis("off")
    rows = counts_rows(counts)
    w = max(len(k) for k, _ in rows)
    tax.text(0.02, 0.95, "\n".join(f"{k:<{w}}  {v:>11}" for k, v in rows), family="monospace",
             va="top", transform=tax.transAxes, fontsize="medium")
    fig.suptitle(title or "Reliability quick-look", fontsize="large")
    return _png_bytes(fig, DPI)


def _png_bytes(fig, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png", metadata={"Software": None},
                pil_kwargs={"compress_level": _PNG_COMPRESS_LEVEL})
    return buf.getvalue()


def _map_png(scene: _Scene) -> bytes:
    """The map alone, one pixel per cell of the fine grid, for the page."""
    g = scene.grid
    if scene.as_points:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(g.width / _HTML_DPI, g.height / _HTML_DPI), dpi=_HTML_DPI)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.axis("off")
        _draw_map(ax, scene, g, width_px=g.width)
        return _png_bytes(fig, _HTML_DPI)
    # cells: composite in numpy, pixel for cell, rather than let matplotlib resample
    rgb = np.empty(g.shape + (3,), np.float32)
    rgb[:] = [int(_BACKGROUND[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]
    if scene.shade is not None:
        lo, hi = _SHADE_RANGE
        grey = np.clip((scene.shade - lo) / (hi - lo), 0.0, 1.0)
        ok = np.isfinite(grey)
        rgb[ok] = grey[ok, None]
    # a point a cell wide vanishes when the browser shows the image at fit size (about half
    # its pixels): widen the points of a sparse cloud to up to 3 cells
    k = int(np.clip(round(0.6 * max(g.shape) / math.sqrt(max(scene.x.size, 1))), 1, 3))
    cells = _cell_rgba(scene, g, k)
    a = cells[..., 3:]
    rgb = rgb * (1.0 - a) + cells[..., :3] * a
    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, (rgb * 255 + 0.5).astype(np.uint8), format="png",
           pil_kwargs={"compress_level": _PNG_COMPRESS_LEVEL})
    return buf.getvalue()


def _hist_png(scene: _Scene, counts: dict) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.4), dpi=DPI)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.15, top=0.91)  # fixed: no layout pass
    _hist(fig.add_subplot(), scene.r, counts)
    return _png_bytes(fig, DPI)


def _gradient_stops(threshold: float, n: int = 12) -> list[tuple[float, str]]:
    """Colour-bar stops for CSS, a hard stop at the threshold."""
    t = threshold
    below = np.linspace(0, t, n) if t > 0 else np.array([])
    above = np.linspace(t, 1, n) if t < 1 else np.array([])
    stops = [(float(p), rgba_to_hex(c)) for p, c in
             zip(below, reliability_rgba(np.minimum(below, np.nextafter(t, 0)), t), strict=True)]
    stops += [(float(p), rgba_to_hex(c)) for p, c in
              zip(above, reliability_rgba(above, t), strict=True)]
    return stops


def _crs_info(crs) -> tuple[CRS | None, bool, float, tuple[str, str], str]:
    """``(crs, geographic, metres per unit, axis labels, label)`` of the points' CRS."""
    if crs is None:
        return None, False, 1.0, ("x", "y"), "(no CRS)"
    c = CRS.from_user_input(crs)
    if c.is_geographic:
        return c, True, 1.0, ("Longitude (°)", "Latitude (°)"), c.to_string()
    from pyproj import CRS as ProjCRS

    axis = ProjCRS.from_user_input(c.to_wkt()).axis_info
    m_per_unit = float(axis[0].unit_conversion_factor) if axis else 1.0
    name = axis[0].unit_name if axis else "metre"
    unit = {"metre": "m", "meter": "m", "foot": "ft", "US survey foot": "US ft"}.get(name, name)
    return c, False, m_per_unit, (f"Easting ({unit})", f"Northing ({unit})"), c.to_string()


def write_quicklook(out_dir: Path | str, x: np.ndarray, y: np.ndarray, crs,
                    reliability: np.ndarray, threshold: float, *,
                    reliability_std: np.ndarray | None = None, dem=None, title: str = "",
                    max_cells: int = 1500, stat: str = "min") -> QuickLook:
    """Write ``quicklook.png`` and ``quicklook.html`` into ``out_dir`` (created if needed).

    Args:
        x, y: [N] point coordinates in ``crs``.
        crs: the points' CRS (rasterio or pyproj CRS, or a string such as ``"EPSG:32633"``);
            None only without a DEM.
        reliability: [N] predicted reliability in [0, 1]; NaN is "no score" (counted, drawn
            black).
        threshold: the model's threshold: a point is flagged iff ``reliability < threshold``.
        reliability_std: [N] optional spread of the reliability; its mean is reported.
        dem: a DEM file or open rasterio dataset, in any CRS, for the hillshade; None for a
            plain background. Read decimated over the points' extent only.
        title: heading of the figure and the page.
        max_cells: the longer side of the page's map image (and of the DEM read), in pixels.
        stat: what a grid cell shows for a large cloud: ``"min"`` or ``"mean"`` reliability.

    Returns:
        The paths written and :func:`quicklook_counts`.
    """
    _matplotlib()
    t = check_threshold(threshold)
    xs = np.asarray(x, np.float64).reshape(-1)
    ys = np.asarray(y, np.float64).reshape(-1)
    r = np.asarray(reliability, np.float64).reshape(-1)
    if not (xs.size == ys.size == r.size):
        raise ValueError(f"x, y, reliability sizes differ: {xs.size}, {ys.size}, {r.size}")
    finite = r[np.isfinite(r)]
    if finite.size and (finite.min() < -1e-6 or finite.max() > 1 + 1e-6):
        raise ValueError(f"reliability must lie in [0, 1], found {finite.min():g} .. "
                         f"{finite.max():g}")
    if reliability_std is not None and np.asarray(reliability_std).size != r.size:
        raise ValueError(f"reliability_std has {np.asarray(reliability_std).size} values for "
                         f"{r.size} points")
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    if dem is not None and crs is None:
        raise ValueError("crs is needed to place the points on the DEM")
    c, geographic, m_per_unit, units, crs_label = _crs_info(crs)
    placed = np.isfinite(xs) & np.isfinite(ys)
    counts = quicklook_counts(r, t, reliability_std=reliability_std,
                              n_no_position=int((~placed).sum()))
    xs, ys, rm = xs[placed], ys[placed], r[placed]
    grid = map_grid(xs, ys, max_cells, geographic=geographic, m_per_unit=m_per_unit)
    shade = None
    if dem is not None:
        shade = hillshade(read_dem_on_grid(dem, grid, c), grid.cell_m, grid.cell_m)
    scene = _Scene(grid, shade, xs, ys, rm, t, stat, units)

    png = _figure_png(scene, counts, title)
    pct = counts["pct_below_threshold"]
    subtitle = (f"{counts['n_points']:,} points, threshold {t:g}, "
                f"{counts['n_below_threshold']:,} flagged"
                + (f" ({pct:.1f} % of scored)" if pct is not None else "") + f"; {crs_label}")
    page = render_html(
        title=title or "Reliability quick-look", subtitle=subtitle, map_png=_map_png(scene),
        map_size_px=(grid.width, grid.height), extent=grid.extent, crs_label=crs_label,
        geographic=geographic, hist_png=_hist_png(scene, counts), rows=counts_rows(counts),
        threshold=t, gradient_stops=_gradient_stops(t), n_no_score=counts["n_no_score"])
    out = Path(out_dir)
    png_path, html_path = out / PNG_NAME, out / HTML_NAME
    with atomic_path(png_path) as tmp:
        tmp.write_bytes(png)
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return QuickLook(png=png_path, html=html_path, counts=counts)

