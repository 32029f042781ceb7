"""Land-cover channel → class index, shared by the encoders and the patch summary."""

from __future__ import annotations

import torch
from torch import Tensor


def lulc_indices(channel: Tensor, n_lulc: int) -> Tensor:
    """LULC channel (vocabulary index stored as float) → int32 index, rounded; out of range or
    NaN → 0 (unknown)."""
    c = channel + 0.5  # trunc(c + 0.5) rounds a code ≥ -0.5; float ops, int32 cast:
    c = c.masked_fill(~((c > 0) & (c < n_lulc)), 0.0)  # several times faster than
    return c.to(torch.int32)  # round / long / where on int64 over 6.5 M pixels
