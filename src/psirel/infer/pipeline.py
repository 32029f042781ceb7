"""``psirel predict``: reliability of every point of a cloud, in two resumable stages.

Stage 1 (PW encoder) runs once per point: points go in spatially compact chunks (consecutive
runs of a Hilbert order, so a chunk reads one small raster window); a background thread extracts
the next chunk's patches while the encoder runs on the current one (ONNX Runtime and rasterio
release the GIL); embeddings land in a memory-mapped ``[N, D]`` file at the chunk's rows.

Stage 2 (GNN) needs only positions and embeddings. The nodes are cut into spatially compact
blocks; a block's output needs its full L-hop neighbourhood (:func:`full_neighbourhood`), whose
embeddings are gathered from the memory map. Memory is O(N·D + block·k^L·D), never the
O(N × 4 × 80 × 80) of holding every patch.

Both stages record finished chunks / blocks in the work folder (:mod:`psirel.infer.workdir`),
so a killed run resumes where it stopped. ``strategy="naive"`` is the reference the two stages
are measured against (:mod:`psirel.infer.naive`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from psirel.errors import PsirelError
from psirel.features.normalize import N_PATCH_CHANNELS
from psirel.graph.sampling import full_neighbourhood
from psirel.infer.backends import Backend, make_backend
from psirel.infer.naive import predict_naive
from psirel.infer.prepared import PreparedCloud, Silent, Timer, prepare
from psirel.infer.quicklook_step import write_prediction_report
from psirel.infer.run_spec import BLOCK_POINTS, EMBED_BATCH, PredictionSummary, RunSpec
from psirel.infer.shared_stage import embed_windows
from psirel.infer.workdir import WorkDir, release
from psirel.io.atomic import check_writable
from psirel.io.points import write_predictions
from psirel.io.schema import PointSchema
from psirel.model_dir import load_card

STRATEGIES = ("two-stage", "naive")
CHUNKS_IN_FLIGHT = 2     # patch buffers: the one being encoded and the one being extracted
PATCH_SHARE = 0.25       # fraction of --memory-gb the patch buffers may take


def chunk_points_for(memory_gb: float, patch_px: int = 80, batch: int = EMBED_BATCH) -> int:
    """Points per stage-1 chunk: the in-flight patch buffers (``n × 4 × P × P × 4`` bytes each)
    take at most a quarter of ``memory_gb``; a multiple of ``batch``, at least one batch."""
    if not memory_gb > 0:
        raise PsirelError(f"--memory-gb {memory_gb}: must be positive")
    per_point = N_PATCH_CHANNELS * patch_px * patch_px * 4
    n = int(memory_gb * 2**30 * PATCH_SHARE // (CHUNKS_IN_FLIGHT * per_point))
    return max(batch, n // batch * batch)


def predict(model_dir: Path | str, points: Path | str, dem: Path | str, lulc: Path | str,
            amplitude: Path | str, out: Path | str, *, backend: str | Backend = "onnx",
            strategy: str = "two-stage", work_dir: Path | str | None = None,
            memory_gb: float = 2.0, threads: int | None = None, device: str = "cpu",
            restart: bool = False, crs=None, progress=None,
            warn: Callable[[str], None] | None = None, chunk_points: int | None = None,
            block_points: int = BLOCK_POINTS, precision: str = "fp32",
            lulc_legend: str | None = None, schema: PointSchema | None = None,
            report: bool | Path | str = False) -> PredictionSummary:
    """Predict P(reliable) for every point and write ``out`` (every input attribute plus
    ``reliability`` float32 and ``reliable_pred`` at the model's threshold, input order and CRS).

    Args:
        model_dir: a model directory (hashes verified).
        points, dem, lulc, amplitude: the inputs (points reprojected to the DEM's CRS).
        out: output file; format from the extension (gpkg, shp, fgb, csv, parquet); atomic.
        backend: ``"onnx"`` (default, no torch needed), ``"torch"``, or a backend object.
        strategy: ``"two-stage"`` (resumable) or ``"naive"`` (reference, recomputes shared nodes).
        work_dir: folder for embeddings and the manifest; default ``.psirel-work-<out name>`` beside
            ``out``, removed after success (a given ``work_dir`` is kept).
        memory_gb: memory budget (GiB) that sizes stage-1 chunks (see :func:`chunk_points_for`).
        threads: intra-op threads of the backend (None: all cores).
        device: ``"cpu"`` or ``"cuda"``.
        precision: ``"fp32"`` or ``"int8"`` (stage 1 from ``pointwise.int8.onnx``).
        lulc_legend: the land-cover raster's legend (default: its tag, else detected).
        restart: clear a work dir left by another run instead of refusing it.
        crs: CRS of the points when the file has none.
        schema: which column holds which role, and the units (``--columns``, ``--units``).
        progress: object with ``stage(name, total)`` and ``advance(n)`` (points).
        warn: called with one-line warnings (unit checks, unknown land cover).
        chunk_points: points per stage-1 chunk, overriding ``memory_gb``.
        block_points: stage-2 seeds per GNN call.
        report: also write the quick-look (True: into ``<out>.quicklook``; a path: there) and a
            ``.qml`` style beside a GeoPackage/shapefile output
            (:mod:`psirel.infer.quicklook_step`).

    Returns:
        A summary: points, unreliable fraction, seconds and points/s per stage, peak RSS (MB),
        chunks and blocks resumed, output path.
    """
    t_start = time.perf_counter()
    if strategy not in STRATEGIES:
        raise PsirelError(f"--strategy {strategy}: choose one of {', '.join(STRATEGIES)}")
    spec = RunSpec(model_dir, points, dem, lulc, amplitude, out, crs=crs, schema=schema,
                   lulc_legend=lulc_legend, memory_gb=memory_gb, chunk_points=chunk_points,
                   block_points=block_points, threads=threads, device=device,
                   precision=precision, work_dir=work_dir, restart=restart)
    progress = progress or Silent()
    timer = Timer()
    out = spec.out
    check_writable(out)
    card = load_card(model_dir)
    be = make_backend(card, backend, device, threads, precision) if isinstance(backend, str) \
        else backend
    scene = prepare(card, points, dem, lulc, amplitude, crs=crs, warn=warn, timer=timer,
                    lulc_legend=lulc_legend, schema=schema, threads=threads)
    wd, own_wd = None, work_dir is None
    summary: dict = {"strategy": strategy, "backend": getattr(be, "name", type(be).__name__),
                     "device": device, "precision": getattr(be, "precision", "fp32")}
    try:
        if strategy == "naive":
            rel, stats = predict_naive(scene, be, progress=progress, timer=timer, warn=warn)
            summary.update(stats)
        else:
            chunk = chunk_points or chunk_points_for(memory_gb, scene.normalizer.patch_px)
            key = spec.key(scene.n, f"{summary['backend']}/{device}", chunk,
                           precision=summary["precision"])  # a backend object's own
            wd_path = spec.work_dir_for(".psirel-work-")
            wd = WorkDir(wd_path, key, restart=restart)
            summary["work_dir"] = str(wd.path)
            summary.update(run_stage1(scene, be, wd, chunk, progress, timer, warn))
            rel, stats = run_stage2(scene, be, wd, block_points, progress, timer)
            summary.update(stats)
        t0 = time.perf_counter()
        cols = output_columns(rel, card.threshold)
        pred = cols["reliable_pred"]
        write_predictions(scene.cloud, out, cols)
        t0 = timer.add("write", t0)
        if report is not False:
            summary["report"] = write_prediction_report(
                out, None if report is True else report, scene.cloud, rel, card.threshold, dem)
            timer.add("report", t0)
    finally:
        scene.stack.close()
        if wd is not None:
            wd.close()  # the lock; the files stay for a resume
    if wd is not None and own_wd:  # a folder the user named is theirs to remove
        wd.remove()
    total = time.perf_counter() - t_start
    sec = timer.seconds
    sec["io"] = sec.get("read", 0.0) + sec.get("write", 0.0)
    sec["total"] = total
    summary.update({
        "points": scene.n, "output": str(out), "threshold": card.threshold,
        "fallbacks": dict(scene.fallbacks),
        "unreliable_fraction": float(1.0 - pred.mean()) if scene.n else 0.0,
        "seconds": {k: round(v, 4) for k, v in sec.items()},
        "points_per_s": _rates(sec, summary, scene.n),
        "peak_rss_mb": peak_rss_mb(),
    })
    if timer.counts:   # e.g. shared-map windows encoded and their pixels
        summary["counts"] = dict(timer.counts)
    return summary


def embed_chunks(scene: PreparedCloud, be: Backend, chunks: list[np.ndarray], emb: np.ndarray,
                 timer: Timer, on_chunk: Callable[[int, int], None] | None = None) -> float:
    """Embed ``chunks`` (arrays of scene rows) into ``emb[rows]`` (``[N, D]`` float32, an array
    or a memory map), extracting the next chunk's patches in a background thread while the
    encoder runs on the current one. After each chunk, ``on_chunk(i, n_unknown_lulc)``.

    Returns the seconds spent extracting patches (overlapped with encoding). A shared-map model
    embeds raster windows instead (:func:`psirel.infer.shared_stage.embed_windows`)."""
    if scene.card.shared_map:
        return embed_windows(scene, be, chunks, emb, timer, on_chunk)
    if not chunks:
        return 0.0
    size = max(len(c) for c in chunks)
    bufs = [scene.patch_buffer(size) for _ in range(min(CHUNKS_IN_FLIGHT, len(chunks)))]
    extract_s = 0.0

    def extract(j: int):
        t = time.perf_counter()
        patches, unknown = scene.extract(chunks[j], bufs[j % len(bufs)])
        return patches, unknown, time.perf_counter() - t

    with ThreadPoolExecutor(1, thread_name_prefix="psirel-patches") as pool:
        pending = pool.submit(extract, 0)
        for j, rows in enumerate(chunks):
            patches, unknown, dt = pending.result()
            extract_s += dt
            if j + 1 < len(chunks):  # the next chunk is read while this one is encoded
                pending = pool.submit(extract, j + 1)
            t0 = time.perf_counter()
            for b in range(0, len(rows), EMBED_BATCH):
                r = rows[b:b + EMBED_BATCH]
                emb[r] = be.embed(patches[b:b + EMBED_BATCH], scene.scalars[r])
            timer.add("encoder", t0)
            if on_chunk is not None:
                on_chunk(j, int(unknown))
    return extract_s


def run_stage1(scene: PreparedCloud, be: Backend, wd: WorkDir, chunk: int, progress, timer: Timer,
               warn=None) -> dict:
    """Embed every point not yet embedded; returns stage-1 facts for the summary."""
    n, d = scene.n, scene.card.embedding_dim
    chunks = [np.sort(scene.order[s:s + chunk]) for s in range(0, n, chunk)]
    emb = wd.embeddings(n, d)  # first: a missing file resets the manifest's entries
    todo = [i for i in range(len(chunks)) if i not in wd.done["stage1"]]
    progress.stage("patches + encoder", n)
    if len(todo) < len(chunks):  # resumed
        progress.advance(n - sum(len(chunks[i]) for i in todo))
    t_wall = time.perf_counter()

    def finished(j: int, unknown: int, emb: np.memmap = emb) -> None:
        t0 = time.perf_counter()
        emb.flush()
        release(emb)
        wd.mark("stage1", todo[j], unknown_lulc=unknown)
        timer.add("manifest", t0)
        progress.advance(len(chunks[todo[j]]))

    extract_s = embed_chunks(scene, be, [chunks[i] for i in todo], emb, timer, finished)
    timer.seconds["patches"] = timer.seconds.get("patches", 0.0) + extract_s
    timer.add("stage1_wall", t_wall)
    del emb, finished  # close the memory map
    n_unknown = sum(int(v.get("unknown_lulc", 0)) for v in wd.info.values())
    scene.card.check_unknown_lulc(n_unknown, n, warn=warn,
                       codes=scene.stack.unknown_lulc_codes)
    done_points = sum(len(chunks[i]) for i in todo)
    return {"unknown_lulc_points": n_unknown,
            "chunks": {"total": len(chunks), "computed": len(todo), "points_per_chunk": chunk},
            "stage1_points_computed": done_points}


def output_columns(rel: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """The columns every driver writes from ``rel`` ``[n, 2]`` (reliability, its ensemble std):
    ``reliability``, ``reliability_std`` and ``reliable_pred`` at the model's threshold.

    The last check before anything is written: a probability that is not finite in [0, 1]
    (NaN would read as "unreliable", as NaN ≥ threshold is False) stops the run."""
    p = rel[:, 0]
    bad = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0)) | ~np.isfinite(rel[:, 1])
    if bad.any():
        raise PsirelError(f"{int(bad.sum())} of {len(p)} reliabilities are not finite numbers "
                          f"in [0, 1] (first at row {int(np.flatnonzero(bad)[0])}); nothing was "
                          "written. Please report this with the inputs")
    return {"reliability": rel[:, 0], "reliability_std": rel[:, 1],
            "reliable_pred": rel[:, 0] >= threshold}


# ---------------------------------------------------------------------------- stage 2
def gather_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]`` read in ascending row order (sequential on a memory map)."""
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows),) + arr.shape[1:], arr.dtype)
    out[order] = arr[rows[order]]
    return out


def neighbourhood_inputs(scene: PreparedCloud, table: tuple[np.ndarray, np.ndarray],
                         emb: np.ndarray, seeds: np.ndarray, timer: Timer) -> tuple:
    """The GNN's inputs for ``seeds`` (scene rows): their full receptive neighbourhood in
    ``table`` (``idx``, ``mask``, ``[N, k]``), its edge features and its embeddings from
    ``emb [N, D]``: ``(subgraph, edge_attr, embeddings)``."""
    t0 = time.perf_counter()
    sub = full_neighbourhood(table, seeds, scene.hops)
    ea = scene.edge_attr(sub.nodes, sub.idx, sub.mask)
    e = gather_rows(emb, sub.nodes)
    timer.add("graph", t0)
    return sub, ea, e


def gnn_block(scene: PreparedCloud, be: Backend, table: tuple[np.ndarray, np.ndarray],
              emb: np.ndarray, seeds: np.ndarray, timer: Timer,
              inputs: tuple | None = None) -> tuple[np.ndarray, int]:
    """P(reliable) ``[B]`` of ``seeds`` (scene rows) from their full receptive neighbourhood
    (``inputs``: :func:`neighbourhood_inputs` of these seeds if made beforehand); also the
    number of nodes that neighbourhood holds."""
    sub, ea, e = inputs if inputs is not None else neighbourhood_inputs(scene, table, emb,
                                                                         seeds, timer)
    t0 = time.perf_counter()
    rel = be.reliability(e, sub.idx, sub.mask, ea)[:len(seeds)]
    timer.add("gnn", t0)
    return rel, sub.n_nodes


def run_stage2(scene: PreparedCloud, be: Backend, wd: WorkDir, block: int, progress,
               timer: Timer) -> tuple[np.ndarray, dict]:
    """GNN over spatially compact node blocks, each with its full L-hop neighbourhood."""
    n = scene.n
    blocks = [np.sort(scene.order[s:s + block]) for s in range(0, n, block)]
    rel = wd.reliabilities(n)
    todo = [i for i in range(len(blocks)) if i not in wd.done["stage2"]]
    nodes_seen = 0
    if todo:
        table = scene.neighbour_table(progress, timer)
        emb = wd.read_embeddings()
        progress.stage("gnn", n)
        if len(todo) < len(blocks):  # resumed
            progress.advance(n - sum(len(blocks[i]) for i in todo))
        # the next block's neighbourhood is built in a background thread while the GNN runs
        # (ONNX Runtime releases the GIL): "graph" seconds then overlap "gnn" seconds
        with ThreadPoolExecutor(1, thread_name_prefix="psirel-graph") as pool:
            def submit(i: int):
                return pool.submit(neighbourhood_inputs, scene, table, emb, blocks[todo[i]],
                                   timer)

            pending = submit(0)
            for i, bid in enumerate(todo):
                seeds = blocks[bid]
                inputs = pending.result()
                if i + 1 < len(todo):
                    pending = submit(i + 1)
                rel[seeds], n_nodes = gnn_block(scene, be, table, emb, seeds, timer, inputs)
                t0 = time.perf_counter()
                release(emb)  # only this block's rows were needed
                rel.flush()
                wd.mark("stage2", bid)
                timer.add("manifest", t0)
                nodes_seen += n_nodes
                progress.advance(len(seeds))
        del emb
    result = np.array(rel, dtype=np.float32)
    del rel
    computed = sum(len(blocks[i]) for i in todo)
    return result, {"blocks": {"total": len(blocks), "computed": len(todo),
                               "points_per_block": block,
                               "nodes_per_seed": round(nodes_seen / max(computed, 1), 3)},
                    "stage2_points_computed": computed}


# ---------------------------------------------------------------------------- in memory
def predict_seeds(scene: PreparedCloud, be: Backend, seeds: np.ndarray, chunk: int, block: int,
                  timer: Timer) -> tuple[np.ndarray, int, int]:
    """Both stages in memory for ``seeds`` (scene rows) of a scene cut to what they need (a tile
    and its halo, :mod:`psirel.infer.tiling`): only the nodes of the seeds' receptive
    neighbourhood are embedded.

    Returns P(reliable) and its std ``[len(seeds), 2]`` float32 (in ``seeds`` order), the
    seeds with unknown land-cover codes, and the number of points embedded."""
    seeds = np.asarray(seeds, np.int64)
    rel = np.empty((len(seeds), 2), np.float32)
    if not len(seeds):
        return rel, 0, 0
    table = scene.neighbour_table(Silent(), timer)
    t0 = time.perf_counter()
    needed = np.zeros(scene.n, bool)
    needed[full_neighbourhood(table, seeds, scene.hops).nodes] = True
    is_seed = np.zeros(scene.n, bool)
    is_seed[seeds] = True
    timer.add("graph", t0)
    # seeds in their own chunks, so that their unknown land cover is counted once over all tiles
    order = scene.order
    seed_rows = order[is_seed[order]]
    other_rows = order[needed[order] & ~is_seed[order]]
    chunks = [np.sort(r[s:s + chunk]) for r in (seed_rows, other_rows)
              for s in range(0, len(r), chunk)]
    n_seed_chunks = -(-len(seed_rows) // chunk)
    emb = np.zeros((scene.n, scene.card.embedding_dim), np.float32)
    unknown = [0]

    def count(j: int, n_unknown: int) -> None:
        if j < n_seed_chunks:
            unknown[0] += n_unknown

    timer.seconds["patches"] = timer.seconds.get("patches", 0.0) + \
        embed_chunks(scene, be, chunks, emb, timer, count)
    pos = np.empty(scene.n, np.int64)
    pos[seeds] = np.arange(len(seeds))
    for s in range(0, len(seed_rows), block):
        b = np.sort(seed_rows[s:s + block])
        rel[pos[b]] = gnn_block(scene, be, table, emb, b, timer)[0]
    return rel, unknown[0], int(needed.sum())


# ---------------------------------------------------------------------------- summary
def _rates(sec: dict, summary: dict, n: int) -> dict:
    def rate(points: int, s: float | None) -> float | None:
        return round(points / s, 1) if s and points else None

    s1 = summary.get("stage1_points_computed", n)
    s2 = summary.get("stage2_points_computed", n)
    return {"patches": rate(s1, sec.get("patches")), "encoder": rate(s1, sec.get("encoder")),
            "stage1": rate(s1, sec.get("stage1_wall")), "gnn": rate(s2, sec.get("gnn")),
            "total": rate(n, sec.get("total"))}


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process (MB), or None where it cannot be read.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own memory.
    Not ``ru_maxrss``: Linux carries it over ``execve`` from the forked parent, so a child
    started by a process holding 2 GB reported 2 GB whatever it used itself (the benchmark's
    small runs all showed their parent's peak). Elsewhere ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024, 1)

