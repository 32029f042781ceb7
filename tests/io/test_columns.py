import numpy as np
import pytest

from psirel.errors import InvalidColumn
from psirel.io.columns import date_columns, match_role, match_xy, shapefile_names


@pytest.mark.parametrize(("names", "role", "expected"), [
    (["pid", "VEL", "coh"], "velocity", "VEL"),
    (["Temporal_Coherence", "x"], "coherence", "Temporal_Coherence"),
    (["mean_velocity", "mean_velocity_std"], "velocity", "mean_velocity"),
    (["mean_veloc", "mean_vel_1"], "velocity", "mean_veloc"),  # after a shapefile
    (["velocity", "vel"], "velocity", "velocity"),  # the earlier alias wins
    (["height_wgs84", "HEIGHT"], "height", "HEIGHT"),
    (["speed"], "velocity", None),
    (["Point_ID"], "id", "Point_ID"),
])
def test_roles_match_aliases_case_insensitively(names, role, expected):
    assert match_role(names, role) == expected


def test_coordinate_pairs_prefer_projected():
    assert match_xy(["pid", "latitude", "longitude", "easting", "northing"]) == (
        "easting", "northing", False)
    assert match_xy(["LAT", "LON"]) == ("LON", "LAT", True)
    assert match_xy(["X", "Y", "easting", "northing"]) == ("X", "Y", False)
    assert match_xy(["easting", "lat"]) is None


def test_dates_both_conventions_sorted():
    found = date_columns(["pid", "D20200113", "20200101", "d20200125", "D2020011", "x20200101"])
    assert [c for c, _ in found] == ["20200101", "D20200113", "d20200125"]
    assert [str(d) for _, d in found] == ["2020-01-01", "2020-01-13", "2020-01-25"]


def test_invalid_calendar_date_names_the_column():
    with pytest.raises(InvalidColumn, match=r"pts\.csv: column 'D20200230'"):
        date_columns(["D20200101", "D20200230"], "pts.csv")


def test_repeated_date_is_an_error():
    with pytest.raises(InvalidColumn, match="repeats the date"):
        date_columns(["D20200101", "20200101"], "pts.csv")


def test_shapefile_names_like_gdal():
    names = ["reliability", "reliable_pred", "mean_velocity", "mean_velocity_std", "D20200101",
             "temporal_coherence"]
    assert shapefile_names(names) == ["reliabilit", "reliable_p", "mean_veloc", "mean_vel_1",
                                      "D20200101", "temporal_c"]
    many = shapefile_names([f"abcdefghijk{i}" for i in range(12)])
    assert len(set(many)) == 12 and max(map(len, many)) == 10
    assert np.all([n.startswith("abcdefg") for n in many])
