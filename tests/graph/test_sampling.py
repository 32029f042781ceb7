"""Neighbour sampling: edges come from the graph, fan-out = all gives the exact L-hop
neighbourhood (against a BFS and torch_geometric's k_hop_subgraph), bounds, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psirel.graph.knn import knn_table
from psirel.graph.sampling import Subgraph, full_neighbourhood, sample_subgraph

K = 8


@pytest.fixture(scope="module")
def cloud():
    # Clustered points (towns) and sparse ones: degrees from 0 to K.
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 2000, (6, 2))
    dense = centres[rng.integers(0, 6, 1500)] + rng.normal(0, 60, (1500, 2))
    sparse = rng.uniform(0, 2000, (500, 2))
    xy = np.vstack([dense, sparse])
    table = knn_table(xy[:, 0], xy[:, 1], k=K, r_max_m=40.0)
    assert 0 < (table.degree() == 0).sum() and (table.degree() == K).mean() > 0.5
    return xy, table


def bfs(table, seeds, hops):
    """Reference: hop of every node within `hops` hops of the seeds along edges j → i."""
    hop = {int(s): 0 for s in seeds}
    frontier = list(hop)
    for h in range(1, hops + 1):
        nxt = []
        for i in frontier:
            for j in table.idx[i][table.mask[i]]:
                if int(j) not in hop:
                    hop[int(j)] = h
                    nxt.append(int(j))
        frontier = nxt
    return hop


def check_subgraph(sub: Subgraph, table, seeds, fanouts):
    """Invariants of any sample."""
    n_hops = len(fanouts)
    nodes = sub.nodes
    assert nodes.dtype == np.int64 and np.unique(nodes).size == nodes.size
    np.testing.assert_array_equal(nodes[: sub.n_seeds], seeds)  # seeds first, in order
    np.testing.assert_array_equal(sub.seeds, seeds)
    assert sub.n_seeds == len(seeds)
    assert (sub.hop[: sub.n_seeds] == 0).all() and (sub.hop[sub.n_seeds:] > 0).all()
    assert (np.diff(sub.hop) >= 0).all() and sub.hop.max(initial=0) <= n_hops
    m = nodes.size
    assert sub.idx.shape == sub.mask.shape == (m, sub.idx.shape[1])
    assert ((sub.idx >= 0) & (sub.idx < m)).all()
    own = np.arange(m)[:, None]
    assert (sub.idx[~sub.mask] == np.broadcast_to(own, sub.idx.shape)[~sub.mask]).all()
    full_deg = table.degree()[nodes]
    deg = sub.mask.sum(1)
    for h, f in enumerate(fanouts):
        rows = sub.hop == h
        cap = table.k if f == -1 else min(f, table.k)
        # up to the fan-out, and all of them when there are no more
        np.testing.assert_array_equal(deg[rows], np.minimum(full_deg[rows], cap))
    assert (deg[sub.hop == n_hops] == 0).all()  # last hop: not expanded
    # Every sampled edge j → i is an edge of the full graph, and no slot repeats a neighbour.
    rows, slots = np.nonzero(sub.mask)
    gi, gj = nodes[rows], nodes[sub.idx[rows, slots]]
    full = {(int(i), int(j)) for i, j in zip(*np.nonzero(table.mask), strict=True)}
    full = {(i, int(table.idx[i, s])) for i, s in full}
    assert all((int(i), int(j)) in full for i, j in zip(gi, gj, strict=True))
    assert len(set(zip(gi.tolist(), gj.tolist(), strict=True))) == gi.size
    # Each node of hop h > 0 is a sampled neighbour of a node of hop h − 1.
    for h in range(1, n_hops + 1):
        parents = sub.hop[rows] == h - 1
        reached = np.unique(sub.idx[rows[parents], slots[parents]])
        np.testing.assert_array_equal(np.flatnonzero(sub.hop == h),
                                      reached[sub.hop[reached] == h])


@pytest.mark.parametrize("fanouts", [[-1, -1], [K, K], [100, -1, K]])
def test_fanout_all_is_the_full_neighbourhood(cloud, fanouts):
    _, table = cloud
    seeds = np.array([1700, 3, 250, 1999, 42])
    sub = sample_subgraph(table, seeds, fanouts, np.random.default_rng(0))
    check_subgraph(sub, table, seeds, fanouts)
    ref = bfs(table, seeds, len(fanouts))
    assert dict(zip(sub.nodes.tolist(), sub.hop.tolist(), strict=True)) == ref
    # Expanded rows are the full rows, in the same order.
    expanded = sub.hop < len(fanouts)
    g = sub.nodes[sub.idx[expanded]]
    np.testing.assert_array_equal(np.where(sub.mask[expanded], g, -1),
                                  np.where(table.mask[sub.nodes[expanded]],
                                           table.idx[sub.nodes[expanded]], -1))
    assert sub.idx.shape[1] == K


def test_full_neighbourhood_matches_torch_geometric_k_hop_subgraph(cloud):
    torch = pytest.importorskip("torch")
    k_hop_subgraph = pytest.importorskip("torch_geometric.utils").k_hop_subgraph
    _, table = cloud
    edge_index = torch.from_numpy(table.to_edge_index())  # row 0: source j, row 1: target i
    for hops in (1, 2, 3):
        seeds = np.array([11, 1600, 905])
        sub = full_neighbourhood(table, seeds, hops)
        # flow="source_to_target": the nodes whose messages reach the seeds within `hops` layers
        subset, sub_edges, _, _ = k_hop_subgraph(torch.from_numpy(seeds), hops, edge_index,
                                                 num_nodes=table.n, flow="source_to_target")
        np.testing.assert_array_equal(np.sort(sub.nodes), subset.numpy())
        # The layers' edges: those into nodes reached before the last hop.
        ours = sub.to_edge_index()
        ours = {(int(sub.nodes[j]), int(sub.nodes[i])) for j, i in ours.T}
        theirs = sub_edges.numpy()  # global ids (relabel_nodes=False)
        hop_of = dict(zip(sub.nodes.tolist(), sub.hop.tolist(), strict=True))
        theirs = {(int(j), int(i)) for j, i in theirs.T if hop_of[int(i)] < hops}
        assert ours == theirs


def message_passing(x, idx, mask, weights):
    """A small L-layer GNN in table form: h' = tanh(h W_s + Σ_j h_j W_n)."""
    h = x
    for w_self, w_nb in weights:
        nb = np.where(mask[..., None], h[idx], 0.0).sum(1)
        h = np.tanh(h @ w_self + nb @ w_nb)
    return h


def test_seed_outputs_on_the_full_neighbourhood_equal_full_graph_outputs(cloud):
    _, table = cloud
    rng = np.random.default_rng(5)
    x = rng.normal(size=(table.n, 4))
    weights = [(rng.normal(size=(4, 4)) / 2, rng.normal(size=(4, 4)) / 4) for _ in range(3)]
    full = message_passing(x, table.idx, table.mask, weights)
    seeds = rng.choice(table.n, 64, replace=False)
    sub = full_neighbourhood(table, seeds, hops=3)
    out = message_passing(x[sub.nodes], sub.idx, sub.mask, weights)
    np.testing.assert_allclose(out[: sub.n_seeds], full[seeds], rtol=0, atol=1e-12)
    # ... and with one hop too few, they are not.
    short = full_neighbourhood(table, seeds, hops=2)
    out = message_passing(x[short.nodes], short.idx, short.mask, weights)
    assert np.abs(out[: short.n_seeds] - full[seeds]).max() > 1e-3


def test_sampled_subgraph_equals_the_full_graph_restricted_to_its_edges(cloud):
    # A sample is exact for the graph made of its own edges: the seeds' outputs on the subgraph
    # equal those of the full-size graph that keeps only the sampled edges.
    _, table = cloud
    rng = np.random.default_rng(6)
    seeds = rng.choice(table.n, 32, replace=False)
    sub = sample_subgraph(table, seeds, [3, 2], rng)
    x = rng.normal(size=(table.n, 3))
    weights = [(rng.normal(size=(3, 3)), rng.normal(size=(3, 3))) for _ in range(2)]
    restricted_idx = np.repeat(np.arange(table.n)[:, None], sub.idx.shape[1], 1)
    restricted_mask = np.zeros((table.n, sub.idx.shape[1]), bool)
    restricted_idx[sub.nodes] = sub.nodes[sub.idx]
    restricted_mask[sub.nodes] = sub.mask
    full = message_passing(x, restricted_idx, restricted_mask, weights)
    out = message_passing(x[sub.nodes], sub.idx, sub.mask, weights)
    np.testing.assert_allclose(out[: sub.n_seeds], full[seeds], rtol=0, atol=1e-12)


def test_fanouts_bound_rows_and_width(cloud):
    _, table = cloud
    seeds = np.arange(0, 2000, 37)
    sub = sample_subgraph(table, seeds, [5, 3], np.random.default_rng(1))
    check_subgraph(sub, table, seeds, [5, 3])
    assert sub.idx.shape[1] == 5
    assert (sub.mask[sub.hop == 1].sum(1) <= 3).all()
    assert (sub.mask[sub.hop == 1][:, 3:] == 0).all()  # narrower hops leave trailing slots empty
    # Kept neighbours stay in table (distance) order.
    rows = np.flatnonzero(sub.hop == 0)
    for r in rows:
        kept = sub.nodes[sub.idx[r][sub.mask[r]]]
        pos = [int(np.flatnonzero(table.idx[sub.nodes[r]] == g)[0]) for g in kept]
        assert pos == sorted(pos)


def test_determinism_and_variety(cloud):
    _, table = cloud
    seeds = np.arange(100, 400, 3)

    def draw(seed):
        return sample_subgraph(table, seeds, [4, 2], np.random.default_rng(seed))

    a, b, c = draw(11), draw(11), draw(12)
    for f in ("nodes", "idx", "mask", "hop"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.nodes.size != c.nodes.size or not np.array_equal(a.nodes, c.nodes)
    assert not np.array_equal(a.nodes[a.idx[: a.n_seeds]], c.nodes[c.idx[: c.n_seeds]])


def test_samples_are_uniform_without_replacement():
    # Every node has exactly 4 neighbours (a ring, k = 4); keeping 2 must pick each slot with
    # probability 1/2 and each of the 6 pairs with probability 1/6.
    n = 12_000
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = n / (2 * np.pi)
    table = knn_table(r * np.cos(ang), r * np.sin(ang), k=4, r_max_m=2.5)
    assert (table.degree() == 4).all()
    sub = sample_subgraph(table, np.arange(n), [2], np.random.default_rng(3))
    g = sub.nodes[sub.idx[:n, :2]]
    slot = (g[:, :, None] == table.idx[:, None, :]).argmax(2)  # which of the 4 slots
    freq = np.bincount(slot.ravel(), minlength=4) / n
    np.testing.assert_allclose(freq, 0.5, atol=0.02)
    pairs = np.bincount(slot[:, 0] * 4 + slot[:, 1], minlength=16) / n
    np.testing.assert_allclose(pairs[[1, 2, 3, 6, 7, 11]], 1 / 6, atol=0.015)


def test_tuple_table_zero_hops_and_errors(cloud):
    _, table = cloud
    sub = sample_subgraph((table.idx, table.mask), np.array([4, 2]), [], None)
    np.testing.assert_array_equal(sub.nodes, [4, 2])
    assert sub.idx.shape == (2, 0)
    alone = full_neighbourhood(table, np.array([9, 3]), 0)  # pointwise-only models
    np.testing.assert_array_equal(alone.nodes, [9, 3])
    assert alone.idx.shape == alone.mask.shape == (2, 0)
    empty = full_neighbourhood(table, np.array([], dtype=np.int64), 2)
    assert empty.nodes.size == 0 and empty.idx.shape == (0, K)
    with pytest.raises(ValueError, match="distinct"):
        full_neighbourhood(table, np.array([1, 1]), 1)
    with pytest.raises(ValueError, match="lie in"):
        full_neighbourhood(table, np.array([table.n]), 1)
    with pytest.raises(ValueError, match="rng"):
        sample_subgraph(table, np.array([1]), [2], None)
    with pytest.raises(ValueError, match="fan-outs"):
        sample_subgraph(table, np.array([1]), [0], np.random.default_rng())


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 120),
    k=st.integers(1, 6),
    r_max_m=st.sampled_from([1.0, 1.5, 2.5, 100.0]),
    fanouts=st.lists(st.sampled_from([-1, 1, 2, 3, 7]), min_size=0, max_size=3),
    n_seeds=st.integers(0, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_sampler_invariants(n, k, r_max_m, fanouts, n_seeds, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 10, n).astype(float), rng.integers(0, 10, n).astype(float)
    table = knn_table(x, y, k=k, r_max_m=r_max_m)
    seeds = rng.permutation(n)[: min(n_seeds, n)]
    sub = sample_subgraph(table, seeds, fanouts, rng)
    check_subgraph(sub, table, seeds, fanouts)
    widths = [k if f == -1 else min(f, k) for f in fanouts]
    assert sub.idx.shape[1] == max(widths, default=0)
    # Nodes are within len(fanouts) hops, and never reached earlier than the BFS says.
    ref = bfs(table, seeds, len(fanouts))
    assert all(ref.get(g, 99) <= h for g, h in zip(sub.nodes.tolist(), sub.hop.tolist(),
                                                     strict=True))
