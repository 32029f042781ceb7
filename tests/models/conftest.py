"""Random neighbour tables for the model tests."""

from __future__ import annotations

import pytest
import torch


def random_table(n: int = 40, k: int = 6, edge_dim: int = 5, p_valid: float = 0.7,
                 n_empty: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32):
    """A neighbour table as the graph module produces it: ``idx [n, k]`` without self or
    duplicates in a row, ``mask [n, k]`` (rows ``0..n_empty-1`` fully masked, row ``n_empty``
    full), ``edge_attr [n, k, edge_dim]``. Masked slots hold valid but arbitrary indices."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(n - 1, generator=g)[:k] for _ in range(n)])
    idx = idx + (idx >= torch.arange(n).unsqueeze(1)).long()  # skip i itself
    mask = torch.rand(n, k, generator=g) < p_valid
    mask[:n_empty] = False
    mask[n_empty] = True
    edge_attr = torch.randn(n, k, edge_dim, generator=g).to(dtype)
    return idx, mask, edge_attr


@pytest.fixture
def table():
    return random_table
