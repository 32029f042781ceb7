"""psirel.graph: the points' k-nearest-neighbour graph as a neighbour table, its edge features,
and neighbour sampling for training. numpy and scipy only (no torch)."""

from psirel.graph.edges import EDGE_FEATURES, EdgeScale, edge_features, fit_edge_scale
from psirel.graph.knn import DEFAULT_K, DEFAULT_R_MAX_M, NeighbourTable, knn_table
from psirel.graph.sampling import Subgraph, compact_batches, full_neighbourhood, sample_subgraph

__all__ = [
    "DEFAULT_K",
    "DEFAULT_R_MAX_M",
    "EDGE_FEATURES",
    "EdgeScale",
    "NeighbourTable",
    "Subgraph",
    "compact_batches",
    "edge_features",
    "fit_edge_scale",
    "full_neighbourhood",
    "knn_table",
    "sample_subgraph",
]
