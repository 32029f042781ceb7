"""GATv2 attention layer (``torch_geometric.nn.GATv2Conv``) on a neighbour table."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psirel.models.neighbours import gather, masked_mean, masked_softmax


class GATv2Layer(nn.Module):
    r"""The GATv2 operator from `"How Attentive are Graph Attention Networks?"
    <https://arxiv.org/abs/2105.14491>`_ (Brody et al., 2022), with the semantics of
    ``torch_geometric.nn.GATv2Conv(..., add_self_loops=True, fill_value="mean")``.

    For node :math:`i` with neighbour slots :math:`k = 1..K` (:math:`j = \mathrm{idx}_{ik}`, valid
    where :math:`m_{ik}`), plus a self loop :math:`j = i` in slot :math:`K`, per head:

    .. math::
        s_{ik} &= \mathbf{a}^\top \mathrm{LeakyReLU}\big(\mathbf{W}_r\mathbf{x}_i
                  + \mathbf{W}_l\mathbf{x}_j + \mathbf{W}_e\mathbf{e}_{ik}\big), \qquad
        \alpha_{ik} = \operatorname{softmax}_{k:\,m_{ik}}(s_{ik}) \\
        \mathbf{x}'_i &= \sum_{k:\,m_{ik}} \alpha_{ik}\,\mathbf{W}_l\mathbf{x}_j + \mathbf{b}

    heads concatenated or averaged (then the bias). The self loop's edge feature is the mean of
    the node's valid incoming edge features, :math:`\mathbf{e}_{ii} = \frac{1}{|N(i)|}
    \sum_k m_{ik}\mathbf{e}_{ik}`, and 0 for a node without neighbours: that is what PyG's
    ``add_self_loops(fill_value="mean")`` computes with a scatter-mean, which yields 0 for an
    empty group. Such a node still attends to itself: :math:`\mathbf{x}'_i = \mathbf{W}_l
    \mathbf{x}_i + \mathbf{b}`. Slots with :math:`j = i` are masked out first, like PyG's
    ``remove_self_loops``.

    Args:
        in_channels (int): input features F.
        out_channels (int): features C per head.
        heads (int): attention heads H. (default: 1)
        edge_dim (int, optional): edge feature size E; ``None`` for none. (default: ``None``)
        concat (bool): concatenate heads (output H·C), else average (output C). (default: True)
        add_self_loops (bool): attend to the node itself. (default: True)
        negative_slope (float): LeakyReLU slope. (default: 0.2)
        share_weights (bool): :math:`\mathbf{W}_r = \mathbf{W}_l`. (default: False)
        dropout (float): dropout on the attention weights in training. (default: 0)
        bias (bool): biases of :math:`\mathbf{W}_l, \mathbf{W}_r` and the output. (default: True)

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
        add_self_loops: bool = True,
        negative_slope: float = 0.2,
        share_weights: bool = False,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.edge_dim, self.concat, self.add_self_loops = edge_dim, concat, add_self_loops
        self.negative_slope, self.share_weights = negative_slope, share_weights
        self.dropout = dropout
        hc = heads * out_channels
        self.lin_l = nn.Linear(in_channels, hc, bias=bias)
        self.lin_r = self.lin_l if share_weights else nn.Linear(in_channels, hc, bias=bias)
        self.att = nn.Parameter(torch.empty(1, heads, out_channels))
        self.lin_edge = nn.Linear(edge_dim, hc, bias=False) if edge_dim is not None else None
        self.bias = nn.Parameter(torch.empty(hc if concat else out_channels)) if bias else None
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return self.heads * self.out_channels if self.concat else self.out_channels

    def reset_parameters(self) -> None:
        # Glorot everywhere, zero biases: PyG's initialisation of this layer.
        for lin in (self.lin_l, self.lin_r, self.lin_edge):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.att.view(self.heads, self.out_channels))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, idx: Tensor, mask: Tensor, edge_attr: Tensor | None = None
                ) -> Tensor:
        n, k = idx.shape
        H, C = self.heads, self.out_channels
        x_l = self.lin_l(x).view(-1, H, C)  # source side (messages)
        x_r = x_l if self.share_weights else self.lin_r(x).view(-1, H, C)  # target side
        x_j = gather(x_l, idx)  # [N, K, H, C]
        e = None
        if self.lin_edge is not None:
            if edge_attr is None:
                raise ValueError("this layer was built with edge_dim: pass edge_attr")
            e = edge_attr
        if self.add_self_loops:
            mask = mask & (idx != torch.arange(n, device=idx.device).unsqueeze(1))
            x_j = torch.cat([x_j, x_l.unsqueeze(1)], dim=1)  # slot K = the node itself
            if e is not None:
                e = torch.cat([e, masked_mean(e, mask).unsqueeze(1)], dim=1)
            mask = torch.cat([mask, mask.new_ones(n, 1)], dim=1)
        z = x_r.unsqueeze(1) + x_j
        if e is not None:
            z = z + self.lin_edge(e).view(n, -1, H, C)
        scores = (F.leaky_relu(z, self.negative_slope) * self.att).sum(-1)  # [N, K(+1), H]
        alpha = F.dropout(masked_softmax(scores, mask), p=self.dropout, training=self.training)
        out = (alpha.unsqueeze(-1) * x_j).sum(dim=1)  # [N, H, C]
        out = out.reshape(n, H * C) if self.concat else out.mean(dim=1)
        return out + self.bias if self.bias is not None else out

    @classmethod
    def load_from_pyg(cls, conv) -> GATv2Layer:
        """A layer with the configuration and weights of a PyG ``GATv2Conv``."""
        if not isinstance(conv.in_channels, int):
            raise ValueError("bipartite GATv2Conv (tuple in_channels) is not supported")
        if conv.add_self_loops and conv.fill_value != "mean":
            raise ValueError(f"only fill_value='mean' is implemented, not {conv.fill_value!r}")
        if getattr(conv, "res", None) is not None:
            raise ValueError("GATv2Conv(residual=True) is not implemented")
        layer = cls(conv.in_channels, conv.out_channels, conv.heads, conv.edge_dim, conv.concat,
                    conv.add_self_loops, conv.negative_slope, conv.share_weights, conv.dropout,
                    bias=conv.bias is not None)
        layer.to(next(conv.parameters()).dtype).load_state_dict(conv.state_dict())
        return layer

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, edge_dim={self.edge_dim}, concat={self.concat})")
