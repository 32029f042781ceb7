"""End-to-end training of the PW encoder + GNN on sampled subgraphs.

Cost model: a seed with fan-outs [f1, f2] drags up to 1 + f1 + f1·f2 patch encodings, and two CPU
cores encode ~3,000 patches/s forward. Batches are therefore spatially compact
(:func:`psirel.graph.sampling.compact_batches`): the seeds' neighbourhoods overlap, each node of a
subgraph is encoded once per step and reused by every seed that reaches it, and the number of
unique encoded nodes per seed stays close to 1 (it is logged as ``nodes_per_seed``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from psirel.config import TrainSettings
from psirel.features.tiles import crop, window_around
from psirel.graph.edges import EdgeScale, edge_features
from psirel.graph.hilbert import spatial_order
from psirel.graph.sampling import Subgraph, compact_batches, full_neighbourhood, sample_subgraph
from psirel.models.reliability import ModelConfig, ReliabilityModel
from psirel.report.metrics import reliability_metrics, tune_threshold


@dataclass
class GraphData:
    """Arrays a step needs, in input order: normalised scalars and node attributes for edges."""

    patches: np.ndarray | None   # [N, 4, P, P] float16 memmap (None: shared-map encoder)
    scalars: np.ndarray          # [N, S] float32 standardised
    x_m: np.ndarray
    y_m: np.ndarray
    height_m: np.ndarray
    velocity_mm_yr: np.ndarray
    idx: np.ndarray              # [N, k] full neighbour table
    mask: np.ndarray
    edge_scale: EdgeScale
    labels: np.ndarray | None = None
    series_mm: np.ndarray | None = None   # [N, T] for the series-difference edge feature
    raster: np.ndarray | None = None      # [4, H, W] normalised scene (shared-map encoder)
    rows_px: np.ndarray | None = None     # [N] continuous DEM-grid positions of the points
    cols_px: np.ndarray | None = None

    def edge_attr(self, nodes: np.ndarray, idx: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Edge features of a subgraph over global ``nodes`` (local ``idx``)."""
        series = None if self.series_mm is None else self.series_mm[nodes]
        return edge_features(self.x_m[nodes], self.y_m[nodes], self.height_m[nodes],
                             self.velocity_mm_yr[nodes], idx, mask, self.edge_scale,
                             series_mm=series)

    def subgraph_tensors(self, sub: Subgraph, device: str = "cpu",
                         stats: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """Inputs of one step; ``stats``: every node's edge-summary statistics on the full graph
        (:func:`node_statistics`), passed on for the subgraph's nodes."""
        nodes = sub.nodes
        ea = self.edge_attr(nodes, sub.idx, sub.mask)
        if self.raster is not None:   # shared-map encoder: one window around every node
            win = window_around(self.rows_px[nodes], self.cols_px[nodes])
            image = {"window": torch.from_numpy(crop(self.raster, win)[None]).to(device),
                     "rc": torch.from_numpy(win.local(self.rows_px[nodes],
                                                      self.cols_px[nodes])).to(device)}
        else:
            # a sorted gather is a sequential read of the memmap
            order = np.argsort(nodes, kind="stable")
            patches = np.empty((len(nodes),) + self.patches.shape[1:], np.float32)
            patches[order] = self.patches[nodes[order]]
            image = {"patches": torch.from_numpy(patches).to(device)}
        extra = {} if stats is None else {"stats": torch.from_numpy(stats[nodes]).to(device)}
        return {
            **image, **extra,
            "scalars": torch.from_numpy(np.ascontiguousarray(self.scalars[nodes])).to(device),
            "idx": torch.from_numpy(sub.idx.astype(np.int64)).to(device),
            "mask": torch.from_numpy(sub.mask).to(device),
            "edge_attr": torch.from_numpy(ea).to(device),
        }


def subgraph_logits(model: ReliabilityModel, t: dict[str, torch.Tensor],
                    embed_batch: int | None = None) -> torch.Tensor:
    """Logits of every node of a subgraph; the PW encoder runs once per node (once per window
    for the shared-map encoder)."""
    if "window" in t:
        emb = model.embed_window(t["window"], t["rc"], t["scalars"])
    elif embed_batch is None:
        emb = model.embed(t["patches"], t["scalars"])
    else:
        emb = torch.cat([model.embed(t["patches"][s:s + embed_batch],
                                     t["scalars"][s:s + embed_batch])
                         for s in range(0, len(t["patches"]), embed_batch)])
    return model.graph_logits(emb, t["idx"], t["mask"], t["edge_attr"], t.get("stats"))


@torch.no_grad()
def node_statistics(model: ReliabilityModel, data: GraphData, block: int = 4096
                    ) -> np.ndarray | None:
    """The edge summary's statistics of every node over its full neighbour-table row
    (``[N, n_stats]`` float32), or None for a model without an edge summary. A sampled
    subgraph keeps only some of a node's edges; training feeds these instead, so that the
    summary a node sees in training is the one it gets at inference on the whole graph."""
    summary = model.edge_summary
    if summary is None:
        return None
    n = len(data.x_m)
    out = np.empty((n, summary.n_stats), np.float32)
    for s in range(0, n, block):
        rows = np.arange(s, min(s + block, n))
        sub = full_neighbourhood((data.idx, data.mask), rows, 1)
        ea = data.edge_attr(sub.nodes, sub.idx, sub.mask)[:len(rows)]
        out[rows] = summary.statistics(torch.from_numpy(sub.mask[:len(rows)]),
                                       torch.from_numpy(ea)).numpy()
    return out


@torch.no_grad()
def predict_points(model: ReliabilityModel, data: GraphData, points: np.ndarray,
                   block: int = 2048, device: str = "cpu", logits: bool = False) -> np.ndarray:
    """P(reliable) of ``points`` (their logits with ``logits=True``) with full L-hop
    neighbourhoods (exact, no sampling).

    Blocks are runs of the points' Hilbert order, whatever order ``points`` come in: a block of
    rows consecutive in the file can span the whole scene (a scan-line file's rows do), and a
    shared-map model encodes one window around a block's whole neighbourhood, so such a block
    encoded (and held) the scene's full width. A compact block reads a window of its own size."""
    model.eval()
    points = np.asarray(points, np.int64)
    hops = model.cfg.receptive_hops()
    out = np.empty(len(points), np.float32)
    along = spatial_order(data.x_m[points], data.y_m[points])
    for s in range(0, len(points), block):
        at = along[s:s + block]
        seeds = points[at]
        sub = full_neighbourhood((data.idx, data.mask), seeds, hops)
        z = subgraph_logits(model, data.subgraph_tensors(sub, device), embed_batch=512)[:len(seeds)]
        out[at] = (z if logits else torch.sigmoid(z)).cpu().numpy()
    return out


def predict_ensemble(predictor, data: GraphData, points: np.ndarray, device: str = "cpu"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated P(reliable) of ``points`` and its spread over the members of a
    :class:`~psirel.models.ensemble.CalibratedEnsemble` (the same map as ``gnn.onnx``)."""
    z = torch.from_numpy(np.stack([predict_points(m, data, points, device=device, logits=True)
                                   for m in predictor.members], axis=-1))
    p, std = predictor.combine(z * predictor.scale.cpu() + predictor.bias.cpu())
    return p.numpy().astype(np.float32), std.numpy().astype(np.float32)


@dataclass
class TrainPart:
    """One labelled cloud of a training run: its arrays and which points train and validate.
    Batches and subgraphs are drawn within one part: graphs never cross clouds."""

    data: GraphData
    train: np.ndarray   # [N] bool: training seeds
    val: np.ndarray     # [N] bool: validation points


def val_logits(model: ReliabilityModel, parts: Sequence[TrainPart], device: str = "cpu"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of every part's validation points, concatenated in part order."""
    z = [predict_points(model, p.data, np.flatnonzero(p.val), device=device, logits=True)
         for p in parts]
    y = [p.data.labels[p.val] for p in parts]
    return np.concatenate(z).astype(np.float32), np.concatenate(y)


def epoch_batches(parts: Sequence[TrainPart], batch_size: int, rng: np.random.Generator
                  ) -> list[tuple[int, np.ndarray]]:
    """``(part, seeds)`` batches of one epoch: spatially compact within each part, the parts'
    batches interleaved at random (one part: its own order, as before there were several)."""
    out = [(i, b) for i, p in enumerate(parts)
           for b in compact_batches(p.data.x_m, p.data.y_m, p.train, batch_size, rng)]
    if len(parts) > 1:
        out = [out[j] for j in rng.permutation(len(out))]
    return out




@dataclass
class FitResult:
    model: ReliabilityModel
    threshold: float
    val_metrics: dict
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds_per_epoch: float = 0.0
    nodes_per_seed: float = 0.0


def steps_for(n_seeds: int, settings: TrainSettings) -> int:
    """Optimiser steps of one epoch over ``n_seeds`` training seeds."""
    steps = int(np.ceil(n_seeds / settings.batch_size))
    return min(steps, settings.max_steps_per_epoch) if settings.max_steps_per_epoch else steps


def epochs_for(settings: TrainSettings, steps_per_epoch: int) -> int:
    """``settings.epochs``, raised so that a member takes at least ``settings.min_steps``
    optimiser steps (a capped epoch, ``max_steps_per_epoch``, keeps the epochs asked for)."""
    if settings.max_steps_per_epoch or steps_per_epoch < 1:
        return settings.epochs
    return max(settings.epochs, -(-int(settings.min_steps) // steps_per_epoch))


def fit(model: ReliabilityModel, parts: Sequence[TrainPart],
        settings: TrainSettings, fanout: Sequence[int],
        on_epoch: Callable[[dict], None] | None = None,
        on_step: Callable[[int, int, float], None] | None = None) -> FitResult:
    """Train ``model`` with AdamW + one-cycle schedule, class-balanced BCE and early stopping on
    the validation average precision of the unreliable class, over every part's validation
    points together."""
    # Same seed, same weights: scatter-style backward passes (gathers over the neighbour table,
    # the LULC embedding) otherwise sum in thread order on CPU.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = settings.device
    model.to(device)
    ys = [p.data.labels.astype(np.float32) for p in parts]
    y_train = np.concatenate([y[p.train] for y, p in zip(ys, parts, strict=True)])
    y_val = np.concatenate([p.data.labels[p.val] for p in parts])
    # class-balanced weights: each class contributes half of the loss
    frac_rel = float(y_train.mean())
    w_rel, w_unrel = 0.5 / max(frac_rel, 1e-3), 0.5 / max(1 - frac_rel, 1e-3)

    steps_per_epoch = steps_for(len(y_train), settings)
    n_epochs = epochs_for(settings, steps_per_epoch)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    total = max(steps_per_epoch * n_epochs, 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, pct_start=0.15,
                                                total_steps=total)
    stats = [node_statistics(model, p.data) for p in parts]
    best = {"ap": -1.0, "state": None, "epoch": 0, "metrics": {}, "threshold": 0.5}
    ema = WeightAverage(model, settings.ema) if settings.ema > 0 else None
    history, epoch_times, nodes_seen, seeds_seen = [], [], 0, 0
    bad = 0
    for epoch in range(n_epochs):
        t0 = time.perf_counter()
        model.train()
        batches = epoch_batches(parts, settings.batch_size, rng)
        losses = []
        for step, (part, seeds) in enumerate(batches[:steps_per_epoch]):
            data, table = parts[part].data, (parts[part].data.idx, parts[part].data.mask)
            if model.gnn is not None and len(fanout):
                sub = sample_subgraph(table, seeds, fanout, rng)
            else:
                sub = full_neighbourhood(table, seeds, 0)
            t = data.subgraph_tensors(sub, device, stats[part])
            logits = subgraph_logits(model, t)[:len(seeds)]
            target = torch.from_numpy(ys[part][seeds]).to(device)
            weight = torch.where(target > 0.5, w_rel, w_unrel)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target, weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            losses.append(loss.item())
            nodes_seen += len(sub.nodes)
            seeds_seen += len(seeds)
            if on_step is not None:
                on_step(step + 1, steps_per_epoch, float(np.mean(losses)))
        live = ema.swap_in(model) if ema is not None else None
        p_val = np.concatenate([predict_points(model, p.data, np.flatnonzero(p.val),
                                               device=device) for p in parts])
        thr = tune_threshold(y_val, p_val)
        metrics = reliability_metrics(y_val, p_val, thr)
        epoch_times.append(time.perf_counter() - t0)
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), **{f"val_{k}": v for k, v in
               metrics.items()}, "seconds": epoch_times[-1]}
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
        if metrics["average_precision"] > best["ap"] + 1e-4:
            best = {"ap": metrics["average_precision"], "epoch": epoch + 1, "metrics": metrics,
                    "threshold": thr,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            bad = 0
        else:
            bad += 1
        if live is not None:   # training goes on from the live weights
            model.load_state_dict(live)
        if bad >= settings.patience:
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return FitResult(model=model, threshold=float(best["threshold"]), val_metrics=best["metrics"],
                     history=history, best_epoch=best["epoch"],
                     seconds_per_epoch=float(np.median(epoch_times)) if epoch_times else 0.0,
                     nodes_per_seed=nodes_seen / max(seeds_seen, 1))


class WeightAverage:
    """Exponential moving average of a model's floating-point weights (Polyak averaging):
    ``w̄ ← d·w̄ + (1 − d)·w`` after every step. Validated and kept instead of the last weights,
    it smooths the noise of small batches and usually generalises better."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(self.decay).add_(v.detach(), alpha=1.0 - self.decay)
            else:
                self.state[k].copy_(v)

    def swap_in(self, model: nn.Module) -> dict:
        """Load the averaged weights; returns the live ones, to be loaded back."""
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        return live


def new_model(cfg: ModelConfig, seed: int, patches: np.ndarray | None = None,
              data: GraphData | None = None) -> ReliabilityModel:
    """A freshly initialised model; ``patches`` (training patches) fit its patch summary's
    standardisation (a fixed, evenly spaced subset of at most 8,192, so the result is
    deterministic); for a shared-map model, ``data`` (with its raster) fits the summary maps
    at the same subset of training points."""
    torch.manual_seed(seed)
    model = ReliabilityModel(cfg)
    summary = getattr(model.pointwise, "summary", None)

    def subset(n: int) -> np.ndarray:
        return np.unique(np.linspace(0, n - 1, min(n, 8192)).astype(int))

    if model.shared_map:
        if summary is not None and data is not None and data.raster is not None:
            rows = subset(len(data.x_m))
            summary.fit(data.raster, np.stack([data.rows_px[rows], data.cols_px[rows]], 1))
    elif summary is not None and patches is not None and len(patches):
        summary.fit(patches[subset(len(patches))])
    return model
