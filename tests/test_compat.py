"""psirel.compat: the rasters' grid, not their resolution, must match the model; land-cover
legends and unknown codes."""

import pytest

from psirel.compat import check_features, check_unknown_lulc
from psirel.errors import ModelError
from psirel.graph.knn import EDGE_FEATURES
from psirel.model_dir import ModelCard

NAMES = ["velocity", "coherence"]


def card(tmp_path, **features) -> ModelCard:
    f = {"scalar_names": NAMES, "n_dates_trained": 0, "edge_features": list(EDGE_FEATURES),
         "pixel_m": 10.0, **features}
    return ModelCard(path=tmp_path, meta={"features": f, "normalizer": {"lulc_codes": [1, 2, 6]}})


def test_grid_pixel_must_be_the_models(tmp_path):
    c = card(tmp_path)
    check_features(c, NAMES, 0, 10.0)  # rasters read on the model's grid: whatever their pixels
    with pytest.raises(ModelError, match=r"trained on 10 m rasters but they are read on a grid "
                                         r"of 30 m pixels.*RasterStack\(\.\.\., pixel_m=10\)"):
        check_features(c, NAMES, 0, 30.0)
    with pytest.raises(ModelError, match="12 m pixels"):  # no tolerance: another footprint
        check_features(c, NAMES, 0, 12.0)


def test_land_cover_legend_must_match_the_models(tmp_path):
    raw = card(tmp_path)  # saved before legends existed: raw codes
    check_features(raw, NAMES, 0, 10.0, lulc_legend=None)
    with pytest.raises(ModelError, match="trained on raw land-cover codes .* 'corine' legend"):
        check_features(raw, NAMES, 0, 10.0, lulc_legend="corine")
    sem = card(tmp_path, lulc_legend="worldcover")
    check_features(sem, NAMES, 0, 10.0, lulc_legend="corine")  # both mapped: fine
    with pytest.raises(ModelError, match="'worldcover' legend.* read as raw codes"):
        check_features(sem, NAMES, 0, 10.0, lulc_legend=None)
    check_features(sem, NAMES, 0, 10.0)  # not checked when not given


def test_unknown_land_cover_codes_are_named(tmp_path):
    c = card(tmp_path)
    seen = []
    check_unknown_lulc(c, 10, 1000, warn=seen.append, codes=[700, 255, 700])
    assert seen == ["10 of 1000 points have land-cover codes the model never saw (255, 700); "
                    "they are treated as 'unknown'"]
    with pytest.raises(ModelError, match=r"never saw \(7, 9\) \(it knows \[1, 2, 6\]\): is this "
                                         r"the same land-cover product\?"):
        check_unknown_lulc(c, 900, 1000, codes=[9, 7])
    with pytest.raises(ModelError, match=r"never saw \(it knows"):  # without codes: as before
        check_unknown_lulc(c, 900, 1000)
    check_unknown_lulc(c, 0, 1000, codes=[5])  # nothing unknown: silent
