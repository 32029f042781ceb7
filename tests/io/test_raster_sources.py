"""psirel.io.raster_sources: helpers on one raster file, re-exported by psirel.io.rasters."""

from __future__ import annotations

from pyproj import CRS
from rasterio.crs import CRS as RioCRS

from psirel.io import raster_sources, rasters
from psirel.io.raster_sources import crs_wkt, unit_name


def test_unit_name_spells_every_metre_m():
    for name in (None, "", "metre", "Meter", "metres", "METERS"):
        assert unit_name(name) == "m"
    assert unit_name("US survey foot") == "US survey foot"


def test_crs_wkt_accepts_pyproj_rasterio_and_strings():
    ref = CRS.from_epsg(32633)
    for crs in ("EPSG:32633", 32633, ref, RioCRS.from_epsg(32633)):
        assert CRS.from_wkt(crs_wkt(crs)) == ref


def test_rasters_re_exports_the_single_file_helpers():
    for name in ("open_raster", "overview_codes", "choose_resampling", "dem_scale_m",
                 "AVERAGE_RATIO", "DETECT_MAX_SIDE_PX"):
        assert getattr(rasters, name) is getattr(raster_sources, name)
