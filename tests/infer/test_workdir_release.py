"""release(): a memory map's pages leave the resident set, its data stays."""

import sys

import numpy as np
import pytest

from psirel.infer.workdir import release


def _rss_file_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise RuntimeError("no RssFile")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and MADV_DONTNEED")
def test_release_drops_resident_pages_and_keeps_the_data(tmp_path):
    path = tmp_path / "a.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(4096, 4096))
    arr[:] = np.arange(4096, dtype=np.float32)[:, None]            # 64 MB, all touched
    arr.flush()
    before = _rss_file_kb()
    release(arr)
    after = _rss_file_kb()
    assert before - after > 48_000                                   # most of 64 MB left
    assert arr[4095, 7] == 4095.0 and float(arr[:, 0].sum()) == 4095 * 4096 / 2
    arr[1, 1] = -1.0                                                 # still writeable
    arr.flush()
    release(arr)
    assert np.load(path, mmap_mode="r")[1, 1] == -1.0


def test_release_ignores_plain_arrays():
    a = np.ones(10, np.float32)
    release(a)
    assert a.sum() == 10
