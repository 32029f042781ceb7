import base64
import re
import struct
import time
from xml.sax.saxutils import escape

import numpy as np
import pytest
import rasterio
from matplotlib.axes import Axes
from matplotlib.image import imread
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.transform import Affine

from psirel.report import quicklook as quicklook_module
from psirel.report.quicklook import (
    DPI,
    FIGSIZE_IN,
    HTML_NAME,
    PNG_NAME,
    SCATTER_MAX_POINTS,
    quicklook_counts,
    write_quicklook,
)

UTM = "EPSG:32633"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def _check(ql, out_dir):
    """Both files there, nothing else; the PNG of the figure's size; the page self-contained.
    Returns the page text and its embedded PNGs."""
    assert (ql.png, ql.html) == (out_dir / PNG_NAME, out_dir / HTML_NAME)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([PNG_NAME, HTML_NAME])
    img = imread(ql.png)
    assert img.shape[:2] == (round(FIGSIZE_IN[1] * DPI), round(FIGSIZE_IN[0] * DPI))
    assert img[..., :3].std() > 0.05
    page = ql.html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched at view time: no URL, no linked script, style sheet or font
    assert not re.search(r"(?i)https?:|ftp:|<link|@import|url\(|\ssrc=[\"']?//", page)
    srcs = re.findall(r"\ssrc=\"([^\"]*)\"", page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script>" in page and "<script src" not in page
    pngs = [base64.b64decode(b) for b in
            re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]
    assert len(pngs) == 2  # the map and the histogram
    return page, pngs


def _dem_utm(path, x0=400_000.0, y0=5_000_000.0, n=600, res=10.0):
    rows, cols = np.mgrid[0:n, 0:n]
    z = 500 + 120 * np.sin(cols / 37.0) * np.cos(rows / 53.0) + 0.2 * rows
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32",
                       crs=UTM, transform=Affine(res, 0, x0, 0, -res, y0)) as dst:
        dst.write(z.astype(np.float32), 1)
    return path


def _cloud(n, seed=0, x0=401_000.0, y0=4_995_000.0, span=4000.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(x0, x0 + span, n)
    y = rng.uniform(y0, y0 + span, n)
    r = rng.beta(4, 1.5, n)
    return x, y, r


def test_counts_on_a_known_input():
    r = np.array([0.1, 0.2, 0.5, 0.9, np.nan, 0.49])
    c = quicklook_counts(r, 0.5, reliability_std=np.array([0.1, 0.3, np.nan, 0.2, 0.0, 0.0]),
                         n_no_position=2)
    assert c == {"n_points": 6, "n_scored": 5, "n_no_score": 1, "n_below_threshold": 3,
                 "pct_below_threshold": pytest.approx(60.0),
                 "mean_reliability": pytest.approx(0.438), "threshold": 0.5,
                 "n_no_position": 2, "mean_reliability_std": pytest.approx(0.12)}
    empty = quicklook_counts(np.full(3, np.nan), 0.3)
    assert empty["n_scored"] == 0 and empty["pct_below_threshold"] is None
    assert empty["mean_reliability"] is None and "mean_reliability_std" not in empty
    with pytest.raises(ValueError, match="threshold"):
        quicklook_counts(r, 1.5)


def test_small_cloud_over_a_dem(tmp_path):
    dem = _dem_utm(tmp_path / "dem.tif")
    x, y, r = _cloud(3000)
    r[:10] = np.nan
    out = tmp_path / "report"
    ql = write_quicklook(out, x, y, UTM, r, 0.45, reliability_std=np.full(3000, 0.05),
                         dem=dem, title="Scene <A&B>", max_cells=600)
    page, (map_png, hist_png) = _check(ql, out)
    expected = quicklook_counts(r, 0.45, reliability_std=np.full(3000, 0.05))
    assert ql.counts == expected
    n_below = expected["n_below_threshold"]
    assert f"{n_below:,}" in page and "3,000" in page and "mean reliability_std" in page
    assert "Scene &lt;A&amp;B&gt;" in page and "<A&B>" not in page
    assert "no score (10 points)" in page
    assert max(_png_size(map_png)) == 600
    rgb = imread(ql.png)[..., :3]
    red = (rgb[..., 0] > 0.6) & (rgb[..., 2] < 0.35)
    blue = (rgb[..., 2] > 0.6) & (rgb[..., 0] < 0.4)
    grey = (np.ptp(rgb, axis=-1) < 0.02) & (rgb[..., 0] > 0.3) & (rgb[..., 0] < 0.85)
    assert red.sum() > 300 and blue.sum() > 3000 and grey.sum() > 20_000  # points on shade


def test_a_million_points_are_binned_not_plotted(tmp_path, monkeypatch):
    def no_scatter(*args, **kwargs):
        raise AssertionError("a large cloud must not be drawn point by point")

    monkeypatch.setattr(Axes, "scatter", no_scatter)
    n = 1_000_000
    x, y, r = _cloud(n, seed=1, span=30_000.0)
    r[::1000] = np.nan
    t0 = time.perf_counter()
    ql = write_quicklook(tmp_path, x, y, UTM, r, 0.5)
    elapsed = time.perf_counter() - t0
    _, (map_png, _) = _check(ql, tmp_path)
    assert ql.counts["n_points"] == n and ql.counts["n_no_score"] == 1000
    assert ql.counts["n_below_threshold"] == int((r[np.isfinite(r)] < 0.5).sum())
    assert max(_png_size(map_png)) == 1500
    assert elapsed < 15.0, f"quick-look of 1e6 points took {elapsed:.1f} s"  # ≈ 2 s here


def _big_vrt(tmp_path) -> str:
    """A 20 000 × 20 000 px DEM in EPSG:4326 (a VRT stretching a 200 px GeoTIFF): read at full
    resolution it would be 1.6 GB and take many seconds."""
    rows, cols = np.mgrid[0:200, 0:200]
    z = (500 + 300 * np.sin(cols / 15.0) * np.cos(rows / 22.0)).astype(np.float32)
    with rasterio.open(tmp_path / "small.tif", "w", driver="GTiff", width=200, height=200,
                       count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(0.005, 0, 13.5, 0, -0.005, 45.5)) as dst:
        dst.write(z, 1)
    (tmp_path / "big.vrt").write_text(f"""<VRTDataset rasterXSize="20000" rasterYSize="20000">
  <SRS>{escape(CRS.from_epsg(4326).to_wkt())}</SRS>
  <GeoTransform>13.5, 0.00005, 0, 45.5, 0, -0.00005</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1">
    <SimpleSource>
      <SourceFilename relativeToVRT="1">small.tif</SourceFilename><SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="200" ySize="200"/>
      <DstRect xOff="0" yOff="0" xSize="20000" ySize="20000"/>
    </SimpleSource>
  </VRTRasterBand>
</VRTDataset>""")
    return str(tmp_path / "big.vrt")


def test_a_large_dem_in_epsg4326_is_read_decimated_under_utm_points(tmp_path, monkeypatch):
    dem = _big_vrt(tmp_path)
    reads, shades = [], []
    original_read = DatasetReader.read

    def spy_read(self, *args, **kwargs):
        reads.append((self.name, kwargs.get("window"), kwargs.get("out_shape")))
        return original_read(self, *args, **kwargs)

    original_on_grid = quicklook_module.read_dem_on_grid

    def spy_on_grid(*args, **kwargs):
        shades.append(original_on_grid(*args, **kwargs))
        return shades[-1]

    monkeypatch.setattr(DatasetReader, "read", spy_read)
    monkeypatch.setattr(quicklook_module, "read_dem_on_grid", spy_on_grid)
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    (x0, x1), (y0, y1) = to_utm.transform([13.6, 14.3], [44.7, 45.4])
    rng = np.random.default_rng(2)
    n = SCATTER_MAX_POINTS + 5000  # binned
    x, y = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    t0 = time.perf_counter()
    ql = write_quicklook(tmp_path / "q", x, y, UTM, rng.random(n), 0.3, dem=dem, max_cells=400)
    elapsed = time.perf_counter() - t0
    _check(ql, tmp_path / "q")
    dem_reads = [(w, s) for name, w, s in reads if name.endswith("big.vrt")]
    assert len(dem_reads) == 1
    window, out_shape = dem_reads[0]
    assert window.width > 10_000 and window.height > 10_000  # most of the DEM lies under
    assert max(out_shape) <= 2 * 400  # ... and is read at the map's resolution
    (z,) = shades
    assert max(z.shape) == 400
    assert np.isfinite(z).mean() > 0.95 and np.nanstd(z) > 50  # terrain found under the points
    assert elapsed < 10.0


def test_no_score_and_no_position(tmp_path):
    x, y, r = _cloud(500)
    r[:] = np.nan
    x[:7] = np.nan
    ql = write_quicklook(tmp_path, x, y, UTM, r, 0.5, max_cells=300)
    page, _ = _check(ql, tmp_path)
    c = ql.counts
    assert (c["n_scored"], c["n_no_score"], c["n_no_position"]) == (0, 500, 7)
    assert c["pct_below_threshold"] is None and "n/a" in page
    assert "without coordinates (not mapped)" in page
    # nothing placeable at all still writes a quick-look saying so
    ql = write_quicklook(tmp_path / "none", np.full(3, np.nan), np.full(3, np.nan), UTM,
                         np.array([0.2, 0.8, np.nan]), 0.5, max_cells=100)
    _check(ql, tmp_path / "none")
    assert ql.counts["n_no_position"] == 3 and ql.counts["n_below_threshold"] == 1


def test_geographic_points_and_no_crs_without_dem(tmp_path):
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(10.0, 10.3, 800), rng.uniform(60.0, 60.1, 800)
    ql = write_quicklook(tmp_path / "geo", lon, lat, "EPSG:4326", rng.random(800), 0.5,
                         max_cells=300)
    page, (map_png, _) = _check(ql, tmp_path / "geo")
    w, h = _png_size(map_png)
    # square cells on the ground: at 60° N, 0.3° of longitude is about 1.5 × 0.1° of latitude
    assert w == 300 and h == pytest.approx(300 / 1.5, rel=0.05)
    assert '"decimals": 6' in page and "EPSG:4326" in page
    ql = write_quicklook(tmp_path / "plain", rng.random(50), rng.random(50), None,
                         rng.random(50), 0.5, max_cells=100)
    _check(ql, tmp_path / "plain")


def test_invalid_inputs_write_nothing(tmp_path):
    x, y, r = _cloud(20)
    cases = [
        (dict(x=x[:5]), "sizes differ"),
        (dict(reliability=r * 3), r"\[0, 1\]"),
        (dict(threshold=-0.2), "threshold"),
        (dict(reliability_std=np.ones(3)), "reliability_std"),
        (dict(crs=None, dem=tmp_path / "dem.tif"), "crs"),
        (dict(stat="median"), "stat"),
    ]
    for change, match in cases:
        args = dict(x=x, y=y, crs=UTM, reliability=r, threshold=0.5) | change
        with pytest.raises(ValueError, match=match):
            write_quicklook(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()
