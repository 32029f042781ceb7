"""Each neighbour-table layer against its torch-geometric original, same weights, float32.

The table is converted to PyG's ``edge_index = [src j, dst i]``; rows fully masked, rows full,
random masks elsewhere. Eval mode; tolerance 1e-5 (measured differences are ~1e-6 or less).
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import DeepGCNLayer, GATv2Conv, GENConv, TransformerConv

from psirel.models.gatv2 import GATv2Layer
from psirel.models.gen import DeepGCNBlock, GENLayer
from psirel.models.neighbours import to_edge_index
from psirel.models.unimp import UniMPConv

TOL = 1e-5
N, K, E, F_IN = 40, 6, 5, 16


def _randomise(module: torch.nn.Module) -> None:
    """Non-trivial values for the parameters PyG initialises to constants (biases, norms)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:  # biases, norm affines, the temperature t: around 0 or 1
                centre = 0.0 if name.endswith("bias") else 1.0
                p.copy_(centre + 0.5 * torch.randn_like(p))
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)


def _compare(pyg, ours, x, table_args, grad: bool = True) -> float:
    idx, mask, ea = table_args
    edge_index, edge_attr = to_edge_index(idx, mask, ea)
    pyg.eval()
    ours.eval()
    x1 = x.clone().requires_grad_(grad)
    x2 = x.clone().requires_grad_(grad)
    a = pyg(x1, edge_index, edge_attr)
    b = ours(x2, idx, mask, ea)
    assert a.shape == b.shape
    assert torch.isfinite(b).all()
    diff = (a - b).abs().max().item()
    if grad:  # the backward pass agrees too, and masked rows give finite gradients
        w = torch.randn_like(a)
        (a * w).sum().backward()
        (b * w).sum().backward()
        assert torch.isfinite(x2.grad).all()
        diff = max(diff, (x1.grad - x2.grad).abs().max().item())
    return diff


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("concat", [True, False])
def test_unimp_matches_transformerconv(table, seed, heads, concat):
    torch.manual_seed(seed)
    pyg = TransformerConv(F_IN, 8, heads, concat=concat, beta=True, root_weight=True, edge_dim=E)
    _randomise(pyg)
    ours = UniMPConv.load_from_pyg(pyg)
    x = torch.randn(N, F_IN)
    assert _compare(pyg, ours, x, table(N, K, E, seed=seed)) <= TOL


@pytest.mark.parametrize("beta,root_weight", [(False, True), (False, False)])
def test_unimp_without_gate(table, beta, root_weight):
    torch.manual_seed(3)
    pyg = TransformerConv(F_IN, 8, 2, beta=beta, root_weight=root_weight, edge_dim=E)
    ours = UniMPConv.load_from_pyg(pyg)
    assert _compare(pyg, ours, torch.randn(N, F_IN), table(N, K, E, seed=3)) <= TOL


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("concat", [True, False])
def test_gatv2_matches_gatv2conv(table, seed, heads, concat):
    torch.manual_seed(seed)
    pyg = GATv2Conv(F_IN, 8, heads, concat=concat, edge_dim=E, add_self_loops=True,
                    fill_value="mean")
    _randomise(pyg)
    ours = GATv2Layer.load_from_pyg(pyg)
    assert _compare(pyg, ours, torch.randn(N, F_IN), table(N, K, E, seed=seed)) <= TOL


@pytest.mark.parametrize("share_weights,add_self_loops", [(True, True), (False, False)])
def test_gatv2_options(table, share_weights, add_self_loops):
    torch.manual_seed(4)
    pyg = GATv2Conv(F_IN, 8, 2, edge_dim=E, add_self_loops=add_self_loops,
                    share_weights=share_weights, negative_slope=0.1)
    _randomise(pyg)
    ours = GATv2Layer.load_from_pyg(pyg)
    assert _compare(pyg, ours, torch.randn(N, F_IN), table(N, K, E, seed=4)) <= TOL


def test_gatv2_isolated_node_attends_to_itself(table):
    """PyG fills a node without in-edges with a self loop whose edge feature is 0 (scatter-mean
    over nothing): the output is W_l x_i + b."""
    torch.manual_seed(5)
    idx, mask, ea = table(N, K, E, seed=5)
    layer = GATv2Layer(F_IN, 8, heads=2, edge_dim=E)
    _randomise(layer)
    x = torch.randn(N, F_IN)
    with torch.no_grad():
        out = layer(x, idx, mask, ea)
        expected = layer.lin_l(x[:3]) + layer.bias
    torch.testing.assert_close(out[:3], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("f_in,f_out", [(16, 8), (8, 8)])
@pytest.mark.parametrize("learn_t", [True, False])
def test_gen_matches_genconv(table, seed, norm, f_in, f_out, learn_t):
    torch.manual_seed(seed)
    pyg = GENConv(f_in, f_out, aggr="softmax", t=0.7, learn_t=learn_t, num_layers=2, norm=norm,
                  edge_dim=E)
    _randomise(pyg)
    ours = GENLayer.load_from_pyg(pyg)
    assert ours.norm == norm and ours.learn_t == learn_t
    x = torch.randn(N, f_in)
    assert _compare(pyg, ours, x, table(N, K, E, seed=seed)) <= TOL


def test_gen_edge_dim_equal_to_out_channels(table):
    """GENConv adds raw edge features when edge_dim == out_channels (no lin_edge)."""
    torch.manual_seed(6)
    pyg = GENConv(16, E, aggr="softmax", learn_t=True, num_layers=3, norm="layer", edge_dim=E)
    _randomise(pyg)
    ours = GENLayer.load_from_pyg(pyg, edge_dim=E)
    assert ours.lin_edge is None
    assert _compare(pyg, ours, torch.randn(N, 16), table(N, K, E, seed=6)) <= TOL


def test_res_plus_block_matches_deepgcnlayer(table):
    torch.manual_seed(7)
    h = 16
    pyg_conv = GENConv(h, h, aggr="softmax", learn_t=True, num_layers=2, norm="layer", edge_dim=E)
    pyg = DeepGCNLayer(pyg_conv, torch.nn.LayerNorm(h), torch.nn.ReLU(), block="res+",
                       dropout=0.1)
    _randomise(pyg)
    ours = DeepGCNBlock(GENLayer.load_from_pyg(pyg_conv), torch.nn.LayerNorm(h),
                        torch.nn.ReLU(), dropout=0.1)
    ours.norm.load_state_dict(pyg.norm.state_dict())
    assert _compare(pyg, ours, torch.randn(N, h), table(N, K, E, seed=7)) <= TOL
