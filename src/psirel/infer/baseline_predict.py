"""``psirel predict --baseline NAME``: score a whole cloud with one of a model's baselines.

Every model directory holds its baselines (DESIGN.md §8): the coherence threshold and the
neighbour-consistency score as JSON parameters, gradient boosting refitted deterministically from
``baselines/training_features.npz``. :func:`predict_baseline` scores every point of a cloud with
one of them and writes the same file as :func:`psirel.infer.pipeline.predict` (every input
attribute plus ``reliability``, ``reliability_std`` = 0 and ``reliable_pred`` at the baseline's
tuned threshold), so the benchmark compares model and baseline end to end.

The baseline sees exactly what ``psirel evaluate`` feeds it for the same points: the inputs are
opened as :func:`psirel.train.data.load_inputs` opens them and the
:class:`~psirel.baselines.data.PointData` is built by
:func:`psirel.train.point_data.build_point_data` from the patch statistics of
:func:`~psirel.train.point_data.raster_patch_stats` (what ``evaluate``'s
``streamed_patch_stats`` computes). Streamed, not cached: a patch cache of a million points is
51 GB, so the statistics are taken chunk by chunk and no patch is kept (for a patch-encoder
model, whose evaluation reads the float16 cache, each patch is rounded through float16 first:
the same numbers). Memory stays O(N · (T + k + M)), never O(N · 4 · 80 · 80): 2.5 GB peak
for gradient boosting on a million points (measured), most of it the cloud as read.

Neither torch nor (except for gradient boosting) scikit-learn is imported.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from psirel.baselines import (
    BASELINES,
    GradientBoosting,
    load_baseline,
    load_training_features,
)
from psirel.baselines.data import PointData, ReliabilityEstimator
from psirel.baselines.gradient_boosting import PREDICT_ROWS as GB_PREDICT_ROWS
from psirel.errors import MissingExtra, ModelError, PsirelError, first_line
from psirel.features.scalars import SCALAR_FEATURES
from psirel.graph.knn import knn_table
from psirel.infer.pipeline import output_columns, peak_rss_mb
from psirel.infer.prepared import Silent, Timer
from psirel.infer.run_spec import PredictionSummary
from psirel.io.atomic import check_writable
from psirel.io.cloud_grid import open_cloud
from psirel.io.points import PointCloud, write_predictions
from psirel.io.rasters import RasterStack
from psirel.io.schema import PointSchema
from psirel.model_card import ModelCard
from psirel.model_dir import MODEL_JSON, load_card
from psirel.train.data import cloud_inputs
from psirel.train.point_data import build_point_data, raster_patch_stats

TRAINING_FEATURES = "baselines/training_features.npz"
NEEDS_SKLEARN = ("gradient_boosting",)
# What each baseline's predict_proba reads of a PointData beyond coordinates, velocity,
# coherence and series: gradient boosting everything (hand_features), neighbour consistency
# the neighbour table, the coherence threshold nothing more.
PATCH_BASELINES = ("gradient_boosting",)
GRAPH_BASELINES = ("gradient_boosting", "neighbour_consistency")


def check_baseline_name(name: str) -> None:
    """One line listing the known baselines for an unknown ``name``."""
    if name not in BASELINES:
        raise PsirelError(f"--baseline {name}: unknown baseline; choose one of "
                          f"{', '.join(BASELINES)}")


def rebuild_baseline(card: ModelCard, name: str,
                     warn: Callable[[str], None] | None = None) -> tuple[ReliabilityEstimator,
                                                                         float]:
    """The baseline ``name`` of ``card`` rebuilt without pickle, and its tuned threshold on
    P(reliable) (``threshold_tuned``, the one ``psirel evaluate`` reports).

    Gradient boosting is refitted on the model's training features and needs scikit-learn
    (:class:`~psirel.errors.MissingExtra` without it); a refit that does not reproduce the
    saved predictions is told to ``warn``."""
    check_baseline_name(name)
    record = card.baseline(name)
    threshold = float(record.get("threshold_tuned", 0.5))
    training = None
    if name in NEEDS_SKLEARN:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise MissingExtra(f"--baseline {name}", "train") from None
        path = card.artifact(TRAINING_FEATURES)
        try:
            training = load_training_features(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(path, f"cannot be read ({first_line(exc)})") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            est = load_baseline(record, training=training)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(card.path / MODEL_JSON,
                             f"baseline '{name}' cannot be rebuilt ({first_line(exc)})") from None
    for w in caught:
        if warn is not None:
            warn(f"--baseline {name}: {first_line(w.message)}")
    return est, threshold


def predict_baseline(model_dir: Path | str, points: Path | str, dem: Path | str,
                     lulc: Path | str, amplitude: Path | str, out: Path | str, *,
                     baseline: str = "gradient_boosting", crs=None,
                     lulc_legend: str | None = None, schema: PointSchema | None = None,
                     warn: Callable[[str], None] | None = None,
                     report: bool | Path | str = False, progress=None,
                     chunk_points: int = 4096,
                     predict_rows: int = GB_PREDICT_ROWS) -> PredictionSummary:
    """Score every point with the baseline ``baseline`` of ``model_dir`` and write ``out``.

    Args:
        model_dir: a model directory (hashes verified); its baselines are rebuilt from
            ``model.json`` (and, for gradient boosting, ``baselines/training_features.npz``).
        points, dem, lulc, amplitude: the inputs, read and checked as for ``psirel predict``.
        out: output file; format from the extension (gpkg, shp, fgb, csv, parquet); written
            atomically, only after every point is scored: every input attribute plus
            ``reliability`` (the baseline's P(reliable), float32), ``reliability_std`` (0: one
            estimator) and ``reliable_pred`` (at the baseline's ``threshold_tuned``).
        baseline: one of :data:`psirel.baselines.BASELINES`.
        crs, lulc_legend, schema: as :func:`psirel.infer.pipeline.predict` takes them.
        warn: called with one-line warnings (reading, nodata, unknown land cover, refit).
        report: also write the quick-look (True: into ``<out>.quicklook``; a path: there),
            as :func:`~psirel.infer.pipeline.predict` does.
        progress: object with ``stage(name, total)`` and ``advance(n)`` (points).
        chunk_points: points per patch-statistics chunk. 4096, as ``psirel evaluate`` and
            the patch cache use: keep it for numbers identical to theirs.
        predict_rows: rows per scikit-learn call of gradient boosting (bounds its float64
            copy of the features; any value gives the same probabilities).

    Returns:
        The summary ``psirel predict`` prints. ``seconds`` per stage: ``baseline`` (rebuild),
        ``read`` (points and rasters opened and checked), ``features`` (the ``PointData`` of
        :func:`point_data`; for gradient boosting, also its hand features), ``predict`` (the
        baseline's probabilities; for the other two, with the few columns they derive
        themselves), ``write``, ``report`` when asked, and ``total``; ``points_per_s``;
        ``peak_rss_mb``; ``strategy`` ``"baseline"`` and ``backend`` the baseline's name.
    """
    t_start = time.perf_counter()
    check_baseline_name(baseline)
    progress = progress or Silent()
    timer = Timer()
    out = Path(out)
    check_writable(out)
    card = load_card(model_dir)
    t0 = time.perf_counter()
    est, threshold = rebuild_baseline(card, baseline, warn)
    t0 = timer.add("baseline", t0)
    cloud, stack = open_cloud(points, dem, lulc, amplitude, card.raster_options(lulc_legend),
                              crs=crs, warn=warn, schema=schema)
    try:
        t0 = timer.add("read", t0)
        pdata, n_unknown = point_data(card, cloud, stack, baseline, progress, warn,
                                      chunk_points)
        if isinstance(est, GradientBoosting):  # its hand features belong to "features"
            try:
                x = est.features(pdata)
            except ValueError as exc:
                raise PsirelError(f"{model_dir}: {exc}") from None
            del pdata
            t0 = timer.add("features", t0)
            progress.stage(baseline, len(cloud))
            p = est._p_from_features(x, predict_rows).astype(np.float32)
            del x
        else:
            t0 = timer.add("features", t0)
            progress.stage(baseline, len(cloud))
            p = np.asarray(est.predict_proba(pdata)[:, 1], np.float32)
            del pdata
        progress.advance(len(cloud))
        t0 = timer.add("predict", t0)
        rel = np.stack([p, np.zeros_like(p)], axis=1)
        cols = output_columns(rel, threshold)
        write_predictions(cloud, out, cols)
        t0 = timer.add("write", t0)
        summary: PredictionSummary = {"strategy": "baseline", "backend": baseline,
                                      "device": "cpu", "precision": "fp32",
                                      "unknown_lulc_points": int(n_unknown)}
        if report is not False:
            from psirel.infer.quicklook_step import write_prediction_report

            summary["report"] = write_prediction_report(
                out, None if report is True else report, cloud, rel, threshold, dem)
            timer.add("report", t0)
    finally:
        stack.close()
    n = len(cloud)
    sec = timer.seconds
    sec["io"] = sec.get("read", 0.0) + sec.get("write", 0.0)
    sec["total"] = time.perf_counter() - t_start

    def rate(s: float) -> float | None:
        return round(n / s, 1) if s and n else None

    summary.update({
        "points": n, "output": str(out), "threshold": threshold,
        "unreliable_fraction": float(1.0 - cols["reliable_pred"].mean()) if n else 0.0,
        "seconds": {k: round(v, 4) for k, v in sec.items()},
        "points_per_s": {k: rate(sec.get(k, 0.0)) for k in ("features", "predict", "total")},
        "peak_rss_mb": peak_rss_mb(),
    })
    return summary


def point_data(card: ModelCard, cloud: PointCloud, stack: RasterStack, baseline: str,
               progress=None, warn: Callable[[str], None] | None = None,
               chunk_points: int = 4096) -> tuple[PointData, int]:
    """The baseline's inputs for every point of ``cloud`` (read on the model's grid), and the
    number of points whose patch holds unknown land cover.

    Gradient boosting reads all of a :class:`~psirel.baselines.data.PointData` (its hand
    features): scalar features, the model's kNN graph, patch statistics streamed from the
    rasters, land cover, built as ``psirel evaluate`` builds it. The other two get only what
    their ``predict_proba`` reads (:data:`PATCH_BASELINES`, :data:`GRAPH_BASELINES`): the same
    probabilities without the raster pass and the series statistics, the two slowest steps,
    which only gradient boosting needs. The model's check of the data
    (:meth:`~psirel.model_card.ModelCard.check_features`, as
    :meth:`~psirel.infer.prepared.PreparedCloud.from_cloud` applies it) comes first, for all."""
    progress = progress or Silent()
    card.check_features(list(SCALAR_FEATURES), len(cloud.dates), stack.pixel_m,
                        lulc_legend=stack.lulc_legend)
    n = len(cloud)
    if baseline not in PATCH_BASELINES:
        if baseline in GRAPH_BASELINES:
            table = knn_table(cloud.x, cloud.y, k=card.features.k, r_max_m=card.features.r_max_m)
            idx, mask = table.idx, table.mask
        else:
            idx, mask = np.zeros((n, 0), np.int64), np.zeros((n, 0), bool)
        return PointData.from_arrays(cloud.x, cloud.y, cloud.velocity_mm_yr, cloud.coherence,
                                     idx, mask, series_mm=cloud.series_mm), 0
    # the raster pass first: its chunk buffers (~0.7 GB) never sit beside the features
    progress.stage("patch statistics", n)
    pstats, n_unknown = raster_patch_stats(
        cloud, stack, card.normalizer, chunk=chunk_points, progress=progress.advance,
        stored_dtype=None if card.shared_map else np.float16)
    card.check_unknown_lulc(n_unknown, n, warn=warn, codes=stack.unknown_lulc_codes)
    inputs = cloud_inputs(cloud, stack, card.features.k, card.features.r_max_m)
    return build_point_data(inputs, None, card.normalizer, pstats), int(n_unknown)
