"""What inference runs: M independently seeded members, each calibrated, averaged.

A member is a :class:`~psirel.models.reliability.ReliabilityModel`. Stage 1 concatenates the
members' embeddings (``[B, M·D]``), so the two-stage pipeline, the tiles and the Dask driver
carry an ensemble exactly as they carry one model: only the embedding width changes. Stage 2
splits them again and returns, per point,

``p_i = 1/M Σ_m σ(a_m z_im + b_m)`` and ``std_i = sqrt(1/M Σ_m (σ(a_m z_im + b_m) − p_i)²)``,

where ``z_im`` is member m's logit and ``(a_m, b_m)`` its Platt calibration
(:mod:`psirel.train.calibration`, stored in ``model.json``). A single model is the case M = 1,
with ``std = 0``. The spread of independently trained members is the cheapest uncertainty that
is deterministic at inference (MC dropout would need random masks inside the ONNX graph).

Shapes: patches ``[B, 4, P, P]`` (or window ``[1, 4, H, W]`` and rc ``[B, 2]``), scalars
``[B, S]`` → emb ``[B, M·D]``; emb ``[N, M·D]``, idx/mask ``[N, K]``, edge_attr ``[N, K, E]`` →
reliability ``[N]``, reliability_std ``[N]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from psirel.models.reliability import ReliabilityModel


class CalibratedEnsemble(nn.Module):
    """Members with their calibrations; the interface every inference path uses."""

    def __init__(self, members: Sequence[ReliabilityModel],
                 scale: Sequence[float] | None = None, bias: Sequence[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        m = len(members)
        scale = [1.0] * m if scale is None else [float(a) for a in scale]
        bias = [0.0] * m if bias is None else [float(b) for b in bias]
        if len(scale) != m or len(bias) != m:
            raise ValueError(f"{m} members but {len(scale)} scales and {len(bias)} biases")
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))

    # the members share one architecture: the structure is member 0's
    @property
    def cfg(self):
        return self.members[0].cfg

    @property
    def shared_map(self) -> bool:
        return self.members[0].shared_map

    @property
    def gnn(self):
        return self.members[0].gnn

    @property
    def n_members(self) -> int:
        return len(self.members)

    @property
    def embedding_dim(self) -> int:
        return self.cfg.encoder.emb_dim * len(self.members)

    def embed(self, patches: Tensor, scalars: Tensor) -> Tensor:
        return torch.cat([m.embed(patches, scalars) for m in self.members], dim=-1)

    def embed_window(self, window: Tensor, rc: Tensor, scalars: Tensor) -> Tensor:
        """The members' embeddings side by side. The summary maps (box and max filters of the
        window, sampled at the points) have no parameters and the members share the
        architecture, so they are computed once for all members; each member standardises
        them with its own centre and scale. (Computed per member, they were two thirds of a
        3-member default encoder's time.)"""
        raw = self.members[0].summary_raw(window, rc)
        return torch.cat([m.embed_window(window, rc, scalars, raw) for m in self.members],
                         dim=-1)

    def member_logits(self, emb: Tensor, idx: Tensor | None = None, mask: Tensor | None = None,
                      edge_attr: Tensor | None = None) -> Tensor:
        """Calibrated logits ``[N, M]``.

        The edge summary's statistics are parameter-free and the members share the
        architecture, so they are computed once for all members (the robust medians were a
        quarter of a 3-member ``gnn.onnx``'s time, computed three times)."""
        d = self.cfg.encoder.emb_dim
        summary = self.members[0].edge_summary
        stats = None
        if summary is not None and self.members[0].gnn is not None and mask is not None:
            stats = summary.statistics(mask, edge_attr)
        z = torch.stack([m.graph_logits(emb[:, i * d:(i + 1) * d], idx, mask, edge_attr, stats)
                         for i, m in enumerate(self.members)], dim=-1)
        return z * self.scale + self.bias

    def reliability(self, emb: Tensor, idx: Tensor | None = None, mask: Tensor | None = None,
                    edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(p [N], std [N])``: the members' mean calibrated probability and its spread."""
        return self.combine(self.member_logits(emb, idx, mask, edge_attr))

    @staticmethod
    def combine(z: Tensor) -> tuple[Tensor, Tensor]:
        """Calibrated member logits ``[N, M]`` → ``(mean probability, its std)``."""
        p = torch.sigmoid(z)
        mean = p.mean(dim=-1)
        std = ((p - mean.unsqueeze(-1)) ** 2).mean(dim=-1).sqrt()
        return mean, std

    def forward(self, emb: Tensor, idx: Tensor | None = None, mask: Tensor | None = None,
                edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.reliability(emb, idx, mask, edge_attr)
