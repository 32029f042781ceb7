"""The full reliability model: pointwise encoder → (graph encoder) → head → logit per point.

Inference runs it as two stages (DESIGN.md §1): :meth:`ReliabilityModel.embed` on chunks of
patches (stage 1, embeddings persisted), then :meth:`ReliabilityModel.graph_logits` over the
neighbour table (stage 2). :class:`GraphStage` wraps stage 2 as one module for export.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from psirel.config import ModelConfig
from psirel.models.convnext import convnext_flops
from psirel.models.gnn import GNNEncoder, ReliabilityHead
from psirel.models.neighbours import masked_median
from psirel.models.pointwise import PointwiseEncoder
from psirel.models.shared_map import SharedMapEncoder


class EdgeSummary(nn.Module):
    """Per-node summary of the incident edges, projected into the embedding space.

    ``s_i = [mean_j |e_ij|, min_j |e_ij|, deg_i / K]`` over valid slots (zeros for an isolated
    node); ``emb_i' = emb_i + W s_i``. The minimum answers "does any neighbour move like me?"
    (smallest series or velocity difference), which attention-weighted sums express poorly;
    expert weeding (StaMPS-like) relies on exactly such robust neighbour statistics.

    With ``signed``, ``s_i`` also holds the signed means ``mean_j e_ij`` (is the point above or
    below its neighbours, faster or slower) and the mean products of each pair of edge features
    selected by ``pairs`` (by default Δheight·Δvelocity: a velocity that changes with height
    among neighbours is the signature of a stratified atmosphere or a DEM error).

    With ``robust``, ``s_i`` also holds, for every edge feature, the median of ``e_ij``, the
    median of ``|e_ij|`` and the median absolute deviation ``median_j |e_ij − median_j e_ij|``.
    For Δvelocity these are the neighbour-consistency statistics of StaMPS-like weeding: the
    point's velocity against the median of its neighbours' (−median Δv), and the local spread
    of real motion (MAD), neither swayed by the minority of bad neighbours that shifts a mean.

    The statistics are parameter-free (:meth:`statistics`); training computes them once on the
    full neighbour table and passes them in, so a sampled subgraph sees the same values as
    inference on the whole graph.

    Shapes: emb ``[N, D]``, mask ``[N, K]``, edge_attr ``[N, K, E]`` → ``[N, D]``.
    """

    def __init__(self, edge_dim: int, emb_dim: int, signed: bool = False,
                 pairs: tuple[tuple[int, int], ...] = ((3, 4),), robust: bool = False):
        super().__init__()
        self.signed, self.robust = signed, robust
        self.pairs = tuple(p for p in pairs if max(p) < edge_dim) if signed else ()
        self.n_stats = (2 * edge_dim + 1 + ((edge_dim + len(self.pairs)) if signed else 0)
                        + (3 * edge_dim if robust else 0))
        self.proj = nn.Linear(self.n_stats, emb_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def statistics(self, mask: Tensor, edge_attr: Tensor) -> Tensor:
        """``s_i``: mask ``[N, K]``, edge_attr ``[N, K, E]`` → ``[N, n_stats]``."""
        m = mask.unsqueeze(-1).to(edge_attr.dtype)                      # [N, K, 1]
        a = edge_attr.abs()
        deg = m.sum(dim=1)                                               # [N, 1]
        mean = (a * m).sum(dim=1) / deg.clamp(min=1.0)
        mn = (a * m + (1.0 - m) * 1e4).min(dim=1).values        # empty slots: 1e4
        mn = torch.where(deg > 0, mn, torch.zeros_like(mn))
        parts = [mean, mn, deg / max(mask.shape[1], 1)]
        if self.signed:
            parts.append((edge_attr * m).sum(dim=1) / deg.clamp(min=1.0))
            for i, j in self.pairs:
                prod = edge_attr[..., i] * edge_attr[..., j] * m[..., 0]
                parts.append(prod.sum(dim=1, keepdim=True) / deg.clamp(min=1.0))
        if self.robust:
            med = masked_median(edge_attr, mask)                        # [N, E]
            parts += [med, masked_median(a, mask),
                      masked_median((edge_attr - med.unsqueeze(1)).abs(), mask)]
        return torch.cat(parts, dim=-1)

    def forward(self, emb: Tensor, mask: Tensor, edge_attr: Tensor,
                stats: Tensor | None = None) -> Tensor:
        """``stats``: :meth:`statistics` computed beforehand (training), or None."""
        if stats is None:
            stats = self.statistics(mask, edge_attr)
        return emb + self.proj(stats)


class GraphStage(nn.Module):
    """Stage 2 as one module: ``(emb [N, D], idx, mask, edge_attr) → logits [N]``."""

    def __init__(self, gnn: GNNEncoder | None, head: ReliabilityHead, skip: bool = False,
                 summary: EdgeSummary | None = None):
        super().__init__()
        self.gnn, self.head, self.skip, self.summary = gnn, head, skip, summary

    def forward(self, emb: Tensor, idx: Tensor | None = None, mask: Tensor | None = None,
                edge_attr: Tensor | None = None, stats: Tensor | None = None) -> Tensor:
        if self.gnn is None:
            return self.head(emb)
        if self.summary is not None:
            emb = self.summary(emb, mask, edge_attr, stats)
        h = self.gnn(emb, idx, mask, edge_attr)
        return self.head(torch.cat([emb, h], dim=-1) if self.skip else h)


class ReliabilityModel(nn.Module):
    """PointwiseEncoder → GNNEncoder (or nothing, ``gnn="none"``) → ReliabilityHead.

    Shapes:
        patches ``[N, 4, P, P]``, scalars ``[N, S]``, idx/mask ``[N, K]``, edge_attr
        ``[N, K, E]`` → logits ``[N]`` (the graph's nodes are the patches' points, in order).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        e, g, h = cfg.encoder, cfg.graph, cfg.head
        common = dict(n_lulc=cfg.n_lulc, n_scalars=cfg.n_scalars, lulc_dim=e.lulc_dim,
                      emb_dim=e.emb_dim, depths=e.depths, dims=e.dims,
                      scalar_hidden=e.scalar_hidden, drop_path_rate=e.drop_path_rate,
                      **e.temporal_kwargs())
        if e.kind == "shared-map":
            self.pointwise = SharedMapEncoder(summary=e.patch_summary, **common)
        else:
            self.pointwise = PointwiseEncoder(fusion=e.fusion, patch_summary=e.patch_summary,
                                              **common)
        self.edge_summary = None
        if not cfg.has_graph:
            self.gnn = None
            head_in = e.emb_dim
        else:
            self.gnn = GNNEncoder(e.emb_dim, g.hidden, g.layers, g.kind, g.heads, g.edge_dim,
                                  g.dropout)
            head_in = g.hidden + (e.emb_dim if h.skip else 0)
            if g.edge_summary:
                self.edge_summary = EdgeSummary(g.edge_dim, e.emb_dim,
                                                signed=g.edge_summary_signed,
                                                robust=g.edge_summary_robust)
        self.head = ReliabilityHead(head_in, h.hidden, h.dropout)

    @property
    def shared_map(self) -> bool:
        return self.cfg.encoder.kind == "shared-map"

    def embed(self, patches: Tensor, scalars: Tensor) -> Tensor:
        """Stage 1 (patch encoder): ``[B, 4, P, P]``, ``[B, S]`` → embeddings ``[B, emb_dim]``."""
        if self.shared_map:
            raise TypeError("a shared-map model embeds windows: use embed_window")
        return self.pointwise(patches, scalars)

    def embed_window(self, window: Tensor, rc: Tensor, scalars: Tensor,
                     summary_raw: Tensor | None = None) -> Tensor:
        """Stage 1 (shared-map encoder): window ``[1, 4, H, W]``, positions ``[B, 2]``,
        scalars ``[B, S]`` → embeddings ``[B, emb_dim]``; ``summary_raw``: the window's summary
        statistics at the points, if computed beforehand (see :meth:`summary_raw`)."""
        if not self.shared_map:
            raise TypeError("a patch model embeds patches: use embed")
        return self.pointwise(window, rc, scalars, summary_raw)

    def summary_raw(self, window: Tensor, rc: Tensor) -> Tensor | None:
        """The shared-map encoder's unstandardised summary statistics ``[B, F]`` (parameter-
        free: the same for every member of an ensemble), or None without summary maps."""
        summary = getattr(self.pointwise, "summary", None) if self.shared_map else None
        return None if summary is None else summary.raw(window, rc)

    def graph_logits(self, emb: Tensor, idx: Tensor | None = None, mask: Tensor | None = None,
                     edge_attr: Tensor | None = None, stats: Tensor | None = None) -> Tensor:
        """Stage 2: embeddings ``[N, D]`` + neighbour table → logits ``[N]``; ``stats``: the
        edge summary's statistics of the nodes on the full graph, if computed beforehand."""
        return self.graph_stage()(emb, idx, mask, edge_attr, stats)

    def graph_stage(self) -> GraphStage:
        """Stage 2 as a module sharing this model's weights (for ONNX export)."""
        return GraphStage(self.gnn, self.head, self.cfg.head.skip, self.edge_summary)

    def forward(self, patches: Tensor, scalars: Tensor, idx: Tensor | None = None,
                mask: Tensor | None = None, edge_attr: Tensor | None = None) -> Tensor:
        return self.graph_logits(self.embed(patches, scalars), idx, mask, edge_attr)

    def flops_per_patch(self) -> int:
        """Analytic ConvNeXt FLOPs for one ``patch_px`` patch (see :func:`convnext_flops`)."""
        e = self.cfg.encoder
        return convnext_flops(3 + e.lulc_dim, e.depths, e.dims, e.patch_px)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shared tensors counted once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
