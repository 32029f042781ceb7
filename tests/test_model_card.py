"""ModelCard's checks of model against data: the rasters' grid, not their resolution, must
match the model; land-cover legends and unknown codes."""

import pytest
from psirel_testing import card_meta

from psirel.errors import ModelError
from psirel.model_card import ModelCard

NAMES = ["velocity", "coherence"]


def card(tmp_path, **features) -> ModelCard:
    return ModelCard.parse(tmp_path, card_meta(features={"scalar_names": NAMES, **features}))


def test_grid_pixel_must_be_the_models(tmp_path):
    c = card(tmp_path)
    c.check_features(NAMES, 0, 10.0)  # rasters read on the model's grid: whatever their pixels
    with pytest.raises(ModelError, match=r"trained on 10 m rasters but they are read on a grid "
                                         r"of 30 m pixels.*RasterStack\(\.\.\., pixel_m=10\)"):
        c.check_features(NAMES, 0, 30.0)
    with pytest.raises(ModelError, match="12 m pixels"):  # no tolerance: another footprint
        c.check_features(NAMES, 0, 12.0)


def test_land_cover_legend_must_match_the_models(tmp_path):
    raw = card(tmp_path)  # saved before legends existed: raw codes
    raw.check_features(NAMES, 0, 10.0, lulc_legend=None)
    with pytest.raises(ModelError, match="trained on raw land-cover codes .* 'corine' legend"):
        raw.check_features(NAMES, 0, 10.0, lulc_legend="corine")
    sem = card(tmp_path, lulc_legend="worldcover")
    sem.check_features(NAMES, 0, 10.0, lulc_legend="corine")  # both mapped: fine
    with pytest.raises(ModelError, match="'worldcover' legend.* read as raw codes"):
        sem.check_features(NAMES, 0, 10.0, lulc_legend=None)
    sem.check_features(NAMES, 0, 10.0)  # not checked when not given


def test_unknown_land_cover_codes_are_named(tmp_path):
    c = card(tmp_path)
    seen = []
    c.check_unknown_lulc(10, 1000, warn=seen.append, codes=[700, 255, 700])
    assert seen == ["10 of 1000 points have land-cover codes the model never saw (255, 700); "
                    "they are treated as 'unknown'"]
    with pytest.raises(ModelError, match=r"never saw \(7, 9\) \(it knows \[1, 2, 6\]\): is this "
                                         r"the same land-cover product\?"):
        c.check_unknown_lulc(900, 1000, codes=[9, 7])
    with pytest.raises(ModelError, match=r"never saw \(it knows"):  # without codes: as before
        c.check_unknown_lulc(900, 1000)
    c.check_unknown_lulc(0, 1000, codes=[5])  # nothing unknown: silent
