"""GPU benchmark: the seed's Table 1 setting and the default path end to end, on CUDA.

    bench/gpu.sh [--points 100000] [--work DIR] [--model DIR] [--patch-model DIR] [--out FILE]
    .venv/bin/python bench/gpu_bench.py --device cpu --points 400 ...      # dry run, no GPU

1. **Table 1** (the seed's setting): the PW encoder of a *patch-encoder* model on ``--batches``
   batches of ``--batch-size`` real patches (drawn from the benchmark scene and normalised as
   ``predict`` does): PyTorch on CUDA (``TorchBackend``), ONNX Runtime's CUDA execution
   provider on ``pointwise.onnx`` (fp32) and on ``pointwise.fp16.onnx`` (fp16; made in a copy
   of the model under ``--work`` when the model has none). Every time is one ``embed`` call,
   host arrays in and out (as ``predict`` calls it), the variants taking turns batch by batch
   after ``--warmup`` batches each; a figure is the median ms per batch.
2. **End to end**: ``psirel predict --device cuda`` of the default (shared-map) model on a
   synthetic scene of ``--points`` points, a fresh process per run (``--repeats``; the first
   pays CUDA's start-up), wall seconds; then one in-process ``predict`` for the stage seconds,
   and one with ``precision="fp16"`` where available.

Models: ``--model`` (default encoder) and ``--patch-model``; each one not given is trained here
on a synthetic scene of ``--train-points`` points (``psirel train --epochs 1 --max-steps
--ensemble 1``: structure, not quality). Scenes and models are cached under ``--work``.
Nothing is downloaded.

Prints one JSON document on stdout (progress on stderr); ``--out`` writes it there too.
Without CUDA (no torch, torch sees no CUDA device, or ONNX Runtime has no CUDA execution
provider) it exits 2 with one line saying which. ``--device cpu`` runs the same code on the CPU
(fp16 then is missing, with the reason): a dry run whose figures are not the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

NO_GPU_EXIT = 2
TRAIN_SEED, SCENE_SEED = 11, 12      # as `psirel bench`: train on seed 11, measure on 12


def log(message: str) -> None:
    print(f"[gpu-bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- pure helpers
def cuda_missing() -> str | None:
    """None when torch sees a CUDA device and ONNX Runtime has its CUDA execution provider;
    else why not (one line)."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (the 'train' extra, built with CUDA)"
    if not torch.cuda.is_available():
        return (f"PyTorch sees no CUDA device (torch {torch.__version__}, CUDA "
                f"{torch.version.cuda or 'none'})")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (f"ONNX Runtime {ort.__version__} has no CUDA execution provider (install "
                "onnxruntime-gpu instead of onnxruntime)")
    return None


def split_batches(patches: np.ndarray, scalars: np.ndarray, batches: int, batch_size: int
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``batches`` contiguous batches of ``batch_size`` rows (rows cycled when fewer are held),
    each C-contiguous: what one ``embed`` call receives."""
    if batches < 1 or batch_size < 1 or len(patches) == 0:
        raise ValueError(f"need ≥ 1 batch of ≥ 1 patch from ≥ 1 point (got {batches} × "
                         f"{batch_size} from {len(patches)})")
    rows = np.arange(batches * batch_size) % len(patches)
    return [(np.ascontiguousarray(patches[r]), np.ascontiguousarray(scalars[r]))
            for r in rows.reshape(batches, batch_size)]


def time_interleaved(fns: dict[str, Callable], inputs: Sequence, warmup: int = 3
                     ) -> dict[str, list[float]]:
    """Seconds of ``fn(*x)`` for every ``x`` of ``inputs`` and every ``fn``, the functions
    taking turns input by input (a change of load hits them alike), after ``warmup`` untimed
    calls each."""
    for fn in fns.values():
        for x in inputs[:max(warmup, 0)] or inputs[:1]:
            fn(*x)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for x in inputs:
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn(*x)
            times[k].append(time.perf_counter() - t0)
    return times


def summarise(times: dict[str, list[float]], reference: str = "torch") -> dict:
    """``{<k>_ms: median ms}``, ``range_ms`` (fastest, slowest) and each variant's speed-up
    over ``reference`` (median against median)."""
    out: dict = {f"{k}_ms": round(1e3 * statistics.median(t), 3) for k, t in times.items()}
    out["range_ms"] = {k: [round(1e3 * min(t), 3), round(1e3 * max(t), 3)]
                       for k, t in times.items()}
    ref = out.get(f"{reference}_ms")
    if ref:
        out[f"speedup_vs_{reference}"] = {k: round(ref / out[f"{k}_ms"], 3)
                                          for k in times if k != reference}
    return out


def one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---------------------------------------------------------------------------- assets
def train(work: Path, scene: Path, encoder: str, max_steps: int, device: str) -> Path:
    """A small model of ``encoder`` trained on ``scene`` in a child process (cached)."""
    from psirel.model_dir import load_card
    from psirel.scene.files import scene_args

    d = work / "models" / f"{encoder}_{scene.name}_steps{max_steps}"
    try:
        load_card(d)
        return d
    except Exception:  # noqa: BLE001  (absent or incomplete: train again)
        shutil.rmtree(d, ignore_errors=True)
    log(f"training a {encoder} model on {scene.name} ({max_steps} steps, {device})")
    cmd = [sys.executable, "-m", "psirel.cli", "train", *scene_args(scene), "--out", str(d),
           "--encoder", encoder, "--epochs", "1", "--max-steps", str(max_steps),
           "--ensemble", "1", "--device", device]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise RuntimeError(f"psirel train --encoder {encoder} failed: {last[:200]}")
    return d


def with_fp16(model_dir: Path, work: Path, calibration) -> Path:
    """``model_dir`` when it has ``pointwise.fp16.onnx``, else a copy under ``work`` that does
    (the user's directory is never modified)."""
    from psirel.export.quantize import half_pointwise
    from psirel.infer.backends import PW_FP16_ONNX
    from psirel.model_dir import load_card

    if load_card(model_dir).has(PW_FP16_ONNX):
        return model_dir
    copy = work / "fp16" / Path(model_dir).name
    try:
        if load_card(copy).has(PW_FP16_ONNX):
            return copy
    except Exception:  # noqa: BLE001
        pass
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model_dir, copy)
    half_pointwise(copy, calibration, source="benchmark inputs")
    return copy


# ---------------------------------------------------------------------------- measurements
def _ort_on(be, device: str) -> str | None:
    """None when the backend's stage-1 session runs on ``device``'s provider; ORT falls back
    to the CPU quietly when the CUDA provider fails to load (cuDNN missing ...)."""
    want = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    got = be.providers
    return None if got and got[0] == want else f"ONNX Runtime runs it on {got}, not {want}"


def table1(patch_model: Path, scene: Path, work: Path, *, device: str, batches: int,
           batch_size: int, warmup: int, threads: int | None) -> dict:
    """PyTorch vs ORT fp32 vs ORT fp16, ms per batch of real patches (see the docstring)."""
    from psirel.bench.encoder import encoder_inputs
    from psirel.bench.timing import Missing, put
    from psirel.infer.backends import OrtBackend, TorchBackend
    from psirel.model_dir import load_card

    card = load_card(patch_model)
    if card.shared_map:
        raise ValueError(f"{patch_model}: Table 1 needs a patch-encoder model")
    log(f"table 1: {batches} batches of {batch_size} real patches from {scene.name}")
    inputs = encoder_inputs(card, scene, batches * batch_size)
    data = split_batches(inputs.patches, inputs.scalars, batches, batch_size)
    variants: dict = {"torch": TorchBackend(card, device, threads),
                      "ort_fp32": OrtBackend(card, device, threads)}
    if device != "cuda":
        variants["ort_fp16"] = Missing("fp16 runs on the CUDA execution provider only")
    else:
        try:
            cal = (inputs.patches[:64], inputs.scalars[:64])
            fp16_dir = with_fp16(patch_model, work, cal)
            variants["ort_fp16"] = OrtBackend(load_card(fp16_dir), device, threads, "fp16")
        except Exception as exc:  # noqa: BLE001  (a missing figure, with its reason)
            variants["ort_fp16"] = Missing(f"no fp16 stage 1: {one_line(exc)}")
    for k in ("ort_fp32", "ort_fp16"):
        be = variants[k]
        why = None if isinstance(be, Missing) else _ort_on(be, device)
        if why:
            variants[k] = Missing(why)
    ready = {k: be.embed for k, be in variants.items() if not isinstance(be, Missing)}
    out = {"model": str(patch_model), "batches": batches, "batch_size": batch_size,
           "warmup_batches": warmup, **summarise(time_interleaved(ready, data, warmup))}
    for k, be in variants.items():
        if isinstance(be, Missing):
            put(out, f"{k}_ms", be)
    e = {k: variants[k].embed(*data[0]) for k in ready}   # the variants agree
    ref = e.get("torch")
    if ref is not None:
        out["max_abs_emb_vs_torch"] = {k: float(np.abs(v - ref).max()) for k, v in e.items()
                                       if k != "torch"}
    return out


def end_to_end(model: Path, scene: Path, work: Path, *, device: str, threads: int | None,
               repeats: int) -> dict:
    """``psirel predict --device`` wall seconds (fresh processes), then the stage seconds of
    one in-process run, fp32 and fp16."""
    from psirel.bench.pipeline import remove_output, stages
    from psirel.bench.timing import Missing, put
    from psirel.infer.pipeline import predict
    from psirel.scene.files import scene_args

    n = json.loads((scene / "scene.json").read_text())["n_points"]
    out_file = work / "e2e" / "pred.gpkg"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "psirel.cli", "predict", "--model", str(model),
           *scene_args(scene), "--out", str(out_file), "--device", device, "--no-quicklook"]
    if threads:
        cmd += ["--threads", str(threads)]
    walls = []
    for r in range(max(repeats, 1)):
        log(f"end to end: psirel predict --device {device}, {n:,} points (run {r + 1})")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        walls.append(round(time.perf_counter() - t0, 3))
        remove_output(out_file)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise RuntimeError(f"psirel predict failed: {last[:200]}")
    res: dict = {"model": str(model), "points": n, "command": "psirel " + " ".join(cmd[3:]),
                 "wall_s": walls, "wall_s_best": min(walls),
                 "points_per_s": round(n / min(walls), 1)}
    files = dict(zip(("points", "dem", "lulc", "amplitude"), scene_args(scene)[1::2],
                     strict=True))
    for precision in ("fp32", "fp16"):
        if precision == "fp16" and device != "cuda":
            put(res, "in_process_fp16", Missing("fp16 runs on the CUDA execution provider only"))
            continue
        try:
            m = model if precision == "fp32" else with_fp16(model, work, None)
            s = predict(m, **files, out=out_file, device=device, threads=threads,
                        precision=precision, report=False)
            res[f"in_process_{precision}"] = {
                "seconds": round(s["seconds"]["total"], 3), "stages": stages(s["seconds"]),
                "points_per_s": s.get("points_per_s")}
        except Exception as exc:  # noqa: BLE001
            if precision == "fp32":
                raise
            put(res, "in_process_fp16", Missing(one_line(exc)))
        finally:
            remove_output(out_file)
    return res


def gpu_info(device: str) -> dict:
    import onnxruntime as ort
    import torch

    info = {"device": device, "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "onnxruntime": ort.__version__, "ort_providers": ort.get_available_providers()}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        info.update({"gpu": p.name, "gpu_memory_gb": round(p.total_memory / 2**30, 1),
                     "compute_capability": f"{p.major}.{p.minor}",
                     "cudnn": torch.backends.cudnn.version()})
    return info


# ---------------------------------------------------------------------------- driver
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=100_000, help="end-to-end scene size")
    ap.add_argument("--work", type=Path, default=Path("bench/results/gpu"),
                    help="cache of scenes, models and outputs")
    ap.add_argument("--model", type=Path, help="default (shared-map) model; else trained")
    ap.add_argument("--patch-model", type=Path, help="patch-encoder model; else trained")
    ap.add_argument("--train-points", type=int, default=20_000)
    ap.add_argument("--max-steps", type=int, default=20, help="training steps of own models")
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=5, help="untimed batches per variant")
    ap.add_argument("--repeats", type=int, default=2, help="end-to-end runs")
    ap.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cpu: a dry run of the same code, without a GPU")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    from psirel.bench.assets import scene as cached_scene
    from psirel.bench.machine import load_average, machine_info

    t0 = time.perf_counter()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"benchmark": "psirel GPU (bench/gpu.sh)", "dry_run": args.device != "cuda",
                    "gpu": gpu_info(args.device), "machine": machine_info(args.threads)}
    scenes = work / "cache"
    bench_scene = cached_scene(scenes, args.points, SCENE_SEED)
    models = {"default": args.model, "patch": args.patch_model}
    trained = [k for k, m in models.items() if m is None]
    if trained:
        train_scene = cached_scene(scenes, args.train_points, TRAIN_SEED)
        for k in trained:
            models[k] = train(work, train_scene, "patch" if k == "patch" else "shared-map",
                              args.max_steps, args.device)
    result["models"] = {k: str(v) for k, v in models.items()}
    result["models_trained_here"] = {k: {"train_points": args.train_points,
                                         "max_steps": args.max_steps} for k in trained}
    result["table1"] = table1(models["patch"], bench_scene, work, device=args.device,
                              batches=args.batches, batch_size=args.batch_size,
                              warmup=args.warmup, threads=args.threads)
    result["end_to_end"] = end_to_end(models["default"], bench_scene, work, device=args.device,
                                      threads=args.threads, repeats=args.repeats)
    result["machine"]["load_average_end"] = load_average()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        why = cuda_missing()
        if why is not None:
            print(f"gpu_bench: no usable GPU: {why}; run it on a machine with an NVIDIA GPU, "
                  "torch with CUDA and onnxruntime-gpu (--device cpu: a dry run)",
                  file=sys.stderr)
            return NO_GPU_EXIT
        import torch  # noqa: F401  (loads CUDA's libraries before ONNX Runtime looks for them)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
