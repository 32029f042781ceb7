"""Graph encoder over the neighbour table, and the reliability head.

Three layer families, selected by ``kind``; each stack is the form its paper trains:

- ``"unimp"``: UniMPConv (gated residual inside the layer) → LayerNorm → GELU → dropout.
- ``"gatv2"``: GATv2Layer + linear skip → LayerNorm → GELU → dropout (GAT has no root term
  besides the self loop; the skip keeps the node's own embedding within reach).
- ``"gen"``: DeeperGCN: input Linear, a first GENLayer, then res+ blocks (LayerNorm → ReLU →
  dropout → GENLayer → +x), then LayerNorm → ReLU → dropout, as in PyG's ogbn-proteins example.
  The GEN MLPs use per-node LayerNorm: no batch statistics, so train and eval agree.

Every layer reads only a node's row of the table, so L layers see L hops: tiled inference with
a halo of (L + 1)·r_max is exact (DESIGN.md §6).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from psirel.config import GNN_TYPES
from psirel.models.gatv2 import GATv2Layer
from psirel.models.gen import DeepGCNBlock, GENLayer
from psirel.models.unimp import UniMPConv

KINDS = tuple(GNN_TYPES)   # the registry of psirel.config


class GNNEncoder(nn.Module):
    """A stack of ``layers`` message-passing layers of one ``kind``.

    Args:
        in_dim (int): node input features D (the pointwise embedding).
        hidden (int): node output features; a multiple of ``heads`` for unimp/gatv2.
        layers (int): message-passing layers L. (default: 2)
        kind (str): ``"unimp"``, ``"gatv2"`` or ``"gen"``. (default: ``"unimp"``)
        heads (int): attention heads (unimp, gatv2), each ``hidden // heads`` wide. (default: 4)
        edge_dim (int): edge features E. (default: 5)
        dropout (float): feature dropout between layers. (default: 0)

    Shapes:
        h ``[N, D]``, idx ``[N, K]`` int64, mask ``[N, K]`` bool, edge_attr ``[N, K, E]``
        → ``[N, hidden]``.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int = 2, kind: str = "unimp",
                 heads: int = 4, edge_dim: int = 5, dropout: float = 0.0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if layers < 1:
            raise ValueError(f"layers must be ≥ 1, not {layers}")
        if kind != "gen" and hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        self.in_dim, self.hidden, self.num_layers, self.kind = in_dim, hidden, layers, kind
        self.heads, self.edge_dim, self.dropout = heads, edge_dim, dropout
        self.convs = nn.ModuleList()
        self.skips = nn.ModuleList()
        self.norms = nn.ModuleList()
        if kind == "gen":
            self.encoder = nn.Linear(in_dim, hidden)
            for i in range(layers):
                conv = GENLayer(hidden, hidden, edge_dim=edge_dim, norm="layer", learn_t=True)
                self.convs.append(DeepGCNBlock(conv, nn.LayerNorm(hidden), nn.ReLU(), dropout)
                                  if i > 0 else conv)
            self.norms.append(nn.LayerNorm(hidden))
            return
        self.encoder = None
        for i in range(layers):
            d = in_dim if i == 0 else hidden
            if kind == "unimp":
                self.convs.append(UniMPConv(d, hidden // heads, heads, edge_dim, concat=True,
                                            beta=True, root_weight=True))
                self.skips.append(nn.Identity())  # the gated root term is inside the layer
            else:
                self.convs.append(GATv2Layer(d, hidden // heads, heads, edge_dim, concat=True))
                self.skips.append(nn.Linear(d, hidden, bias=False) if d != hidden
                                  else nn.Identity())
            self.norms.append(nn.LayerNorm(hidden))

    def reset_parameters(self) -> None:
        for m in [self.encoder, *self.convs, *self.skips, *self.norms]:
            if m is not None and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, h: Tensor, idx: Tensor, mask: Tensor, edge_attr: Tensor) -> Tensor:
        if self.encoder is not None:  # gen
            h = self.convs[0](self.encoder(h), idx, mask, edge_attr)
            for block in self.convs[1:]:
                h = block(h, idx, mask, edge_attr)
            return F.dropout(F.relu(self.norms[0](h)), self.dropout, self.training)
        for conv, skip, norm in zip(self.convs, self.skips, self.norms, strict=True):
            out = conv(h, idx, mask, edge_attr)
            if self.kind == "gatv2":
                out = out + skip(h)
            h = F.dropout(F.gelu(norm(out)), self.dropout, self.training)
        return h

    def extra_repr(self) -> str:  # keeps nn.Module's tree of children in repr()
        return (f"{self.in_dim}, {self.hidden}, layers={self.num_layers}, kind={self.kind!r}, "
                f"heads={self.heads}, edge_dim={self.edge_dim}")


class ReliabilityHead(nn.Module):
    """MLP from a node representation to the reliability logit (sigmoid → probability).

    Shapes: ``[N, in_dim]`` → ``[N]``.
    """

    def __init__(self, in_dim: int, hidden: int | None = None, dropout: float = 0.0):
        super().__init__()
        hidden = hidden or in_dim
        self.in_dim, self.hidden = in_dim, hidden
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 1))

    def reset_parameters(self) -> None:
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        return self.mlp(h).squeeze(-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_dim}, hidden={self.hidden})"
