"""Evaluation figures as PNG: ROC curves, precision-recall curves of the unreliable class, and a
map of predicted reliability over a hillshaded DEM.

Figures are built on a bare ``matplotlib.figure.Figure`` (Agg renderer, no pyplot state, no
display) with a fixed size in inches and dpi, so a figure's pixel size is known in advance, and
are written atomically (temporary file beside the target, then renamed).

Label convention as in :mod:`psirel.report.metrics`: 1 reliable, 0 unreliable; a point is
predicted unreliable iff ``p_reliable < threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.colors import LightSource, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from psirel.io.atomic import atomic_path

DPI = 130
CURVE_FIGSIZE_IN = (6.0, 6.0)
MAP_FIGSIZE_IN = (9.0, 7.5)
# the display grid of the hillshade: beyond this many pixels a side the DEM is decimated, as a
# 1170-pixel-wide figure cannot show more anyway
_MAX_DISPLAY_PX = 2000

Curves = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _save(fig: Figure, path: Path | str, dpi: int) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _unit_square(ax, xlabel: str, ylabel: str, title: str, legend_loc: str) -> None:
    """Axes of a curve whose both coordinates are fractions in [0, 1]."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.005)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend_loc, fontsize="small")


def plot_roc(curves: Curves, path: Path | str, title: str = "ROC — reliable points",
             dpi: int = DPI) -> Path:
    """ROC curve of every entry ``name -> (y_true, p_reliable)``, AUC in the legend.

    The positive class is *reliable*: x = share of unreliable points accepted (predicted
    reliable), y = share of reliable points accepted, as the threshold on P(reliable) falls.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=CURVE_FIGSIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="0.6", label="chance (AUC 0.500)")
    for name, (y, p) in curves.items():
        y = np.asarray(y).reshape(-1)
        p = np.asarray(p, np.float64).reshape(-1)
        fpr, tpr, _ = roc_curve(y, p, pos_label=1)
        ax.plot(fpr, tpr, lw=1.8, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    _unit_square(ax, "False positive rate (unreliable points accepted, fraction)",
                 "True positive rate (reliable points accepted, fraction)", title, "lower right")
    return _save(fig, path, dpi)


def plot_pr(curves: Curves, path: Path | str,
            title: str = "Precision-recall — unreliable points", dpi: int = DPI) -> Path:
    """Precision-recall curve of the *unreliable* class (positive = label 0, score
    ``1 - p_reliable``) for every entry ``name -> (y_true, p_reliable)``; average precision in
    the legend, the share of unreliable points (a random ranking's precision) as a dashed line."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = Figure(figsize=CURVE_FIGSIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    share = None
    for name, (y, p) in curves.items():
        y = np.asarray(y).reshape(-1)
        s = 1.0 - np.asarray(p, np.float64).reshape(-1)
        prec, rec, _ = precision_recall_curve(y == 0, s)
        ap = average_precision_score(y == 0, s)
        ax.step(rec, prec, where="post", lw=1.8, label=f"{name} (AP {ap:.3f})")
        share = float(np.mean(y == 0)) if share is None else share
    if share is not None:
        ax.axhline(share, ls="--", lw=1, color="0.6",
                   label=f"chance (share unreliable {share:.3f})")
    _unit_square(ax, "Recall (unreliable points flagged, fraction)",
                 "Precision (flags that are unreliable, fraction)", title, "lower left")
    return _save(fig, path, dpi)


def _nice_length(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k m) near a fifth of ``span_m``."""
    target = max(span_m / 5.0, 1e-9)
    base = 10.0 ** math.floor(math.log10(target))
    for mult in (5.0, 2.0, 1.0):
        if mult * base <= target:
            return mult * base
    return base


def _hillshade(dem: np.ndarray, transform, nodata: float | None):
    """Decimated hillshade [h, w] in 0..1 (NaN off the DEM) and its extent (l, r, b, t) in m."""
    from affine import Affine

    t = transform if isinstance(transform, Affine) else Affine(*tuple(transform)[:6])
    if t.b != 0 or t.d != 0 or t.a <= 0:
        raise ValueError(f"plot_map needs a north-up, unrotated transform, got {tuple(t)[:6]}")
    z = np.asarray(dem, np.float64)
    if nodata is not None:
        z = np.where(z == nodata, np.nan, z)
    h, w = z.shape
    left, right = t.c, t.c + t.a * w
    top, bottom = t.f, t.f + t.e * h
    if t.e > 0:  # south-up grid: flip to north-up for display
        z = z[::-1]
        top, bottom = bottom, top
    step = max(1, math.ceil(max(h, w) / _MAX_DISPLAY_PX))
    z = z[::step, ::step]
    valid = np.isfinite(z)
    filled = np.where(valid, z, np.nanmean(z) if valid.any() else 0.0)
    shade = LightSource(azdeg=315, altdeg=45).hillshade(
        filled, vert_exag=1.0, dx=t.a * step, dy=abs(t.e) * step
    )
    return np.where(valid, shade, np.nan), (left, right, bottom, top)


def plot_map(
    dem: np.ndarray,
    transform,
    x_m: np.ndarray,
    y_m: np.ndarray,
    p_reliable: np.ndarray,
    y_true: np.ndarray | None,
    threshold: float,
    path: Path | str,
    title: str | None = None,
    dem_nodata: float | None = None,
    dpi: int = DPI,
) -> Path:
    """Map of predicted reliability over the hillshaded DEM.

    Args:
        dem: [H, W] heights (m); NaN or ``dem_nodata`` off the terrain.
        transform: the DEM's affine transform (``affine.Affine`` or its 6 coefficients), north-up.
        x_m, y_m: [N] point coordinates in the DEM's CRS (m).
        p_reliable: [N] predicted probability of being reliable.
        y_true: [N] labels (1 reliable, 0 unreliable), or None for an unlabelled map.
        threshold: predicted unreliable iff ``p_reliable < threshold``; the colour scale diverges
            there (red unreliable, blue reliable).
        path: the PNG to write (``MAP_FIGSIZE_IN`` × ``dpi`` pixels).

    Points whose prediction disagrees with the label are marked: a black × for an unreliable
    point predicted reliable (a miss), a black ring for a reliable point predicted unreliable
    (a false alarm).
    """
    x = np.asarray(x_m, np.float64).reshape(-1)
    y = np.asarray(y_m, np.float64).reshape(-1)
    p = np.asarray(p_reliable, np.float64).reshape(-1)
    if not (x.size == y.size == p.size):
        raise ValueError(f"x_m, y_m, p_reliable sizes differ: {x.size}, {y.size}, {p.size}")
    shade, extent = _hillshade(dem, transform, dem_nodata)
    t = float(np.clip(threshold, 1e-3, 1 - 1e-3))  # TwoSlopeNorm needs vmin < vcenter < vmax
    pred_reliable = p >= threshold

    fig = Figure(figsize=MAP_FIGSIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(shade, cmap="gray", vmin=0, vmax=1, extent=extent, origin="upper",
              interpolation="bilinear", alpha=0.9)
    size = float(np.clip(4e4 / max(x.size, 1), 2.0, 30.0))  # points² per marker
    order = np.argsort(-np.abs(p - threshold), kind="stable")  # confident first, doubtful on top
    sc = ax.scatter(x[order], y[order], c=p[order], s=size, cmap="RdYlBu",
                    norm=TwoSlopeNorm(vcenter=t, vmin=0.0, vmax=1.0), linewidths=0, zorder=3)
    cbar = fig.colorbar(sc, ax=ax, shrink=0.85, pad=0.01)
    cbar.set_label("Predicted P(reliable)")
    cbar.ax.axhline(t, color="black", lw=1.5)

    handles = [
        Line2D([], [], ls="", marker="o", color=sc.cmap(0.05), label="predicted unreliable"),
        Line2D([], [], ls="", marker="o", color=sc.cmap(0.95), label="predicted reliable"),
    ]
    subtitle = f"{x.size} points, threshold {threshold:.3f}, {int((~pred_reliable).sum())} flagged"
    if y_true is not None:
        lab = np.asarray(y_true).reshape(-1).astype(bool)
        if lab.size != x.size:
            raise ValueError(f"y_true has {lab.size} values for {x.size} points")
        miss = ~lab & pred_reliable
        false_alarm = lab & ~pred_reliable
        ms = size * 2.5
        ax.scatter(x[miss], y[miss], marker="x", s=ms, c="black", linewidths=0.9, zorder=4)
        ax.scatter(x[false_alarm], y[false_alarm], marker="o", s=ms, facecolors="none",
                   edgecolors="black", linewidths=0.9, zorder=4)
        handles += [
            Line2D([], [], ls="", marker="x", color="black",
                   label=f"unreliable, predicted reliable ({int(miss.sum())})"),
            Line2D([], [], ls="", marker="o", mfc="none", mec="black",
                   label=f"reliable, predicted unreliable ({int(false_alarm.sum())})"),
        ]
        acc = float(np.mean(lab == pred_reliable)) if lab.size else float("nan")
        subtitle += f", accuracy {acc:.3f}"
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.85)

    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    left, right, bottom, top = extent
    bar = _nice_length(right - left)
    label = f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m"
    ax.add_artist(AnchoredSizeBar(ax.transData, bar, label, loc="lower left", pad=0.5,
                                  borderpad=0.8, sep=4, frameon=True,
                                  size_vertical=(top - bottom) / 150, color="black"))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.set_xlabel("Easting (m)")
    ax.set_ylabel("Northing (m)")
    ax.set_title(f"{title or 'Predicted reliability'}\n{subtitle}", fontsize="medium")
    return _save(fig, path, dpi)
