from __future__ import annotations

import pytest
import torch

from psirel.models.pointwise import PointwiseEncoder

SMALL = dict(depths=(1, 1), dims=(8, 16))  # the architecture is tested in test_convnext


def _patches(b=4, n_lulc=6, px=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(b, 4, px, px, generator=g)
    p[:, 1] = torch.randint(0, n_lulc, (b, px, px), generator=g).float()
    p[:, 3] = 1.0
    return p


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_shapes_and_default_architecture(fusion):
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=6, n_scalars=5, fusion=fusion).eval()
    assert enc.cnn.dims == (12, 24, 48, 96) and enc.cnn.in_chans == 3 + 4
    assert enc(_patches(px=80), torch.randn(4, 5)).shape == (4, 64)


def test_out_of_range_lulc_is_unknown():
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=6, n_scalars=3, **SMALL).eval()
    p = _patches()
    q = p.clone()
    p[0, 1, :4, :4] = 0.0
    q[0, 1, :4, :4] = torch.tensor([6.0, 99.0, -1.0, 1e6])
    torch.testing.assert_close(enc.image_input(p), enc.image_input(q))
    s = torch.randn(4, 3)
    torch.testing.assert_close(enc(p, s), enc(q, s))


def test_lulc_channels_are_embedding_rows():
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=6, n_scalars=3, lulc_dim=4, **SMALL)
    p = _patches()
    inp = enc.image_input(p)
    assert inp.shape == (4, 7, 32, 32)
    code = int(p[1, 1, 5, 7])
    torch.testing.assert_close(inp[1, 1:5, 5, 7], enc.lulc.weight[code])
    torch.testing.assert_close(inp[:, [0, 5, 6]], p[:, [0, 2, 3]])


def test_film_starts_as_identity_modulation():
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=6, n_scalars=3, fusion="film", **SMALL).eval()
    p = _patches()
    f = enc.cnn(enc.image_input(p))
    torch.testing.assert_close(enc(p, torch.randn(4, 3)), enc.act(enc.proj(f)))


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_scalars_and_patches_both_matter(fusion):
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=6, n_scalars=3, fusion=fusion, **SMALL)
    if fusion == "film":
        torch.nn.init.normal_(enc.film.weight, std=0.1)
    p = _patches().requires_grad_(True)
    s = torch.randn(4, 3, requires_grad=True)
    enc(p, s).sum().backward()
    assert s.grad.abs().sum() > 0 and p.grad[:, 0].abs().sum() > 0


def test_rejects_unknown_fusion():
    with pytest.raises(ValueError, match="fusion"):
        PointwiseEncoder(n_lulc=6, n_scalars=3, fusion="sum")


def test_forward_equals_convnext_on_explicit_input():
    """forward's split stem conv computes the same as the ConvNeXt on the built input."""
    torch.manual_seed(0)
    enc = PointwiseEncoder(n_lulc=6, n_scalars=3, **SMALL).eval()
    with torch.no_grad():
        torch.nn.init.normal_(enc.cnn.stem[0].bias)
    p = _patches()
    p[0, 1, 0, :4] = torch.tensor([1e9, -0.4, 5.4, -7.0])  # → 0, 0, 5, 0
    ref = enc.cnn(enc.image_input(p))
    f = enc.cnn.forward_stages(enc.cnn.stem[1](enc.stem_conv(p)))
    torch.testing.assert_close(f, ref, atol=1e-5, rtol=1e-5)
    codes = enc.lulc_codes(p)
    assert codes.dtype == torch.int32 and codes[0, 0, :4].tolist() == [0, 0, 5, 0]
