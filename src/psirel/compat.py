"""Does this model fit this data? Checked before any long run (torch-free).

A model learnt on 10 m rasters with a 2-year series must not silently score a cloud with no
series or 100 m rasters: every mismatch that would make its output meaningless is a
:class:`~psirel.errors.ModelError` naming the model file and what differs.
"""

from __future__ import annotations

from psirel.errors import ModelError
from psirel.graph.knn import EDGE_FEATURES
from psirel.model_dir import MODEL_JSON, ModelCard

# Patches cover patch_px × pixel_m metres; beyond this ratio the model sees another footprint.
MAX_PIXEL_RATIO = 1.5
# Refuse when more than this fraction of points carry land-cover codes the model never saw.
MAX_UNKNOWN_LULC_FRACTION = 0.5


def check_features(card: ModelCard, scalar_names: list[str], n_dates: int, pixel_m: float) -> None:
    """Compare the model's feature configuration with what the data provides."""
    f = card.features
    mj = card.path / MODEL_JSON
    if list(f["scalar_names"]) != list(scalar_names):
        raise ModelError(mj, f"feature config does not match the data: model expects scalar "
                             f"features {f['scalar_names']}, this version computes {scalar_names}")
    if f.get("n_dates_trained", 0) > 0 and n_dates == 0:
        raise ModelError(mj, "model was trained with displacement time series but the points "
                             "have no date columns (DYYYYMMDD or YYYYMMDD)")
    if list(f.get("edge_features", [])) != list(EDGE_FEATURES):
        raise ModelError(mj, f"feature config does not match the data: model expects edge "
                             f"features {f.get('edge_features')}, this version computes "
                             f"{list(EDGE_FEATURES)}")
    trained_px = float(f["pixel_m"])
    ratio = max(pixel_m, trained_px) / min(pixel_m, trained_px)
    if ratio > MAX_PIXEL_RATIO:
        raise ModelError(mj, f"model was trained on {trained_px:g} m rasters but the DEM has "
                             f"{pixel_m:g} m pixels (patches would cover another footprint)")


def check_unknown_lulc(card: ModelCard, n_unknown: int, n_points: int, warn=None) -> None:
    """Warn about points whose patch holds never-seen land-cover codes; refuse if most do."""
    if n_unknown == 0:
        return
    frac = n_unknown / max(n_points, 1)
    if frac > MAX_UNKNOWN_LULC_FRACTION:
        codes = card.meta["normalizer"]["lulc_codes"]
        raise ModelError(card.path / MODEL_JSON,
                         f"{n_unknown} of {n_points} points have land-cover codes the model never "
                         f"saw (it knows {codes}): is this the same land-cover product?")
    if warn is not None:
        warn(f"{n_unknown} of {n_points} points have land-cover codes the model never saw; "
             "they are treated as 'unknown'")
