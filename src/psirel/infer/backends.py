"""Inference backends: the two stages of a model directory behind one small interface.

A backend turns a batch of patches into embeddings (stage 1, ``pointwise.onnx``, or its INT8
variant ``pointwise.int8.onnx`` with ``precision="int8"``, or its FP16 variant
``pointwise.fp16.onnx`` with ``precision="fp16"`` on CUDA) and a neighbour-table subgraph of
embeddings into probabilities (stage 2, ``gnn.onnx``, always FP32):

    embed(patches [B, 4, P, P] f32, scalars [B, S] f32) -> emb [B, D] f32
    reliability(emb [N, D] f32, idx [N, K] i64, mask [N, K] bool, edge_attr [N, K, E] f32)
        -> P(reliable) [N] f32
    pointwise_only(patches, scalars) -> P(reliable) [B] f32  (the variant without graph)

:class:`OrtBackend` (ONNX Runtime) is the default and needs no torch: this module imports torch
only inside :class:`TorchBackend`, which needs the ``train`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from psirel.errors import MissingExtra, ModelError, PsirelError, first_line
from psirel.model_dir import MODEL_JSON, ModelCard

BACKENDS = ("onnx", "torch")
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "int8", "fp16")
PW_ONNX, GNN_ONNX, PW_ONLY_ONNX = "pointwise.onnx", "gnn.onnx", "pointwise_only.onnx"
PW_INT8_ONNX, PW_FP16_ONNX = "pointwise.int8.onnx", "pointwise.fp16.onnx"
STAGE1_FILES = {"fp32": PW_ONNX, "int8": PW_INT8_ONNX, "fp16": PW_FP16_ONNX}  # by precision
# Patches per ONNX Runtime call and intra-op thread. ORT runs a graph op by op over the whole
# batch, so at 1024 patches every activation (the input alone is 105 MB) streams through DRAM;
# sub-batches of ~32 patches per thread keep them in the caches (1024 patches: ~1.3-1.5x faster
# on 1-2 threads). More threads get proportionally larger sub-batches so that each op still has
# enough work to split.
SUB_BATCH_PER_THREAD = 32
SUB_BATCH_MAX = 256


class Backend(Protocol):
    name: str
    device: str

    def embed(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray: ...

    def reliability(self, emb: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                    edge_attr: np.ndarray) -> np.ndarray:
        """``[n, 2]``: calibrated P(reliable) and its ensemble spread (:func:`with_std`)."""

    def pointwise_only(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray: ...


def make_backend(card: ModelCard, backend: str = "onnx", device: str = "cpu",
                 threads: int | None = None, precision: str = "fp32") -> Backend:
    """The backend ``"onnx"`` (ONNX Runtime) or ``"torch"`` for a verified model card.

    ``threads`` bounds the intra-op threads (None: the runtime's default, all cores).
    ``precision="int8"`` runs stage 1 from ``pointwise.int8.onnx``, ``"fp16"`` (CUDA only) from
    ``pointwise.fp16.onnx`` (ONNX Runtime only).
    """
    if backend not in BACKENDS:
        raise PsirelError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise PsirelError(f"--device {device}: choose one of {', '.join(DEVICES)}")
    if threads is not None and threads < 1:
        raise PsirelError(f"--threads {threads}: must be at least 1")
    check_precision(precision, device)
    if backend == "torch":
        if precision != "fp32":
            raise PsirelError(f"--precision {precision}: only the onnx backend runs "
                              f"{precision.upper()}; use --backend onnx")
        return TorchBackend(card, device, threads)
    return OrtBackend(card, device, threads, precision)


def check_precision(precision: str, device: str) -> None:
    """A PsirelError (one line) for an unknown precision, or FP16 off the GPU: on ONNX
    Runtime's CPU execution provider FP16 costs accuracy and gains nothing (a shared-map
    model's 384×384 window at 2 threads: 327 ms FP16, 323 ms FP32)."""
    if precision not in PRECISIONS:
        raise PsirelError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device != "cuda":
        raise PsirelError(f"--precision fp16: runs on the GPU only (--device cuda); on "
                          f"--device {device} use --precision fp32 or int8")


# ---------------------------------------------------------------------------- ONNX Runtime
def _ort():
    import onnxruntime

    return onnxruntime


def session_options(threads: int | None = None, *, spinning: bool = False):
    """ORT options used for inference, the export's checks and the benchmarks alike.

    Full graph optimisation (ORT_ENABLE_ALL: its NCHWc layout pass is what makes the ConvNeXt
    fast on CPU; being hardware-specific, the optimised graph is built at load, ~10 ms, rather
    than saved), sequential execution (the graph is a chain: nothing for inter-op threads to
    overlap), ``threads`` intra-op threads (None: ORT's default, one per core).

    The intra-op workers do not spin-wait between ops unless ``spinning``. Spinning saves the
    wake-up of a sleeping worker on an idle machine but, when the cores are shared (the patch
    extraction thread of ``predict``, Dask workers, other jobs), a spinning worker takes the
    core the others need: on 2 busy shared cores, 1024 patches in 64-patch calls took a median
    669 ms spinning vs 383 ms not (2 threads; 32 patches: 20 vs 19 ms). Input arrays are not
    copied (IO binding measured no faster).
    """
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or 0)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    return so


def sub_batch_size(threads: int | None = None, device: str = "cpu") -> int:
    """Patches per ORT call for ``threads`` intra-op threads (see ``SUB_BATCH_PER_THREAD``);
    on CUDA the whole batch (a GPU wants large batches)."""
    if device != "cpu":
        return 1 << 30
    n = int(threads or os.cpu_count() or 1)
    return max(SUB_BATCH_PER_THREAD, min(SUB_BATCH_MAX, SUB_BATCH_PER_THREAD * n))


def run_batched(session, patches: np.ndarray, scalars: np.ndarray,
                sub_batch: int | None = None) -> np.ndarray:
    """``session`` (inputs ``patches``, ``scalars``; one output ``[B, ...]``) over a batch,
    ``sub_batch`` patches per call (default :func:`sub_batch_size` of all cores), the results
    written into one array. Row slices of C-contiguous float32 inputs are views: no copy."""
    patches, scalars = _f32(patches), _f32(scalars)
    n = len(patches)
    step = int(sub_batch or sub_batch_size())
    if n <= step:
        return session.run(None, {"patches": patches, "scalars": scalars})[0]
    out = None
    for i in range(0, n, step):
        j = min(i + step, n)
        part = session.run(None, {"patches": patches[i:j], "scalars": scalars[i:j]})[0]
        if out is None:
            out = np.empty((n,) + part.shape[1:], part.dtype)
        out[i:j] = part
    return out


def providers(device: str) -> list[str]:
    """Execution providers for ``device``; a PsirelError when CUDA is asked for but missing."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = _ort().get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise PsirelError("--device cuda: ONNX Runtime's CUDA execution provider is not available"
                          f" (available: {', '.join(available)}); install onnxruntime-gpu or "
                          "use --device cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def open_session(path: Path, threads: int | None = None, device: str = "cpu", *,
                 spinning: bool = False):
    """An ``InferenceSession`` of ``path`` with :func:`session_options`; a file ORT cannot load
    is a ModelError naming it."""
    ort = _ort()
    prov = providers(device)
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads,
                                                                            spinning=spinning),
                                    providers=prov)
    except Exception as exc:  # ORT raises its own pybind classes (InvalidProtobuf, Fail, ...)
        first = first_line(exc, 160)
        raise ModelError(path, f"ONNX Runtime cannot load it ({first})") from None


class OrtBackend:
    """Both stages as ONNX Runtime sessions (``pointwise_only.onnx`` opened on first use).

    ``precision="int8"`` takes stage 1 from ``pointwise.int8.onnx``
    (:func:`psirel.export.quantize.quantize_pointwise`), ``"fp16"`` (CUDA only) from
    ``pointwise.fp16.onnx`` (:func:`psirel.export.quantize.half_pointwise`); stage 2 stays FP32.
    Stage-1 batches run in sub-batches of ``sub_batch`` patches (default
    :func:`sub_batch_size`).
    """

    name = "onnx"

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int | None = None,
                 precision: str = "fp32", sub_batch: int | None = None):
        self.card, self.device, self.threads, self.precision = card, device, threads, precision
        for f in (PW_ONNX, GNN_ONNX):
            if not card.has(f):
                raise ModelError(card.path / MODEL_JSON, f"lists no '{f}': the model has no ONNX "
                                 f"export (run `psirel export {card.path}`, or use --backend "
                                 "torch)")
        check_precision(precision, device)
        pw = STAGE1_FILES[precision]
        if not card.has(pw):
            raise ModelError(card.path / MODEL_JSON, f"lists no '{pw}': run `psirel export "
                             f"--{precision} {card.path}`, or use --precision fp32")
        self.sub_batch = int(sub_batch or sub_batch_size(threads, device))
        self._pw = open_session(card.artifact(pw), threads, device)
        self._gnn = open_session(card.artifact(GNN_ONNX), threads, device)
        self._gnn_inputs = {i.name for i in self._gnn.get_inputs()}
        self._pw_only = None

    @property
    def providers(self) -> list[str]:
        """The execution providers of stage 1, preferred first: ORT falls back to the CPU
        quietly when the CUDA provider fails to load (no cuDNN, ...), which this shows."""
        return list(self._pw.get_providers())

    def embed(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        return run_batched(self._pw, patches, scalars, self.sub_batch)

    def embed_window(self, window: np.ndarray, rc: np.ndarray, scalars: np.ndarray
                     ) -> np.ndarray:
        """Shared-map stage 1: window ``[1, 4, H, W]``, positions ``[n, 2]`` → ``[n, D]``."""
        return self._pw.run(None, {"window": _f32(window), "rc": _f32(rc),
                                   "scalars": _f32(scalars)})[0]

    def reliability(self, emb: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                    edge_attr: np.ndarray) -> np.ndarray:
        feed = {"emb": _f32(emb), "idx": np.ascontiguousarray(idx, dtype=np.int64),
                "mask": np.ascontiguousarray(mask, dtype=bool), "edge_attr": _f32(edge_attr)}
        # a model without graph (gnn "none") exports a gnn.onnx that reads only emb
        out = self._gnn.run(None, {k: v for k, v in feed.items() if k in self._gnn_inputs})
        return with_std(*out)

    def pointwise_only(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        if self._pw_only is None:
            self._pw_only = open_session(self.card.artifact(PW_ONLY_ONNX), self.threads,
                                         self.device)
        return run_batched(self._pw_only, patches, scalars, self.sub_batch)


def with_std(reliability: np.ndarray, std: np.ndarray | None = None) -> np.ndarray:
    """``[n, 2]`` float32: reliability and its ensemble spread (0 for a model exported before
    ensembles, whose gnn.onnx has one output)."""
    rel = np.asarray(reliability, np.float32).reshape(-1)
    sd = np.zeros_like(rel) if std is None else np.asarray(std, np.float32).reshape(-1)
    return np.stack([rel, sd], axis=1)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# ---------------------------------------------------------------------------- torch
class TorchBackend:
    """The model's safetensors weights run by PyTorch (the ``train`` extra)."""

    name = "torch"

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int | None = None):
        try:
            import torch

            from psirel.train.checkpoint import load_predictor
        except ImportError:  # torch or safetensors missing: the inference-only install
            raise MissingExtra("--backend torch", "train") from None

        if device == "cuda" and not torch.cuda.is_available():
            raise PsirelError("--device cuda: PyTorch sees no CUDA device; use --device cpu")
        if threads is not None:
            torch.set_num_threads(int(threads))
        self._torch, self.card, self.device = torch, card, device
        self._model = load_predictor(card).to(device)
        self._pw_only = None

    def _t(self, a: np.ndarray, dtype=None):
        return self._torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(self.device)

    def embed(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            emb = self._model.embed(self._t(patches, np.float32), self._t(scalars, np.float32))
        return emb.cpu().numpy()

    def embed_window(self, window: np.ndarray, rc: np.ndarray, scalars: np.ndarray
                     ) -> np.ndarray:
        with self._torch.no_grad():
            emb = self._model.embed_window(self._t(window, np.float32), self._t(rc, np.float32),
                                           self._t(scalars, np.float32))
        return emb.cpu().numpy()

    def reliability(self, emb: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                    edge_attr: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            rel, std = self._model.reliability(self._t(emb, np.float32), self._t(idx, np.int64),
                                               self._t(mask, bool),
                                               self._t(edge_attr, np.float32))
        return with_std(rel.cpu().numpy(), std.cpu().numpy())

    def pointwise_only(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        from psirel.train.checkpoint import load_predictor

        if self._pw_only is None:
            self._pw_only = load_predictor(self.card, "pointwise_only").to(self.device)
        with self._torch.no_grad():
            m = self._pw_only
            rel, _ = m.reliability(m.embed(self._t(patches, np.float32),
                                           self._t(scalars, np.float32)))
        return rel.cpu().numpy()
