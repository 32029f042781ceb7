from __future__ import annotations

import torch
import torch.nn.functional as F

from psirel.models.convnext import (
    ConvNeXt,
    ConvNeXtBlock,
    LayerNorm2d,
    _layer_norm_axis1,
    convnext_flops,
)
from psirel.models.reliability import count_parameters


def test_output_shape_and_stage_resolutions():
    torch.manual_seed(0)
    m = ConvNeXt(in_chans=7).eval()
    x = torch.randn(3, 7, 80, 80)
    sizes = []
    h = m.stem(x)
    for stage in m.stages:
        h = stage(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(12, 20, 20), (24, 10, 10), (48, 5, 5), (96, 2, 2)]
    assert m(x).shape == (3, 96)


def test_parameter_counts():
    # timm-style ConvNeXt with dims 12/24/48/96: ≈ 285k parameters.
    assert count_parameters(ConvNeXt(in_chans=3)) == 284_484
    assert count_parameters(ConvNeXt(in_chans=7)) == 285_252  # our 3 + lulc_dim=4 channels


def test_flops_per_patch():
    assert convnext_flops(3) == 11_578_368  # ≈ 11.6 MFLOP per 80×80 patch
    assert convnext_flops(7) == 12_192_768
    assert convnext_flops(3, patch_px=40) < convnext_flops(3) / 3


def test_layer_scale_init_makes_blocks_near_identity():
    torch.manual_seed(0)
    m = ConvNeXt(in_chans=3)
    blocks = [b for b in m.modules() if isinstance(b, ConvNeXtBlock)]
    assert len(blocks) == 10
    for b in blocks:
        assert torch.all(b.gamma == 1e-6)
    x = torch.randn(2, 12, 20, 20)
    assert (blocks[0](x) - x).abs().max() < 1e-4


def test_layernorm2d_equals_channels_last_layernorm():
    torch.manual_seed(0)
    ln = LayerNorm2d(6)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = 3 * torch.randn(2, 6, 5, 7) + 1
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref, atol=1e-5, rtol=1e-5)
    # the formulation used under ONNX export
    torch.testing.assert_close(_layer_norm_axis1(x, ln.weight, ln.bias, 1e-6), ref, atol=1e-5,
                               rtol=1e-5)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    m = ConvNeXt(in_chans=7)
    m(torch.randn(2, 7, 80, 80)).pow(2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic():
    x = torch.randn(2, 3, 80, 80)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        m = ConvNeXt(in_chans=3).eval()
        outs += [m(x), m(x)]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], atol=0, rtol=0)


def test_drop_path_only_in_training():
    torch.manual_seed(0)
    m = ConvNeXt(in_chans=3, depths=(1, 1), dims=(8, 16), drop_path_rate=0.5)
    with torch.no_grad():
        for b in m.modules():
            if isinstance(b, ConvNeXtBlock):
                b.gamma.fill_(1.0)
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    torch.testing.assert_close(m(x), m(x))
    m.train()
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, m(x))


def test_block_channels_first_path_equals_eager_path():
    """The formulation used under ONNX export (1×1 convs) computes the same function."""
    torch.manual_seed(0)
    b = ConvNeXtBlock(16)
    with torch.no_grad():
        b.gamma.normal_()
        b.norm.weight.normal_()
        b.norm.bias.normal_()
    y = torch.randn(2, 16, 9, 9)
    torch.testing.assert_close(b._mlp_channels_first(y), b._mlp(y), atol=1e-5, rtol=1e-5)
