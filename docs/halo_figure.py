"""Draw ``docs/halo.png``: tiles, one tile's halo, and the points each part of it contributes.

    python docs/halo_figure.py [--out docs/halo.png]

A small synthetic cloud (uniform points plus dense clusters, fixed seed) is cut by
:func:`psirel.infer.tiling.plan_tiles` exactly as ``psirel predict --dask`` cuts a real one, with
the default model's halo: H = 3 receptive hops (2 GNN layers + the edge summary) × r_max 100 m.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402

from psirel.graph.knn import knn_table  # noqa: E402
from psirel.graph.sampling import full_neighbourhood  # noqa: E402
from psirel.infer.tiling import plan_tiles  # noqa: E402

R_MAX_M, HOPS, K = 100.0, 3, 16
TILE_M = 700.0


def cloud(seed: int = 4, n: int = 2400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 2100, n // 2), rng.uniform(0, 2100, n // 2)
    centres = rng.uniform(100, 2000, (12, 2))
    c = centres[rng.integers(0, 12, n - n // 2)] + rng.normal(0, 45, (n - n // 2, 2))
    keep = (c >= 0).all(1) & (c <= 2100).all(1)
    return np.concatenate([x, c[keep, 0]]), np.concatenate([y, c[keep, 1]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("halo.png"))
    args = ap.parse_args()
    x, y = cloud()
    plan = plan_tiles(x, y, TILE_M, HOPS * R_MAX_M)
    tile = next(t for t in plan.tiles if t.cell == (1, 1))
    # what the tile's core needs: its HOPS-hop neighbourhood in the whole cloud
    table = knn_table(x, y, k=K, r_max_m=R_MAX_M)
    needed = full_neighbourhood(table, tile.core_rows, HOPS).nodes

    fig, ax = plt.subplots(figsize=(6.4, 6.4), dpi=110)
    x0, y0 = plan.origin
    for i in range(plan.shape[0] + 1):
        ax.axvline(x0 + i * TILE_M, color="0.75", lw=0.8, zorder=0)
    for j in range(plan.shape[1] + 1):
        ax.axhline(y0 + j * TILE_M, color="0.75", lw=0.8, zorder=0)
    cx, cy = tile.cell
    ax.add_patch(Rectangle((x0 + cx * TILE_M, y0 + cy * TILE_M), TILE_M, TILE_M,
                           facecolor="#fde9b6", edgecolor="none", zorder=0,
                           label="tile (core cell)"))
    b = tile.box
    ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ls="--",
                           lw=1.4, edgecolor="#b5651d", zorder=3,
                           label=f"outer box: core + halo {HOPS}·r_max = {HOPS * R_MAX_M:.0f} m"))
    ax.scatter(x, y, s=2, c="0.7", lw=0, label="other points (not read)")
    halo = tile.rows[~tile.core]
    ax.scatter(x[halo], y[halo], s=3, c="#4c8cbf", lw=0, label="halo points (read, not kept)")
    ax.scatter(x[tile.core_rows], y[tile.core_rows], s=3, c="#c0392b", lw=0,
               label="core points (kept)")
    used = np.setdiff1d(needed, tile.core_rows)
    ax.scatter(x[used], y[used], s=9, facecolors="none", edgecolors="#1f4e79", lw=0.5,
               label=f"halo points in a core point's {HOPS}-hop neighbourhood")
    corner = tile.core_rows[np.argmax(x[tile.core_rows] + y[tile.core_rows])]
    for h in range(1, HOPS + 1):
        ax.add_patch(Circle((x[corner], y[corner]), h * R_MAX_M, fill=False, lw=0.7,
                            edgecolor="k", ls=":", zorder=4))
    ax.annotate("1, 2, 3 × r_max around a core point", (x[corner], y[corner] + HOPS * R_MAX_M),
                xytext=(0, 8), textcoords="offset points", ha="center", fontsize=7)
    ax.set_aspect("equal")
    ax.set_xlim(x0 - 50, x0 + plan.shape[0] * TILE_M + 50)
    ax.set_ylim(y0 - 50, y0 + plan.shape[1] * TILE_M + 50)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"Tiles of {TILE_M:.0f} m with an exact halo (k = {K}, r_max = {R_MAX_M:.0f} m, "
                 f"H = {HOPS})", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=7,
              frameon=False, markerscale=2.5)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"{args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
