"""Does this model fit this data? Checked before any long run (torch-free).

A model learnt with a 2-year series must not silently score a cloud with no series: every
mismatch that would make its output meaningless is a :class:`~psirel.errors.ModelError` naming
the model file and what differs. The rasters' resolution is not one of them: they are resampled
onto the model's grid (:func:`psirel.io.grid.model_grid`), at the model's pixel size, whatever
theirs.
"""

from __future__ import annotations

import math

from psirel.errors import ModelError
from psirel.graph.knn import EDGE_FEATURES
from psirel.model_dir import MODEL_JSON, ModelCard

# Refuse when more than this fraction of points carry land-cover codes the model never saw.
MAX_UNKNOWN_LULC_FRACTION = 0.5
_UNSET = object()


def check_features(card: ModelCard, scalar_names: list[str], n_dates: int, pixel_m: float,
                   *, lulc_legend=_UNSET) -> None:
    """Compare the model's feature configuration with what the data provides.

    Args:
        pixel_m: pixel size (m) of the grid the rasters are read on (``RasterStack.pixel_m``).
            It must be the model's, which it is when the stack was opened with
            ``pixel_m=card.features["pixel_m"]``: any other is a patch of another footprint.
        lulc_legend: ``RasterStack.lulc_legend`` (None: raw codes). When given, a model that
            learnt semantic land-cover classes must get them and one that learnt raw codes must
            get raw codes (``card.features["lulc_legend"]``, absent in older models: raw).
    """
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
    if not math.isclose(float(pixel_m), trained_px, rel_tol=1e-6):
        raise ModelError(mj, f"model was trained on {trained_px:g} m rasters but they are read "
                             f"on a grid of {float(pixel_m):g} m pixels: open them on the model's "
                             f"grid (RasterStack(..., pixel_m={trained_px:g}))")
    if lulc_legend is not _UNSET:
        trained = f.get("lulc_legend")
        if trained is not None and lulc_legend is None:
            raise ModelError(mj, f"model was trained on land-cover classes (from the "
                                 f"'{trained}' legend) but the land cover is read as raw codes: "
                                 "name its legend (or 'auto')")
        if trained is None and lulc_legend is not None:
            raise ModelError(mj, f"model was trained on raw land-cover codes but the land cover "
                                 f"is mapped through the '{lulc_legend}' legend: read it raw, "
                                 "with the product the model was trained on")


def check_unknown_lulc(card: ModelCard, n_unknown: int, n_points: int, warn=None,
                       codes=None) -> None:
    """Warn about points whose patch holds never-seen land-cover codes; refuse if most do.

    ``codes``: the unknown codes themselves (e.g. ``RasterStack.unknown_lulc_codes``), named in
    the message when given.
    """
    if n_unknown == 0:
        return
    frac = n_unknown / max(n_points, 1)
    named = ""
    if codes is not None and len(codes):
        shown = sorted({int(c) for c in codes})
        named = " (" + ", ".join(map(str, shown[:12])) + (" …" if len(shown) > 12 else "") + ")"
    if frac > MAX_UNKNOWN_LULC_FRACTION:
        known = card.meta["normalizer"]["lulc_codes"]
        legend = card.features.get("lulc_legend")
        product = (f"is the land cover in the '{legend}' legend or one psirel can map?" if legend
                   else "is this the same land-cover product?")
        raise ModelError(card.path / MODEL_JSON,
                         f"{n_unknown} of {n_points} points have land-cover codes the model never "
                         f"saw{named} (it knows {known}): {product}")
    if warn is not None:
        warn(f"{n_unknown} of {n_points} points have land-cover codes the model never saw"
             f"{named}; they are treated as 'unknown'")
