"""WeightAverage: the exponential moving average of the weights, swapped in and out."""

import pytest
import torch
from torch import nn

from psirel.train.loop import WeightAverage


def test_average_follows_the_formula_and_swaps_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    w0 = model[0].weight.detach().clone()
    avg = WeightAverage(model, 0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 5          # integer buffers are copied, not averaged
    avg.update(model)
    expected = 0.9 * w0 + 0.1 * (w0 + 1.0)
    live = avg.swap_in(model)
    assert torch.allclose(model[0].weight, expected)
    assert int(model[1].num_batches_tracked) == 5
    assert torch.allclose(live["0.weight"], w0 + 1.0)
    model.load_state_dict(live)
    assert torch.allclose(model[0].weight, w0 + 1.0)


def test_decay_must_be_a_fraction():
    with pytest.raises(ValueError):
        WeightAverage(nn.Linear(1, 1), 1.0)
