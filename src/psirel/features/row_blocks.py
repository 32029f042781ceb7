"""Per-point features computed over row blocks, in parallel threads.

The series and temporal features are numpy over ``[rows, T]`` blocks (fits, sorts for the
medians, products): the big operations release the GIL, so two threads on two blocks run on
two cores — as long as BLAS does not also start its own threads on the same cores
(OpenBLAS's two threads under two Python threads ran slower than one thread alone). So BLAS is
held to one thread while the blocks run (threadpoolctl). Each block is computed the same way in
any thread, so the result does not depend on ``workers``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np


def map_row_blocks(fn: Callable[[int, int], np.ndarray], n: int, rows_per_block: int,
                   out: np.ndarray, workers: int | None = 1) -> np.ndarray:
    """``out[s:e] = fn(s, e)`` for consecutive blocks of ``rows_per_block`` rows of ``n``, in
    ``workers`` threads (1: in this thread, in order; None: one per CPU); returns ``out``.
    ``fn`` must set its own ``np.errstate`` (it is per thread)."""
    workers = workers if workers is not None else os.cpu_count() or 1
    starts = range(0, n, rows_per_block)

    def one(s: int) -> None:
        e = min(s + rows_per_block, n)
        out[s:e] = fn(s, e)

    if workers <= 1 or len(starts) <= 1:
        for s in starts:
            one(s)
        return out
    with _one_blas_thread(), ThreadPoolExecutor(min(workers, len(starts)),
                                                thread_name_prefix="psirel-rows") as pool:
        for _ in pool.map(one, starts):   # re-raises a block's exception
            pass
    return out


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of the core install
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
