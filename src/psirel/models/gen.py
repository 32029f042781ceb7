"""DeeperGCN's GEN layer (``torch_geometric.nn.GENConv``) and res+ block on a neighbour table."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psirel.models.neighbours import gather, masked_softmax

NORMS = ("batch", "layer", "none")


class GENMLP(nn.Sequential):
    """GENConv's MLP, laid out as PyG's (``torch_geometric.nn.conv.gen_conv.MLP``) so the state
    dicts match: Linear, then [norm] → ReLU → Dropout after every Linear but the last.

    Shapes: ``[N, channels[0]]`` → ``[N, channels[-1]]``.
    """

    def __init__(self, channels: list[int], norm: str | None = "batch", bias: bool = False,
                 dropout: float = 0.0):
        if norm not in NORMS and norm is not None:
            raise ValueError(f"norm must be one of {NORMS}, not {norm!r}")
        m: list[nn.Module] = []
        for i in range(1, len(channels)):
            m.append(nn.Linear(channels[i - 1], channels[i], bias=bias))
            if i < len(channels) - 1:
                if norm == "batch":
                    m.append(nn.BatchNorm1d(channels[i]))
                elif norm == "layer":
                    m.append(nn.LayerNorm(channels[i]))
                m += [nn.ReLU(), nn.Dropout(dropout)]
        super().__init__(*m)

    def reset_parameters(self) -> None:
        for m in self:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()


class GENLayer(nn.Module):
    r"""The GENeralized graph convolution from `"DeeperGCN: All You Need to Train Deeper GCNs"
    <https://arxiv.org/abs/2006.07739>`_ (Li et al., 2020), with the semantics of
    ``torch_geometric.nn.GENConv(..., aggr="softmax", learn_t=...)``.

    For node :math:`i` with neighbour slots :math:`k` (:math:`j = \mathrm{idx}_{ik}`, valid where
    :math:`m_{ik}`), per channel :math:`c`:

    .. math::
        \mathbf{m}_{ik} &= \mathrm{ReLU}\big(\mathbf{W}_s\mathbf{x}_j
                           + \mathbf{W}_e\mathbf{e}_{ik}\big) + \epsilon \\
        \alpha_{ikc} &= \operatorname{softmax}_{k:\,m_{ik}}(t\, m_{ikc}), \qquad
        \mathbf{x}'_i = \mathrm{MLP}\Big(\sum_{k:\,m_{ik}} \boldsymbol\alpha_{ik}\odot
                        \mathbf{m}_{ik} + \mathbf{W}_d\mathbf{x}_i\Big)

    with a (learnable) inverse temperature :math:`t`: :math:`t \to 0` is a mean, :math:`t \to
    \infty` a max. As in PyG, :math:`\mathbf{W}_s, \mathbf{W}_d` exist only when
    ``in_channels != out_channels`` (identity otherwise) and :math:`\mathbf{W}_e` only when
    ``edge_dim != out_channels``. An empty row aggregates to 0. The MLP has ``num_layers``
    Linear maps, widths ``out → expansion·out → … → out``, each but the last followed by the
    norm and ReLU.

    ``norm="layer"`` (``nn.LayerNorm``) acts on each node alone. ``norm="batch"`` mixes the
    nodes of a batch in training, but is per node in eval mode, so tiled inference stays exact.

    Args:
        in_channels (int): input features F.
        out_channels (int): output features C.
        aggr (str): only ``"softmax"``. (default: ``"softmax"``)
        t (float): initial inverse temperature. (default: 1.0)
        learn_t (bool): learn :math:`t`. (default: True)
        num_layers (int): Linear maps in the MLP. (default: 2)
        norm (str): ``"batch"``, ``"layer"`` or ``"none"`` in the MLP. (default: ``"batch"``)
        edge_dim (int, optional): edge feature size E; ``None`` for none. (default: ``None``)
        expansion (int): MLP hidden width factor. (default: 2)
        eps (float): added to every message. (default: 1e-7)
        bias (bool): biases of the Linear maps. (default: False)

    Shapes:
        x ``[N, F]``, idx ``[N, K]`` int64, mask ``[N, K]`` bool, edge_attr ``[N, K, E]``
        → ``[N, C]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggr: str = "softmax",
        t: float = 1.0,
        learn_t: bool = True,
        num_layers: int = 2,
        norm: str | None = "batch",
        edge_dim: int | None = None,
        expansion: int = 2,
        eps: float = 1e-7,
        bias: bool = False,
    ):
        super().__init__()
        if aggr != "softmax":
            raise ValueError(f"only aggr='softmax' is implemented, not {aggr!r}")
        self.in_channels, self.out_channels, self.edge_dim = in_channels, out_channels, edge_dim
        self.aggr, self.learn_t, self.t_init, self.eps, self.norm = aggr, learn_t, t, eps, norm
        self.lin_src = nn.Linear(in_channels, out_channels, bias=bias) \
            if in_channels != out_channels else None
        self.lin_edge = nn.Linear(edge_dim, out_channels, bias=bias) \
            if edge_dim is not None and edge_dim != out_channels else None
        self.lin_dst = nn.Linear(in_channels, out_channels, bias=bias) \
            if in_channels != out_channels else None
        if learn_t:
            self.t = nn.Parameter(torch.empty(1))
        else:
            self.t = t
        channels = [out_channels] + [out_channels * expansion] * (num_layers - 1) + [out_channels]
        self.mlp = GENMLP(channels, norm=norm, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_src, self.lin_edge, self.lin_dst):
            if lin is not None:
                lin.reset_parameters()
        if isinstance(self.t, nn.Parameter):
            nn.init.constant_(self.t, self.t_init)
        self.mlp.reset_parameters()

    def forward(self, x: Tensor, idx: Tensor, mask: Tensor, edge_attr: Tensor | None = None
                ) -> Tensor:
        x_src = self.lin_src(x) if self.lin_src is not None else x
        msg = gather(x_src, idx)  # [N, K, C]
        if self.edge_dim is not None:
            if edge_attr is None:
                raise ValueError("this layer was built with edge_dim: pass edge_attr")
            msg = msg + (self.lin_edge(edge_attr) if self.lin_edge is not None else edge_attr)
        msg = F.relu(msg) + self.eps
        alpha = masked_softmax(msg * self.t, mask)  # per channel
        out = (alpha * msg).sum(dim=1)  # empty slots have alpha = 0
        out = out + (self.lin_dst(x) if self.lin_dst is not None else x)
        return self.mlp(out)

    @classmethod
    def load_from_pyg(cls, conv, edge_dim: int | None = None) -> GENLayer:
        """A layer with the configuration and weights of a PyG ``GENConv``.

        Supports ``aggr="softmax"`` without message norm, MLP norms batch, layer or none.
        ``edge_dim`` is read from ``conv.lin_edge``; pass it when it equals ``out_channels``
        (GENConv then adds the raw edge features and keeps no record of their size).
        """
        from torch_geometric.nn.aggr import SoftmaxAggregation

        agg = conv.aggr_module
        if not isinstance(agg, SoftmaxAggregation) or agg.channels != 1 or agg.semi_grad:
            raise ValueError(f"only a plain SoftmaxAggregation is supported, not {agg!r}")
        if hasattr(conv, "msg_norm") or hasattr(conv, "lin_aggr_out"):
            raise ValueError("GENConv with msg_norm or multi-aggregation is not supported")
        if not isinstance(conv.in_channels, int):
            raise ValueError("bipartite GENConv (tuple in_channels) is not supported")
        kinds = {type(m).__name__ for m in conv.mlp}
        if "InstanceNorm1d" in kinds:
            raise ValueError("GENConv(norm='instance') is not supported")
        norm = "batch" if "BatchNorm1d" in kinds else "layer" if "LayerNorm" in kinds else "none"
        lin0 = conv.mlp[0]
        n_lins = sum(type(m).__name__ == "Linear" for m in conv.mlp)
        if hasattr(conv, "lin_edge"):
            edge_dim = conv.lin_edge.in_channels
        layer = cls(conv.in_channels, conv.out_channels, t=agg._init_t, learn_t=agg.learn,
                    num_layers=n_lins, norm=norm, edge_dim=edge_dim,
                    expansion=lin0.out_channels // conv.out_channels, eps=conv.eps,
                    bias=lin0.bias is not None)
        if not agg.learn:
            layer.t = float(agg.t)
        state = {}
        for key, value in conv.state_dict().items():
            state["t" if key == "aggr_module.t" else key] = value
        layer.to(next(conv.parameters()).dtype).load_state_dict(state)
        return layer

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"aggr={self.aggr!r}, learn_t={self.learn_t}, edge_dim={self.edge_dim}, "
                f"norm={self.norm!r})")


class DeepGCNBlock(nn.Module):
    r"""The res+ block of DeeperGCN (``torch_geometric.nn.DeepGCNLayer(block="res+")``), from
    `"DeepGCNs: Can GCNs Go as Deep as CNNs?" <https://arxiv.org/abs/1904.03751>`_ and
    `"DeeperGCN" <https://arxiv.org/abs/2006.07739>`_: pre-activation residual

    .. math:: \mathbf{x}' = \mathbf{x} + \mathrm{conv}\big(\mathrm{Dropout}(\mathrm{act}(
              \mathrm{norm}(\mathbf{x})))\big)

    Args:
        conv (nn.Module): a neighbour-table layer ``conv(x, idx, mask, edge_attr)`` mapping
            F → F features.
        norm (nn.Module, optional): normalisation of the input. (default: ``None``)
        act (nn.Module, optional): activation. (default: ``None``)
        dropout (float): dropout before the conv. (default: 0)

    Shapes: x ``[N, F]``, idx/mask ``[N, K]``, edge_attr ``[N, K, E]`` → ``[N, F]``.
    """

    def __init__(self, conv: nn.Module, norm: nn.Module | None = None,
                 act: nn.Module | None = None, dropout: float = 0.0):
        super().__init__()
        self.conv, self.norm, self.act, self.dropout = conv, norm, act, dropout

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, x: Tensor, idx: Tensor, mask: Tensor, edge_attr: Tensor | None = None
                ) -> Tensor:
        h = self.norm(x) if self.norm is not None else x
        h = self.act(h) if self.act is not None else h
        h = F.dropout(h, p=self.dropout, training=self.training)
        return x + self.conv(h, idx, mask, edge_attr)

    def extra_repr(self) -> str:
        return "block='res+'"
