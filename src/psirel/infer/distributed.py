"""``psirel predict --dask``: a cloud scored tile by tile as Dask tasks, stitched in input order.

The driver reads and checks the whole cloud once (as ``psirel predict`` does), cuts the plane into
tiles with exact halos (:mod:`psirel.infer.tiling`) and submits one task per tile to a
``dask.distributed`` cluster: a ``LocalCluster`` of N single-threaded worker processes
(``local[:N]``) or a running scheduler (``tcp://host:8786``); ``sync`` runs the tiles one after
another in this process, without Dask. A task reads only its box of points and its raster
windows, runs both stages on ONNX Runtime and returns its core predictions; a failing task is
retried (``retries``) and, if it keeps failing, reported by tile id (the executors:
:mod:`psirel.infer.executors`).

Resuming: each finished tile is recorded in the work folder (``tiles.json``, rewritten atomically,
after the tile's result ``tiles/tile-NNNNNN.npz`` or its GeoParquet part is complete), under a key
of the model, the inputs (the column map included) and the tiling, as :mod:`psirel.infer.workdir`
does (:mod:`psirel.infer.tile_work`); a rerun with the same ``--work-dir`` submits only the tiles
not yet done.

Output: one file written by the driver in input order (the atomic writer of ``psirel predict``),
or, with ``partitioned=True``, one GeoParquet part per tile written by its task plus a
``manifest.json`` (:mod:`psirel.io.partitioned`).

A process-based ``LocalCluster`` starts its workers with ``spawn``, which re-imports the caller's
``__main__``: a script must call :func:`predict_tiled` under ``if __name__ == "__main__":``
(the ``psirel`` command does).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from psirel.errors import PsirelError, first_line
from psirel.features.scalars import SCALAR_FEATURES
from psirel.infer.executors import (  # noqa: F401  (re-exported: the driver's executors)
    CONNECT_TIMEOUT_S,
    DaskExecutor,
    SyncExecutor,
    make_executor,
)
from psirel.infer.pipeline import (
    chunk_points_for,
    output_columns,
    peak_rss_mb,
)
from psirel.infer.prepared import Silent, Timer
from psirel.infer.quicklook_step import write_prediction_report
from psirel.infer.run_spec import BLOCK_POINTS, PredictionSummary, RunSpec
from psirel.infer.tile_work import TileWork, read_tile_manifest
from psirel.infer.tiling import (
    TilePlan,
    TileResult,
    TileTask,
    auto_tile_m,
    halo_for,
    plan_tiles,
    tile_bytes_per_point,
    tile_tasks,
)
from psirel.io.atomic import check_writable
from psirel.io.cloud_grid import open_cloud
from psirel.io.formats import format_of
from psirel.io.partitioned import check_parts_dir, part_name, read_parts, write_manifest
from psirel.io.points import write_predictions
from psirel.io.schema import PointSchema
from psirel.model_dir import MODEL_JSON, ModelCard, load_card, sha256_file

RETRIES = 2              # extra attempts of a failing tile


# ---------------------------------------------------------------------------- the driver
def read_cloud(card: ModelCard, points, dem, lulc, amplitude, crs=None, warn=None,
               lulc_legend: str | None = None, schema: PointSchema | None = None):
    """The whole cloud on the model's grid, checked as :func:`psirel.infer.prepared.prepare`
    checks it (points on the rasters, features the model knows), and the raster options every
    tile must open its rasters with (the same grid CRS, pixel size and resolved legend, so
    that tiles read the pixels the single process reads); the rasters are closed again."""
    cloud, stack = open_cloud(points, dem, lulc, amplitude, card.raster_options(lulc_legend),
                              crs=crs, warn=warn, schema=schema)
    try:
        card.check_features(list(SCALAR_FEATURES), len(cloud.dates), stack.pixel_m,
                       lulc_legend=stack.lulc_legend)
        options = {"pixel_m": stack.pixel_m, "crs": stack.crs.to_wkt(),
                   "lulc_legend": stack.lulc_legend}
    finally:
        stack.close()
    return cloud, options


def predict_tiled(model_dir: Path | str, points: Path | str, dem: Path | str,
                  lulc: Path | str, amplitude: Path | str, out: Path | str, *,
                  dask="local", tile_m: float | None = None, partitioned: bool = False,
                  work_dir: Path | str | None = None, memory_gb: float = 2.0,
                  threads: int | None = None, device: str = "cpu", restart: bool = False,
                  crs=None, progress=None, warn: Callable[[str], None] | None = None,
                  retries: int = RETRIES, halo_m: float | None = None,
                  chunk_points: int | None = None, block_points: int = BLOCK_POINTS,
                  tile_hook: Callable[[int], None] | None = None,
                  connect_timeout_s: float = CONNECT_TIMEOUT_S,
                  precision: str = "fp32", lulc_legend: str | None = None,
                  schema: PointSchema | None = None,
                  report: bool | Path | str = False) -> PredictionSummary:
    """Predict P(reliable) for every point tile by tile on Dask; same output as
    :func:`psirel.infer.pipeline.predict` (≤ 1e-5).

    Args:
        model_dir, points, dem, lulc, amplitude: as for ``predict``; every worker must reach
            these paths.
        out: output file (format from the extension), or with ``partitioned`` a folder of
            GeoParquet parts (new or empty; see :mod:`psirel.io.partitioned`).
        dask: ``"local"`` (a LocalCluster, one single-threaded worker per core), ``"local:N"``,
            a scheduler address ``"tcp://host:8786"``, ``"sync"`` (no Dask), or a
            ``distributed.Client``.
        tile_m: tile side, metres (default: :func:`~psirel.infer.tiling.auto_tile_m` from the
            density, ``memory_gb`` and the workers; a resumed run keeps its tile size).
        work_dir: folder of the finished tiles; default ``.psirel-tiles-<name>`` beside
            ``out``, removed after success (a given one is kept).
        memory_gb: memory budget per task (GiB): sizes tiles and stage-1 chunks.
        threads: ONNX Runtime threads per task (default 1 on Dask, all cores with ``sync``).
        restart: clear a work dir left by another run instead of refusing it.
        progress: ``stage(name, total)`` / ``advance(n)`` sink; counts tiles.
        retries: extra attempts of a failing tile before the run stops naming it.
        halo_m: halo, metres; default the exact one (receptive hops × r_max). Smaller halos
            change the predictions near tile borders (for experiments only).
        chunk_points, block_points: stage-1 chunk and stage-2 block sizes within a tile.
        tile_hook: called in the task with the tile id before it runs (tests inject failures).
        connect_timeout_s: how long to wait for a scheduler and its first worker.
        schema: column map and units of the points; every task reads its box with it, the
            units pinned to those the whole cloud was read with.
        report: the quick-look and ``.qml``, as for ``predict``.

    Returns:
        A summary: points, tiles (total, computed, size, halo, embeddings per point), workers,
        seconds, points/s, peak RSS of the driver and of the workers (MB), output path.
    """
    t_start = time.perf_counter()
    spec = RunSpec(model_dir, points, dem, lulc, amplitude, out, crs=crs, schema=schema,
                   lulc_legend=lulc_legend, memory_gb=memory_gb, chunk_points=chunk_points,
                   block_points=block_points, threads=threads, device=device,
                   precision=precision, work_dir=work_dir, restart=restart)
    progress = progress or Silent()
    timer = Timer()
    out = spec.out
    if tile_m is not None and not tile_m > 0:
        raise PsirelError(f"--tile-m {tile_m:g}: must be a positive number of metres")
    if retries < 0:
        raise PsirelError(f"retries {retries}: must be >= 0")
    check_writable(out / "manifest.json" if partitioned else out)  # a parts folder: in it
    executor = make_executor(dask, connect_timeout_s)
    task_threads = _threads(threads, executor)
    _check_out(out, partitioned)
    card = load_card(model_dir)
    try:
        t0 = time.perf_counter()
        if getattr(executor, "remote", False):
            executor.start()  # an unreachable scheduler fails before the long read
        t0 = timer.add("start", t0)
        cloud, raster_options = read_cloud(card, points, dem, lulc, amplitude, crs=crs,
                                           warn=warn, lulc_legend=lulc_legend, schema=schema)
        t0 = timer.add("read", t0)
        executor.start()
        timer.add("start", t0)
        n = len(cloud)
        halo = halo_for(card) if halo_m is None else float(halo_m)
        chunk = chunk_points or chunk_points_for(memory_gb, card.features.patch_px)
        wd_path = spec.work_dir_for(".psirel-tiles-")
        key = {**spec.key(n, f"onnx/{device}", chunk),
               "output": str(out.resolve()) if partitioned else "file"}
        if tile_m is None:
            tile_m = _resumed_tile_m(wd_path, key, halo) or auto_tile_m(
                cloud.x, cloud.y, halo, memory_gb, executor.n_workers,
                tile_bytes_per_point(len(cloud.dates), card.embedding_dim,
                                     card.features.k))
        t0 = time.perf_counter()
        plan = plan_tiles(cloud.x, cloud.y, float(tile_m), halo)
        timer.add("plan", t0)
        key["tiling"] = {k: v for k, v in plan.to_json().items() if k != "tiles"}
        work = TileWork(wd_path, key, restart=restart)
        if partitioned:
            check_parts_dir(out, resuming=work.resumed)
            out.mkdir(parents=True, exist_ok=True)
        done = _valid_done(work, plan, out if partitioned else None)
        tasks = tile_tasks(plan, card, cloud, points, (dem, lulc, amplitude), crs, chunk,
                       block_points, device, task_threads, out, partitioned,
                       tile_hook, skip=done, precision=precision,
                       raster_options=raster_options,
                       schema=(schema or PointSchema()).with_units(cloud.units))
        progress.stage("tiles", len(plan.tiles))
        progress.advance(len(done))
        t0 = time.perf_counter()
        results = _run(executor, tasks, work, retries, progress)
        timer.add("tiles", t0)
    finally:
        executor.close()

    t0 = time.perf_counter()
    info = [work.done[t.id] for t in plan.tiles]
    n_unknown = sum(int(i.get("unknown_lulc", 0)) for i in info)
    card.check_unknown_lulc(n_unknown, n, warn=warn)
    n_reliable = sum(int(i["n_reliable"]) for i in info)
    if partitioned:
        _write_parts_manifest(out, plan, work, cloud, card)
    else:
        rel = _gather(plan, work, len(cloud))
        write_predictions(cloud, out, output_columns(rel, card.threshold))
    t0 = timer.add("write", t0)
    shown = None
    if report is not False:
        if partitioned:  # the tasks wrote the scores into the parts
            got = read_parts(out, ["reliability", "reliability_std"])
            rel = np.stack([got["reliability"], got["reliability_std"]], axis=1)
        shown = write_prediction_report(out, None if report is True else report, cloud, rel,
                                        card.threshold, dem, partitioned=partitioned)
        timer.add("report", t0)
    if work_dir is None:
        work.remove()
    else:
        work.close()  # the lock; the user's folder keeps the finished tiles
    timer.seconds["total"] = time.perf_counter() - t_start
    summary = _summary(executor, plan, work, results, card, out, device, timer, n_unknown,
                       n_reliable, n)
    return summary if shown is None else {**summary, "report": shown}


def _summary(executor, plan: TilePlan, work: TileWork, results: list[TileResult],
             card: ModelCard, out: Path, device: str, timer: Timer, n_unknown: int,
             n_reliable: int, n: int) -> dict:
    sec = timer.seconds
    total = sec["total"]
    core_done = sum(len(r.rows) for r in results)
    workers: dict[str, float] = {}
    for r in results:
        if r.peak_rss_mb is not None:
            workers[r.worker] = max(workers.get(r.worker, 0.0), r.peak_rss_mb)
    return {
        "strategy": "tiled", "backend": "onnx", "device": device, "executor": executor.label,
        "points": n, "output": str(out), "threshold": card.threshold,
        "unreliable_fraction": float(1.0 - n_reliable / n) if n else 0.0,
        "unknown_lulc_points": n_unknown,
        "tiles": {"total": len(plan.tiles), "computed": len(results),
                  "tile_m": plan.tile_m, "halo_m": plan.halo_m, "grid": list(plan.shape),
                  "points_per_tile": round(n / max(len(plan.tiles), 1), 1),
                  "embedded_per_point": round(sum(r.n_embedded for r in results)
                                              / max(core_done, 1), 3)},
        "work_dir": str(work.path),
        "seconds": {k: round(v, 4) for k, v in sec.items()},
        "task_seconds": round(sum(r.seconds for r in results), 3),
        "points_per_s": {"total": round(n / total, 1) if total else None,
                         "tiles": round(core_done / sec["tiles"], 1)
                         if sec.get("tiles") and core_done else None},
        "peak_rss_mb": peak_rss_mb(),
        "worker_peak_rss_mb": workers,
    }


def _check_out(out: Path, partitioned: bool) -> None:
    if partitioned:
        check_parts_dir(out, resuming=True)  # the extra and a file in the way; emptiness later
        return
    if out.is_dir():
        raise PsirelError(f"--out {out}: is a folder; add --partitioned to write one GeoParquet "
                          "part per tile into it")
    format_of(out)


def _threads(threads: int | None, executor) -> int | None:
    if threads is None and not isinstance(executor, SyncExecutor):
        return 1  # one ONNX Runtime thread per task: workers are single-threaded processes
    return threads


def _resumed_tile_m(wd_path: Path, key: dict, halo: float) -> float | None:
    """The tile size of an unfinished run of the same inputs in ``wd_path`` (so that a rerun on
    another number of workers resumes instead of re-planning)."""
    state = read_tile_manifest(wd_path)
    old = state.get("key") if state else None
    if not isinstance(old, dict) or {k: v for k, v in old.items() if k != "tiling"} != \
            json.loads(json.dumps(key)):
        return None
    tiling = old.get("tiling") or {}
    return float(tiling["tile_m"]) if tiling.get("halo_m") == halo else None


def _valid_done(work: TileWork, plan: TilePlan, parts: Path | None) -> set[int]:
    """Tiles the manifest lists whose result is intact (rows as planned; the part exists)."""
    ok = set()
    for t in plan.tiles:
        if t.id not in work.done:
            continue
        if parts is not None:
            good = (parts / part_name(t.id)).exists()
        else:
            got = work.load(t.id)
            good = got is not None and np.array_equal(got[0], t.core_rows)
        if good:
            ok.add(t.id)
        else:
            del work.done[t.id]
    return ok


def _run(executor, tasks: list[TileTask], work: TileWork, retries: int,
         progress) -> list[TileResult]:
    """Run the tasks, recording each result as it arrives; the first tile that keeps failing
    stops the run (the others already finished stay recorded)."""
    results = []
    if not tasks:
        return results
    runs = executor.map(tasks, retries)
    try:
        for task, res, exc in runs:
            if exc is not None:
                if isinstance(exc, PsirelError):
                    raise PsirelError(str(exc)) from None
                raise PsirelError(f"tile {task.tile} failed {retries + 1} times: "
                                  f"{type(exc).__name__}: {first_line(exc)}") from None
            work.record(res)
            results.append(res)
            progress.advance(1)
    finally:
        runs.close()
    return results


def _gather(plan: TilePlan, work: TileWork, n: int) -> np.ndarray:
    """[n, 2] reliability and its spread of every point, from the tiles' results."""
    rel = np.full((n, 2), np.nan, np.float32)
    for t in plan.tiles:
        got = work.load(t.id)
        if got is None:
            raise PsirelError(f"{work.result_path(t.id)}: result of tile {t.id} is missing")
        rel[got[0]] = got[1]
    return rel


def _write_parts_manifest(out: Path, plan: TilePlan, work: TileWork, cloud,
                          card: ModelCard) -> None:
    parts = [{"file": part_name(t.id), "tile": t.id, "rows": int(work.done[t.id]["rows"]),
              "cell": list(t.cell),
              "core_box": [round(v, 3) for v in _core_box(plan, t.cell)]}
             for t in plan.tiles]
    write_manifest(out, parts, cloud.source_crs, {
        "tiling": {**plan.to_json(), "crs": cloud.crs.to_string()},
        "model": {"path": str(card.path), "sha256": sha256_file(card.path / MODEL_JSON)},
        "threshold": card.threshold})


def _core_box(plan: TilePlan, cell: tuple[int, int]) -> tuple[float, float, float, float]:
    x0, y0 = plan.origin
    return (x0 + cell[0] * plan.tile_m, y0 + cell[1] * plan.tile_m,
            x0 + (cell[0] + 1) * plan.tile_m, y0 + (cell[1] + 1) * plan.tile_m)


