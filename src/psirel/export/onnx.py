"""ONNX export of a model directory, checked against PyTorch before anything is written.

Three graphs, all traced with ``torch.onnx.export(dynamo=False, opset_version=17)``:

* ``pointwise.onnx``: ``patches [B, 4, P, P] f32, scalars [B, S] f32 → emb [B, D]`` (stage 1);
* ``gnn.onnx``: ``emb [N, D] f32, idx [N, K] i64, mask [N, K] bool, edge_attr [N, K, E] f32
  → reliability [N], reliability_std [N]`` (stage 2): the calibrated probability, averaged
  over the ensemble's members, and its spread (:mod:`psirel.models.ensemble`; ``D`` is the
  members' embeddings side by side);
* ``pointwise_only.onnx``: ``patches, scalars → reliability [B]``, the variant without graph, so
  that evaluation can compare it torch-free.

A shared-map model (``encoder="shared-map"``) exports the same three files with stage 1 reading
``window [1, 4, H, W], rc [N, 2], scalars [N, S]`` instead of patches
(:mod:`psirel.export.shared_map`).

With a calibration set (or ``int8=True``), :func:`psirel.export.quantize.quantize_pointwise`
then adds ``pointwise.int8.onnx``, the INT8 variant of stage 1 (CPU), for either encoder; with
``fp16=True``, :func:`psirel.export.quantize.half_pointwise` adds ``pointwise.fp16.onnx``, its
FP16 variant for the CUDA execution provider.

B, N and K are dynamic. Each graph is traced on a tiny input and checked on another, larger one
(real training patches when :func:`sample_from_graph_data` provides them, else a random but
realistic sample, :func:`psirel.export.graphs.random_sample`), under the session options
inference uses. The largest probability difference per file goes into ``model.json`` under
``"onnx"``; beyond ``1e-4`` the export fails with a :class:`~psirel.errors.ModelError` and the
model directory is left as it was (files are written to a temporary folder and moved in only
after every check passed). The wrappers traced and the export call itself are shared with
:mod:`psirel.export.quantize` and live in :mod:`psirel.export.graphs`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from psirel.errors import ModelError
from psirel.export.graphs import (
    OPSET,
    ExportSample,
    Graph,
    GraphNone,
    Pointwise,
    PointwiseOnly,
    export_graph,
    random_sample,
    trace_table,
)
from psirel.graph.hilbert import spatial_order
from psirel.graph.sampling import full_neighbourhood
from psirel.infer.backends import (
    GNN_ONNX,
    PW_FP16_ONNX,
    PW_INT8_ONNX,
    PW_ONLY_ONNX,
    PW_ONNX,
    open_session,
)
from psirel.model_dir import load_card, register_artifact, save_card, sha256_file
from psirel.models.ensemble import CalibratedEnsemble
from psirel.train.checkpoint import load_predictor

PARITY_TOL = 1e-4  # max |P_onnx - P_torch| accepted, probability units
ONNX_FILES = (PW_ONNX, GNN_ONNX, PW_ONLY_ONNX)
DERIVED = (*ONNX_FILES, PW_INT8_ONNX, PW_FP16_ONNX)  # files an export may redo: not checked
GRAPH_INPUTS = ("emb", "idx", "mask", "edge_attr")
GRAPH_OUTPUTS = ["reliability", "reliability_std"]


def sample_from_graph_data(data, n_seeds: int = 16, hops: int = 2):
    """Real inputs from training data (a :class:`psirel.train.loop.GraphData`): the full
    ``hops``-hop neighbourhood of ``n_seeds`` consecutive points in spatial order, taken from
    the middle of the cloud so that patches and neighbourhoods are typical, not edge cases.
    Data with a raster (shared-map training) gives a :class:`~psirel.export.shared_map.
    WindowSample` of the same points instead."""
    n = len(data.x_m)
    order = spatial_order(data.x_m, data.y_m)
    start = max((n - n_seeds) // 2, 0)
    seeds = np.sort(order[start:start + n_seeds])
    if getattr(data, "raster", None) is not None:
        from psirel.export.shared_map import window_sample

        return window_sample(data, seeds, hops)
    sub = full_neighbourhood((data.idx, data.mask), seeds, hops)
    nodes = sub.nodes
    ea = data.edge_attr(nodes, sub.idx, sub.mask)
    return ExportSample(patches=np.asarray(data.patches[nodes], dtype=np.float32),
                        scalars=np.asarray(data.scalars[nodes], dtype=np.float32),
                        idx=sub.idx.astype(np.int64), mask=sub.mask, edge_attr=ea,
                        source=f"training points ({len(seeds)} seeds, {len(nodes)} nodes)")


def _ort_run(session, feed: dict[str, np.ndarray]) -> np.ndarray:
    """One ORT call (a seam for tests that need a failing parity)."""
    return session.run(None, feed)[0]



# ---------------------------------------------------------------------------- export
def export_model(model_dir: Path | str, *, sample: ExportSample | None = None,
                 tol: float = PARITY_TOL,
                 calibration=None, int8: bool | None = None, fp16: bool = False) -> dict:
    """Export ``pointwise.onnx``, ``gnn.onnx`` and ``pointwise_only.onnx`` into ``model_dir``
    (the last only when the directory has ``pointwise_only.safetensors``), and
    ``pointwise.int8.onnx`` and ``pointwise.fp16.onnx`` when asked.

    Args:
        model_dir: a model directory with ``weights.safetensors`` and
            ``pointwise_only.safetensors`` (the weights' hashes are checked; existing ONNX files
            are replaced, so a damaged export can be redone).
        sample: inputs for the parity check; default :func:`random_sample`.
        tol: largest accepted ``|P_onnx - P_torch|`` (probability) for every file.
        calibration: real stage-1 inputs that check the INT8 variant: ``(patches, scalars)``,
            or a shared-map model's windows (:data:`psirel.export.quantize.Calibration`).
        int8: write ``pointwise.int8.onnx`` too (default: when a calibration set is given;
            ``True`` without one checks it on a random sample).
        fp16: write ``pointwise.fp16.onnx`` too, checked on ``sample``
            (:func:`psirel.export.quantize.half_pointwise`).

    Returns:
        The updated ``model.json`` content (``meta["onnx"]`` holds opset, parity and versions).

    Raises:
        ModelError: a parity above ``tol``, or an export ORT cannot load; nothing is written
            (an INT8 or FP16 variant beyond its tolerance: the FP32 files are written, it is
            not).
    """
    import onnx
    import onnxruntime

    model_dir = Path(model_dir)
    card = load_card(model_dir, verify=False)
    for name, info in card.meta["artifacts"].items():  # all but the files about to be replaced
        if name not in DERIVED and sha256_file(model_dir / name) != info.get("sha256"):
            raise ModelError(model_dir / name, "SHA-256 does not match model.json (file corrupt "
                                               "or replaced)")
    model = load_predictor(card)
    # model directories without the graph-free variant still get the two stages
    pw_only = load_predictor(card, "pointwise_only") \
        if card.has("pointwise_only.safetensors") else None
    files = ONNX_FILES if pw_only is not None else (PW_ONNX, GNN_ONNX)
    cfg = model.cfg
    p = cfg.encoder.patch_px
    shared = card.shared_map
    if shared:
        from psirel.export import shared_map as sm

        sample = sample if sample is not None else sm.random_window_sample(
            cfg.n_lulc, cfg.n_scalars, card.features.k, cfg.graph.edge_dim)
        pw_args, pw_names, batch = sm.trace_args(model), sm.WINDOW_INPUTS, sm.WINDOW_AXES
        pw_module, only_module = sm.WindowEncoder, sm.WindowPointwiseOnly
        out_axis = {0: "n"}
    else:
        sample = sample if sample is not None else random_sample(card)
        pw_args = (torch.randn(2, 4, p, p), torch.randn(2, cfg.n_scalars))
        pw_names = ["patches", "scalars"]
        batch = {"patches": {0: "batch"}, "scalars": {0: "batch"}}
        pw_module, only_module = Pointwise, PointwiseOnly
        out_axis = {0: "batch"}

    tmp = Path(tempfile.mkdtemp(prefix=".onnx-export-", dir=model_dir))
    try:
        export_graph(pw_module(model), pw_args, pw_names, "emb", {**batch, "emb": out_axis},
                     tmp / PW_ONNX)
        if pw_only is not None:
            export_graph(only_module(pw_only), pw_args, pw_names, "reliability",
                         {**batch, "reliability": out_axis}, tmp / PW_ONLY_ONNX)
        outs = {o: {0: "n"} for o in GRAPH_OUTPUTS}
        if model.gnn is None:
            export_graph(GraphNone(model), (torch.randn(7, model.embedding_dim),), ["emb"],
                         GRAPH_OUTPUTS, {"emb": {0: "n"}, **outs}, tmp / GNN_ONNX)
        else:
            n = {0: "n"}                     # the slot axis is the card's k (trace_table)
            table = trace_table(card.features.k, cfg.graph.edge_dim)
            emb_trace = torch.randn(len(table[0]), model.embedding_dim)
            export_graph(Graph(model), (emb_trace, *table), list(GRAPH_INPUTS), GRAPH_OUTPUTS,
                         {"emb": n, "idx": n, "mask": n, "edge_attr": n, **outs},
                         tmp / GNN_ONNX)
        parity = _parity(model, pw_only, sample, tmp)
        worst = max(parity["parity_max_abs_prob"].items(), key=lambda kv: kv[1])
        if not worst[1] <= tol:  # NaN fails too
            raise ModelError(model_dir / worst[0] if worst[0] in ONNX_FILES else model_dir,
                             f"ONNX export differs from PyTorch by {worst[1]:.2e} in probability"
                             f" (tolerance {tol:.0e}); nothing was written")
        for name in files:
            os.replace(tmp / name, model_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = card.meta
    io = {PW_ONNX: (list(pw_names), ["emb"]),
          GNN_ONNX: (["emb"] if model.gnn is None else list(GRAPH_INPUTS), GRAPH_OUTPUTS),
          PW_ONLY_ONNX: (list(pw_names), ["reliability"])}
    for name in files:
        register_artifact(meta, model_dir, name, inputs=io[name][0], outputs=io[name][1])
    meta["onnx"] = {"opset": OPSET, **parity, "tolerance": tol, "sample": sample.source,
                    "exported_with": torch.__version__,
                    "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                                 "onnxruntime": onnxruntime.__version__}}
    save_card(model_dir, meta)
    if (calibration is not None) if int8 is None else int8:
        from psirel.export.quantize import quantize_pointwise

        quantize_pointwise(model_dir, calibration,
                           source=None if calibration is None else "training points")
        meta = load_card(model_dir, verify=False).meta
    if fp16:
        from psirel.export.quantize import half_pointwise

        half_pointwise(model_dir, _stage1_inputs(sample, shared), source=sample.source)
        meta = load_card(model_dir, verify=False).meta
    return meta


def _stage1_inputs(sample, shared: bool):
    """The parity sample's stage-1 inputs in the form of a calibration set."""
    if shared:
        return [(sample.window, sample.rc, sample.scalars)]
    return sample.patches, sample.scalars


@torch.no_grad()
def _parity(model: CalibratedEnsemble, pw_only: CalibratedEnsemble | None, s: ExportSample,
            folder: Path) -> dict:
    """Largest probability differences ORT vs torch on the sample, per file and end to end.

    ``pointwise.onnx`` is judged by what its embedding error does to the probability (torch's
    stage 2 on ORT's embeddings); its raw embedding error is recorded beside.
    """
    if model.shared_map:   # a WindowSample: stage 1 reads a window and point positions
        feed, args = s.feed(), s.tensors()
        embed = model.embed_window
    else:
        feed = {"patches": s.patches, "scalars": s.scalars}
        args = (torch.from_numpy(s.patches), torch.from_numpy(s.scalars))
        embed = model.embed
    graph = (torch.from_numpy(s.idx), torch.from_numpy(s.mask), torch.from_numpy(s.edge_attr))
    emb_t = embed(*args)
    prob_t, std_t = (a.numpy() for a in model.reliability(emb_t, *graph))

    pw = open_session(folder / PW_ONNX)
    emb_o = _ort_run(pw, feed)
    prob_pw = model.reliability(torch.from_numpy(emb_o), *graph)[0].numpy()

    gnn = open_session(folder / GNN_ONNX)
    names = {i.name for i in gnn.get_inputs()}

    def run_gnn(emb: np.ndarray, output: int = 0) -> np.ndarray:
        feed = dict(zip(GRAPH_INPUTS, (emb, s.idx, s.mask, s.edge_attr), strict=True))
        feed = {k: v for k, v in feed.items() if k in names}
        return _ort_run(gnn, feed) if output == 0 else gnn.run(None, feed)[output]

    prob_gnn = run_gnn(emb_t.numpy())
    prob_e2e = run_gnn(emb_o)
    std_gnn = run_gnn(emb_t.numpy(), 1)

    def diff(a, b) -> float:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return float("inf")
        return float(np.max(np.abs(a - b))) if a.size else 0.0

    probs = {PW_ONNX: diff(prob_pw, prob_t),
             GNN_ONNX: max(diff(prob_gnn, prob_t), diff(std_gnn, std_t)),
             "end_to_end": diff(prob_e2e, prob_t)}
    if pw_only is not None:
        only = open_session(folder / PW_ONLY_ONNX)
        prob_only_o = _ort_run(only, feed)
        emb_only = (pw_only.embed_window if pw_only.shared_map else pw_only.embed)(*args)
        probs[PW_ONLY_ONNX] = diff(prob_only_o, pw_only.reliability(emb_only)[0].numpy())
    return {"parity_max_abs_prob": probs,
            "parity_max_abs_emb": diff(emb_o, emb_t.numpy()),
            "parity_points": int(len(s.scalars))}

