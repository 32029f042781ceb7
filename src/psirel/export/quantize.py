"""INT8 variant of stage 1: ``pointwise.int8.onnx``, checked on real patches before it is written.

What pays on a CPU (ONNX Runtime 1.32, AVX-512 VNNI; measured per 64 real patches on one
thread, FP32 ``pointwise.onnx`` = 100 %):

=====================================================  ======  =================================
scheme (u8 activations × s8 per-channel weights)       time    why
=====================================================  ======  =================================
static QDQ, every Conv                                 ~200 %  QLinearConv runs NHWC: ORT adds
                                                               a Transpose pair around each conv
static QDQ, the MLPs' 1×1 Convs only                   ~115 %  the same Transposes, Q/DQ passes,
                                                               and the GELU no longer fuses
                                                               (QOperator: the quantiser fails)
dynamic, the MLPs' 1×1 Convs (``ConvInteger``)         ~800 %  no fused kernel
MLPs exported as MatMul (NHWC), static QDQ/QOperator   ~115 %  Q → DQ → float MatMul, or Q/DQ
                                                               around QLinearMatMul and GELU
**MLPs as MatMul, dynamic**                            ~92 %   ``DynamicQuantizeMatMul``: one
                                                               fused op, VNNI GEMM
=====================================================  ======  =================================

The last one is what :func:`quantize_pointwise` writes, for the blocks of the stages with at
least ``CHANNELS_LAST_MIN_DIM`` channels (stage 0's 12-channel LayerNormalization is slow in
NHWC, so it keeps the channels-first FP32 form). Even a free GEMM could not make the encoder
1.5× faster: the MLP maps are ~25-30 % of the FP32 time, the rest (7×7 depthwise convs,
LayerNorms, GELU, the land-cover embedding, layout reorders) stays in float (Amdahl:
1 / (1 − 0.3) = 1.4×). The activations are quantised per call, so the scales need no
calibration; the calibration patches check the result: the largest embedding difference to
torch, relative to the embeddings' spread, must stay within ``INT8_TOL`` or nothing is written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from psirel.errors import ModelError
from psirel.export.graphs import Pointwise, export_graph, random_sample
from psirel.infer.backends import PW_INT8_ONNX, open_session, run_batched
from psirel.model_dir import load_card, register_artifact, save_card, sha256_file
from psirel.models.convnext import ConvNeXtBlock

CHANNELS_LAST_MIN_DIM = 24   # blocks at least this wide export their MLP as MatMul → INT8
INT8_TOL = 0.05              # max |emb_int8 − emb_torch| / std(emb_torch) accepted
CALIBRATION_POINTS = 256


def calibration_from_graph_data(data, n: int = CALIBRATION_POINTS,
                                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random training points' model inputs (a :class:`psirel.train.loop.GraphData`):
    patches ``[n, 4, P, P]`` and scalars ``[n, S]``, float32, read in index order."""
    rows = np.sort(np.random.default_rng(seed).choice(len(data.scalars),
                                                      min(n, len(data.scalars)), replace=False))
    return (np.asarray(data.patches[rows], dtype=np.float32),
            np.asarray(data.scalars[rows], dtype=np.float32))


def quantize_pointwise(model_dir: Path | str,
                       calibration: tuple[np.ndarray, np.ndarray] | None = None, *,
                       tol: float = INT8_TOL, source: str | None = None) -> Path:
    """Write ``pointwise.int8.onnx`` into ``model_dir`` and register it in ``model.json``.

    Args:
        model_dir: a model directory with ``weights.safetensors`` (hashes checked).
        calibration: ``(patches [M, 4, P, P], scalars [M, S])`` of real points, normalised as
            the model's inputs; default a random but realistic sample
            (:func:`psirel.export.graphs.random_sample`).
        tol: largest accepted ``max |emb_int8 − emb_torch| / std(emb_torch)``.
        source: how the calibration set was drawn, recorded in ``model.json``.

    Returns:
        The path of ``pointwise.int8.onnx``.

    Raises:
        ModelError: a corrupt artifact, or an INT8 graph beyond ``tol``; nothing is written.
    """
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from psirel.train.checkpoint import load_predictor

    model_dir = Path(model_dir)
    card = load_card(model_dir, verify=False)
    for name, info in card.meta["artifacts"].items():
        if name != PW_INT8_ONNX and sha256_file(model_dir / name) != info.get("sha256"):
            raise ModelError(model_dir / name, "SHA-256 does not match model.json (file corrupt "
                                               "or replaced)")
    if calibration is None:
        s = random_sample(card, n=64)
        calibration, source = (s.patches, s.scalars), source or s.source
    patches, scalars = (np.ascontiguousarray(a, dtype=np.float32) for a in calibration)
    if len(patches) == 0 or len(patches) != len(scalars):
        raise ValueError(f"calibration needs as many patches as scalar rows, at least one "
                         f"(got {len(patches)} and {len(scalars)})")
    model = load_predictor(card)
    wide = [b for b in model.modules()
            if isinstance(b, ConvNeXtBlock) and b.dim >= CHANNELS_LAST_MIN_DIM]
    for b in wide:
        b.export_layout = "channels_last"

    tmp = Path(tempfile.mkdtemp(prefix=".int8-export-", dir=model_dir))
    try:
        fp32 = tmp / "pointwise.channels_last.onnx"
        p = model.cfg.encoder.patch_px
        export_graph(Pointwise(model),
                     (torch.randn(2, 4, p, p), torch.randn(2, model.cfg.n_scalars)),
                     ["patches", "scalars"], "emb",
                     {"patches": {0: "batch"}, "scalars": {0: "batch"}, "emb": {0: "batch"}},
                     fp32)
        nodes = _mlp_matmuls(onnx.load(str(fp32)))
        root = logging.getLogger()
        hush = _DropPreprocessHint()
        root.addFilter(hush)  # the quantiser's advice to run its pre-processing: not needed here
        try:
            quantize_dynamic(fp32, tmp / PW_INT8_ONNX, op_types_to_quantize=["MatMul"],
                             nodes_to_quantize=nodes, per_channel=True,
                             weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(hush)
        emb_q = run_batched(open_session(tmp / PW_INT8_ONNX), patches, scalars)
        with torch.no_grad():
            emb_t = model.embed(torch.from_numpy(patches), torch.from_numpy(scalars)).numpy()
        err = np.abs(emb_q.astype(np.float64) - emb_t)
        spread = float(emb_t.std()) or 1.0
        worst = float(err.max()) / spread
        if not worst <= tol:  # NaN fails too
            raise ModelError(model_dir / PW_INT8_ONNX, f"INT8 embeddings differ from PyTorch by "
                             f"{worst:.3f} × their spread (tolerance {tol}); nothing was written")
        os.replace(tmp / PW_INT8_ONNX, model_dir / PW_INT8_ONNX)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = card.meta
    register_artifact(meta, model_dir, PW_INT8_ONNX, inputs=["patches", "scalars"],
                      outputs=["emb"], precision="int8")
    meta["int8"] = {
        "scheme": f"dynamic u8 activations × s8 per-channel weights, the ConvNeXt MLP MatMuls "
                  f"of blocks ≥ {CHANNELS_LAST_MIN_DIM} channels ({len(nodes)} MatMuls); "
                  "the rest FP32",
        "calibration": source or f"{len(patches)} given points",
        "calibration_points": int(len(patches)),
        "max_abs_emb": float(err.max()), "mean_abs_emb": float(err.mean()),
        "emb_std": spread, "max_rel_emb": worst, "tolerance_rel": tol,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }
    save_card(model_dir, meta)
    return model_dir / PW_INT8_ONNX


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _mlp_matmuls(model) -> list[str]:
    """The graph's activation × weight MatMuls inside ConvNeXt blocks (not the weight-only
    products the tracer records for folded weights, which ORT folds at load)."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and "/blocks" in n.name
            and not all(i in consts for i in n.input)]

