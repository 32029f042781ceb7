"""The naive reference: the whole network on every target batch's full L-hop neighbourhood.

This is the plain application of the trained network with the sampling used in training (here
with every neighbour, so it is exact): for each batch of target points, take their L-hop
neighbourhood, extract the patches of *every* node of it, run the PW encoder on all of them and
the GNN on the subgraph, and keep the targets' outputs. Nodes shared by the neighbourhoods of
several batches are extracted and encoded again each time: that recomputation (``nodes_per_seed``
encodings per point instead of one) is what the two-stage pipeline saves. Its output equals the
two-stage output to float rounding; it keeps nothing on disk and does not resume.

Batches follow the input order by default, as the seed's loader takes its target nodes; the
points of a PSI file are rarely stored in spatial order, so the neighbourhoods of one batch
barely overlap and every point drags its whole receptive field (hundreds of encodings).
``order="spatial"`` takes runs of the Hilbert order instead (compact batches whose
neighbourhoods overlap, as in training): a stronger baseline, still recomputing shared nodes.
"""

from __future__ import annotations

import time

import numpy as np

from psirel.errors import PsirelError
from psirel.graph.sampling import full_neighbourhood
from psirel.infer.prepared import PreparedCloud, Silent, Timer

BATCH_POINTS = 512  # target points per batch, as a training batch (TrainSettings.batch_size)
ORDERS = ("input", "spatial")


def predict_naive(scene: PreparedCloud, be, batch_points: int = BATCH_POINTS,
                  embed_batch: int = 256, progress=None, timer=None, warn=None,
                  order: str = "input", max_batches: int | None = None
                  ) -> tuple[np.ndarray, dict]:
    """P(reliable) ``[N]`` of a :class:`~psirel.infer.prepared.PreparedCloud`, and facts for
    the summary.

    Args:
        scene: the prepared cloud, rasters and model.
        be: a backend (:func:`psirel.infer.backends.make_backend`).
        batch_points: target points per batch.
        embed_batch: patches per encoder call (and the size of the reused patch buffer).
        order: ``"input"`` (batches of consecutive input rows) or ``"spatial"`` (runs of the
            Hilbert order).
        max_batches: stop after this many batches (a benchmark timing the first batches of a
            file in random order, where every batch costs the same); the rows not reached are
            NaN, and the facts say how many were (``points_done``).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    if scene.card.shared_map:
        raise PsirelError("--strategy naive re-encodes patches per point: it needs a patch-"
                          "encoder model, not a shared-map one (use --strategy two-stage)")
    progress = progress or Silent()
    timer = timer or Timer()
    n = scene.n
    idx, mask = scene.neighbour_table(progress, timer)

    progress.stage("naive", n)
    buf = scene.patch_buffer(embed_batch)
    rel = np.full((n, 2), np.nan, np.float32)  # reliability, reliability_std
    n_unknown, nodes_seen, done = 0, 0, 0
    rows = scene.order if order == "spatial" else np.arange(n)
    starts = range(0, n, batch_points)
    for s in starts if max_batches is None else starts[:max_batches]:
        seeds = np.sort(rows[s:s + batch_points])
        t0 = time.perf_counter()
        sub = full_neighbourhood((idx, mask), seeds, scene.hops)
        nodes = sub.nodes
        ea = scene.edge_attr(nodes, sub.idx, sub.mask)
        t0 = timer.add("graph", t0)
        emb = None
        # seeds first, in their own calls, so that their unknown land cover is counted once
        cuts = sorted({*range(0, sub.n_seeds, embed_batch),
                       *range(sub.n_seeds, len(nodes), embed_batch), len(nodes)})
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            t0 = time.perf_counter()
            patches, unknown = scene.extract(nodes[a:b], buf)
            if a < sub.n_seeds:
                n_unknown += unknown
            t0 = timer.add("patches", t0)
            e = be.embed(patches, scene.scalars[nodes[a:b]])
            if emb is None:
                emb = np.empty((len(nodes), e.shape[1]), np.float32)
            emb[a:b] = e
            timer.add("encoder", t0)
        t0 = time.perf_counter()
        rel[seeds] = be.reliability(emb, sub.idx, sub.mask, ea)[:len(seeds)]
        timer.add("gnn", t0)
        nodes_seen += len(nodes)
        done += len(seeds)
        progress.advance(len(seeds))
    scene.card.check_unknown_lulc(n_unknown, done, warn=warn,
                                  codes=scene.stack.unknown_lulc_codes)
    return rel, {"unknown_lulc_points": n_unknown,
                 "nodes_per_seed": round(nodes_seen / max(done, 1), 3),
                 "batch_points": batch_points, "batch_order": order, "points_done": done}
