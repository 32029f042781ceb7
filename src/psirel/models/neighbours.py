"""Gather and masked reductions over a neighbour table — the message-passing primitives.

A graph of bounded degree is stored as a neighbour table ``idx [N, K]`` (row ``i`` lists the
neighbours ``j`` that send messages ``j → i``; ``i`` itself is not listed) and ``mask [N, K]``
(False = empty slot, which still holds a valid index). Messages are gathered to ``[N, K, ...]``
and reduced over axis 1: no scatter, so the graph exports to ONNX as Gather + Reduce ops and any
block of rows can be computed on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Added to softmax denominators, as in ``torch_geometric.utils.softmax``: an empty row then
#: gets weights 0 / 1e-16 = 0 instead of 0 / 0.
SOFTMAX_EPS = 1e-16


def gather(x: Tensor, idx: Tensor) -> Tensor:
    """Neighbour features: ``x [N_src, ...]``, ``idx [N, K]`` → ``[N, K, ...]``."""
    return x[idx]


def _expand(mask: Tensor, like: Tensor) -> Tensor:
    return mask.reshape(mask.shape + (1,) * (like.dim() - mask.dim()))


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    r"""Softmax over the neighbour axis (1), restricted to the valid slots.

    .. math:: \alpha_{ik} = \frac{m_{ik}\exp(s_{ik} - \max_{k'} s_{ik'})}
                                 {\sum_{k'} m_{ik'}\exp(s_{ik'} - \max_{k'} s_{ik'}) + 10^{-16}}

    Empty slots get the dtype's most negative finite value, not ``-inf``: a fully masked row
    then has max = fill, finite differences, and weights exactly 0 — no NaN in the values or
    the gradients. The fill is added (``score + fill`` rounds to ``fill`` for any score below
    ~1e31) and the weights multiplied by the mask, rather than ``masked_fill``: the same
    numbers, but ONNX Runtime's broadcasting ``Where`` cost 7× a ``Mul`` (12 of them were a
    quarter of a 3-member UniMP ``gnn.onnx``).

    Shapes: ``scores [N, K, *]``, ``mask [N, K]`` → ``[N, K, *]``.
    """
    m = _expand(mask, scores).to(scores.dtype)
    s = scores + (1.0 - m) * torch.finfo(scores.dtype).min
    s_max = s.detach().amax(dim=1, keepdim=True)
    e = torch.exp(s - s_max) * m
    return e / (e.sum(dim=1, keepdim=True) + SOFTMAX_EPS)


def masked_sum(values: Tensor, mask: Tensor) -> Tensor:
    """Sum over the valid neighbour slots: ``[N, K, *]``, ``[N, K]`` → ``[N, *]``."""
    return values.masked_fill(~_expand(mask, values), 0.0).sum(dim=1)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over the valid slots, 0 for an empty row: ``[N, K, *]``, ``[N, K]`` → ``[N, *]``."""
    count = mask.sum(dim=1).clamp(min=1).to(values.dtype)
    return masked_sum(values, mask) / count.reshape(count.shape + (1,) * (values.dim() - 2))


def masked_median(values: Tensor, mask: Tensor) -> Tensor:
    """Median over the valid slots (the mean of the two middle values for an even count), 0 for
    an empty row: ``[N, K, *]``, ``[N, K]`` → ``[N, *]``.

    One sort with the empty slots pushed to the end, then a gather at ``(c − 1) // 2`` and
    ``c // 2`` for ``c`` valid slots: no NaN arithmetic, so it exports to ONNX (TopK +
    GatherElements) and agrees with ``numpy.nanmedian``. A median ignores the minority of bad
    neighbours that a mean, or a softmax-weighted sum, lets through.
    """
    valid = _expand(mask, values).expand_as(values)
    big = torch.finfo(values.dtype).max
    ordered = values.masked_fill(~valid, big).sort(dim=1).values
    count = valid.sum(dim=1, keepdim=True)                               # [N, 1, *]
    lo = (count - 1).clamp(min=0) // 2          # count ≤ K, so both lie in [0, K − 1]
    hi = count // 2
    med = 0.5 * ordered.gather(1, lo) + 0.5 * ordered.gather(1, hi)  # no overflow
    return torch.where(count > 0, med, torch.zeros_like(med)).squeeze(1)


def to_edge_index(idx: Tensor, mask: Tensor, edge_attr: Tensor | None = None):
    """Neighbour table → PyG COO ``edge_index [2, E]`` (row 0 = source j, row 1 = target i).

    Returns ``(edge_index, edge_attr [E, F] or None)``, the edges in row-major table order.
    """
    n, k = idx.shape
    dst = torch.arange(n, device=idx.device).unsqueeze(1).expand(n, k)
    edge_index = torch.stack([idx[mask], dst[mask]])
    return edge_index, (edge_attr[mask] if edge_attr is not None else None)
