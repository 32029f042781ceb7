"""PatchSummary: each statistic on patches whose answer is known by construction."""

import numpy as np
import pytest
import torch

from psirel.models.patch_summary import GRADIENT_SCALES, PatchSummary
from psirel.models.pointwise import PointwiseEncoder

P = 80
C = P // 2


def blank(n: int = 1) -> torch.Tensor:
    x = torch.zeros(n, 4, P, P)
    x[:, 3] = 1.0
    return x


def col(summary: PatchSummary, raw: torch.Tensor, name: str) -> torch.Tensor:
    return raw[:, summary.names().index(name)]


def test_names_match_feature_count():
    s = PatchSummary(n_lulc=5)
    assert len(s.names()) == s.num_features == s.raw(blank()).shape[1]


def test_gradients_of_a_plane_at_every_scale():
    s = PatchSummary(n_lulc=3)
    rows, cols = torch.meshgrid(torch.arange(float(P)), torch.arange(float(P)),
                                indexing="ij")
    x = blank()
    x[0, 0] = 0.3 * (cols - C) - 0.7 * (rows - C)   # relief rises east, falls south
    raw = s.raw(x)
    for sc in GRADIENT_SCALES:
        assert col(s, raw, f"dem_gx@{sc}").item() == pytest.approx(0.3, abs=1e-5)
        assert col(s, raw, f"dem_gy@{sc}").item() == pytest.approx(-0.7, abs=1e-5)


def test_masked_moments_ignore_padding():
    s = PatchSummary(n_lulc=3)
    x = blank()
    x[0, 2] = 2.0
    x[0, 2, :, :20] = 100.0      # padding with junk values
    x[0, 3, :, :20] = 0.0
    raw = s.raw(x)
    assert col(s, raw, "amp_mean").item() == pytest.approx(2.0)
    assert col(s, raw, "amp_std").item() == pytest.approx(0.0, abs=1e-3)
    assert col(s, raw, "valid").item() == pytest.approx(60 / 80)


def test_local_max_sees_a_bright_neighbour_only_nearby():
    s = PatchSummary(n_lulc=3)
    near, far = blank(), blank()
    near[0, 2, C + 3, C - 2] = 9.0
    far[0, 2, C + 12, C] = 9.0
    assert col(s, s.raw(near), "amp_local_max").item() == 9.0
    assert col(s, s.raw(far), "amp_local_max").item() == 0.0


def test_land_cover_centre_and_fractions():
    s = PatchSummary(n_lulc=4)
    x = blank()
    x[0, 1] = 2.0
    x[0, 1, :, :40] = 3.0
    x[0, 1, C, C] = 1.0
    x[0, 1, 0, 0] = 17.0          # out of vocabulary → unknown (0)
    raw = s.raw(x)
    centre = [col(s, raw, f"lulc_centre[{c}]").item() for c in range(4)]
    frac = np.array([col(s, raw, f"lulc_frac[{c}]").item() for c in range(4)])
    assert centre == [0.0, 1.0, 0.0, 0.0]
    assert frac.sum() == pytest.approx(1.0)
    assert frac[0] == pytest.approx(1 / 6400) and frac[3] == pytest.approx((3200 - 1) / 6400)


def test_fit_standardises_and_forward_is_finite():
    rng = np.random.default_rng(0)
    patches = rng.normal(size=(64, 4, P, P)).astype(np.float32)
    patches[:, 1] = rng.integers(0, 4, size=(64, P, P))
    patches[:, 3] = 1.0
    s = PatchSummary(n_lulc=4).fit(patches)
    z = s(torch.from_numpy(patches))
    assert torch.isfinite(z).all()
    assert torch.all(s.scale > 0)
    # the robust centre is the median: standardised medians are ~0
    assert z.median(dim=0).values.abs().max().item() < 1e-4
    # and forward is asinh of the standardised statistics
    ref = torch.asinh((s.raw(torch.from_numpy(patches)) - s.centre) / s.scale)
    assert torch.allclose(z, ref, atol=1e-5)


def test_too_small_patch_is_refused():
    with pytest.raises(ValueError, match="too small"):
        PatchSummary(n_lulc=2).raw(torch.zeros(1, 4, 16, 16))


def test_pointwise_encoder_uses_the_summary():
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=4, n_scalars=3, patch_summary=True).eval()
    assert enc.scalar_mlp[0].in_features == 3 + enc.summary.num_features
    x, z = blank(2), torch.zeros(2, 3)
    x[1, 2, C, C + 2] = 50.0      # one bright pixel beside the point changes the summary
    e = enc(x, z)
    assert e.shape == (2, enc.emb_dim)
    assert not torch.allclose(e[0], e[1])
    assert "summary.centre" in enc.state_dict()
