from __future__ import annotations

import pytest
import torch

from psirel.models.gatv2 import GATv2Layer
from psirel.models.gen import GENLayer
from psirel.models.gnn import GNNEncoder, ReliabilityHead
from psirel.models.neighbours import masked_median, masked_softmax
from psirel.models.unimp import UniMPConv

N, K, E, D = 30, 8, 5, 16
KINDS = ["unimp", "gatv2", "gen"]


def _layers():
    return [UniMPConv(D, 4, heads=2, edge_dim=E), GATv2Layer(D, 4, heads=2, edge_dim=E),
            GENLayer(D, 8, edge_dim=E, norm="layer")]


def test_masked_softmax_empty_row_is_zero_without_nan():
    s = torch.randn(3, 4, 2, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False] * 4, [True, False, False, False]])
    a = masked_softmax(s, mask)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a[0].sum(0), torch.ones(2))
    assert torch.all(a[1] == 0) and torch.all(a[:, 1] == 0)
    torch.testing.assert_close(a[2, 0], torch.ones(2))
    (a * torch.randn_like(a)).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_masked_median_matches_numpy_nanmedian_and_empty_rows_are_zero():
    import numpy as np

    g = torch.Generator().manual_seed(3)
    v = torch.randn(40, 7, 3, generator=g, requires_grad=True)
    mask = torch.rand(40, 7, generator=g) > 0.4
    mask[0] = False                       # isolated node
    mask[1] = True                        # a full row, odd count
    mask[2] = torch.tensor([True, True, False, False, True, True, False])  # even count
    med = masked_median(v, mask)
    ref = np.where(mask.numpy()[:, :, None], v.detach().numpy(), np.nan)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmedian(ref, axis=1)
    np.testing.assert_allclose(med.detach().numpy(), np.nan_to_num(ref), atol=1e-6)
    assert torch.all(med[0] == 0)
    med.sum().backward()
    assert torch.isfinite(v.grad).all() and torch.all(v.grad[0] == 0)
    assert torch.all(v.grad[~mask] == 0)  # empty slots never reach the median


@pytest.mark.parametrize("layer", _layers(), ids=lambda m: type(m).__name__)
def test_all_rows_masked_gives_finite_output_and_grads(table, layer):
    idx, _, ea = table(N, K, E, seed=1)
    mask = torch.zeros(N, K, dtype=torch.bool)
    x = torch.randn(N, D, requires_grad=True)
    out = layer(x, idx, mask, ea)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_slots_are_ignored(table, kind):
    """What an empty slot holds (index, edge features) must not change anything."""
    torch.manual_seed(0)
    enc = GNNEncoder(D, 16, layers=2, kind=kind, heads=4, edge_dim=E).eval()
    idx, mask, ea = table(N, K, E, seed=2)
    idx2, ea2 = idx.clone(), ea.clone()
    idx2[~mask] = torch.randint(0, N, (int((~mask).sum()),))
    ea2[~mask] = 1e3 * torch.randn(int((~mask).sum()), E)
    x = torch.randn(N, D)
    out = enc(x, idx, mask, ea)
    assert out.shape == (N, 16) and torch.isfinite(out).all()
    torch.testing.assert_close(enc(x, idx2, mask, ea2), out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_permutation_equivariance(table, kind):
    torch.manual_seed(0)
    enc = GNNEncoder(D, 16, layers=2, kind=kind, heads=2, edge_dim=E).eval()
    idx, mask, ea = table(N, K, E, seed=3)
    x = torch.randn(N, D)
    perm = torch.randperm(N)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(N)
    out = enc(x, idx, mask, ea)
    out_p = enc(x[perm], inv[idx[perm]], mask[perm], ea[perm])
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_receptive_field_is_layers_hops(table, kind):
    """Changing a node's features reaches exactly the nodes within L hops (tiling halo)."""
    torch.manual_seed(0)
    layers = 2
    enc = GNNEncoder(D, 16, layers=layers, kind=kind, heads=2, edge_dim=E).eval()
    idx, mask, ea = table(N, 3, E, seed=4, n_empty=0)
    x = torch.randn(N, D)
    x2 = x.clone()
    x2[5] += 1.0
    changed = (enc(x, idx, mask, ea) - enc(x2, idx, mask, ea)).abs().amax(1) > 0
    reach = torch.zeros(N, dtype=torch.bool)
    reach[5] = True
    for _ in range(layers):
        reach = reach | (reach[idx] & mask).any(1)
    assert torch.equal(changed, reach)


@pytest.mark.parametrize("kind", KINDS)
def test_training_step_reduces_loss(table, kind):
    torch.manual_seed(0)
    enc = GNNEncoder(D, 16, layers=2, kind=kind, heads=4, edge_dim=E, dropout=0.1)
    head = ReliabilityHead(16)
    idx, mask, ea = table(N, K, E, seed=5)
    x, y = torch.randn(N, D), (torch.rand(N) < 0.5).float()
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            head(enc(x, idx, mask, ea)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of heads"):
        GNNEncoder(D, 30, kind="unimp", heads=4)
    with pytest.raises(ValueError, match="kind"):
        GNNEncoder(D, 16, kind="gcn")


def test_masked_softmax_equals_the_masked_fill_definition():
    """Filling by addition and zeroing by product give the numbers of ``masked_fill``."""
    g = torch.Generator().manual_seed(5)
    s = torch.randn(50, 16, 4, generator=g) * 30
    mask = torch.rand(50, 16, generator=g) > 0.3
    mask[0] = False
    empty = ~mask[:, :, None]
    ref = s.masked_fill(empty, torch.finfo(s.dtype).min)
    ref = torch.exp(ref - ref.amax(dim=1, keepdim=True)).masked_fill(empty, 0.0)
    ref = ref / (ref.sum(dim=1, keepdim=True) + 1e-16)
    torch.testing.assert_close(masked_softmax(s, mask), ref, rtol=0, atol=0)


def test_sort_slots_sorts_like_torch_for_every_slot_count():
    from psirel.models.neighbours import sort_slots, sorting_network

    g = torch.Generator().manual_seed(6)
    for k in range(1, 21):
        x = torch.randn(300, k, 3, generator=g)
        x[::7, :k // 2] = x[::7, -1:]            # ties
        assert torch.equal(sort_slots(x), x.sort(dim=1).values), k
    assert len(sorting_network(16)) == 63 and sorting_network(1) == []
    assert all(a < b < 12 for a, b in sorting_network(12))
