"""psirel.models: the reliability network (needs torch).

Pointwise encoder (ConvNeXt over the raster patch + scalar MLP), graph encoder over the
neighbour table (UniMP, GATv2 or GEN layers, each checked against torch-geometric), head.
"""

from psirel.models.convnext import ConvNeXt, ConvNeXtBlock, LayerNorm2d, convnext_flops
from psirel.models.gatv2 import GATv2Layer
from psirel.models.gen import DeepGCNBlock, GENLayer
from psirel.models.gnn import GNNEncoder, ReliabilityHead
from psirel.models.pointwise import PointwiseEncoder
from psirel.models.reliability import GraphStage, ModelConfig, ReliabilityModel, count_parameters
from psirel.models.unimp import UniMPConv

__all__ = [
    "ConvNeXt",
    "ConvNeXtBlock",
    "DeepGCNBlock",
    "GATv2Layer",
    "GENLayer",
    "GNNEncoder",
    "GraphStage",
    "LayerNorm2d",
    "ModelConfig",
    "PointwiseEncoder",
    "ReliabilityHead",
    "ReliabilityModel",
    "UniMPConv",
    "convnext_flops",
    "count_parameters",
]
