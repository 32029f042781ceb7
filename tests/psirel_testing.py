"""Helpers shared by test modules (conftest.py files cannot be imported by name: several exist)."""

from __future__ import annotations

import copy

from psirel.config import ModelConfig
from psirel.graph.edges import EDGE_FEATURES
from psirel.model_dir import V1_CONFIG_DEFAULTS
from psirel.scene.files import scene_args

__all__ = ["card_meta", "scene_args", "v1_config"]


def v1_config(**flat) -> ModelConfig:
    """The tests' small hand-built models: the defaults of card version 1 (a patch encoder, no
    temporal block, as their scalars are a few random columns, five edge features), changed
    by ``flat`` (names of :meth:`ModelConfig.from_flat`)."""
    return ModelConfig.from_flat(**{**V1_CONFIG_DEFAULTS, **flat})


def card_meta(*, cfg: ModelConfig | None = None, config: dict | None = None,
              features: dict | None = None, pointwise_only: bool = False, **top) -> dict:
    """A minimal valid model.json document of the current version (no artifacts): ``cfg``'s
    architecture (default: a small v1 model, changed by the flat names in ``config``), scalar
    columns named after its ``n_scalars``, identity calibration, and a calibrated
    pointwise-only variant when ``pointwise_only``."""
    cfg = cfg if cfg is not None else v1_config(n_lulc=3, n_scalars=2, **(config or {}))
    names = ["velocity", "coherence", *(f"s{i}" for i in range(2, cfg.n_scalars))]
    names = names[:cfg.n_scalars]
    codes = [1, 2, 6] if cfg.n_lulc == 3 else list(range(1, cfg.n_lulc))
    identity = {"method": "none", "scale": [1.0], "bias": [0.0]}
    meta = {
        "config": cfg.to_dict(),
        "features": {"patch_px": cfg.encoder.patch_px, "k": 16, "r_max_m": 100.0,
                     "scalar_names": names,
                     "edge_features": list(EDGE_FEATURES), "n_dates_trained": 0,
                     "pixel_m": 10.0, "lulc_legend": None, "raster_crs": "EPSG:32633",
                     "layers": ["dem", "lulc", "amplitude"], **(features or {})},
        "normalizer": {"lulc_codes": codes, "dem_rel_std_m": 5.0, "amp_db_mean": 0.0,
                       "amp_db_std": 1.0, "scalar_mean": [0.0] * len(names),
                       "scalar_std": [1.0] * len(names), "scalar_names": names},
        "edge_scale": {"xy_m": 50.0, "height_m": 5.0, "velocity_mm_yr": 2.0},
        "threshold": 0.4,
        "ensemble": {"members": 1, "weights": ["weights.safetensors"]},
        "calibration": dict(identity),
        "artifacts": {},
    }
    if pointwise_only:
        meta["pointwise_only"] = {"threshold": 0.5, "calibration": dict(identity)}
    meta.update(copy.deepcopy(top))
    return meta
