"""SharedMapEncoder: sampling at the right cells, shapes, and a window-independent answer."""

import numpy as np
import pytest
import torch

from psirel.infer.shared_stage import cell_groups, cell_window
from psirel.models.map_sampling import footprint_mean, sample_at
from psirel.models.shared_map import SharedMapEncoder


def test_sampling_at_cell_centres_reads_the_cell():
    fmap = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    stride = 8                                   # a 32×48-pixel window, stride-8 map
    rc = torch.tensor([[stride * 1.5, stride * 2.5], [stride * 3.5, stride * 0.5]])
    s = sample_at(fmap, rc, 32, 48)
    assert torch.equal(s, torch.stack([fmap[0, :, 1, 2], fmap[0, :, 3, 0]]))


def test_footprint_mean_is_the_mean_of_the_grid_samples():
    """One weighted product = the G×G bilinear samples around each point, averaged, also for
    points whose footprint leaves the window (zero padding) and maps of any stride."""
    g = torch.Generator().manual_seed(2)
    off = torch.tensor([-30.0, -10.0, 10.0, 30.0])
    dr, dc = torch.meshgrid(off, off, indexing="ij")
    grid = torch.stack([dr.flatten(), dc.flatten()], 1)
    rc = torch.rand(40, 2, generator=g) * torch.tensor([260.0, 420.0]) - 30.0
    for stride in (32, 16):
        fmap = torch.randn(1, 5, 224 // stride, 352 // stride, generator=g)
        pts = (rc[:, None, :] + grid[None]).reshape(-1, 2)
        ref = sample_at(fmap, pts, 224, 352).reshape(40, 16, 5).mean(dim=1)
        torch.testing.assert_close(footprint_mean(fmap, rc, 224, 352, off), ref,
                                   rtol=0, atol=2e-6)


def test_forward_shapes_and_point_order():
    torch.manual_seed(0)
    enc = SharedMapEncoder(n_lulc=4, n_scalars=3).eval()
    w = torch.randn(1, 4, 192, 256)
    w[:, 3], w[:, 1] = 1.0, 2.0
    rc = torch.tensor([[70.0, 80.0], [120.5, 150.25], [96.0, 200.0]])
    z = torch.randn(3, 3)
    e = enc(w, rc, z)
    assert e.shape == (3, enc.emb_dim)
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(enc(w, rc[perm], z[perm]), e[perm], atol=1e-6)


def test_a_point_far_from_the_edges_barely_depends_on_the_window():
    """Aligned windows share the feature lattice: only the zero padding at a window's edge
    differs, far from the point."""
    torch.manual_seed(0)
    enc = SharedMapEncoder(n_lulc=4, n_scalars=1).eval()
    big = torch.randn(1, 4, 512, 512)
    big[:, 3] = 1.0
    p = torch.tensor([[256.0, 256.0]])
    e_big = enc(big, p, torch.zeros(1, 1))
    sub = big[:, :, 128:416, 96:416]             # another aligned window around the point
    e_sub = enc(sub, p - torch.tensor([[128.0, 96.0]]), torch.zeros(1, 1))
    assert torch.allclose(e_big, e_sub, atol=1e-3)


def test_cell_groups_partition_the_points_and_windows_hold_their_cell():
    rng = np.random.default_rng(1)
    rows, cols = rng.uniform(0, 3000, 500), rng.uniform(-500, 2000, 500)
    groups = cell_groups(rows, cols, 1024)
    assert np.array_equal(np.sort(np.concatenate([g for _, g in groups])), np.arange(500))
    for cell, g in groups:
        assert set(np.floor(rows[g] / 1024)) == {cell[0]}
        assert set(np.floor(cols[g] / 1024)) == {cell[1]}
        win = cell_window(cell, 1024)
        rc = win.local(rows[g], cols[g])
        assert (rc >= 64).all() and (rc < 1024 + 64).all()   # context on every side
        assert win.row0 % 32 == 0 and win.col0 % 32 == 0 and win.height == 1024 + 128
    with pytest.raises(ValueError, match="multiple of 32"):
        cell_groups(rows, cols, 100)


def test_summary_maps_agree_with_the_patch_summary_at_a_pixel():
    """Gradients, local maximum and centre class are the patch summary's exactly; box means
    differ only by the 81- vs 80-pixel box."""
    from psirel.models.patch_summary import PatchSummary
    from psirel.models.summary_maps import SummaryMaps

    g = torch.Generator().manual_seed(0)
    w = torch.zeros(1, 4, 256, 256)
    w[0, 0] = torch.cumsum(torch.randn(256, 256, generator=g), dim=1) * 0.1
    w[0, 1] = torch.randint(0, 4, (256, 256), generator=g).float()
    w[0, 2] = torch.randn(256, 256, generator=g)
    w[0, 3] = 1.0
    i, j = 120, 131
    maps = SummaryMaps(n_lulc=4)
    got = maps.raw(w, torch.tensor([[i + 0.5, j + 0.5]]))[0]
    patch = w[:, :, i - 40:i + 40, j - 40:j + 40].clone()
    patch[:, 0] -= w[0, 0, i, j]                 # the patch model's relief: relative to the point
    ref = PatchSummary(n_lulc=4).raw(patch)[0]
    names = maps.names()
    assert names == PatchSummary(n_lulc=4).names()
    exact = [n for n in names if n.startswith(("dem_g", "amp_local_max", "lulc_centre",
                                               "dem_centre_step", "amp_centre"))]
    for n in exact:
        k = names.index(n)
        assert got[k].item() == pytest.approx(ref[k].item(), abs=1e-4), n
    for n in ("dem_mean", "amp_mean", "amp_std", "valid"):
        k = names.index(n)
        assert got[k].item() == pytest.approx(ref[k].item(), abs=0.1), n


def test_box_mean_as_running_sums_equals_average_pooling():
    """The summary maps' k×k box mean (running sums from 15 px on) is avg_pool2d's, zeros
    outside the window counted, at every k; and a constant is kept inside, tapered at edges."""
    import torch.nn.functional as F

    from psirel.models.summary_maps import RUNNING_SUM_FROM_PX, _box

    torch.manual_seed(0)
    x = torch.randn(1, 7, 200, 150) * 3 + 1
    for k in (3, RUNNING_SUM_FROM_PX, 17, 81):
        h = k // 2
        ref = F.avg_pool2d(F.avg_pool2d(x, (k, 1), stride=1, padding=(h, 0)), (1, k),
                           stride=1, padding=(0, h))
        got = _box(x, k)
        assert got.shape == x.shape
        torch.testing.assert_close(got, ref, atol=2e-6, rtol=0)
    ones = _box(torch.ones(1, 1, 100, 100), 81)
    assert ones[0, 0, 50, 50].item() == pytest.approx(1.0, abs=1e-6)
    assert ones[0, 0, 0, 0].item() == pytest.approx(41 * 41 / 81**2, abs=1e-6)
