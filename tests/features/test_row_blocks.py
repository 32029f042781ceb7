"""map_row_blocks: the same rows in any number of threads; a block's error reaches the caller."""

import numpy as np
import pytest

from psirel.features.row_blocks import map_row_blocks
from psirel.features.scalars import scalar_features


def test_blocks_cover_every_row_once_in_any_number_of_threads():
    seen = []

    def fn(s, e):
        seen.append((s, e))
        return np.arange(s, e, dtype=np.float64)[:, None] * [1.0, -1.0]

    for w in (1, 2, 4, None):         # None: one per CPU
        seen.clear()
        out = map_row_blocks(fn, 1003, 100, np.full((1003, 2), np.nan), w)
        assert np.array_equal(out[:, 0], np.arange(1003)) and np.array_equal(out[:, 1],
                                                                               -np.arange(1003))
        assert sorted(seen) == [(s, min(s + 100, 1003)) for s in range(0, 1003, 100)]


def test_a_failing_block_raises_in_the_caller():
    def fn(s, e):
        if s == 300:
            raise ValueError("block 300")
        return np.zeros(e - s)

    with pytest.raises(ValueError, match="block 300"):
        map_row_blocks(fn, 1000, 100, np.empty(1000), workers=2)


def test_scalar_features_do_not_depend_on_workers():
    rng = np.random.default_rng(4)
    n, t = 9000, 40                   # three row blocks of the series and temporal features
    series = np.cumsum(rng.normal(0, 2, (n, t)), axis=1).astype(np.float32)
    series[rng.random((n, t)) < 0.05] = np.nan
    dates = np.datetime64("2019-01-01") + np.arange(t) * 12
    v, c = rng.normal(0, 3, n), rng.uniform(0.5, 1, n)
    one, names = scalar_features(v, c, series, dates, workers=1)
    two, names2 = scalar_features(v, c, series, dates, workers=2)
    assert names == names2 and np.array_equal(one, two)
    assert np.isfinite(one).all() and one.std(axis=0).max() > 0
