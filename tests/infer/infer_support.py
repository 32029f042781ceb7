"""Helpers of the inference tests: a progress sink that interrupts, a counting backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class Stop(Exception):
    """Raised by :class:`Interrupt` to simulate a killed run."""


class Interrupt:
    """Progress sink that raises after ``after`` advances of stage ``stage``."""

    def __init__(self, stage: str, after: int = 1):
        self.target, self.after, self.current, self.count = stage, after, None, 0

    def stage(self, name: str, total: int) -> None:
        self.current, self.count = name, 0

    def advance(self, n: int = 1) -> None:
        if self.current == self.target and n > 0:
            self.count += 1
            if self.count >= self.after:
                raise Stop(f"interrupted in {self.current}")


class Counting:
    """A backend that counts the work it is given."""

    def __init__(self, inner):
        self.inner, self.name, self.device = inner, inner.name, getattr(inner, "device", "cpu")
        self.embedded = self.embed_calls = self.gnn_calls = 0

    def embed(self, patches, scalars):
        self.embed_calls += 1
        self.embedded += len(patches)
        return self.inner.embed(patches, scalars)

    def reliability(self, emb, idx, mask, edge_attr):
        self.gnn_calls += 1
        return self.inner.reliability(emb, idx, mask, edge_attr)


def read_output(path: Path) -> dict[str, np.ndarray]:
    from psirel.io.points import read_points

    return read_points(path).attributes
