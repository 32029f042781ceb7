"""End to end at scale: what a user runs, against what the same package offers instead.

On one scene (1,000,000 points in the full protocol), each run a fresh process with the same
threads (:func:`psirel.bench.pipeline.predict_in_child`), as ``psirel predict`` runs it:

* ``model``: the default model (shared-map encoder + UniMP), two stages;
* ``gradient_boosting``: ``psirel predict --baseline gradient_boosting`` (hand features,
  scikit-learn's histogram gradient boosting refitted from the model directory);
* ``patch``: the patch-encoder model (an 80×80 patch per point), two stages.

Each entry has points/s, seconds, peak RSS and seconds by stage (:data:`E2E_STAGES`; the window
or patch reads overlap the encoder in a background thread, so stages need not add up to the
total). :func:`shared_map_roofline` turns the default model's window counts into FLOPs per km²
of raster and per point, and the GFLOP/s its encoder achieved.
"""

from __future__ import annotations

from pathlib import Path

from psirel.bench.pipeline import predict_in_child
from psirel.bench.timing import Missing, log, put
from psirel.model_dir import ModelCard

METHODS = ("model", "gradient_boosting", "patch")
# benchmark stage -> the drivers' ``seconds`` keys (two-stage predict and predict --baseline)
E2E_STAGES: dict[str, tuple[str, ...]] = {
    "read_s": ("read",),              # points file, rasters opened and checked on the grid
    "features_s": ("features",),      # scalar features (and the baselines' hand features)
    "windows_s": ("patches",),        # raster windows / patches read + normalised (overlapped)
    "encoder_s": ("encoder",),        # PW encoder, ONNX Runtime
    "graph_s": ("graph",),            # kNN table, L-hop neighbourhoods, edge features
    "gnn_s": ("gnn",),                # GNN + head, ONNX Runtime
    "predict_s": ("predict",),        # the baseline's predict_proba
    "write_s": ("write",),            # the output file
    "report_s": ("report",),          # the quick-look
    "manifest_s": ("manifest",),      # work-dir flushes and manifest writes
}


def e2e_stages(seconds: dict) -> dict:
    """Stage seconds of one run (only those the driver recorded)."""
    return {k: round(sum(seconds.get(n, 0.0) for n in names), 3)
            for k, names in E2E_STAGES.items() if any(n in seconds for n in names)}


def entry(summary: dict) -> dict:
    """One method's row from a driver's summary."""
    total = summary["seconds"]["total"]
    return {"points": summary["points"], "seconds": round(total, 2),
            "points_per_s": round(summary["points"] / total, 1),
            "peak_rss_mb": summary.get("peak_rss_mb"), "stages": e2e_stages(summary["seconds"]),
            **({"counts": summary["counts"]} if summary.get("counts") else {})}


def end_to_end(models: dict[str, Path | Missing], scene: Path, work: Path, *,
               threads: int = 2, report: bool = True) -> tuple[dict, dict[str, dict]]:
    """The ``end_to_end`` section: every method of :data:`METHODS` on ``scene``.

    Args:
        models: ``"model"`` (the default model, whose directory also holds the gradient
            boosting baseline) and ``"patch"``; a Missing model is reported missing.
        report: write the quick-look, as ``psirel predict`` does unless ``--no-quicklook``.

    Returns:
        The section: ``points``, ``<method>_points_per_s``, ``peak_rss_mb`` (the default
        model's), the ratio of the model's points/s to gradient boosting's, and ``runs`` (one
        entry per method, :func:`entry`); and each method's driver summary.
    """
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    summaries: dict[str, dict] = {}
    out: dict = {"scene": str(scene), "threads": threads, "quicklook": report}
    for name in METHODS:
        model = models["patch" if name == "patch" else "model"]
        if isinstance(model, Missing):
            put(out, f"{name}_points_per_s", model)
            continue
        log(f"end to end: {name} (fresh process)")
        s = predict_in_child(model, scene, work / f"e2e-{name}.gpkg", threads=threads,
                             baseline="gradient_boosting" if name == "gradient_boosting"
                             else None, report=report)
        summaries[name] = s
        runs[name] = entry(s)
        out[f"{name}_points_per_s"] = runs[name]["points_per_s"]
    out["points"] = next((r["points"] for r in runs.values()), None)
    out["peak_rss_mb"] = runs.get("model", {}).get("peak_rss_mb")
    if "model" in runs and "gradient_boosting" in runs:
        out["model_vs_gradient_boosting"] = round(
            runs["model"]["points_per_s"] / runs["gradient_boosting"]["points_per_s"], 3)
    out["runs"] = runs
    return out, summaries


def shared_map_roofline(card: ModelCard, run: dict, machine_gflops: float | None) -> dict:
    """FLOPs of a shared-map model's encoder per km² of raster and per point, and the GFLOP/s
    its encoder achieved in ``run`` (an :func:`entry` with ``counts.window_px``).

    ``flops_per_km2`` counts a km² of raster once; the encoded windows carry 64 px of context
    on each side of their 256-px cell (up to 2.25× the pixels), which ``flops_per_point``
    (every encoded pixel's FLOPs over the run's points) includes."""
    from psirel.models.convnext import convnext_flops

    e, pixel_m = card.config.encoder, card.features.pixel_m
    # the ConvNeXt is fully convolutional: its FLOPs per pixel are those of a 32-px tile's
    flops_per_pixel = convnext_flops(3 + e.lulc_dim, e.depths, e.dims, 32) / 32**2
    px_per_km2 = 1e6 / pixel_m**2
    out: dict = {"flops_per_pixel": round(flops_per_pixel, 1), "pixel_m": pixel_m,
                 "flops_per_km2": round(flops_per_pixel * px_per_km2)}
    counts, stages = run.get("counts", {}), run.get("stages", {})
    px, windows = counts.get("window_px"), counts.get("windows")
    if not px or not stages.get("encoder_s"):
        put(out, "gflops_achieved", Missing("the run recorded no window counts"))
        return out
    flops = flops_per_pixel * px
    out.update({"windows": windows, "window_px": px,
                "flops_per_point": round(flops / run["points"]),
                "gflops_achieved": round(flops / stages["encoder_s"] / 1e9, 3)})
    if machine_gflops:
        out["fraction_of_machine"] = round(out["gflops_achieved"] / machine_gflops, 4)
    return out
