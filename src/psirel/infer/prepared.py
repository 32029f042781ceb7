"""One point cloud prepared for a model: read, checked, featurised (every inference path).

:meth:`PreparedCloud.from_cloud` turns a cloud already read on the model's grid into what both
stages need: it checks that the data fits the model (:meth:`ModelCard.check_features`), fills
missing heights from the DEM and standardises the scalar features. :func:`prepare` (one
process), :func:`psirel.infer.tiling.run_tile` (a tile) and :func:`psirel.train.evaluate.evaluate`
all build it there. Patches and edge features are computed later, per chunk or block.
(Named apart from :mod:`psirel.scene`, the synthetic scene generator.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from psirel.features.normalize import N_PATCH_CHANNELS, Normalizer
from psirel.features.scalars import scalar_features
from psirel.graph.edges import EdgeScale, edge_features
from psirel.graph.hilbert import spatial_order
from psirel.graph.knn import knn_table
from psirel.io.cloud_grid import open_cloud, point_heights
from psirel.io.points import PointCloud
from psirel.io.rasters import RasterStack
from psirel.io.schema import PointSchema
from psirel.model_card import ModelCard
from psirel.progress import Silent  # noqa: F401  (re-exported for the pipelines)


@dataclass
class Timer:
    """Seconds per named step, and counts of the work done (windows encoded ...), accumulated."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, t0: float) -> float:
        """Add the seconds since ``t0`` to ``name`` (from any thread); returns now."""
        now = time.perf_counter()
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + now - t0
        return now

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + int(n)


@dataclass(eq=False)
class PreparedCloud:
    """One cloud prepared for a model: everything in input order, coordinates on the model's
    grid (the CRS of :func:`psirel.io.cloud_grid.open_cloud`)."""

    card: ModelCard
    stack: RasterStack
    cloud: PointCloud
    height_m: np.ndarray          # [N] float32, from the points or the DEM
    scalars: np.ndarray           # [N, S] float32, standardised
    normalizer: Normalizer
    edge_scale: EdgeScale
    order: np.ndarray             # [N] Hilbert order of the points
    hops: int                     # GNN layers (0 without graph)
    fallbacks: dict[str, int] = field(default_factory=dict)  # points given a stated fallback

    @property
    def n(self) -> int:
        return len(self.cloud.x)

    @property
    def k(self) -> int:
        return self.card.features.k

    @property
    def r_max_m(self) -> float:
        return self.card.features.r_max_m

    @classmethod
    def from_cloud(cls, card: ModelCard, stack: RasterStack, cloud: PointCloud,
                   features: tuple[np.ndarray, list[str]] | None = None,
                   warn: Callable[[str], None] | None = None, workers: int | None = 1
                   ) -> PreparedCloud:
        """Check a cloud read on the model's grid against the model and featurise it.

        ``features``: its scalar features and their names when already computed
        (:func:`psirel.features.scalars.scalar_features` of the cloud; else computed in
        ``workers`` threads). Heights are never NaN
        (:func:`~psirel.io.cloud_grid.point_heights`: the fallbacks counted in ``fallbacks``,
        told to ``warn``)."""
        feats, names = features or scalar_features(cloud.velocity_mm_yr, cloud.coherence,
                                                   cloud.series_mm, cloud.dates,
                                                   workers=workers)
        card.check_features(names, len(cloud.dates), stack.pixel_m,
                            lulc_legend=stack.lulc_legend)
        fallbacks: dict[str, int] = {}
        height = point_heights(cloud, stack, fallbacks, warn)
        return cls(card=card, stack=stack, cloud=cloud, height_m=height,
                   scalars=card.normalizer.scalars(feats, names), normalizer=card.normalizer,
                   edge_scale=card.edge_scale, order=spatial_order(cloud.x, cloud.y),
                   hops=card.receptive_hops(), fallbacks=fallbacks)

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
            schema: PointSchema | None = None, threads: int | None = None) -> PreparedCloud:
    """Read the points (columns and units as ``schema`` says) and the rasters on the model's
    grid and prepare them (:meth:`PreparedCloud.from_cloud`, its features in ``threads``
    threads; None: one per CPU). ``timer`` gets ``read`` and ``features`` seconds."""
    timer = timer or Timer()
    t0 = time.perf_counter()
    cloud, stack = open_cloud(points, dem, lulc, amplitude, card.raster_options(lulc_legend),
                              crs=crs, warn=warn, schema=schema)
    try:
        t0 = timer.add("read", t0)
        prepared = PreparedCloud.from_cloud(card, stack, cloud, warn=warn,
                                            workers=threads)
        timer.add("features", t0)
        return prepared
    except Exception:
        stack.close()
        raise
