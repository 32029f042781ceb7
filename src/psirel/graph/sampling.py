"""Neighbour sampling for training on the neighbour-table graph, and spatially compact seed batches.

An L-layer GNN's output at a seed depends on the seed's L-hop neighbourhood. Training draws, per
batch, a subgraph in the style of GraphSAGE (Hamilton et al., "Inductive Representation Learning on
Large Graphs", https://arxiv.org/abs/1706.02216): hop h keeps at most ``fanouts[h]`` neighbours of
each node first reached at hop h. PyG's ``NeighborLoader`` would do this but needs pyg-lib or
torch-sparse; this version is numpy only, vectorised per hop, and returns the same neighbour-table
form as ``psirel.graph.knn`` so the model runs unchanged on a subgraph or on the full graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from psirel.graph.hilbert import hilbert_index
from psirel.graph.knn import NeighbourTable

__all__ = ["Subgraph", "compact_batches", "full_neighbourhood", "sample_subgraph"]


@dataclass(eq=False)
class Subgraph:
    """A subgraph in neighbour-table form, with local indices.

    Attributes:
        nodes: ``[M]`` int64 global ids; the seeds first, in the order given, then the nodes first
            reached at hop 1 (by increasing id), then hop 2, and so on.
        n_seeds: number of seeds (``nodes[:n_seeds]``).
        idx: ``[M, w]`` int64 local indices into ``nodes`` (the row's own index where masked).
        mask: ``[M, w]`` bool. Rows of nodes at the last hop are all False (not expanded).
        hop: ``[M]`` int64 hop at which each node was first reached (0 for seeds).

    An L-layer model run on this table gives each seed the output it has on the full graph
    restricted to the sampled edges: a node first reached at hop h is needed at layer L − h and its
    row holds all its sampled neighbours, each reached at hop h + 1 or earlier.
    """

    nodes: np.ndarray
    n_seeds: int
    idx: np.ndarray
    mask: np.ndarray
    hop: np.ndarray

    @property
    def seeds(self) -> np.ndarray:
        """``[n_seeds]`` global ids of the seeds."""
        return self.nodes[: self.n_seeds]

    @property
    def n_nodes(self) -> int:
        return int(self.nodes.size)

    def to_edge_index(self) -> np.ndarray:
        """``[2, E]`` int64 local edge list (source j, target i), PyG's source-to-target flow."""
        rows, slots = np.nonzero(self.mask)
        return np.stack([self.idx[rows, slots], rows]).astype(np.int64)


def _table_arrays(table: NeighbourTable | tuple[np.ndarray, np.ndarray]):
    if isinstance(table, NeighbourTable):
        idx, mask = table.idx, table.mask
    else:
        idx, mask = table
    idx, mask = np.asarray(idx), np.asarray(mask, dtype=bool)
    if idx.ndim != 2 or mask.shape != idx.shape:
        raise ValueError(f"idx {idx.shape} and mask {mask.shape} must be one [N, k] shape")
    return idx, mask


def _check_seeds(seeds: np.ndarray, n: int) -> np.ndarray:
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or not (seeds.size == 0 or np.issubdtype(seeds.dtype, np.integer)):
        raise ValueError(f"seeds must be a 1-D integer array, got {seeds.dtype} {seeds.shape}")
    seeds = seeds.astype(np.int64)
    if seeds.size and (seeds.min() < 0 or seeds.max() >= n):
        raise ValueError(f"seeds must lie in [0, {n}); got {seeds.min()}..{seeds.max()}")
    if np.unique(seeds).size != seeds.size:
        raise ValueError("seeds must be distinct")
    return seeds


def _width(fanout: int, k: int) -> int:
    """Slots a hop keeps: all k for fan-out -1 or >= k."""
    fanout = int(fanout)
    if fanout == -1 or fanout >= k:
        return k
    if fanout < 1:
        raise ValueError(f"fan-outs are positive or -1 (all), got {fanout}")
    return fanout


def _in_sorted(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each of ``ids`` is in ``sorted_ids`` (sorted, unique)."""
    pos = np.searchsorted(sorted_ids, ids)
    found = pos < sorted_ids.size
    found[found] = sorted_ids[pos[found]] == ids[found]
    return found


def sample_subgraph(table: NeighbourTable | tuple[np.ndarray, np.ndarray], seeds: np.ndarray,
                    fanouts: Sequence[int], rng: np.random.Generator | None) -> Subgraph:
    """Sample the L-hop neighbourhood of ``seeds``, L = ``len(fanouts)``.

    Hop h (h = 1..L) expands the nodes first reached at hop h − 1: each keeps up to ``fanouts[h-1]``
    of its valid neighbours, drawn uniformly without replacement (all of them when it has no more;
    -1 or any fan-out >= k means all); neighbours not yet in the subgraph join it at hop h. Each
    node is expanded once, when first reached, and nodes of hop L are not expanded (masked rows).
    Kept neighbours stay in table order (by distance for a ``knn_table``).

    Args:
        table: the full graph, a ``NeighbourTable`` or ``(idx, mask)``, ``[N, k]``.
        seeds: ``[B]`` distinct global ids of the nodes whose outputs are wanted.
        fanouts: neighbours kept per node at each hop, outermost layer first as in PyG.
        rng: random generator; the sample is a function of its state. May be None when every
            fan-out means all.

    Returns:
        A ``Subgraph`` of width w = max over hops of min(fan-out, k) (k for -1).
    """
    idx, mask = _table_arrays(table)
    n, k = idx.shape
    seeds = _check_seeds(seeds, n)
    widths = [_width(f, k) for f in fanouts]
    if rng is None and any(w < k for w in widths):
        raise ValueError("sampling fewer than k neighbours needs an rng")
    width = max(widths, default=0)

    parts = [seeds]
    expanded = []  # per hop: (frontier's first local index, global neighbour ids, valid)
    known = np.unique(seeds)
    frontier, first = seeds, 0
    for w in widths:
        nb, ok = idx[frontier], mask[frontier]
        if w < k:
            # Random keys, invalid slots last: the first w slots are a uniform sample without
            # replacement of the valid ones (all of them when fewer than w).
            keys = rng.random(nb.shape)
            keys[~ok] = 2.0
            pick = np.sort(np.argsort(keys, axis=1, kind="stable")[:, :w], axis=1)
            nb, ok = np.take_along_axis(nb, pick, 1), np.take_along_axis(ok, pick, 1)
        expanded.append((first, nb, ok))
        reached = np.unique(nb[ok])
        new = reached[~_in_sorted(known, reached)]
        parts.append(new)
        known = np.union1d(known, new)
        first += frontier.size
        frontier = new

    nodes = np.concatenate(parts).astype(np.int64)
    hop = np.concatenate([np.full(p.size, h, np.int64) for h, p in enumerate(parts)])
    m = nodes.size
    order = np.argsort(nodes, kind="stable")
    sorted_nodes = nodes[order]
    own = np.arange(m, dtype=np.int64)
    sub_idx = np.repeat(own[:, None], width, axis=1)
    sub_mask = np.zeros((m, width), bool)
    for first, nb, ok in expanded:
        rows = own[first:first + nb.shape[0]]
        pos = np.minimum(np.searchsorted(sorted_nodes, nb), m - 1)
        w = nb.shape[1]
        sub_idx[rows, :w] = np.where(ok, order[pos], rows[:, None])
        sub_mask[rows, :w] = ok
    return Subgraph(nodes=nodes, n_seeds=int(seeds.size), idx=sub_idx, mask=sub_mask, hop=hop)


def full_neighbourhood(table: NeighbourTable | tuple[np.ndarray, np.ndarray], seeds: np.ndarray,
                       hops: int) -> Subgraph:
    """The complete ``hops``-hop neighbourhood of ``seeds`` (every fan-out = all): an L-layer model
    run on it gives the seeds exactly their full-graph outputs."""
    if hops < 0:
        raise ValueError(f"hops must be >= 0, got {hops}")
    return sample_subgraph(table, seeds, [-1] * hops, rng=None)


def compact_batches(x_m: np.ndarray, y_m: np.ndarray, train_mask: np.ndarray | None,
                    batch_size: int, rng: np.random.Generator, order: int = 16,
                    shuffle: bool = True) -> list[np.ndarray]:
    """Seed batches for one epoch, each a spatially compact run of points.

    Seeds close together share most of their neighbourhoods, so a compact batch's subgraph is
    small and its point encodings are reused. The seeds (the points where ``train_mask`` is True;
    all points if None) are sorted along a Hilbert curve over a grid that ``rng`` rotates and shifts
    every epoch, so that batch boundaries fall in new places each epoch, and cut into consecutive
    runs of ``batch_size`` (the last run may be shorter).

    Args:
        x_m, y_m: ``[N]`` projected coordinates, metres.
        train_mask: ``[N]`` bool, the points that may be seeds, or None for all.
        batch_size: seeds per batch.
        rng: random generator; the batches are a function of its state.
        order: the curve's grid is 2^order cells a side.
        shuffle: return the batches in random order (consecutive runs are neighbours in space;
            training on them in curve order would correlate successive gradient steps).

    Returns:
        int64 arrays of global point ids; every seed appears in exactly one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x_m and y_m must be 1-D arrays of one length; got {x.shape}, {y.shape}")
    if train_mask is None:
        seeds = np.arange(x.size, dtype=np.int64)
    else:
        train_mask = np.asarray(train_mask, dtype=bool)
        if train_mask.shape != x.shape:
            raise ValueError(f"train_mask {train_mask.shape} must be {x.shape}")
        seeds = np.flatnonzero(train_mask).astype(np.int64)
    if seeds.size == 0:
        return []

    theta = rng.uniform(0.0, 2.0 * np.pi)
    c, s = np.cos(theta), np.sin(theta)
    u = c * x[seeds] + s * y[seeds]
    v = -s * x[seeds] + c * y[seeds]
    u -= u.min()
    v -= v.min()
    extent = max(float(u.max()), float(v.max()), 1e-9)
    # The grid spans twice the extent and the points sit at a random offset inside it, so the
    # curve's big jumps (between its quadrants) cut the scene in a different place every epoch.
    u += rng.uniform(0.0, extent)
    v += rng.uniform(0.0, extent)
    cells = 1 << order
    iu = np.clip((u / (2.0 * extent) * cells).astype(np.int64), 0, cells - 1)
    iv = np.clip((v / (2.0 * extent) * cells).astype(np.int64), 0, cells - 1)
    along = np.argsort(hilbert_index(iu, iv, order), kind="stable")  # same cell: by id
    ordered = seeds[along]
    batches = [ordered[i:i + batch_size] for i in range(0, ordered.size, batch_size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
