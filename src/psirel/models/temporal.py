r"""Temporal encoder: the sampling-independent residual description of a series → an embedding.

Its input is the temporal block of the scalar features (:mod:`psirel.features.temporal`, after
the normalizer's ``asinh``): the quantile function of the standardised residuals, the
autocorrelation at fixed lags in days with each bin's pair weight, and a few extra terms (log
scale, log velocity standard error, log dates, log span, presence flag).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TemporalEncoder(nn.Module):
    r"""A 1-D CNN over the residual quantile function and an MLP over the lag and extra terms.

    The quantile function ``q ∈ ℝ^Q`` (quantiles at evenly spaced probabilities) is a curve: its
    shape, not any single value, tells Gaussian noise (a straight line against the normal
    quantiles) from outlier dates (a lifted end), a jump or a half-cycle unwrapping error (a
    plateau between two modes). Two convolutions of kernel 3 read local shape wherever it sits,
    with far fewer weights than a dense layer over ``Q`` values; a fixed position channel
    ``π_i = 2 p_i − 1`` tells them whether they look at a tail or at the bulk, and mean and max
    pooling summarise the curve. The lag terms (autocorrelation and pair weight per lag, ``2L``)
    and the extras (``E``) have no such order and go through a small MLP.

    .. math::
        h &= \mathrm{GELU}(\mathrm{Conv}_2(\mathrm{GELU}(\mathrm{Conv}_1([q \,;\, \pi]))))
             \in \mathbb{R}^{C \times Q} \\
        c &= [\mathrm{mean}_i\, h_{:, i} \,\Vert\, \max_i h_{:, i}] \in \mathbb{R}^{2C} \\
        m &= \mathrm{GELU}(W_m [\rho \,\Vert\, w \,\Vert\, x]) \\
        e &= \mathrm{GELU}(W [c \,\Vert\, m]) \in \mathbb{R}^{\mathrm{out\_dim}}

    Fixed shapes and no data-dependent control flow: exports to ONNX as it stands.

    Args:
        n_quantiles (int): length Q of the quantile function. (default: 16)
        n_lags (int): number of lags L (the block holds L autocorrelations, then L weights).
            (default: 6)
        n_extra (int): extra terms E after them. (default: 5)
        out_dim (int): output width. (default: 32)
        channels (int): convolution channels C. (default: 16)
        hidden (int): width of the lag/extra MLP. (default: 32)

    Shapes: block ``[B, Q + 2L + E]`` (columns in that order) → ``[B, out_dim]``.
    """

    def __init__(self, n_quantiles: int = 16, n_lags: int = 6, n_extra: int = 5,
                 out_dim: int = 32, channels: int = 16, hidden: int = 32):
        super().__init__()
        if n_quantiles < 1 or n_lags < 0 or n_extra < 0 or 2 * n_lags + n_extra < 1:
            raise ValueError(f"need ≥ 1 quantile and ≥ 1 lag or extra term, got "
                             f"n_quantiles={n_quantiles}, n_lags={n_lags}, n_extra={n_extra}")
        self.n_quantiles, self.n_lags, self.n_extra = n_quantiles, n_lags, n_extra
        self.out_dim = out_dim
        self.conv = nn.Sequential(
            nn.Conv1d(2, channels, 3, padding=1), nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=1), nn.GELU(),
        )
        self.mlp = nn.Sequential(nn.Linear(2 * n_lags + n_extra, hidden), nn.GELU())
        self.proj = nn.Linear(2 * channels + hidden, out_dim)
        self.act = nn.GELU()
        p = (torch.arange(n_quantiles, dtype=torch.float32) + 0.5) / n_quantiles
        self.register_buffer("position", (2 * p - 1).view(1, 1, n_quantiles), persistent=False)
        self.reset_parameters()

    @property
    def n_inputs(self) -> int:
        """Width ``Q + 2L + E`` of the block this encoder reads."""
        return self.n_quantiles + 2 * self.n_lags + self.n_extra

    def reset_parameters(self) -> None:
        for m in (*self.conv, *self.mlp, self.proj):
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                m.reset_parameters()

    def forward(self, block: Tensor) -> Tensor:
        q = block[:, :self.n_quantiles].unsqueeze(1)                    # [B, 1, Q]
        pos = self.position.expand(block.shape[0], 1, self.n_quantiles)
        h = self.conv(torch.cat([q, pos], dim=1))                       # [B, C, Q]
        c = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=-1)         # [B, 2C]
        m = self.mlp(block[:, self.n_quantiles:])
        return self.act(self.proj(torch.cat([c, m], dim=-1)))

    def extra_repr(self) -> str:
        return (f"n_quantiles={self.n_quantiles}, n_lags={self.n_lags}, "
                f"n_extra={self.n_extra}, out_dim={self.out_dim}")


class TemporalScalars(nn.Module):
    """Replaces the temporal block of a scalar vector by its :class:`TemporalEncoder` embedding.

    The scalar features carry the block as the fixed column slice ``[start, start + Q + 2L + E)``
    (so the ONNX interface keeps one ``scalars`` input); the other columns pass through
    unchanged, in order, and the embedding is appended after them. The encoder's output thus
    joins the scalar MLP's *input*: the noise label compares the velocity's standard error with
    a tolerance that grows with |velocity|, an interaction the scalar MLP can form only if it
    sees both.

    Args:
        n_scalars (int): scalar features S, the block included.
        start (int): first column of the block.
        n_quantiles, n_lags, n_extra, out_dim: as in :class:`TemporalEncoder`.

    Shapes: scalars ``[B, S]`` → ``[B, S − (Q + 2L + E) + out_dim]``.
    """

    def __init__(self, n_scalars: int, start: int, n_quantiles: int = 16, n_lags: int = 6,
                 n_extra: int = 5, out_dim: int = 32):
        super().__init__()
        self.encoder = TemporalEncoder(n_quantiles, n_lags, n_extra, out_dim)
        self.start, self.stop = start, start + self.encoder.n_inputs
        if start < 0 or self.stop > n_scalars:
            raise ValueError(f"temporal block [{start}, {self.stop}) lies outside the "
                             f"{n_scalars} scalar columns")
        self.n_scalars = n_scalars
        self.num_features = n_scalars - self.encoder.n_inputs + out_dim

    def forward(self, scalars: Tensor) -> Tensor:
        parts = [scalars[:, :self.start]] if self.start > 0 else []
        if self.stop < self.n_scalars:
            parts.append(scalars[:, self.stop:])
        parts.append(self.encoder(scalars[:, self.start:self.stop]))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]


def scalar_branch(n_scalars: int, n_summary: int, hidden: int, temporal: bool,
                  temporal_start: int = 0, temporal_quantiles: int = 16, temporal_lags: int = 6,
                  temporal_extra: int = 5, temporal_dim: int = 32
                  ) -> tuple[TemporalScalars | None, nn.Sequential]:
    """The scalar branch both PW encoders share: the temporal block's embedding (None when
    ``temporal`` is off) and a two-layer GELU MLP, ``hidden`` wide, over the scalars (the
    block replaced by its embedding) and ``n_summary`` patch statistics."""
    t = (TemporalScalars(n_scalars, temporal_start, temporal_quantiles, temporal_lags,
                         temporal_extra, temporal_dim) if temporal else None)
    n_in = (t.num_features if t is not None else n_scalars) + n_summary
    return t, nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(),
                            nn.Linear(hidden, hidden), nn.GELU())
