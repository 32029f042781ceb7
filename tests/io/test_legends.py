"""Land-cover legends: the shipped crosswalk, semantic mapping, detection and unknown codes."""

import csv
from importlib import resources

import numpy as np
import pytest

from psirel.errors import LandCoverLegendError
from psirel.io import legends
from psirel.io.legends import (
    LEGENDS,
    SEMANTIC,
    UNKNOWN,
    crosswalk,
    detect_legend,
    to_semantic,
    unknown_codes,
)

CORINE_L3 = [111, 112, 121, 122, 123, 124, 131, 132, 133, 141, 142, 211, 212, 213, 221, 222, 223,
             231, 241, 242, 243, 244, 311, 312, 313, 321, 322, 323, 324, 331, 332, 333, 334, 335,
             411, 412, 421, 422, 423, 511, 512, 521, 522, 523]
EXPECTED_CODES = {
    "worldcover": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100],
    "corine": CORINE_L3,
    "nlcd": [11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 51, 52, 71, 72, 73, 74, 81, 82, 90, 95],
    "cci": [10, 11, 12, 20, 30, 40, 50, 60, 61, 62, 70, 71, 72, 80, 81, 82, 90, 100, 110, 120,
            121, 122, 130, 140, 150, 151, 152, 153, 160, 170, 180, 190, 200, 201, 202, 210, 220],
    "dynamic_world": list(range(9)),
}


def test_crosswalk_covers_every_legend_code_and_maps_to_a_class():
    assert set(LEGENDS) == set(EXPECTED_CODES) and sorted(SEMANTIC) == list(range(1, 9))
    for name, codes in EXPECTED_CODES.items():
        cw = crosswalk(name)
        assert sorted(cw) == codes, name
        assert set(cw.values()) <= set(range(1, 9)), name
        sem = to_semantic(np.array(codes, np.float32), name)
        np.testing.assert_array_equal(sem, [cw[c] for c in codes])


def test_csv_is_package_data_with_sources_and_labels():
    text = resources.files("psirel.io").joinpath("data", "lulc_crosswalk.csv").read_text()
    assert "sources" in text
    for name in LEGENDS:  # each product's legend document is named in the header
        assert f"#   {name}:" in text
    rows = list(csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")))
    assert set(rows[0]) == {"legend", "code", "label", "semantic"}
    assert len(rows) == sum(len(v) for v in EXPECTED_CODES.values())
    assert legends.labels("dynamic_world")[3] == "flooded_vegetation"
    assert legends.labels("corine")[243].startswith("Land principally occupied by agriculture,")


def test_semantic_meaning_of_typical_classes():
    # the same land, five products: forest, built-up, water
    for name, forest, built, water in (("worldcover", 10, 50, 80), ("corine", 312, 111, 512),
                                       ("nlcd", 42, 23, 11), ("cci", 70, 190, 210),
                                       ("dynamic_world", 1, 6, 0)):
        np.testing.assert_array_equal(to_semantic(np.array([forest, built, water]), name),
                                      [2, 1, 6])


def test_to_semantic_nan_fill_and_unknown():
    v = np.array([[10, np.nan, 0], [37, 80.0, -5], [1e9, 95, 100]], np.float32)
    out = to_semantic(v, "worldcover")
    assert out.dtype == np.float32 and out.shape == v.shape
    assert np.isnan(out[0, 1]) and np.isnan(out[0, 2])  # NaN stays; 0 is WorldCover's no data
    np.testing.assert_array_equal(out[1], [UNKNOWN, 6, UNKNOWN])
    np.testing.assert_array_equal(out[2], [UNKNOWN, 7, 3])
    assert UNKNOWN not in SEMANTIC
    assert np.isnan(to_semantic(np.array([999.0]), "corine")).all()
    assert to_semantic(np.array([0.0]), "dynamic_world")[0] == 6  # 0 is water there
    assert to_semantic(np.array([311.7]), "corine")[0] == 2  # codes truncated like GDAL's


def test_unknown_codes():
    v = np.array([111, 700, 700, 999, np.nan, 523, 5, 211.0])
    assert unknown_codes(v, "corine") == [5, 700]  # 999 is CORINE's no data, NaN ignored
    assert unknown_codes(np.array([10, 20]), "worldcover") == []


@pytest.mark.parametrize("codes, expected", [
    ({111, 211, 311, 512}, "corine"),
    ({211}, "corine"),
    ({10, 20, 30, 40, 50, 60, 80}, "worldcover"),  # also CCI codes: WorldCover is the small fit
    ({10, 95}, "worldcover"),  # 95 (mangroves) is WorldCover's alone
    ({0, 10, 30, 40, 50, 80, 100}, "worldcover"),  # 0: its no-data code
    ({11, 21, 41, 82}, "nlcd"),
    ({11, 21, 41, 82, 250}, "nlcd"),
    ({10, 30, 130, 190, 210}, "cci"),
    ({0, 1, 2, 6}, "dynamic_world"),
    ({11, 12}, None),  # NLCD water/ice or CCI cropland: ambiguous
    ({121, 122}, None),  # CORINE and CCI both have them
    ({10, 80}, None),  # too few of WorldCover's codes to rule out CCI
    ({1000}, None),
    (set(), None),
])
def test_detect_legend(codes, expected):
    assert detect_legend(codes) == expected


def test_legend_names_and_aliases():
    assert legends.canonical("CLC") == "corine" and legends.canonical("Dynamic-World") == \
        "dynamic_world"
    with pytest.raises(LandCoverLegendError, match="unknown land-cover legend 'modis'"):
        crosswalk("modis")
