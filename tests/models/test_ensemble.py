import numpy as np
import pytest

torch = pytest.importorskip("torch")

from psirel_testing import v1_config  # noqa: E402

from psirel.models.ensemble import CalibratedEnsemble  # noqa: E402
from psirel.models.reliability import ReliabilityModel  # noqa: E402


def _members(m: int, encoder: str = "shared-map", gnn: str = "unimp", **kw):
    cfg = v1_config(n_lulc=4, n_scalars=5, emb_dim=16, gnn=gnn, gnn_hidden=16, heads=2,
                      edge_dim=7, encoder=encoder, depths=(1, 1, 1, 1), dims=(8, 8, 8, 8), **kw)
    out = []
    for s in range(m):
        torch.manual_seed(s)
        out.append(ReliabilityModel(cfg).eval())
    return out


def _graph(n=9, k=4, e=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, n, (n, k), generator=g), torch.rand(n, k, generator=g) > 0.3,
            torch.randn(n, k, e, generator=g))


@pytest.mark.parametrize("gnn", ["unimp", "gatv2", "gen", "none"])
def test_ensemble_is_the_mean_of_calibrated_members(gnn):
    members = _members(3, gnn=gnn)
    ens = CalibratedEnsemble(members, scale=[0.5, 1.0, 2.0], bias=[0.1, -0.2, 0.0]).eval()
    window = torch.randn(1, 4, 64, 64)
    window[:, 1] = torch.randint(0, 4, (64, 64))
    window[:, 3] = 1.0
    rc = torch.rand(9, 2) * 30 + 16
    scalars = torch.randn(9, 5)
    with torch.no_grad():
        emb = ens.embed_window(window, rc, scalars)
        assert emb.shape == (9, ens.embedding_dim) == (9, 48)
        p, std = ens.reliability(emb, *_graph())
        ps = []
        for m, a, b in zip(members, (0.5, 1.0, 2.0), (0.1, -0.2, 0.0), strict=True):
            z = m.graph_logits(m.embed_window(window, rc, scalars), *_graph())
            ps.append(torch.sigmoid(a * z + b))
    ps = torch.stack(ps, -1)
    torch.testing.assert_close(p, ps.mean(-1))
    torch.testing.assert_close(std, ps.std(-1, unbiased=False))
    assert (std > 0).all()


def test_one_member_has_zero_spread_and_identity_calibration():
    (m,) = _members(1, encoder="patch")
    ens = CalibratedEnsemble([m]).eval()
    patches = torch.randn(5, 4, 80, 80)
    scalars = torch.randn(5, 5)
    with torch.no_grad():
        p, std = ens.reliability(ens.embed(patches, scalars), *_graph(n=5))
        ref = torch.sigmoid(m.graph_logits(m.embed(patches, scalars), *_graph(n=5)))
    torch.testing.assert_close(p, ref)
    assert float(std.abs().max()) == 0.0


def test_bad_calibration_lengths_are_refused():
    with pytest.raises(ValueError, match="2 members but 1 scales"):
        CalibratedEnsemble(_members(2), scale=[1.0], bias=[0.0, 0.0])
    with pytest.raises(ValueError, match="at least one member"):
        CalibratedEnsemble([])
    assert np.isclose(float(CalibratedEnsemble(_members(2)).scale.sum()), 2.0)


@pytest.mark.parametrize("gnn", ["unimp", "gen"])
def test_edge_statistics_computed_once_equal_each_members_own(gnn):
    """The ensemble computes the (parameter-free) edge-summary statistics once for all
    members: the logits equal each member computing its own."""
    members = _members(3, gnn=gnn, edge_summary=True, edge_summary_signed=True,
                       edge_summary_robust=True)
    assert members[0].edge_summary is not None
    ens = CalibratedEnsemble(members, scale=[0.5, 1.0, 2.0], bias=[0.1, -0.2, 0.0]).eval()
    emb = torch.randn(9, ens.embedding_dim)
    with torch.no_grad():
        z = ens.member_logits(emb, *_graph())
        own = torch.stack([m.graph_logits(emb[:, 16 * i:16 * (i + 1)], *_graph())
                           for i, m in enumerate(members)], dim=-1)
    torch.testing.assert_close(z, own * ens.scale + ens.bias, rtol=0, atol=1e-6)
    assert z.std() > 0


def test_summary_maps_computed_once_equal_each_members_own():
    """The ensemble computes the (parameter-free) summary maps once for all members; each member
    still standardises them with its own centre and scale."""
    members = _members(3, patch_summary=True)
    assert members[0].pointwise.summary is not None
    window = torch.randn(1, 4, 96, 128)
    window[:, 1] = torch.randint(0, 4, (96, 128))
    window[:, 3] = 1.0
    rc = torch.rand(9, 2) * torch.tensor([60.0, 90.0]) + 16
    scalars = torch.randn(9, 5)
    for i, m in enumerate(members):       # different standardisations per member
        m.pointwise.summary.fit(window[0].numpy(), (rc + i).numpy())
    ens = CalibratedEnsemble(members).eval()
    with torch.no_grad():
        got = ens.embed_window(window, rc, scalars)
        own = torch.cat([m.embed_window(window, rc, scalars) for m in members], dim=-1)
        raw = members[0].summary_raw(window, rc)
        assert raw.shape == (9, members[0].pointwise.summary.num_features)
        assert not torch.equal(members[0].pointwise.summary.standardise(raw),
                               members[1].pointwise.summary.standardise(raw))
    torch.testing.assert_close(got, own, rtol=0, atol=0)
    (patch,) = _members(1, encoder="patch")
    assert patch.summary_raw(window, rc) is None
