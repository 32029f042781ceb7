"""End-to-end timings of :func:`psirel.infer.pipeline.predict`: naive vs two-stage, and scaling.

* :func:`compare_strategies`: the same model on the same scene with the ONNX backend, the naive
  reference and the two-stage pipeline taking turns (one warm-up run each first).
* :func:`scaling`: the two-stage pipeline at several cloud sizes, every run in a fresh Python
  process (:mod:`psirel.bench.child`) so that one size's memory does not show in another's peak
  RSS; the child reports its own peak (the pipeline summary's ``peak_rss_mb``, ``VmHWM``).

Stage seconds come from the pipeline's own summary (``summary["seconds"]``); :data:`STAGES` maps
its names onto the benchmark's. ``patches`` is the busy time of the background thread that
extracts the next chunk's patches *while* the encoder runs, so the five stages overlap and do not
add up to the total.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from psirel.bench.timing import log, median_dict
from psirel.errors import PsirelError

# benchmark stage -> the pipeline summary's ``seconds`` keys it sums
STAGES: dict[str, tuple[str, ...]] = {
    "patches_s": ("patches",),        # windowed reads + normalisation (overlaps the encoder)
    "pw_encoder_s": ("encoder",),     # ConvNeXt + scalar fusion, ONNX Runtime
    "graph_s": ("graph",),            # kNN table, L-hop subgraphs, edge features
    "gnn_s": ("gnn",),                # GNN + head, ONNX Runtime
    "io_s": ("io",),                  # reading the points, writing the output
}
# summary seconds not in STAGES, reported beside them so that nothing is hidden
OTHER = ("features", "manifest", "stage1_wall")


def scene_files(scene: Path) -> dict[str, Path]:
    return {"points": scene / "points.gpkg", "dem": scene / "dem.tif",
            "lulc": scene / "lulc.tif", "amplitude": scene / "amplitude.tif"}


def stages(seconds: dict) -> dict:
    """The benchmark's stage seconds (and the other recorded ones) from a pipeline summary."""
    out = {k: round(sum(seconds.get(n, 0.0) for n in names), 4) for k, names in STAGES.items()}
    out.update({f"{n}_s": round(seconds[n], 4) for n in OTHER if n in seconds})
    return out


def run_predict(model: Path, scene: Path, out: Path, *, strategy: str = "two-stage",
                backend="onnx", threads: int = 2) -> dict:
    """One in-process ``predict`` into ``out`` (removed afterwards); its summary."""
    from psirel.infer.pipeline import predict

    try:
        return predict(model, **scene_files(scene), out=out, backend=backend,
                       strategy=strategy, threads=threads)
    finally:
        remove_output(out)


def remove_output(out: Path) -> None:
    """Remove a prediction ``out``, its side cars and quick-look folder, and its work dir."""
    for p in out.parent.glob(f"{out.stem}.*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    shutil.rmtree(out.parent / f".psirel-work-{out.name}", ignore_errors=True)


# ---------------------------------------------------------------------------- naive vs 2-stage
def compare_strategies(model: Path, scene: Path, work: Path, *, threads: int = 2,
                       repeats: int = 3) -> dict:
    """Points/s of the naive reference and of the two-stage pipeline on one scene.

    One warm-up run of each, then ``repeats`` rounds in which the two take turns; a figure is
    the median run's. Returns ``naive_points_per_s``, ``two_stage_points_per_s``, their ratio,
    the scene's size, the naive run's nodes encoded per point and both runs' stage seconds.
    """
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {"naive": [], "two-stage": []}
    for r in range(max(repeats, 1) + 1):
        for strategy in runs:
            tag = "warm-up" if r == 0 else f"{r}/{repeats}"
            log(f"pipeline {strategy} ({tag})")
            s = run_predict(model, scene, work / f"pipeline-{strategy}.gpkg", strategy=strategy,
                            threads=threads)
            if r:
                runs[strategy].append(s)
    n = runs["naive"][0]["points"]
    res: dict = {"points": n, "backend": "onnx", "threads": threads, "runs": max(repeats, 1)}
    for strategy, key in (("naive", "naive"), ("two-stage", "two_stage")):
        secs = median_dict([{"total": s["seconds"]["total"]} for s in runs[strategy]])["total"]
        res[f"{key}_points_per_s"] = round(n / secs, 1)
        res[f"{key}_seconds"] = round(secs, 3)
        res[f"{key}_stages"] = median_dict([stages(s["seconds"]) for s in runs[strategy]])
    res["speedup"] = round(res["two_stage_points_per_s"] / res["naive_points_per_s"], 3)
    res["naive_nodes_per_seed"] = runs["naive"][0].get("nodes_per_seed")
    return res


def naive_sample(model: Path, scene: Path, batches: int, *, threads: int = 2) -> dict:
    """The naive reference's points/s from its first ``batches`` batches on ``scene``.

    On a file in random order every batch of the naive reference costs the same (its seeds are
    spread over the whole cloud, each drags its own receptive field), so its first batches give
    its rate on the whole file without hours of running it. The seconds are
    :func:`~psirel.infer.naive.predict_naive`'s, its kNN table of the whole cloud included;
    reading the file and the scalar features, which the two-stage run pays in its total, are
    not counted: in the naive reference's favour."""
    from psirel.infer.backends import make_backend
    from psirel.infer.naive import predict_naive
    from psirel.infer.prepared import prepare
    from psirel.model_dir import load_card

    card = load_card(model)
    be = make_backend(card, "onnx", "cpu", threads)
    files = scene_files(scene)
    prepared = prepare(card, files["points"], files["dem"], files["lulc"], files["amplitude"],
                       threads=threads)
    try:
        t0 = time.perf_counter()
        _, facts = predict_naive(prepared, be, max_batches=batches)
        seconds = time.perf_counter() - t0
    finally:
        prepared.stack.close()
    done = facts["points_done"]
    return {"points_timed": done, "batches_timed": -(-done // facts["batch_points"]),
            "seconds": round(seconds, 3), "points_per_s": round(done / seconds, 1),
            "nodes_per_seed": facts["nodes_per_seed"]}


def compare_random_order(model: Path, scene: Path, work: Path, *, threads: int = 2,
                         naive_batches: int = 4) -> dict:
    """Two-stage vs naive on a points file in random order: the two-stage pipeline on the whole
    file, the naive reference on its first ``naive_batches`` batches (:func:`naive_sample`)."""
    work.mkdir(parents=True, exist_ok=True)
    log(f"random order: naive, first {naive_batches} batches")
    naive = naive_sample(model, scene, naive_batches, threads=threads)
    log("random order: two-stage, whole file")
    s = run_predict(model, scene, work / "random-two-stage.gpkg", threads=threads)
    n = s["points"]
    secs = s["seconds"]["total"]
    res = {"points": n, "backend": "onnx", "threads": threads,
           "naive_points_per_s": naive["points_per_s"], "naive_seconds": naive["seconds"],
           "naive_points_timed": naive["points_timed"],
           "naive_batches_timed": naive["batches_timed"],
           "naive_nodes_per_seed": naive["nodes_per_seed"],
           "two_stage_points_per_s": round(n / secs, 1), "two_stage_seconds": round(secs, 3),
           "two_stage_stages": stages(s["seconds"])}
    res["speedup"] = round(res["two_stage_points_per_s"] / res["naive_points_per_s"], 3)
    return res


# ---------------------------------------------------------------------------- scaling
def predict_in_child(model: Path, scene: Path, out: Path, *, threads: int = 2,
                     timeout_s: float | None = None, baseline: str | None = None,
                     report: bool = False) -> dict:
    """Run the two-stage pipeline (or, with ``baseline``, ``predict --baseline``) in a fresh
    ``python -m psirel.bench.child`` and return its summary (with the child's own peak RSS);
    a failed child is a PsirelError with its last line of stderr."""
    args = {"model": str(model), **{k: str(v) for k, v in scene_files(scene).items()},
            "out": str(out), "threads": threads, "baseline": baseline, "report": report}
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    try:
        proc = subprocess.run([sys.executable, "-m", "psirel.bench.child", json.dumps(args)],
                              capture_output=True, text=True, env=env, timeout=timeout_s)
    finally:
        remove_output(out)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise PsirelError(f"bench: predict of {scene} in a child process failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scaling(model: Path, scenes: list[tuple[int, Path]], work: Path, *, threads: int = 2,
            repeats_for=lambda n: 1) -> list[dict]:
    """Seconds, points/s, peak RSS and stage seconds of the two-stage pipeline per cloud size.

    Args:
        scenes: ``(points, scene folder)`` in increasing size.
        repeats_for: number of runs at a size (a callable of the size); every run is a fresh
            process, one untimed run of the smallest scene warms the OS caches first.

    Returns:
        One entry per size: ``points``, ``seconds``, ``points_per_s``, ``peak_rss_mb`` and
        ``stages`` (medians over the runs), and ``runs``.
    """
    work.mkdir(parents=True, exist_ok=True)
    if scenes:
        log(f"scaling warm-up ({scenes[0][0]:,} points)")
        predict_in_child(model, scenes[0][1], work / "scaling.gpkg", threads=threads)
    table = []
    for n, scene in scenes:
        runs = []
        for r in range(max(int(repeats_for(n)), 1)):
            log(f"scaling {n:,} points (run {r + 1}, fresh process)")
            runs.append(predict_in_child(model, scene, work / "scaling.gpkg", threads=threads))
        table.append(scaling_entry(runs))
    return table


def scaling_entry(runs: list[dict]) -> dict:
    """One size's row from the summaries of its fresh-process runs (medians)."""
    med = median_dict([{"seconds": s["seconds"]["total"], "peak_rss_mb": s["peak_rss_mb"]}
                       for s in runs])
    points = runs[0]["points"]
    return {"points": points, "seconds": round(med["seconds"], 3),
            "points_per_s": round(points / med["seconds"], 1),
            "peak_rss_mb": med["peak_rss_mb"],
            "stages": median_dict([stages(s["seconds"]) for s in runs]), "runs": len(runs)}
