"""The typed model card: ``model.json`` parsed once, and the checks of model against data.

:func:`psirel.model_dir.load_card` verifies the directory, migrates an older card to the
current version (:func:`psirel.model_dir.migrate`) and builds a :class:`ModelCard`; every
error in the card is raised there, as a one-line :class:`~psirel.errors.ModelError` naming the
file. Readers use its typed fields (``card.config.graph.layers``, ``card.features.k``), never
the raw document, which stays in ``card.meta`` only to be updated and saved (export, INT8).

Does this model fit this data? A model learnt with a 2-year series must not silently score a
cloud with no series: :meth:`ModelCard.check_features` and :meth:`ModelCard.check_unknown_lulc`
refuse every mismatch that would make the output meaningless, before any long run. The rasters'
resolution is not one of them: they are resampled onto the model's grid
(:func:`psirel.io.grid.model_grid`), at its pixel size, whatever theirs. Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psirel.config import ModelConfig
from psirel.errors import ModelError
from psirel.features.normalize import Normalizer
from psirel.graph.edges import EDGE_FEATURES, EdgeScale

MODEL_JSON = "model.json"
VARIANTS = ("model", "pointwise_only")
WEIGHTS = {"model": "weights.safetensors", "pointwise_only": "pointwise_only.safetensors"}
# Refuse when more than this fraction of points carry land-cover codes the model never saw.
MAX_UNKNOWN_LULC_FRACTION = 0.5
_UNSET = object()


@dataclass(frozen=True)
class FeatureSpec:
    """What the model was trained on (``model.json`` "features")."""

    patch_px: int
    k: int
    r_max_m: float
    scalar_names: tuple[str, ...]
    edge_features: tuple[str, ...]
    n_dates_trained: int
    pixel_m: float
    lulc_legend: str | None
    raster_crs: str | None
    layers: tuple[str, ...]

    @classmethod
    def from_json(cls, d: dict) -> FeatureSpec:
        return cls(patch_px=int(d["patch_px"]), k=int(d["k"]), r_max_m=float(d["r_max_m"]),
                   scalar_names=tuple(d["scalar_names"]),
                   edge_features=tuple(d["edge_features"]),
                   n_dates_trained=int(d["n_dates_trained"]), pixel_m=float(d["pixel_m"]),
                   lulc_legend=d["lulc_legend"], raster_crs=d.get("raster_crs"),
                   layers=tuple(d.get("layers", ())))


@dataclass(frozen=True)
class Variant:
    """One scored variant: its ensemble members' weight files, calibration and threshold."""

    weights: tuple[str, ...]
    scale: tuple[float, ...]
    bias: tuple[float, ...]
    threshold: float


@dataclass(eq=False)
class ModelCard:
    """The parsed, verified ``model.json`` of a model directory (current version)."""

    path: Path
    meta: dict[str, Any]
    config: ModelConfig
    features: FeatureSpec
    normalizer: Normalizer
    edge_scale: EdgeScale
    variants: dict[str, Variant]

    @classmethod
    def parse(cls, path: Path, meta: dict) -> ModelCard:
        """Build the card from a migrated document; ModelError naming what is wrong."""
        mj = Path(path) / MODEL_JSON
        try:
            cfg = meta["config"]
            config = ModelConfig.from_dict(cfg)
            features = FeatureSpec.from_json(meta["features"])
            normalizer = Normalizer.from_json(meta["normalizer"])
            edge_scale = EdgeScale.from_json(meta["edge_scale"])
            variants = {v: _variant(meta, v) for v in VARIANTS if v == "model" or v in meta}
        except (KeyError, TypeError, ValueError) as exc:
            what = f"no '{exc.args[0]}' entry" if isinstance(exc, KeyError) else str(exc)
            raise ModelError(mj, f"invalid model card ({what})") from None
        return cls(Path(path), meta, config, features, normalizer, edge_scale, variants)

    # ------------------------------------------------------------------ the model
    @property
    def encoder(self) -> str:
        """``"patch"`` or ``"shared-map"``."""
        return self.config.encoder.kind

    @property
    def shared_map(self) -> bool:
        return self.encoder == "shared-map"

    @property
    def members(self) -> int:
        """Ensemble members of the model."""
        return len(self.variants["model"].weights)

    @property
    def embedding_dim(self) -> int:
        """Width of the stage-1 embeddings: every member's, side by side."""
        return self.config.encoder.emb_dim * self.members

    @property
    def threshold(self) -> float:
        return self.variants["model"].threshold

    def variant(self, name: str = "model") -> Variant:
        if name not in self.variants:
            raise ModelError(self.path / MODEL_JSON, f"has no '{name}' variant")
        return self.variants[name]

    def variant_config(self, name: str = "model") -> ModelConfig:
        """The architecture of a variant: ``pointwise_only`` is the model without its GNN."""
        self.variant(name)
        return self.config.replace(gnn="none") if name == "pointwise_only" else self.config

    def receptive_hops(self) -> int:
        """See :meth:`psirel.config.ModelConfig.receptive_hops`."""
        return self.config.receptive_hops()

    def baseline(self, name: str) -> dict:
        """A baseline's record (its parameters and tuned threshold)."""
        try:
            return self.meta["baselines"][name]
        except KeyError:
            raise ModelError(self.path / MODEL_JSON, f"has no '{name}' baseline") from None

    def raster_options(self, lulc_legend: str | None = None) -> dict:
        """How to open rasters for this model (:class:`~psirel.io.rasters.RasterStack`
        keywords): on its grid's pixel size, and with land cover mapped to semantic classes
        through ``lulc_legend`` (default: detected) when the model learnt them; raw codes for a
        model that learnt raw codes."""
        legend = None if self.features.lulc_legend is None else (lulc_legend or "auto")
        return {"pixel_m": self.features.pixel_m, "lulc_legend": legend}

    # ------------------------------------------------------------------ artifacts
    def artifact(self, name: str) -> Path:
        """Path of a verified artifact; ModelError if the card does not list it."""
        if name not in self.meta.get("artifacts", {}):
            raise ModelError(self.path / MODEL_JSON, f"lists no artifact '{name}'")
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.meta.get("artifacts", {})

    # ------------------------------------------------------------------ model against data
    def check_features(self, scalar_names: list[str], n_dates: int, pixel_m: float,
                       *, lulc_legend=_UNSET) -> None:
        """Compare the model's feature configuration with what the data provides.

        Args:
            pixel_m: pixel size (m) of the grid the rasters are read on
                (``RasterStack.pixel_m``). It must be the model's, which it is when the stack
                was opened with :meth:`raster_options`: any other is a patch of another
                footprint.
            lulc_legend: ``RasterStack.lulc_legend`` (None: raw codes). When given, a model
                that learnt semantic land-cover classes must get them and one that learnt raw
                codes must get raw codes.
        """
        f = self.features
        mj = self.path / MODEL_JSON
        if list(f.scalar_names) != list(scalar_names):
            raise ModelError(mj, f"feature config does not match the data: model expects "
                                 f"scalar features {list(f.scalar_names)}, this version "
                                 f"computes {list(scalar_names)}")
        if f.n_dates_trained > 0 and n_dates == 0:
            raise ModelError(mj, "model was trained with displacement time series but the "
                                 "points have no date columns (DYYYYMMDD or YYYYMMDD)")
        if list(f.edge_features) != list(EDGE_FEATURES):
            raise ModelError(mj, f"feature config does not match the data: model expects edge "
                                 f"features {list(f.edge_features)}, this version computes "
                                 f"{list(EDGE_FEATURES)}")
        if not math.isclose(float(pixel_m), f.pixel_m, rel_tol=1e-6):
            raise ModelError(mj, f"model was trained on {f.pixel_m:g} m rasters but they are "
                                 f"read on a grid of {float(pixel_m):g} m pixels: open them on "
                                 f"the model's grid (RasterStack(..., pixel_m={f.pixel_m:g}))")
        if lulc_legend is not _UNSET:
            trained = f.lulc_legend
            if trained is not None and lulc_legend is None:
                raise ModelError(mj, f"model was trained on land-cover classes (from the "
                                     f"'{trained}' legend) but the land cover is read as raw "
                                     "codes: name its legend (or 'auto')")
            if trained is None and lulc_legend is not None:
                raise ModelError(mj, f"model was trained on raw land-cover codes but the land "
                                     f"cover is mapped through the '{lulc_legend}' legend: "
                                     "read it raw, with the product the model was trained on")

    def check_unknown_lulc(self, n_unknown: int, n_points: int, warn=None, codes=None) -> None:
        """Warn about points whose patch holds never-seen land-cover codes; refuse if most do.

        ``codes``: the unknown codes themselves (e.g. ``RasterStack.unknown_lulc_codes``),
        named in the message when given.
        """
        if n_unknown == 0:
            return
        frac = n_unknown / max(n_points, 1)
        named = ""
        if codes is not None and len(codes):
            shown = sorted({int(c) for c in codes})
            named = " (" + ", ".join(map(str, shown[:12])) + (" …" if len(shown) > 12 else "") \
                + ")"
        if frac > MAX_UNKNOWN_LULC_FRACTION:
            legend = self.features.lulc_legend
            product = (f"is the land cover in the '{legend}' legend or one psirel can map?"
                       if legend else "is this the same land-cover product?")
            raise ModelError(self.path / MODEL_JSON,
                             f"{n_unknown} of {n_points} points have land-cover codes the model "
                             f"never saw{named} (it knows {list(self.normalizer.lulc_codes)}): "
                             f"{product}")
        if warn is not None:
            warn(f"{n_unknown} of {n_points} points have land-cover codes the model never saw"
                 f"{named}; they are treated as 'unknown'")


def _variant(meta: dict, name: str) -> Variant:
    node = meta if name == "model" else meta[name]
    weights = (tuple(meta["ensemble"]["weights"]) if name == "model"
               else (WEIGHTS["pointwise_only"],))
    cal = node["calibration"]
    if len(cal["scale"]) != len(weights) or len(cal["bias"]) != len(weights):
        raise ValueError(f"{name} calibration has {len(cal['scale'])} entries for "
                         f"{len(weights)} ensemble members")
    return Variant(weights, tuple(map(float, cal["scale"])), tuple(map(float, cal["bias"])),
                   float(node["threshold"]))
