"""One point cloud prepared for a model: read, checked, featurised (shared by both strategies).

:func:`prepare` reads the points (reprojected onto the DEM's CRS), checks that they lie on the
rasters and that the data fits the model (:mod:`psirel.compat`), and standardises the scalar
features; patches and edge features are computed later, per chunk or block, from the returned
:class:`Scene`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psirel.compat import check_features
from psirel.errors import ModelError
from psirel.features.normalize import N_PATCH_CHANNELS, Normalizer
from psirel.features.scalars import scalar_features
from psirel.graph.hilbert import spatial_order
from psirel.graph.knn import EdgeScale, edge_features, knn_table
from psirel.io.cloud_grid import open_cloud
from psirel.io.points import PointCloud
from psirel.io.rasters import RasterStack
from psirel.io.schema import PointSchema
from psirel.model_dir import MODEL_JSON, ModelCard, receptive_hops
from psirel.progress import Silent  # noqa: F401  (re-exported for the pipelines)


@dataclass
class Timer:
    """Seconds per named step, accumulated."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, t0: float) -> float:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - t0
        return now


@dataclass(eq=False)
class Scene:
    """One cloud prepared for a model: everything in input order, coordinates in the DEM CRS."""

    card: ModelCard
    stack: RasterStack
    cloud: PointCloud
    height_m: np.ndarray          # [N] float32, from the points or the DEM
    scalars: np.ndarray           # [N, S] float32, standardised
    normalizer: Normalizer
    edge_scale: EdgeScale
    order: np.ndarray             # [N] Hilbert order of the points
    hops: int                     # GNN layers (0 without graph)

    @property
    def n(self) -> int:
        return len(self.cloud.x)

    @property
    def k(self) -> int:
        return int(self.card.features["k"])

    @property
    def r_max_m(self) -> float:
        return float(self.card.features["r_max_m"])

    def edge_attr(self, nodes: np.ndarray, idx: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Edge features of a subgraph over global ``nodes`` (local ``idx``)."""
        c = self.cloud
        return edge_features(c.x[nodes], c.y[nodes], self.height_m[nodes],
                             c.velocity_mm_yr[nodes], idx, mask, self.edge_scale,
                             series_mm=c.series_mm[nodes])

    def extract(self, rows: np.ndarray, buf: np.ndarray) -> tuple[np.ndarray, int]:
        """Normalised patches of ``rows`` into ``buf`` (reused, so no fresh pages per chunk)."""
        return self.normalizer.extract(self.stack, self.cloud.x[rows], self.cloud.y[rows],
                                       out=buf)

    def neighbour_table(self, progress, timer) -> tuple[np.ndarray, np.ndarray]:
        """The whole cloud's kNN table (``idx``, ``mask``), timed and reported as stage 'graph'."""
        t0 = time.perf_counter()
        progress.stage("graph", self.n)
        table = knn_table(self.cloud.x, self.cloud.y, k=self.k, r_max_m=self.r_max_m)
        progress.advance(self.n)
        timer.add("graph", t0)
        return table.idx, table.mask

    def patch_buffer(self, n: int) -> np.ndarray:
        p = self.normalizer.patch_px
        return np.empty((n, N_PATCH_CHANNELS, p, p), np.float32)


def prepare(card: ModelCard, points: Path | str, dem: Path | str, lulc: Path | str,
            amplitude: Path | str, crs=None, warn: Callable[[str], None] | None = None,
            timer: Timer | None = None, lulc_legend: str | None = None,
            schema: PointSchema | None = None) -> Scene:
    """Read the points (columns and units as ``schema`` says, reprojected to the DEM's CRS)
    and the rasters, check them against the model and compute the standardised scalar
    features. ``timer`` gets ``read`` and ``features`` seconds."""
    timer = timer or Timer()
    t0 = time.perf_counter()
    try:
        normalizer = Normalizer.from_json(card.meta["normalizer"])
        edge_scale = EdgeScale.from_json(card.meta["edge_scale"])
    except (KeyError, ValueError) as exc:
        raise ModelError(card.path / MODEL_JSON, f"invalid feature metadata ({exc})") from None
    cloud, stack = open_cloud(points, dem, lulc, amplitude, card.raster_options(lulc_legend),
                              crs=crs, warn=warn, schema=schema)
    try:
        t0 = timer.add("read", t0)
        feats, names = scalar_features(cloud.velocity_mm_yr, cloud.coherence, cloud.series_mm,
                                       cloud.dates)
        check_features(card, names, len(cloud.dates), stack.pixel_m,
                       lulc_legend=stack.lulc_legend)
        height = cloud.height_m
        if height is None or np.isnan(height).any():  # missing heights: the DEM's
            dem_h = stack.sample(cloud.x, cloud.y, "dem")
            height = dem_h if height is None else np.where(np.isnan(height), dem_h, height)
        hops = receptive_hops(card.config)
        scene = Scene(card=card, stack=stack, cloud=cloud,
                      height_m=np.asarray(height, np.float32),
                      scalars=normalizer.scalars(feats, names), normalizer=normalizer,
                      edge_scale=edge_scale, order=spatial_order(cloud.x, cloud.y), hops=hops)
        timer.add("features", t0)
        return scene
    except Exception:
        stack.close()
        raise
