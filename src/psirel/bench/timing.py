"""How every figure of the benchmark is taken: the median of repeated runs after a warm-up.

A figure that cannot be taken (an artifact another piece of work has not delivered yet, a missing
optional library) is a :class:`Missing` with its reason; :func:`put` turns it into ``null`` plus
a ``"missing": {key: reason}`` note in the result, never into a made-up number.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Missing:
    """A figure that could not be measured, and why (one line)."""

    reason: str


def put(section: dict, key: str, value: Any) -> None:
    """``section[key] = value``, or ``None`` plus ``section["missing"][key] = reason``."""
    if isinstance(value, Missing):
        section[key] = None
        section.setdefault("missing", {})[key] = value.reason
    else:
        section[key] = value


def value_of(x: Any) -> Any:
    """``x``, or None for a :class:`Missing`."""
    return None if isinstance(x, Missing) else x


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall time (s) of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_dict(records: list[dict]) -> dict:
    """Key-wise median of numeric dicts (keys of the first record; None where all are None)."""
    out = {}
    for k in records[0]:
        vals = [r[k] for r in records if r.get(k) is not None]
        out[k] = statistics.median(vals) if vals else None
    return out


def log(message: str) -> None:
    """One progress line of the benchmark, on stderr (stdout carries the final table)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
