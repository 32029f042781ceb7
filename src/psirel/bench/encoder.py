"""Stage-1 encoder timings: PyTorch vs ONNX Runtime fp32 vs ONNX Runtime int8, per batch.

Each variant is the backend the pipeline itself would run (:mod:`psirel.infer.backends`: ORT
sessions from ``open_session``, torch from the model's safetensors), on the same real,
normalised patches and scalar features, with the same thread count (``torch.set_num_threads``,
ORT ``intra_op_num_threads``). A figure is the median time per batch (ms) after a warm-up.

The int8 variant needs ``pointwise.int8.onnx`` (``psirel.export.quantize.quantize_pointwise``)
and a backend that takes ``precision="int8"``; until both exist it is reported missing.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psirel.bench.timing import Missing, put
from psirel.infer.backends import Backend, OrtBackend
from psirel.infer.prepared import prepare
from psirel.model_dir import MODEL_JSON, ModelCard, load_card, sha256_file

INT8_ONNX = "pointwise.int8.onnx"
BATCHES = (32, 1024)


@dataclass
class EncoderInputs:
    """Normalised model inputs of real points: patches ``[B, 4, P, P]``, scalars ``[B, S]``."""

    patches: np.ndarray
    scalars: np.ndarray

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` points (cycled when fewer are held)."""
        if n <= len(self.patches):
            return self.patches[:n], self.scalars[:n]
        rows = np.arange(n) % len(self.patches)
        return self.patches[rows], self.scalars[rows]


def encoder_inputs(card: ModelCard, scene: Path, n: int, seed: int = 0) -> EncoderInputs:
    """Patches and scalar features of ``n`` points drawn at random from a ``psirel synth``
    folder, normalised for ``card`` exactly as the pipeline does (:func:`prepare`)."""
    sc = prepare(card, scene / "points.gpkg", scene / "dem.tif", scene / "lulc.tif",
                 scene / "amplitude.tif")
    try:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(sc.n, size=min(n, sc.n), replace=False))
        patches, _ = sc.extract(rows, sc.patch_buffer(len(rows)))
        return EncoderInputs(np.array(patches), np.array(sc.scalars[rows]))
    finally:
        sc.stack.close()


# ---------------------------------------------------------------------------- variants
def torch_backend(card: ModelCard, threads: int) -> Backend | Missing:
    """The torch backend with ``threads`` intra-op threads, or Missing without torch."""
    if importlib.util.find_spec("torch") is None:
        return Missing("torch is not installed (the 'train' extra)")
    from psirel.infer.backends import TorchBackend

    return TorchBackend(card, "cpu", threads)


def int8_backend(model_dir: Path, calibration: EncoderInputs, threads: int,
                 cache: Path) -> tuple[Backend | Missing, Path]:
    """An ORT backend on ``pointwise.int8.onnx``, quantising the model first when it has no
    such file; returns it (or Missing with the reason) and the model directory it reads.

    Quantisation writes into a model directory, so a model the benchmark did not train itself
    is first copied under ``cache`` (the user's directory is never modified).
    """
    card = load_card(model_dir)
    if not card.has(INT8_ONNX):
        try:
            from psirel.export.quantize import quantize_pointwise
        except ImportError as exc:
            return Missing(f"no INT8 export yet (psirel.export.quantize: {exc})"), model_dir
        if not _inside(model_dir, cache):
            copy = cache / f"int8-{sha256_file(model_dir / MODEL_JSON)[:12]}"
            if not (copy / MODEL_JSON).exists():
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(model_dir, copy)
            model_dir = copy
        try:
            quantize_pointwise(model_dir, calibration=(calibration.patches, calibration.scalars))
        except TypeError as exc:
            return Missing(f"quantize_pointwise has another interface ({exc})"), model_dir
        except Exception as exc:  # noqa: BLE001  (any failure is reported, not fatal)
            return Missing(f"quantize_pointwise failed ({_first_line(exc)})"), model_dir
        card = load_card(model_dir)
    try:
        return OrtBackend(card, "cpu", threads, precision="int8"), model_dir
    except TypeError as exc:
        return Missing(f"OrtBackend takes no precision='int8' yet ({exc})"), model_dir
    except Exception as exc:  # noqa: BLE001
        return Missing(f"INT8 backend failed to open ({_first_line(exc)})"), model_dir


def _inside(path: Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---------------------------------------------------------------------------- timings
def time_encoders(backends: dict[str, Backend | Missing], inputs: EncoderInputs,
                  repeats: int, batches: tuple[int, ...] = BATCHES) -> dict:
    """``{"batch_<B>": {"<variant>_ms": ms | None, ..., "missing": {...}}}`` for every batch
    size and every backend of ``backends`` (keys ``torch``, ``ort_fp32``, ``ort_int8``): the
    median time of one ``embed`` call on B points, after one warm-up call per variant.

    The variants take turns, one call each per round, so that a change of the machine's load
    during the run hits them alike.
    """
    out: dict = {}
    for b in batches:
        patches, scalars = (np.ascontiguousarray(a) for a in inputs.take(b))
        ready = {k: be for k, be in backends.items() if not isinstance(be, Missing)}
        times: dict[str, list[float]] = {k: [] for k in ready}
        for be in ready.values():  # warm-up
            be.embed(patches, scalars)
        for _ in range(max(repeats, 1)):
            for k, be in ready.items():
                t0 = time.perf_counter()
                be.embed(patches, scalars)
                times[k].append(time.perf_counter() - t0)
        row: dict = {}
        for k, be in backends.items():
            put(row, f"{k}_ms", be if k not in ready else
                round(1e3 * statistics.median(times[k]), 3))
        # a shared machine's load shows here first: the fastest and slowest call
        row["range_ms"] = {k: [round(1e3 * min(t), 3), round(1e3 * max(t), 3)]
                           for k, t in times.items()}
        fp32, torch_ms, int8 = row.get("ort_fp32_ms"), row.get("torch_ms"), row.get("ort_int8_ms")
        if fp32 and torch_ms:
            row["ort_fp32_speedup_vs_torch"] = round(torch_ms / fp32, 3)
        if fp32 and int8:
            row["ort_int8_speedup_vs_fp32"] = round(fp32 / int8, 3)
        if fp32:
            row["ort_fp32_points_per_s"] = round(b / (fp32 / 1e3), 1)
        out[f"batch_{b}"] = row
    return out
