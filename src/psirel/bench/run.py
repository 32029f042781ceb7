"""``psirel bench``: every benchmark of the issue in one run, into ``OUT/latest.{json,md}``.

Order: assets (scenes and models, cached under ``OUT/cache``: the default model, shared-map
encoder + UniMP, and a patch-encoder model), stage-1 encoder timings (patch model), roofline,
naive vs two-stage (scan-line and random file order), end to end at 1,000,000 points (the
default model, gradient boosting and the patch model, fresh processes), scaling of the default
model (fresh processes), train and evaluate time and peak memory (fresh processes), quality on
the held-out scene, shared map vs patch encoder. :class:`BenchConfig` holds every size and
repeat count; ``full()`` is the issue's protocol, ``quick()`` a few minutes' smoke run of the
same code (100,000 points instead of 1M, tiny training: its quality figures mean nothing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from psirel.bench import assets
from psirel.bench.encoder import (
    EncoderInputs,
    encoder_inputs,
    int8_backend,
    time_encoders,
    torch_backend,
)
from psirel.bench.end_to_end import end_to_end, shared_map_roofline
from psirel.bench.machine import load_average, machine_info
from psirel.bench.memory import train_evaluate_memory
from psirel.bench.pipeline import (
    compare_random_order,
    compare_strategies,
    scaling,
    scaling_entry,
)
from psirel.bench.quality import default_precision, quality, shared_map_comparison
from psirel.bench.report import write_report
from psirel.bench.roofline import roofline
from psirel.bench.timing import Missing, log, put
from psirel.infer.backends import OrtBackend
from psirel.model_dir import load_card

STAGE_NOTES = [
    "Stage seconds are the pipeline summary's: patches_s is the busy time of the background "
    "thread that extracts the next chunk while the encoder runs, so the stages overlap and do "
    "not add up to the total; features_s (scalar features, checks, spatial order) and "
    "manifest_s (embedding flushes, manifest writes) are reported beside the five stages.",
]


@dataclass(frozen=True)
class BenchConfig:
    """Sizes, seeds and repeat counts of one benchmark run."""

    mode: str = "full"
    threads: int = 2                     # intra-op threads of torch, ORT and BLAS alike
    repeats: int = 5                     # timed encoder calls per variant and batch size
    batches: tuple[int, ...] = (32, 1024)
    encoder_points: int = 1024           # real patches the encoder timings cycle through
    calibration_points: int = 256        # INT8 calibration patches (timing scene, not held out)
    pipeline_points: int = 50_000
    pipeline_repeats: int = 2            # rounds of naive + two-stage after a warm-up round
    random_order_points: int = 100_000   # naive vs two-stage on a file in random order ...
    random_order_naive_batches: int = 4  # ... the naive reference timed on its first batches
    scaling_points: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    e2e_points: int = 1_000_000          # end to end: model, gradient boosting, patch model
    scaling_repeats: int = 2             # fresh-process runs per size ...
    scaling_single_from: int = 1_000_000  # ... but one run from this size on (minutes each)
    train_points: int = 20_000
    train_seed: int = 11
    epochs: int = 12
    max_steps: int | None = None
    batch_size: int = 256
    heldout_points: int = 20_000
    heldout_seed: int = 12
    timing_seed: int = 14                # pipeline, scaling and encoder-input scenes
    dense_points: int = 20_000
    dense_seed: int = 13
    dense_per_km2: float = 4_000.0       # points per km² of raster (built-up land: far more)
    shared_repeats: int = 1
    matmul_n: int = 2048
    matmul_repeats: int = 5
    memory_points: tuple[int, ...] = (20_000, 1_000_000)  # train + evaluate, fresh processes

    @classmethod
    def full(cls) -> BenchConfig:
        return cls()

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(mode="quick", repeats=3, pipeline_points=10_000, pipeline_repeats=1,
                   random_order_points=10_000, random_order_naive_batches=2,
                   scaling_points=(10_000, 100_000), e2e_points=100_000, scaling_repeats=1,
                   train_points=3_000, epochs=1, max_steps=4, batch_size=128,
                   heldout_points=5_000, dense_points=10_000, matmul_n=1024, matmul_repeats=3,
                   memory_points=(3_000, 20_000))


def run_bench(out: Path | str, config: BenchConfig | None = None, *, model: Path | None = None,
              shared_model: Path | None = None) -> dict:
    """Run every benchmark and write ``out/latest.json`` and ``out/latest.md``.

    Args:
        out: results folder; scenes and models are cached in ``out/cache`` for the next run.
        config: sizes and repeats (default :meth:`BenchConfig.full`).
        model: an existing model directory (patch encoder) instead of training one.
        shared_model: an existing shared-map model directory; default: trained like the patch
            model when ``psirel train`` knows that encoder, else reported missing.

    Returns:
        The result written to ``latest.json``.
    """
    cfg = config or BenchConfig.full()
    t_start = time.perf_counter()
    out = Path(out)
    cache = out / "cache"
    work = cache / "work"
    shutil.rmtree(work, ignore_errors=True)  # predictions of an interrupted run
    result: dict = {"psirel_bench": 1, "mode": cfg.mode,
                    "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "machine": machine_info(cfg.threads),
                    "settings": dataclasses.asdict(cfg), "notes": list(STAGE_NOTES)}

    # ------------------------------------------------------------ assets
    heldout = assets.scene(cache, cfg.heldout_points, cfg.heldout_seed)
    timing = assets.scene(cache, cfg.pipeline_points, cfg.timing_seed)
    no_shared = assets.encoder_supported("shared-map") if shared_model is None else None
    train_scene = None
    if model is None or (shared_model is None and no_shared is None):
        train_scene = assets.scene(cache, cfg.train_points, cfg.train_seed)
    train_kw = {"epochs": cfg.epochs, "max_steps": cfg.max_steps, "batch_size": cfg.batch_size}
    if model is None:
        model = assets.model(cache, train_scene, **train_kw)
        source = "trained by the benchmark"
    else:
        model = Path(model)
        source = "given (--model)"
    card = load_card(model)
    shared: Path | Missing
    if shared_model is not None:
        shared = Path(shared_model)
    else:
        shared = no_shared or assets.model(cache, train_scene, encoder="shared-map", **train_kw)
    result["models"] = {"patch": {"path": str(model), "source": source,
                                  "config": {k: card.config.to_flat()[k] for k in
                                             ("gnn", "gnn_layers", "depths", "dims", "emb_dim")}},
                        "shared_map": str(shared) if isinstance(shared, Path) else None}
    result["scenes"] = {"train": str(train_scene) if train_scene else None,
                        "heldout": str(heldout), "timing": str(timing)}

    # ------------------------------------------------------------ stage-1 encoder
    log("encoder inputs and INT8 calibration patches")
    inputs = encoder_inputs(card, timing, cfg.encoder_points, seed=0)
    calibration: EncoderInputs = encoder_inputs(card, timing, cfg.calibration_points, seed=1)
    int8, _ = int8_backend(model, calibration, cfg.threads, cache)
    backends = {"torch": torch_backend(card, cfg.threads),
                "ort_fp32": OrtBackend(card, "cpu", cfg.threads), "ort_int8": int8}
    log("stage-1 encoder timings")
    result["pw_encoder"] = time_encoders(backends, inputs, cfg.repeats, cfg.batches)
    result["pw_encoder"]["threads"] = cfg.threads
    rate = result["pw_encoder"].get("batch_1024", {}).get("ort_fp32_points_per_s")
    log("roofline")
    result["roofline"] = roofline(card, rate, cfg.threads, cfg.matmul_n, cfg.matmul_repeats)
    del backends, inputs, calibration
    gc.collect()

    # ------------------------------------------------------------ pipeline
    result["pipeline"] = compare_strategies(model, timing, work, threads=cfg.threads,
                                            repeats=cfg.pipeline_repeats)
    # the naive reference on a file in random order re-encodes every point's receptive field
    # (tens of nodes a point): its first batches on the file, two-stage on the whole file
    log("pipeline: a points file in random order")
    result["pipeline"]["random_order"] = compare_random_order(
        model, assets.shuffled(assets.scene(cache, cfg.random_order_points, cfg.timing_seed)),
        work, threads=cfg.threads, naive_batches=cfg.random_order_naive_batches)

    # ------------------------------------------------------------ end to end, scaling
    scene_of = {cfg.pipeline_points: timing}

    def sized(n: int) -> Path:
        return scene_of.setdefault(n, assets.scene(cache, n, cfg.timing_seed))

    e2e, summaries = end_to_end({"model": shared, "patch": model}, sized(cfg.e2e_points), work,
                                threads=cfg.threads)
    result["end_to_end"] = e2e
    if isinstance(shared, Path):
        smaller = [(n, sized(n)) for n in cfg.scaling_points if n != cfg.e2e_points]
        table = scaling(
            shared, smaller, work, threads=cfg.threads,
            repeats_for=lambda n: 1 if n >= cfg.scaling_single_from else cfg.scaling_repeats)
        if "model" in summaries:   # the end-to-end run of the default model is this size's
            table.append(scaling_entry([summaries["model"]]))
        result["scaling"] = sorted(table, key=lambda e: e["points"])
        result["scaling_model"] = "default (shared-map + UniMP)"
        result["roofline"]["shared_map"] = shared_map_roofline(
            load_card(shared), e2e["runs"].get("model", {}),
            result["roofline"].get("machine_gflops"))
    else:
        result["scaling"] = []
        put(result, "scaling_model", shared)

    runs = []
    for n in cfg.memory_points:
        runs.append(train_evaluate_memory(sized(n), work, n, threads=cfg.threads))
    result["training"] = {"runs": runs, "max_steps": runs[0]["max_steps"] if runs else None}
    big = next((r for r in runs if r["points"] == 1_000_000), None)
    no_big = Missing(f"no 1,000,000-point run in this mode ({cfg.mode})")
    put(result["training"], "peak_rss_mb_1m", big["train_peak_rss_mb"] if big else no_big)
    put(result["training"], "evaluate_peak_rss_mb_1m",
        big["evaluate_peak_rss_mb"] if big else no_big)

    # ------------------------------------------------------------ quality and shared map
    result["quality"] = quality(model, heldout, work, int8=int8, threads=cfg.threads)
    dense = assets.scene(cache, cfg.dense_points, cfg.dense_seed,
                         size_px=assets.dense_size_px(cfg.dense_points, cfg.dense_per_km2))
    section, aucs = shared_map_comparison(model, shared, dense, heldout, work,
                                          threads=cfg.threads, repeats=cfg.shared_repeats,
                                          patch_auc=result["quality"]["fp32_auc"])
    section["density"] = assets.scene_density(dense)
    result["shared_map"] = section
    for k, v in aucs.items():
        put(result["quality"], k, v)
    result["quality"]["default_precision"] = default_precision(
        shared, heldout, work, threads=cfg.threads, repeats=cfg.pipeline_repeats)

    result["machine"]["load_average_end"] = load_average()
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    shutil.rmtree(work, ignore_errors=True)
    js, md = write_report(out, result)
    log(f"done in {result['seconds']:.0f} s: {js}, {md}")
    return result
