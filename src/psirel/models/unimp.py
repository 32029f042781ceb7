"""UniMP graph transformer layer (``torch_geometric.nn.TransformerConv``) on a neighbour table."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psirel.models.neighbours import gather, masked_softmax


class UniMPConv(nn.Module):
    r"""The graph transformer operator from `"Masked Label Prediction: Unified Message Passing
    Model for Semi-Supervised Classification" <https://arxiv.org/abs/2009.03509>`_
    (Shi et al., 2021), with the semantics of ``torch_geometric.nn.TransformerConv``.

    For node :math:`i` with neighbour slots :math:`k = 1..K` (neighbour
    :math:`j = \mathrm{idx}_{ik}`, valid where :math:`m_{ik}`), per head of width :math:`C`:

    .. math::
        \mathbf{e}_{ik} &= \mathbf{W}_e\,\mathrm{edge\_attr}_{ik} \\
        \alpha_{ik} &= \operatorname{softmax}_{k:\,m_{ik}}\!\left(
            \frac{(\mathbf{W}_q\mathbf{x}_i)^\top(\mathbf{W}_k\mathbf{x}_j + \mathbf{e}_{ik})}
                 {\sqrt{C}}\right) \\
        \mathbf{o}_i &= \sum_{k:\,m_{ik}} \alpha_{ik}\,(\mathbf{W}_v\mathbf{x}_j + \mathbf{e}_{ik})

    heads concatenated (``concat=True``) or averaged. With ``root_weight`` and ``beta`` the skip
    connection is gated:

    .. math::
        \mathbf{r}_i = \mathbf{W}_s\mathbf{x}_i, \quad
        \beta_i = \sigma\!\left(\mathbf{w}_\beta^\top[\mathbf{o}_i \,\Vert\, \mathbf{r}_i
                  \,\Vert\, \mathbf{o}_i - \mathbf{r}_i]\right), \quad
        \mathbf{x}'_i = \beta_i\,\mathbf{r}_i + (1 - \beta_i)\,\mathbf{o}_i

    (without ``beta``: :math:`\mathbf{x}'_i = \mathbf{r}_i + \mathbf{o}_i`). A node with no valid
    neighbour gets :math:`\mathbf{o}_i = 0`, as PyG's scatter-sum gives it.

    Args:
        in_channels (int): input features F.
        out_channels (int): features C per head.
        heads (int): attention heads H. (default: 1)
        edge_dim (int, optional): edge feature size E; ``None`` for none. (default: ``None``)
        concat (bool): concatenate heads (output H·C), else average (output C). (default: True)
        beta (bool): gated residual (needs ``root_weight``). (default: True)
        root_weight (bool): add the transformed root features. (default: True)
        dropout (float): dropout on the attention weights in training. (default: 0)
        bias (bool): biases of the query/key/value/skip projections. (default: True)

    Shapes:
        x ``[N, F]``, idx ``[N, K]`` int64, mask ``[N, K]`` bool, edge_attr ``[N, K, E]``
        → ``[N, H·C]`` if ``concat`` else ``[N, C]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        edge_dim: int | None = None,
        concat: bool = True,
        beta: bool = True,
        root_weight: bool = True,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.edge_dim, self.concat, self.dropout = edge_dim, concat, dropout
        self.root_weight = root_weight
        self.beta = beta and root_weight
        hc = heads * out_channels
        self.lin_key = nn.Linear(in_channels, hc, bias=bias)
        self.lin_query = nn.Linear(in_channels, hc, bias=bias)
        self.lin_value = nn.Linear(in_channels, hc, bias=bias)
        self.lin_edge = nn.Linear(edge_dim, hc, bias=False) if edge_dim is not None else None
        out = hc if concat else out_channels
        self.lin_skip = nn.Linear(in_channels, out, bias=bias)
        self.lin_beta = nn.Linear(3 * out, 1, bias=False) if self.beta else None
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return self.heads * self.out_channels if self.concat else self.out_channels

    def reset_parameters(self) -> None:
        for lin in (self.lin_key, self.lin_query, self.lin_value, self.lin_edge, self.lin_skip,
                    self.lin_beta):
            if lin is not None:
                lin.reset_parameters()

    def forward(self, x: Tensor, idx: Tensor, mask: Tensor, edge_attr: Tensor | None = None
                ) -> Tensor:
        n, k = idx.shape
        H, C = self.heads, self.out_channels
        q = self.lin_query(x).view(n, 1, H, C)
        key = gather(self.lin_key(x), idx).view(n, k, H, C)  # project N nodes, then gather
        value = gather(self.lin_value(x), idx).view(n, k, H, C)
        if self.lin_edge is not None:
            if edge_attr is None:
                raise ValueError("this layer was built with edge_dim: pass edge_attr")
            e = self.lin_edge(edge_attr).view(n, k, H, C)
            key, value = key + e, value + e
        alpha = masked_softmax((q * key).sum(-1) / math.sqrt(C), mask)  # [N, K, H]
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = (alpha.unsqueeze(-1) * value).sum(dim=1)  # empty slots have alpha = 0
        out = out.reshape(n, H * C) if self.concat else out.mean(dim=1)
        if not self.root_weight:
            return out
        r = self.lin_skip(x)
        if self.lin_beta is None:
            return out + r
        b = torch.sigmoid(self.lin_beta(torch.cat([out, r, out - r], dim=-1)))
        return b * r + (1 - b) * out

    @classmethod
    def load_from_pyg(cls, conv) -> UniMPConv:
        """A layer with the configuration and weights of a PyG ``TransformerConv``."""
        if not isinstance(conv.in_channels, int):
            raise ValueError("bipartite TransformerConv (tuple in_channels) is not supported")
        layer = cls(conv.in_channels, conv.out_channels, conv.heads, conv.edge_dim, conv.concat,
                    conv.beta, conv.root_weight, conv.dropout, bias=conv.lin_key.bias is not None)
        layer.to(next(conv.parameters()).dtype).load_state_dict(conv.state_dict())
        return layer

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, edge_dim={self.edge_dim}, concat={self.concat})")
