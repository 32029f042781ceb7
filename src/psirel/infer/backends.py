"""Inference backends: the two stages of a model directory behind one small interface.

A backend turns a batch of patches into embeddings (stage 1, ``pointwise.onnx``) and a
neighbour-table subgraph of embeddings into probabilities (stage 2, ``gnn.onnx``):

    embed(patches [B, 4, P, P] f32, scalars [B, S] f32) -> emb [B, D] f32
    reliability(emb [N, D] f32, idx [N, K] i64, mask [N, K] bool, edge_attr [N, K, E] f32)
        -> P(reliable) [N] f32
    pointwise_only(patches, scalars) -> P(reliable) [B] f32  (the variant without graph)

:class:`OrtBackend` (ONNX Runtime) is the default and needs no torch: this module imports torch
only inside :class:`TorchBackend`, which needs the ``train`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from psirel.errors import MissingExtra, ModelError, PsirelError
from psirel.model_dir import MODEL_JSON, ModelCard

BACKENDS = ("onnx", "torch")
DEVICES = ("cpu", "cuda")
PW_ONNX, GNN_ONNX, PW_ONLY_ONNX = "pointwise.onnx", "gnn.onnx", "pointwise_only.onnx"


class Backend(Protocol):
    name: str
    device: str

    def embed(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray: ...

    def reliability(self, emb: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                    edge_attr: np.ndarray) -> np.ndarray: ...

    def pointwise_only(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray: ...


def make_backend(card: ModelCard, backend: str = "onnx", device: str = "cpu",
                 threads: int | None = None) -> Backend:
    """The backend ``"onnx"`` (ONNX Runtime) or ``"torch"`` for a verified model card.

    ``threads`` bounds the intra-op threads (None: the runtime's default, all cores).
    """
    if backend not in BACKENDS:
        raise PsirelError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise PsirelError(f"--device {device}: choose one of {', '.join(DEVICES)}")
    if threads is not None and threads < 1:
        raise PsirelError(f"--threads {threads}: must be at least 1")
    if backend == "torch":
        return TorchBackend(card, device, threads)
    return OrtBackend(card, device, threads)


# ---------------------------------------------------------------------------- ONNX Runtime
def _ort():
    import onnxruntime

    return onnxruntime


def session_options(threads: int | None = None):
    """ORT options used for inference and for the export's parity check alike: full graph
    optimisation, sequential execution, ``threads`` intra-op threads (None: ORT's default)."""
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or 0)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    return so


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


def open_session(path: Path, threads: int | None = None, device: str = "cpu"):
    """An ``InferenceSession`` of ``path``; a file ORT cannot load is a ModelError naming it."""
    ort = _ort()
    prov = providers(device)
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads),
                                    providers=prov)
    except Exception as exc:  # ORT raises its own pybind classes (InvalidProtobuf, Fail, ...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(path, f"ONNX Runtime cannot load it ({first})") from None


class OrtBackend:
    """Both stages as ONNX Runtime sessions (``pointwise_only.onnx`` opened on first use)."""

    name = "onnx"

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int | None = None):
        self.card, self.device, self.threads = card, device, threads
        for f in (PW_ONNX, GNN_ONNX):
            if not card.has(f):
                raise ModelError(card.path / MODEL_JSON, f"lists no '{f}': the model has no ONNX "
                                 f"export (run `psirel export {card.path}`, or use --backend "
                                 "torch)")
        self._pw = open_session(card.artifact(PW_ONNX), threads, device)
        self._gnn = open_session(card.artifact(GNN_ONNX), threads, device)
        self._gnn_inputs = {i.name for i in self._gnn.get_inputs()}
        self._pw_only = None

    def embed(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        return self._pw.run(None, {"patches": _f32(patches), "scalars": _f32(scalars)})[0]

    def reliability(self, emb: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                    edge_attr: np.ndarray) -> np.ndarray:
        feed = {"emb": _f32(emb), "idx": np.ascontiguousarray(idx, dtype=np.int64),
                "mask": np.ascontiguousarray(mask, dtype=bool), "edge_attr": _f32(edge_attr)}
        # a model without graph (gnn "none") exports a gnn.onnx that reads only emb
        return self._gnn.run(None, {k: v for k, v in feed.items() if k in self._gnn_inputs})[0]

    def pointwise_only(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        if self._pw_only is None:
            self._pw_only = open_session(self.card.artifact(PW_ONLY_ONNX), self.threads,
                                         self.device)
        return self._pw_only.run(None, {"patches": _f32(patches), "scalars": _f32(scalars)})[0]


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# ---------------------------------------------------------------------------- torch
class TorchBackend:
    """The model's safetensors weights run by PyTorch (the ``train`` extra)."""

    name = "torch"

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int | None = None):
        try:
            import torch

            from psirel.train.checkpoint import load_model
        except ImportError:  # torch or safetensors missing: the inference-only install
            raise MissingExtra("--backend torch", "train") from None

        if device == "cuda" and not torch.cuda.is_available():
            raise PsirelError("--device cuda: PyTorch sees no CUDA device; use --device cpu")
        if threads is not None:
            torch.set_num_threads(int(threads))
        self._torch, self.card, self.device = torch, card, device
        self._model = load_model(card).to(device)
        self._pw_only = None

    def _t(self, a: np.ndarray, dtype=None):
        return self._torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(self.device)

    def embed(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            emb = self._model.embed(self._t(patches, np.float32), self._t(scalars, np.float32))
        return emb.cpu().numpy()

    def reliability(self, emb: np.ndarray, idx: np.ndarray, mask: np.ndarray,
                    edge_attr: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            logits = self._model.graph_logits(self._t(emb, np.float32), self._t(idx, np.int64),
                                              self._t(mask, bool),
                                              self._t(edge_attr, np.float32))
        return self._torch.sigmoid(logits).cpu().numpy()

    def pointwise_only(self, patches: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        from psirel.train.checkpoint import load_model

        if self._pw_only is None:
            self._pw_only = load_model(self.card, "pointwise_only").to(self.device)
        with self._torch.no_grad():
            logits = self._pw_only(self._t(patches, np.float32), self._t(scalars, np.float32))
        return self._torch.sigmoid(logits).cpu().numpy()
