import numpy as np
import pytest

from psirel.baselines.data import PointData
from psirel.errors import PsirelError
from psirel.features.normalize import Normalizer
from psirel.graph.edges import EdgeScale
from psirel.io.schema import parse_columns
from psirel.train.clouds import (
    concat_point_data,
    pool_edge_scales,
    pool_normalizers,
    read_clouds_csv,
    uses_whole_clouds,
)


def _files(d, names=("p.gpkg", "dem.tif", "lulc.tif", "amp.tif")):
    for n in names:
        (d / n).write_bytes(b"x")


def test_clouds_file_resolves_relative_paths_and_optional_columns(tmp_path):
    (tmp_path / "a").mkdir()
    _files(tmp_path / "a")
    csv = tmp_path / "clouds.csv"
    csv.write_text("points,dem,lulc,amplitude,label,crs,split\n"
                   "a/p.gpkg,a/dem.tif,a/lulc.tif,a/amp.tif,ok,EPSG:3035,train\n"
                   f"{tmp_path}/a/p.gpkg,a/dem.tif,a/lulc.tif,a/amp.tif,,,val\n")
    specs = read_clouds_csv(csv)
    assert [s.points for s in specs] == [tmp_path / "a" / "p.gpkg"] * 2
    assert specs[0].label == "ok" and specs[0].crs == "EPSG:3035" and specs[1].label is None
    assert [s.split for s in specs] == ["train", "val"] and uses_whole_clouds(specs)


@pytest.mark.parametrize("text, message", [
    ("points,dem,lulc\n", r"lacks column\(s\) amplitude"),
    ("points,dem,lulc,amplitude\n", "lists no cloud"),
    ("points,dem,lulc,amplitude\np.gpkg,dem.tif,,amp.tif\n", "row 2 has no 'lulc'"),
    ("points,dem,lulc,amplitude\nnope.gpkg,dem.tif,lulc.tif,amp.tif\n", "points file"),
    ("points,dem,lulc,amplitude,split\np.gpkg,dem.tif,lulc.tif,amp.tif,test\n",
     "split 'test' must be one of train, val"),
    ("points,dem,lulc,amplitude,split\np.gpkg,dem.tif,lulc.tif,amp.tif,val\n",
     "at least one must train"),
])
def test_clouds_file_errors_name_the_file_and_row(tmp_path, text, message):
    _files(tmp_path)
    csv = tmp_path / "c.csv"
    csv.write_text(text)
    with pytest.raises(PsirelError, match=message) as e:
        read_clouds_csv(csv)
    assert str(csv) in str(e.value) and "\n" not in str(e.value)


def test_clouds_file_columns_and_units(tmp_path):
    _files(tmp_path)
    csv = tmp_path / "clouds.csv"
    csv.write_text('points,dem,lulc,amplitude,columns,units\n'
                   'p.gpkg,dem.tif,lulc.tif,amp.tif,"x=pnt_lon,y=pnt_lat,series=d_",m\n'
                   'p.gpkg,dem.tif,lulc.tif,amp.tif,,\n')
    a, b = read_clouds_csv(csv)
    assert a.schema == parse_columns("x=pnt_lon,y=pnt_lat,series=d_", "m")
    assert b.schema is None


@pytest.mark.parametrize("row, message", [
    ('p.gpkg,dem.tif,lulc.tif,amp.tif,"vel=v",', r"row 2: columns/units: unknown role 'vel'"),
    ("p.gpkg,dem.tif,lulc.tif,amp.tif,,cm", r"row 2: columns/units: 'cm'"),
    ("p.gpkg,dem.tif,lulc.tif,amp.tif,x=a,y=b,m", "row 2 has more fields than the header"),
])
def test_clouds_file_bad_columns_name_the_file_and_row(tmp_path, row, message):
    _files(tmp_path)
    csv = tmp_path / "c.csv"
    csv.write_text("points,dem,lulc,amplitude,columns,units\n" + row + "\n")
    with pytest.raises(PsirelError, match=message) as e:
        read_clouds_csv(csv)
    assert str(csv) in str(e.value) and "\n" not in str(e.value)


def _norm(codes, dem, amp_mean, amp_std):
    return Normalizer(lulc_codes=codes, dem_rel_std_m=dem, amp_db_mean=amp_mean,
                      amp_db_std=amp_std, scalar_mean=[0.0, 0.0], scalar_std=[1.0, 1.0],
                      scalar_names=["a", "b"])


def test_pooled_normaliser_unites_vocabularies_and_pools_statistics():
    a, b = _norm([10, 50], 3.0, 0.0, 1.0), _norm([50, 80], 4.0, 2.0, 1.0)
    feats = np.c_[np.arange(100.0), np.full(100, 7.0)]
    p = pool_normalizers([a, b], [100, 300], feats)
    assert p.lulc_codes == [10, 50, 80]
    assert p.dem_rel_std_m == pytest.approx(np.sqrt(0.25 * 9 + 0.75 * 16))
    assert p.amp_db_mean == pytest.approx(1.5)
    assert p.amp_db_std == pytest.approx(np.sqrt(1 + 0.25 * 1.5 ** 2 + 0.75 * 0.5 ** 2))
    assert p.scalar_mean[0] == pytest.approx(np.median(feats[:, 0]))
    assert pool_normalizers([a], [5], feats) is a


def test_pooled_edge_scale_is_count_weighted():
    s = pool_edge_scales([EdgeScale(100.0, 2.0, 1.0), EdgeScale(100.0, 6.0, 3.0)], [1, 3])
    assert (s.xy_m, s.height_m, s.velocity_mm_yr) == (100.0, 5.0, 2.5)


def _pd(n, t, seed):
    rng = np.random.default_rng(seed)
    idx = np.stack([np.roll(np.arange(n), 1), np.roll(np.arange(n), -1)], 1)
    return PointData.from_arrays(x_m=rng.random(n), y_m=rng.random(n),
                                 velocity_mm_yr=rng.random(n), coherence=rng.random(n),
                                 series_mm=rng.random((n, t)), nbr_idx=idx)


def test_concatenated_point_data_keeps_graphs_within_their_cloud():
    a, b = _pd(5, 3, 0), _pd(4, 6, 1)
    c = concat_point_data([a, b])
    assert c.n_points == 9 and c.series_mm.shape == (9, 6)
    assert np.isnan(c.series_mm[:5, 3:]).all() and not np.isnan(c.series_mm[5:]).any()
    assert c.nbr_idx[:5].max() < 5 and c.nbr_idx[5:].min() >= 5
    np.testing.assert_array_equal(c.nbr_idx[5:] - 5, b.nbr_idx)
