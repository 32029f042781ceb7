"""Points at identical coordinates, taken out of the kNN before the tree sees them.

A cluster of m points at one position makes the tree query quadratic: each of them ties with
all m - 1 others at distance 0, and the query widens until it holds them all. Yet only the
first ``k + 1`` of them (lowest rows) can ever be anyone's neighbour, since neighbours are
ordered by distance then row: any later member is beaten by k members at the same distance and
a lower row, whichever point asks (the first ``k + 1`` hold k others for a member of the
cluster itself). So the members beyond the first ``k + 1`` are *spilled*: left out of the tree,
and their neighbour lists are the first k members of their position, at distance 0. The kNN of
the rest over the rest is then the whole cloud's, exactly, ties included.
"""

from __future__ import annotations

import numpy as np


def spill_duplicates(xy: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(keep, spilled, neighbours)`` for ``xy [N, 2]``, or None when nothing spills.

    ``keep``: ascending rows that enter the tree; ``spilled``: the other rows; ``neighbours``
    ``[len(spilled), k]``: the first k rows of each spilled row's position, ascending."""
    n = len(xy)
    if n <= k + 1:
        return None
    order = np.lexsort((xy[:, 1], xy[:, 0]))   # stable: equal positions keep ascending rows
    s = xy[order]
    first = np.ones(n, bool)
    first[1:] = (s[1:] != s[:-1]).any(axis=1)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    spill = (np.arange(n) - start) > k          # rank within the position beyond k
    if not spill.any():
        return None
    neighbours = order[start[spill][:, None] + np.arange(k)]
    return np.sort(order[~spill]), order[spill], neighbours
