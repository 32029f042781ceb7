"""Reduced-precision variants of stage 1, each checked against PyTorch before it is written:
``pointwise.int8.onnx`` (CPU, :func:`quantize_pointwise`) and ``pointwise.fp16.onnx`` (the CUDA
execution provider, :func:`half_pointwise`). Stage 2 (``gnn.onnx``) stays FP32.

INT8: what pays on a CPU (ONNX Runtime 1.32, AVX-512 VNNI; measured per 64 real patches on one
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
calibration; the calibration set checks the result: the largest embedding difference to
torch, relative to the embeddings' spread, must stay within ``INT8_TOL`` or nothing is written.

A shared-map model (the default encoder) gets the same scheme on its window encoder
(``window, rc, scalars → emb``), checked on windows of the training scene
(:func:`calibration_windows`: lattice cells plus context, as inference reads them). It keeps
the embeddings (1e-4 of their spread) but gains nothing: on a 384×384 window the summary maps'
81-px box filters (ORT ``AveragePool``, O(k) per pixel; the vertical pass over the land-cover
one-hot alone ~40 %) take ~85 % of the FP32 time, the ConvNeXt's Convs, GELUs and norms a few
%, the INT8 MatMuls 0.4 %. Every scheme tried measured 0.89-1.15× of FP32 in one run, within
the noise of a loaded 2-core machine (dynamic: per-tensor, u8 weights, channels-last from 12
channels, the per-point Gemms too; static QDQ: the blocks' 1×1 Convs or MatMuls, every Conv,
symmetric activations; static QOperator); those that quantise the 4×4 stem and the depthwise
convs also miss ``INT8_TOL`` (~0.09).

FP16: ``onnxruntime.transformers.float16.convert_float_to_float16`` with FP32 inputs and
outputs, except that everything downstream of the point inputs (``rc``, ``scalars``) stays
FP32: point positions in FP16 are 0.25 px off beyond 256 px (a window is 384 wide) and the
bilinear sampling grid ~0.2 px, which moved embeddings by up to 17 % of their spread. What
runs in FP16 is the image half: the ConvNeXt and the summary maps of a window, or the patches'
ConvNeXt, i.e. the work that grows with pixels; it ends 1 % of the spread off.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from psirel.errors import ModelError
from psirel.export.graphs import Pointwise, export_graph, random_sample
from psirel.features.tiles import crop
from psirel.infer.backends import PW_FP16_ONNX, PW_INT8_ONNX, PW_ONNX, open_session, run_batched
from psirel.model_card import ModelCard
from psirel.model_dir import load_card, register_artifact, save_card, sha256_file
from psirel.models.convnext import ConvNeXtBlock

CHANNELS_LAST_MIN_DIM = 24   # blocks at least this wide export their MLP as MatMul → INT8
INT8_TOL = 0.05              # max |emb_int8 − emb_torch| / std(emb_torch) accepted
FP16_TOL = 0.05              # max |emb_fp16 − emb_torch| / std(emb_torch) accepted
CALIBRATION_POINTS = 256
CALIBRATION_WINDOWS = 2      # shared-map: windows of the training scene (384² px, ~2 s each)
FP32_INPUTS = ("rc", "scalars")  # FP16 export: what is computed from these stays FP32
REDUCED = (PW_INT8_ONNX, PW_FP16_ONNX)

# (patches [M, 4, P, P], scalars [M, S]) for a patch model; for a shared-map model a sequence
# of (window [1, 4, H, W], rc [n, 2], scalars [n, S]), one per window
Calibration = tuple[np.ndarray, np.ndarray] | Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]


def calibration_from_graph_data(data, n: int = CALIBRATION_POINTS, seed: int = 0) -> Calibration:
    """``n`` random training points' model inputs (a :class:`psirel.train.loop.GraphData`):
    patches ``[n, 4, P, P]`` and scalars ``[n, S]``, float32, read in index order; for data
    with a raster (shared-map training) their windows instead (:func:`calibration_windows`)."""
    if getattr(data, "raster", None) is not None:
        return calibration_windows(data, n, seed=seed)
    rows = _rows(len(data.scalars), n, seed)
    return (np.asarray(data.patches[rows], dtype=np.float32),
            np.asarray(data.scalars[rows], dtype=np.float32))


def calibration_windows(data, n: int = CALIBRATION_POINTS, windows: int = CALIBRATION_WINDOWS,
                        seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Shared-map inputs of ``n`` random training points: the ``windows`` lattice cells that
    hold most of them, each read as inference reads it (the cell plus context,
    :func:`psirel.infer.shared_stage.cell_window`, cut from the normalised scene ``data.raster``),
    with those points' positions ``[m, 2]`` and scalars ``[m, S]``."""
    from psirel.infer.shared_stage import cell_groups, cell_window

    rows = _rows(len(data.scalars), n, seed)
    groups = cell_groups(data.rows_px[rows], data.cols_px[rows])
    groups.sort(key=lambda cg: (-len(cg[1]), cg[0]))       # the most typical (populated) cells
    out = []
    for cell, g in groups[:windows]:
        win, pts = cell_window(cell), rows[g]
        out.append((crop(data.raster, win)[None],
                    win.local(data.rows_px[pts], data.cols_px[pts]),
                    np.asarray(data.scalars[pts], dtype=np.float32)))
    return out


def _rows(total: int, n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(total, min(n, total), replace=False))


def default_calibration(card: ModelCard) -> tuple[Calibration, str]:
    """Random but realistic stage-1 inputs for ``card`` when no training data is at hand
    (:func:`psirel.export.graphs.random_sample`, or a random window for a shared-map model),
    and how they were made."""
    if card.shared_map:
        from psirel.export.shared_map import random_window_sample

        cfg = card.config
        s = random_window_sample(cfg.n_lulc, cfg.n_scalars, card.features.k,
                                 cfg.graph.edge_dim, n=64)
        return [(s.window, s.rc, s.scalars)], s.source
    s = random_sample(card, n=64)
    return (s.patches, s.scalars), s.source


# ---------------------------------------------------------------------------- INT8
def quantize_pointwise(model_dir: Path | str, calibration: Calibration | None = None, *,
                       tol: float = INT8_TOL, source: str | None = None) -> Path:
    """Write ``pointwise.int8.onnx`` into ``model_dir`` and register it in ``model.json``.

    Args:
        model_dir: a model directory with ``weights.safetensors`` (hashes checked).
        calibration: real inputs, normalised as the model's (see :data:`Calibration`): patches
            and scalars, or a shared-map model's windows; default a random but realistic
            sample (:func:`default_calibration`).
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
    card = _verified(model_dir)
    calibration, source = _calibration(card, calibration, source)
    model = load_predictor(card)
    wide = [b for b in model.modules()
            if isinstance(b, ConvNeXtBlock) and b.dim >= CHANNELS_LAST_MIN_DIM]
    for b in wide:
        b.export_layout = "channels_last"

    tmp = Path(tempfile.mkdtemp(prefix=".int8-export-", dir=model_dir))
    try:
        fp32 = tmp / "pointwise.channels_last.onnx"
        _export_stage1(model, fp32)
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
        check = _check_stage1(model, open_session(tmp / PW_INT8_ONNX), calibration)
        _require_within(model_dir / PW_INT8_ONNX, "INT8", check, tol)
        os.replace(tmp / PW_INT8_ONNX, model_dir / PW_INT8_ONNX)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = card.meta
    register_artifact(meta, model_dir, PW_INT8_ONNX, inputs=_stage1_inputs(card),
                      outputs=["emb"], precision="int8")
    meta["int8"] = {
        "scheme": f"dynamic u8 activations × s8 per-channel weights, the ConvNeXt MLP MatMuls "
                  f"of blocks ≥ {CHANNELS_LAST_MIN_DIM} channels ({len(nodes)} MatMuls); "
                  "the rest FP32",
        "calibration": source, **check, "tolerance_rel": tol,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
    }
    save_card(model_dir, meta)
    return model_dir / PW_INT8_ONNX


# ---------------------------------------------------------------------------- FP16
def half_pointwise(model_dir: Path | str, calibration: Calibration | None = None, *,
                   tol: float = FP16_TOL, source: str | None = None) -> Path:
    """Write ``pointwise.fp16.onnx`` (for the CUDA execution provider) from the model's
    ``pointwise.onnx`` and register it in ``model.json``.

    FP32 inputs and output; the image half of the graph in FP16, what is computed from the
    point inputs :data:`FP32_INPUTS` in FP32 (see the module docstring). Checked with
    ``onnx.checker`` and, where ONNX Runtime's CPU execution provider runs it, against torch on
    ``calibration`` (as for :func:`quantize_pointwise`); where it cannot, ``model.json`` says
    so and CUDA is the first to run it.

    Raises:
        ModelError: no or a corrupt ``pointwise.onnx``, or an FP16 graph beyond ``tol`` on the
            CPU; nothing is written.
    """
    import onnx
    import onnxruntime
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    from psirel.train.checkpoint import load_predictor

    model_dir = Path(model_dir)
    card = _verified(model_dir)
    if not card.has(PW_ONNX):
        raise ModelError(model_dir / PW_ONNX, "not exported yet: the FP16 variant converts it "
                                              f"(run `psirel export {model_dir}`)")
    calibration, source = _calibration(card, calibration, source)
    graph = onnx.load(str(card.artifact(PW_ONNX)))
    keep = _downstream(graph.graph, FP32_INPUTS)
    half = convert_float_to_float16(graph, keep_io_types=True, node_block_list=sorted(keep))
    _drop_cast_round_trips(half.graph)
    tidy = OnnxModel(half)
    tidy.topological_sort()   # the converter appends its input casts after their consumers
    half = tidy.model
    onnx.checker.check_model(half, full_check=True)

    tmp = Path(tempfile.mkdtemp(prefix=".fp16-export-", dir=model_dir))
    try:
        onnx.save(half, str(tmp / PW_FP16_ONNX))
        try:
            session = open_session(tmp / PW_FP16_ONNX)
        except ModelError as exc:   # a CPU build without FP16 kernels for some op
            check = {"checked_on_cpu": False, "reason": str(exc).split(": ", 1)[-1]}
        else:
            check = {"checked_on_cpu": True,
                     **_check_stage1(load_predictor(card), session, calibration)}
            _require_within(model_dir / PW_FP16_ONNX, "FP16", check, tol)
        os.replace(tmp / PW_FP16_ONNX, model_dir / PW_FP16_ONNX)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = card.meta
    register_artifact(meta, model_dir, PW_FP16_ONNX, inputs=_stage1_inputs(card),
                      outputs=["emb"], precision="fp16")
    n_nodes = sum(n.op_type != "Cast" for n in half.graph.node)
    meta["fp16"] = {
        "scheme": "onnxruntime.transformers.float16, FP32 inputs and output; the nodes "
                  f"computed from {' and '.join(FP32_INPUTS)} stay FP32 ({len(keep)} of "
                  f"{n_nodes})",
        "calibration": source, **check, "tolerance_rel": tol, "device": "cuda",
        "versions": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
    save_card(model_dir, meta)
    return model_dir / PW_FP16_ONNX


def _downstream(graph, inputs: Sequence[str]) -> set[str]:
    """Names of the nodes that read ``inputs``, directly or through other nodes (an exported
    graph is topologically sorted, so one pass finds them all)."""
    reached, nodes = set(inputs), set()
    for n in graph.node:
        if any(i in reached for i in n.input):
            nodes.add(n.name)
            reached.update(n.output)
    return nodes


def _drop_cast_round_trips(graph) -> int:
    """Rewire ``Cast(to=float32)`` of a ``Cast(to=float16)`` to the latter's input and remove
    the casts left unused; returns how many. The converter casts every graph input to FP16 and
    back in front of an FP32 node (and the output likewise), which would round the point
    positions anyway."""
    from onnx import TensorProto

    def to(node) -> int:
        return next(a.i for a in node.attribute if a.name == "to")

    producer = {o: n for n in graph.node for o in n.output}
    for n in graph.node:
        src = producer.get(n.input[0]) if n.op_type == "Cast" else None
        if (src is not None and src.op_type == "Cast" and to(n) == TensorProto.FLOAT
                and to(src) == TensorProto.FLOAT16):
            n.input[0] = src.input[0]
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    dead = [n for n in graph.node
            if n.op_type == "Cast" and not any(o in used for o in n.output)]
    for n in dead:
        graph.node.remove(n)
    return len(dead)


# ---------------------------------------------------------------------------- shared steps
def _verified(model_dir: Path) -> ModelCard:
    """The card, every artifact's hash checked but those of the reduced-precision variants
    (neither is read here, and one is about to be replaced)."""
    card = load_card(model_dir, verify=False)
    for name, info in card.meta["artifacts"].items():
        if name not in REDUCED and sha256_file(model_dir / name) != info.get("sha256"):
            raise ModelError(model_dir / name, "SHA-256 does not match model.json (file corrupt "
                                               "or replaced)")
    return card


def _calibration(card: ModelCard, calibration: Calibration | None, source: str | None
                 ) -> tuple[Calibration, str]:
    """The calibration set as float32 arrays, checked for the model's kind, and its source."""
    if calibration is None:
        calibration, drawn = default_calibration(card)
        return calibration, source or drawn
    if card.shared_map:
        items = [tuple(np.ascontiguousarray(a, dtype=np.float32) for a in item)
                 for item in calibration]
        if not items or any(len(item) != 3 or item[0].ndim != 4 or len(item[1]) != len(item[2])
                            or len(item[1]) == 0 for item in items):
            raise ValueError("a shared-map model's calibration is a non-empty sequence of "
                             "(window [1, 4, H, W], rc [n, 2], scalars [n, S]) with n ≥ 1")
        n = sum(len(item[1]) for item in items)
        return items, source or f"{n} given points in {len(items)} window{'s' * (len(items) > 1)}"
    patches, scalars = (np.ascontiguousarray(a, dtype=np.float32) for a in calibration)
    if len(patches) == 0 or len(patches) != len(scalars):
        raise ValueError(f"calibration needs as many patches as scalar rows, at least one "
                         f"(got {len(patches)} and {len(scalars)})")
    return (patches, scalars), source or f"{len(patches)} given points"


def _stage1_inputs(card: ModelCard) -> list[str]:
    from psirel.export.shared_map import WINDOW_INPUTS

    return list(WINDOW_INPUTS) if card.shared_map else ["patches", "scalars"]


def _export_stage1(model, path: Path) -> None:
    """``model``'s stage 1 traced into ``path`` as ``pointwise.onnx`` is (its export layout)."""
    if model.shared_map:
        from psirel.export import shared_map as sm

        export_graph(sm.WindowEncoder(model), sm.trace_args(model), sm.WINDOW_INPUTS, "emb",
                     {**sm.WINDOW_AXES, "emb": {0: "n"}}, path)
        return
    p = model.cfg.encoder.patch_px
    export_graph(Pointwise(model), (torch.randn(2, 4, p, p), torch.randn(2, model.cfg.n_scalars)),
                 ["patches", "scalars"], "emb",
                 {"patches": {0: "batch"}, "scalars": {0: "batch"}, "emb": {0: "batch"}}, path)


def _require_within(path: Path, label: str, check: dict, tol: float) -> None:
    """A ModelError naming ``path`` unless the reduced-precision embeddings are within ``tol``
    (× their spread) of PyTorch's; NaN fails too."""
    if not check["max_rel_emb"] <= tol:
        raise ModelError(path, f"{label} embeddings differ from PyTorch by "
                         f"{check['max_rel_emb']:.3f} × their spread (tolerance {tol}); "
                         "nothing was written")


@torch.no_grad()
def _check_stage1(model, session, calibration: Calibration) -> dict:
    """Embeddings of ``session`` vs torch's on the calibration set: the largest and mean
    absolute differences, the embeddings' spread and the largest difference relative to it."""
    if model.shared_map:
        emb_o, emb_t = [], []
        for window, rc, scalars in calibration:
            emb_o.append(session.run(None, {"window": window, "rc": rc, "scalars": scalars})[0])
            emb_t.append(model.embed_window(*(torch.from_numpy(a)
                                              for a in (window, rc, scalars))).numpy())
        emb_o, emb_t = np.concatenate(emb_o), np.concatenate(emb_t)
        windows = {"calibration_windows": len(calibration)}
    else:
        patches, scalars = calibration
        emb_o = run_batched(session, patches, scalars)
        emb_t = model.embed(torch.from_numpy(patches), torch.from_numpy(scalars)).numpy()
        windows = {}
    err = np.abs(emb_o.astype(np.float64) - emb_t)
    spread = float(emb_t.std()) or 1.0
    return {"calibration_points": int(len(emb_t)), **windows,
            "max_abs_emb": float(err.max()), "mean_abs_emb": float(err.mean()),
            "emb_std": spread, "max_rel_emb": float(err.max()) / spread}


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
