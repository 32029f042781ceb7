import numpy as np
from scipy.spatial import cKDTree

from psirel.train.split import block_split


def _cloud(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 3000, n), rng.uniform(0, 3000, n)


def test_validation_fraction_and_buffer_hold():
    x, y = _cloud()
    s = block_split(x, y, val_fraction=0.2, buffer_m=200.0, seed=1)
    assert not (s.train & s.val).any()
    assert 0.15 <= s.val.mean() <= 0.4
    # no training seed lies within the buffer of a validation point
    d, _ = cKDTree(np.c_[x[s.val], y[s.val]]).query(np.c_[x[s.train], y[s.train]])
    assert d.min() >= 200.0
    # the buffer removes some points but leaves most for training
    assert 0.3 < s.train.mean() < 0.85


def test_validation_is_whole_blocks():
    x, y = _cloud()
    s = block_split(x, y, n_blocks=5, seed=3)
    bx = np.floor((x - x.min()) / s.block_m).astype(int)
    by = np.floor((y - y.min()) / s.block_m).astype(int)
    blocks = by * 5 + bx
    for b in np.unique(blocks[s.val]):
        assert s.val[blocks == b].all()


def test_deterministic_for_seed_and_varies_with_it():
    x, y = _cloud()
    a, b, c = (block_split(x, y, seed=s) for s in (4, 4, 5))
    assert np.array_equal(a.val, b.val) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.val, c.val)
