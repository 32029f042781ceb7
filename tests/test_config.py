"""psirel.config: the real defaults once, the registries, the flat (card v1) names."""

from __future__ import annotations

import sys

import pytest

from psirel.config import (
    ENCODERS,
    FUSIONS,
    GNN_CHOICES,
    GNN_TYPES,
    EncoderConfig,
    GraphConfig,
    ModelConfig,
    TrainSettings,
    choices,
)
from psirel.features.scalars import SCALAR_FEATURES
from psirel.graph.edges import EDGE_FEATURES


def test_training_defaults_are_the_config_defaults():
    n_s = len(SCALAR_FEATURES)
    assert TrainSettings().model_config(5, n_s) == ModelConfig(5, n_s)
    cfg = ModelConfig(5, n_s)
    assert cfg.graph.edge_dim == len(EDGE_FEATURES)      # the features the graph computes
    assert cfg.encoder.kind == "shared-map" and cfg.graph.kind == "unimp"
    assert TrainSettings().gnn == GraphConfig.kind and TrainSettings().encoder == EncoderConfig.kind


def test_registries():
    assert set(GNN_TYPES) == {"unimp", "gatv2", "gen"} and GNN_CHOICES[-1] == "none"
    assert choices(ENCODERS) == "shared-map | patch"
    for t in GNN_TYPES.values():        # each registered layer has its module
        assert f"psirel.models.{t.module}" in _importable(t.module)
    assert set(FUSIONS) == {"concat", "film"}


def _importable(module: str) -> set[str]:
    pytest.importorskip("torch")
    __import__(f"psirel.models.{module}")
    return set(sys.modules)


def test_flat_names_round_trip_and_replace():
    cfg = ModelConfig.from_flat(n_lulc=4, n_scalars=len(SCALAR_FEATURES), gnn="gen",
                                gnn_hidden=32, emb_dim=16, head_skip=False, dims=[4, 8, 8, 8])
    assert (cfg.graph.kind, cfg.graph.hidden, cfg.encoder.emb_dim, cfg.head.skip) == (
        "gen", 32, 16, False)
    assert cfg.encoder.dims == (4, 8, 8, 8)
    assert ModelConfig.from_flat(**cfg.to_flat()) == cfg
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    other = cfg.replace(gnn="none", n_lulc=9)
    assert (other.graph.kind, other.n_lulc, other.graph.hidden) == ("none", 9, 32)
    assert not other.has_graph and other.receptive_hops() == 0
    assert cfg.receptive_hops() == cfg.graph.layers + 1       # edge summary: one hop more
    with pytest.raises(ValueError, match="unknown model config keys: colour"):
        cfg.replace(colour="red")


def test_validation_names_the_value():
    n_s = len(SCALAR_FEATURES)
    with pytest.raises(ValueError, match="fuses by concatenation only"):
        ModelConfig.from_flat(n_lulc=3, n_scalars=n_s, fusion="film")
    with pytest.raises(ValueError, match="encoder must be one of"):
        ModelConfig.from_flat(n_lulc=3, n_scalars=n_s, encoder="vit")
    with pytest.raises(ValueError, match="temporal block"):
        ModelConfig(3, 4)
    with pytest.raises(ValueError, match="unknown GraphConfig keys: colour"):
        ModelConfig.from_dict({"n_lulc": 3, "n_scalars": n_s, "graph": {"colour": 1}})
    with pytest.raises(ValueError, match="temporal encoder expects"):
        TrainSettings().model_config(3, 7)


def test_cli_help_lists_the_registry():
    from psirel.cli_options import registry_help

    text = registry_help(GNN_TYPES)
    assert text.startswith("unimp (UniMP (TransformerConv))") and "gen (DeeperGCN" in text
    assert registry_help(ENCODERS).split(" | ")[1].startswith("patch (an 80")
