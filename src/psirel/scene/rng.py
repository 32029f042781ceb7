"""Reproducible random streams: one child generator per scene component (and per point block).

Every component draws from its own stream derived from the scene seed with
``numpy.random.SeedSequence(seed, spawn_key=...)`` — the same mechanism as
``default_rng(seed).spawn`` — so that adding draws to one component, or changing how many
points are processed per chunk, leaves every other component's numbers unchanged.
"""

from __future__ import annotations

import zlib

import numpy as np


def child_rng(seed: int, component: str, *index: int) -> np.random.Generator:
    """Generator for ``component`` (a stable name such as ``"terrain"``) of the scene ``seed``;
    ``index`` selects a sub-stream, e.g. the block number of a point block."""
    key = zlib.crc32(component.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(key, *index)))
