"""The full reliability model: pointwise encoder → (graph encoder) → head → logit per point.

Inference runs it as two stages (DESIGN.md §1): :meth:`ReliabilityModel.embed` on chunks of
patches (stage 1, embeddings persisted), then :meth:`ReliabilityModel.graph_logits` over the
neighbour table (stage 2). :class:`GraphStage` wraps stage 2 as one module for export.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from psirel.models.convnext import convnext_flops
from psirel.models.gnn import KINDS, GNNEncoder, ReliabilityHead
from psirel.models.neighbours import masked_median
from psirel.models.pointwise import FUSIONS, PointwiseEncoder
from psirel.models.shared_map import SharedMapEncoder

GNN_KINDS = (*KINDS, "none")
ENCODERS = ("patch", "shared-map")


@dataclass
class ModelConfig:
    """Every architecture hyper-parameter of :class:`ReliabilityModel` (stored in model.json).

    ``gnn="none"`` is the pointwise-only variant (embedding → head). ``head_skip`` feeds the head
    the point's own embedding beside the GNN output (``[emb, gnn(emb)]``), so the graph only has
    to add what the neighbours know and the full model starts from the pointwise solution.
    ``edge_summary`` adds to each embedding, before the GNN, a projection of its edges' masked
    mean and minimum of |edge features| and its degree (see :class:`EdgeSummary`);
    ``edge_summary_signed`` adds the signed means and the Δheight·Δvelocity product;
    ``edge_summary_robust`` the medians and median absolute deviations (False for models saved
    before they existed).
    ``patch_summary`` feeds the scalar branch the patch's summary statistics
    (:class:`~psirel.models.patch_summary.PatchSummary`); False for models saved before it existed.
    ``encoder`` is ``"patch"`` (an 80×80 patch per point, :class:`PointwiseEncoder`) or
    ``"shared-map"`` (one CNN pass per raster window, sampled at the points,
    :class:`~psirel.models.shared_map.SharedMapEncoder`; ``fusion`` must be concat and
    ``patch_summary`` computes the statistics as maps, :mod:`psirel.models.summary_maps`).
    ``patch_px`` is the patch side in pixels the model is built for (export shapes and the FLOP
    count; the ConvNeXt itself accepts any side ≥ 32).
    ``temporal`` embeds the scalars' temporal block (:mod:`psirel.features.temporal`, columns
    ``[temporal_start, temporal_start + Q + 2L + E)`` with ``Q, L, E = temporal_quantiles,
    temporal_lags, temporal_extra``) with a :class:`~psirel.models.temporal.TemporalEncoder`
    of width ``temporal_dim`` before the scalar MLP; False for models saved before it existed.
    """

    n_lulc: int
    n_scalars: int
    lulc_dim: int = 4
    emb_dim: int = 64
    fusion: str = "concat"
    depths: tuple[int, ...] = (2, 2, 4, 2)
    dims: tuple[int, ...] = (12, 24, 48, 96)
    scalar_hidden: int = 32
    drop_path_rate: float = 0.0
    gnn: str = "unimp"
    gnn_hidden: int = 64
    gnn_layers: int = 2
    heads: int = 4
    edge_dim: int = 5
    dropout: float = 0.1
    head_hidden: int | None = None
    head_skip: bool = True
    edge_summary: bool = True
    edge_summary_signed: bool = False
    edge_summary_robust: bool = False
    patch_summary: bool = False
    encoder: str = "patch"
    patch_px: int = 80
    temporal: bool = False
    temporal_start: int = 0
    temporal_quantiles: int = 16
    temporal_lags: int = 6
    temporal_extra: int = 5
    temporal_dim: int = 32

    def __post_init__(self) -> None:
        self.depths = tuple(int(d) for d in self.depths)
        self.dims = tuple(int(d) for d in self.dims)
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, not {self.fusion!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, not {self.encoder!r}")
        if self.encoder == "shared-map" and self.fusion != "concat":
            raise ValueError("the shared-map encoder fuses by concatenation only")
        if self.gnn not in GNN_KINDS:
            raise ValueError(f"gnn must be one of {GNN_KINDS}, not {self.gnn!r}")
        if len(self.depths) != len(self.dims):
            raise ValueError(f"depths {self.depths} and dims {self.dims} differ in length")
        n_block = self.temporal_quantiles + 2 * self.temporal_lags + self.temporal_extra
        if self.temporal and not 0 <= self.temporal_start <= self.n_scalars - n_block:
            raise ValueError(f"temporal block [{self.temporal_start}, "
                             f"{self.temporal_start + n_block}) lies outside the "
                             f"{self.n_scalars} scalar columns")
        if self.gnn in ("unimp", "gatv2") and self.gnn_hidden % self.heads:
            raise ValueError(f"gnn_hidden ({self.gnn_hidden}) must be a multiple of heads "
                             f"({self.heads})")

    def temporal_kwargs(self) -> dict:
        """The PW encoders' temporal arguments."""
        return {k: getattr(self, k) for k in (
            "temporal", "temporal_start", "temporal_quantiles", "temporal_lags",
            "temporal_extra", "temporal_dim")}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["depths"], d["dims"] = list(self.depths), list(self.dims)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


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
        big = torch.full_like(a, 1e4)
        mn = torch.where(mask.unsqueeze(-1), a, big).min(dim=1).values
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
        if cfg.encoder == "shared-map":
            self.pointwise = SharedMapEncoder(
                n_lulc=cfg.n_lulc, n_scalars=cfg.n_scalars, lulc_dim=cfg.lulc_dim,
                emb_dim=cfg.emb_dim, depths=cfg.depths, dims=cfg.dims,
                scalar_hidden=cfg.scalar_hidden, drop_path_rate=cfg.drop_path_rate,
                summary=cfg.patch_summary, **cfg.temporal_kwargs())
        else:
            self.pointwise = PointwiseEncoder(
                n_lulc=cfg.n_lulc, n_scalars=cfg.n_scalars, lulc_dim=cfg.lulc_dim,
                emb_dim=cfg.emb_dim, fusion=cfg.fusion, depths=cfg.depths, dims=cfg.dims,
                scalar_hidden=cfg.scalar_hidden, drop_path_rate=cfg.drop_path_rate,
                patch_summary=cfg.patch_summary, **cfg.temporal_kwargs(),
            )
        self.edge_summary = None
        if cfg.gnn == "none":
            self.gnn = None
            head_in = cfg.emb_dim
        else:
            self.gnn = GNNEncoder(cfg.emb_dim, cfg.gnn_hidden, cfg.gnn_layers, cfg.gnn,
                                  cfg.heads, cfg.edge_dim, cfg.dropout)
            head_in = cfg.gnn_hidden + (cfg.emb_dim if cfg.head_skip else 0)
            if cfg.edge_summary:
                self.edge_summary = EdgeSummary(cfg.edge_dim, cfg.emb_dim,
                                                signed=cfg.edge_summary_signed,
                                                robust=cfg.edge_summary_robust)
        self.head = ReliabilityHead(head_in, cfg.head_hidden, cfg.dropout)

    @property
    def shared_map(self) -> bool:
        return self.cfg.encoder == "shared-map"

    def embed(self, patches: Tensor, scalars: Tensor) -> Tensor:
        """Stage 1 (patch encoder): ``[B, 4, P, P]``, ``[B, S]`` → embeddings ``[B, emb_dim]``."""
        if self.shared_map:
            raise TypeError("a shared-map model embeds windows: use embed_window")
        return self.pointwise(patches, scalars)

    def embed_window(self, window: Tensor, rc: Tensor, scalars: Tensor) -> Tensor:
        """Stage 1 (shared-map encoder): window ``[1, 4, H, W]``, positions ``[B, 2]``,
        scalars ``[B, S]`` → embeddings ``[B, emb_dim]``."""
        if not self.shared_map:
            raise TypeError("a patch model embeds patches: use embed")
        return self.pointwise(window, rc, scalars)

    def graph_logits(self, emb: Tensor, idx: Tensor | None = None, mask: Tensor | None = None,
                     edge_attr: Tensor | None = None, stats: Tensor | None = None) -> Tensor:
        """Stage 2: embeddings ``[N, D]`` + neighbour table → logits ``[N]``; ``stats``: the
        edge summary's statistics of the nodes on the full graph, if computed beforehand."""
        return self.graph_stage()(emb, idx, mask, edge_attr, stats)

    def graph_stage(self) -> GraphStage:
        """Stage 2 as a module sharing this model's weights (for ONNX export)."""
        return GraphStage(self.gnn, self.head, self.cfg.head_skip, self.edge_summary)

    def forward(self, patches: Tensor, scalars: Tensor, idx: Tensor | None = None,
                mask: Tensor | None = None, edge_attr: Tensor | None = None) -> Tensor:
        return self.graph_logits(self.embed(patches, scalars), idx, mask, edge_attr)

    def flops_per_patch(self) -> int:
        """Analytic ConvNeXt FLOPs for one ``patch_px`` patch (see :func:`convnext_flops`)."""
        return convnext_flops(3 + self.cfg.lulc_dim, self.cfg.depths, self.cfg.dims,
                              self.cfg.patch_px)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shared tensors counted once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
