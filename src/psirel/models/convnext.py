"""ConvNeXt image encoder for the 80×80 point patches.

From `"A ConvNet for the 2020s" <https://arxiv.org/abs/2201.03545>`_ (Liu et al., 2022), laid out
as in timm's ``convnext.py``: a block, a stage (downsampling + blocks) and the model (stem +
stages + pooled head), with the architecture given by the ``depths`` and ``dims`` tuples.

For an 80×80 patch the default ``depths=(2, 2, 4, 2)``, ``dims=(12, 24, 48, 96)`` gives feature
maps of 20×20, 10×10, 5×5 and 2×2 pixels (the last 2×2/2 downsampling floors 5 to 2), and
:func:`convnext_flops` counts about 11.6 MFLOP per patch for 3 input channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def layer_norm_2d(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-6) -> Tensor:
    """LayerNorm over axis 1 of ``[B, C, H, W]`` (see :class:`LayerNorm2d`).

    Eager torch: LayerNorm of the channels-last view. Its output stays channels-last in memory,
    so the following convs run channels-last and the blocks' permutes are free (measured ~15 %
    faster over the whole ConvNeXt than the reductions below). Under ONNX export: reductions
    over axis 1, which ONNX Runtime runs ~20 % faster than Transpose → LayerNormalization →
    Transpose.
    """
    if torch.onnx.is_in_onnx_export():
        return _layer_norm_axis1(x, weight, bias, eps)
    y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, eps)
    return y.permute(0, 3, 1, 2)


def _layer_norm_axis1(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    return normalize_axis1(x, eps) * weight[:, None, None] + bias[:, None, None]


def normalize_axis1(x: Tensor, eps: float) -> Tensor:
    """``(x - μ) / sqrt(σ² + eps)`` over axis 1, without the affine map (export form).

    Divides by the square root rather than multiplying by ``rsqrt``: ONNX has no rsqrt, and
    Sqrt → Div is one node fewer than Sqrt → Reciprocal → Mul (measured ~3 % faster in ORT).
    """
    mu = x.mean(1, keepdim=True)
    d = x - mu
    return d / torch.sqrt((d * d).mean(1, keepdim=True) + eps)


class LayerNorm2d(nn.Module):
    r"""LayerNorm over the channel axis of a channels-first ``[B, C, H, W]`` map.

    .. math::
        y_{bchw} = \frac{x_{bchw} - \mu_{bhw}}{\sqrt{\sigma^2_{bhw} + \epsilon}}\,w_c + b_c

    with :math:`\mu, \sigma^2` the mean and (biased) variance over :math:`c`; see
    :func:`layer_norm_2d` for the two equivalent formulations (eager / ONNX export).

    Shapes: input ``[B, C, H, W]``, output ``[B, C, H, W]``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(num_channels))
        self.bias = nn.Parameter(torch.empty(num_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm_2d(x, self.weight, self.bias, self.eps)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_channels}, eps={self.eps})"


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        return x * x.new_empty(shape).bernoulli_(keep) / keep

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p})"


class ConvNeXtBlock(nn.Module):
    r"""ConvNeXt block: 7×7 depthwise conv → LayerNorm → Linear(4C) → GELU → Linear(C) → ·γ.

    .. math::
        x' = x + \mathrm{DropPath}\big(\gamma \odot W_2\,\mathrm{GELU}(W_1\,
             \mathrm{LN}(\mathrm{DWConv}_{7\times7}(x)))\big)

    The LayerNorm and both Linear maps act on each pixel's channel vector. Eager torch runs
    them channels-last (permute, LayerNorm, Linear: mkldnn's 1×1 convs are much slower there);
    under ``torch.onnx.export`` the same weights are applied channels-first as 1×1 convs, which
    spares ONNX Runtime the Transpose copies (the whole ConvNeXt runs ~25 % faster in ORT).
    γ is folded into the second map's weights (a weight-sized product, not an activation-sized
    one); in the export the LayerNorm's affine map is folded into the first map as well
    (``W_1 (w ⊙ n + b) = (W_1 \operatorname{diag} w)\, n + W_1 b``), two activation-sized
    passes fewer per block. ``export_layout = "channels_last"`` (a plain attribute, not part of
    the state dict) exports the eager form instead: Transpose → LayerNormalization → MatMul,
    which ONNX Runtime's INT8 MatMul kernels can take (see :mod:`psirel.export.quantize`).

    Args:
        dim (int): channels C.
        drop_path (float): stochastic depth rate of the residual branch. (default: 0)
        ls_init (float): initial value of the layer scale γ. (default: 1e-6)
        mlp_ratio (int): hidden width of the pointwise MLP, in multiples of C. (default: 4)

    Shapes: input ``[B, C, H, W]``, output ``[B, C, H, W]``.
    """

    export_layout = "channels_first"  # or "channels_last": the MLP's form under ONNX export

    def __init__(self, dim: int, drop_path: float = 0.0, ls_init: float = 1e-6, mlp_ratio: int = 4):
        super().__init__()
        self.dim = dim
        self.ls_init = ls_init
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)
        self.gamma = nn.Parameter(torch.empty(dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.dwconv, self.fc1, self.fc2):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        self.norm.reset_parameters()
        nn.init.constant_(self.gamma, self.ls_init)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x)
        channels_first = torch.onnx.is_in_onnx_export() and self.export_layout != "channels_last"
        y = self._mlp_channels_first(y) if channels_first else self._mlp(y)
        return x + self.drop_path(y)

    def _mlp(self, y: Tensor) -> Tensor:
        y = self.act(self.fc1(self.norm(y.permute(0, 2, 3, 1))))  # [B, H, W, 4C]
        y = F.linear(y, self.fc2.weight * self.gamma[:, None], self.fc2.bias * self.gamma)
        return y.permute(0, 3, 1, 2)

    def _mlp_channels_first(self, y: Tensor) -> Tensor:
        y = normalize_axis1(y, self.norm.eps)
        w1 = self.fc1.weight * self.norm.weight                  # LayerNorm affine folded in
        b1 = self.fc1.bias + self.fc1.weight @ self.norm.bias
        y = self.act(F.conv2d(y, w1[:, :, None, None], b1))
        w2 = (self.fc2.weight * self.gamma[:, None])[:, :, None, None]
        return F.conv2d(y, w2, self.fc2.bias * self.gamma)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim}, mlp={self.fc1.out_features})"


class ConvNeXtStage(nn.Module):
    """Optional downsampling (LayerNorm2d + 2×2 stride-2 conv) followed by ``depth`` blocks.

    Shapes: input ``[B, in_dim, H, W]``, output ``[B, out_dim, H/2, W/2]`` (floored) when
    ``downsample``, else ``[B, out_dim, H, W]`` (then ``in_dim`` must equal ``out_dim``).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        depth: int,
        downsample: bool,
        drop_path: Sequence[float] = (),
        ls_init: float = 1e-6,
    ):
        super().__init__()
        if not downsample and in_dim != out_dim:
            raise ValueError(f"a stage without downsampling keeps its width: {in_dim} != {out_dim}")
        dp = list(drop_path) or [0.0] * depth
        self.downsample = (
            nn.Sequential(LayerNorm2d(in_dim), nn.Conv2d(in_dim, out_dim, kernel_size=2, stride=2))
            if downsample
            else nn.Identity()
        )
        self.blocks = nn.Sequential(*[ConvNeXtBlock(out_dim, dp[i], ls_init) for i in range(depth)])

    def forward(self, x: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export() and isinstance(self.downsample, nn.Sequential):
            return self.blocks(self._downsample_folded(x))
        return self.blocks(self.downsample(x))

    def _downsample_folded(self, x: Tensor) -> Tensor:
        """Export form of the downsampling: the LayerNorm2d's affine map folded into the 2×2
        conv (exact: the stride-2 conv has no padding, so the bias sees every tap)."""
        ln, conv = self.downsample[0], self.downsample[1]
        w = conv.weight * ln.weight[None, :, None, None]
        b = conv.bias + torch.einsum("oiyx,i->o", conv.weight, ln.bias)
        return F.conv2d(normalize_axis1(x, ln.eps), w, b, conv.stride)


class ConvNeXt(nn.Module):
    r"""ConvNeXt feature extractor: stem → stages → global average pool → LayerNorm.

    Stem: 4×4 stride-4 conv + LayerNorm2d. Stage ``i > 0`` starts by halving the resolution.

    Args:
        in_chans (int): input channels. (default: 3)
        depths (tuple of int): blocks per stage. (default: ``(2, 2, 4, 2)``)
        dims (tuple of int): channels per stage. (default: ``(12, 24, 48, 96)``)
        drop_path_rate (float): stochastic depth rate, rising linearly over the blocks from 0 to
            this value. (default: 0)
        ls_init (float): layer-scale init of every block. (default: 1e-6)

    Shapes: input ``[B, in_chans, H, W]`` (H, W ≥ 32), output ``[B, dims[-1]]``.
    """

    def __init__(
        self,
        in_chans: int = 3,
        depths: Sequence[int] = (2, 2, 4, 2),
        dims: Sequence[int] = (12, 24, 48, 96),
        drop_path_rate: float = 0.0,
        ls_init: float = 1e-6,
    ):
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"depths {tuple(depths)} and dims {tuple(dims)} differ in length")
        self.in_chans = in_chans
        self.depths = tuple(int(d) for d in depths)
        self.dims = tuple(int(d) for d in dims)
        self.num_features = self.dims[-1]
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, self.dims[0], kernel_size=4, stride=4), LayerNorm2d(self.dims[0])
        )
        rates = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        stages, prev, start = [], self.dims[0], 0
        for i, (depth, dim) in enumerate(zip(self.depths, self.dims, strict=True)):
            dp = rates[start : start + depth]
            stages.append(ConvNeXtStage(prev, dim, depth, downsample=i > 0, drop_path=dp,
                                        ls_init=ls_init))
            prev, start = dim, start + depth
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(self.num_features, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, LayerNorm2d | nn.LayerNorm):
                m.reset_parameters()
            elif isinstance(m, ConvNeXtBlock):
                nn.init.constant_(m.gamma, m.ls_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_stages(self.stem(x))

    def forward_stages(self, h: Tensor) -> Tensor:
        """Stages, global average pool and norm, from the stem's output ``[B, dims[0], h, w]``."""
        h = self.stages(h)
        return self.norm(h.mean(dim=(2, 3)))

    def extra_repr(self) -> str:  # keeps nn.Module's tree of children in repr()
        return f"in_chans={self.in_chans}, depths={self.depths}, dims={self.dims}"


def convnext_flops(
    in_chans: int,
    depths: Sequence[int] = (2, 2, 4, 2),
    dims: Sequence[int] = (12, 24, 48, 96),
    patch_px: int = 80,
) -> int:
    """FLOPs of one :class:`ConvNeXt` forward pass on a ``patch_px``×``patch_px`` patch.

    Counted analytically from the shapes as 2 × multiply-accumulates of the convolutions and
    linear maps (stem, downsamplings, 7×7 depthwise convs, pointwise MLPs); norms, GELU, the
    residual adds and the pooling (< 2 % together) are left out, as is usual for FLOP tables.
    """
    s = patch_px // 4
    macs = s * s * 16 * in_chans * dims[0]
    for i, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
        if i > 0:
            s //= 2
            macs += s * s * 4 * dims[i - 1] * dim
        macs += depth * s * s * (49 * dim + 8 * dim * dim)
    return 2 * macs
