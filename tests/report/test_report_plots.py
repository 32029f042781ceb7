import numpy as np
import pytest
from affine import Affine
from matplotlib.image import imread

from psirel.report.plots import (
    CURVE_FIGSIZE_IN,
    DPI,
    MAP_FIGSIZE_IN,
    _nice_length,
    plot_map,
    plot_pr,
    plot_roc,
)


def _curves(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.8).astype(int)
    good = np.clip(0.5 * y + rng.normal(0.3, 0.2, n), 0, 1)
    poor = np.clip(0.1 * y + rng.normal(0.5, 0.2, n), 0, 1)
    return {"model": (y, good), "coherence_threshold": (y, poor)}


def _check_png(path, figsize_in, dpi=DPI):
    assert path.exists() and path.stat().st_size > 10_000
    img = imread(path)
    assert img.shape[:2] == (round(figsize_in[1] * dpi), round(figsize_in[0] * dpi))
    assert img[..., :3].std() > 0.05  # something was drawn
    # nothing but the figure in the folder: the temporary was renamed away
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    return img


def test_roc_and_pr_curves(tmp_path):
    roc = plot_roc(_curves(), tmp_path / "roc" / "roc.png")
    _check_png(roc, CURVE_FIGSIZE_IN)
    pr = plot_pr(_curves(), tmp_path / "pr" / "pr.png")
    _check_png(pr, CURVE_FIGSIZE_IN)


def _scene(h=300, w=400, res=10.0, n=1500, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    dem = 300 + 80 * np.sin(xx / 40) * np.cos(yy / 55) + 0.3 * yy
    transform = Affine(res, 0, 500_000.0, 0, -res, 4_600_000.0)
    x = rng.uniform(500_000, 500_000 + w * res, n)
    y = rng.uniform(4_600_000 - h * res, 4_600_000, n)
    label = (rng.random(n) < 0.8).astype(int)
    p = np.clip(0.6 * label + rng.normal(0.2, 0.2, n), 0, 1)
    return dem, transform, x, y, p, label


def test_map_over_hillshade(tmp_path):
    dem, transform, x, y, p, label = _scene()
    dem[:20, :30] = -9999  # nodata corner
    path = plot_map(dem, transform, x, y, p, label, 0.45, tmp_path / "map.png",
                    dem_nodata=-9999)
    img = _check_png(path, MAP_FIGSIZE_IN)
    rgb = img[..., :3]
    # diverging colours present: reds (unreliable) and blues (reliable)
    red = (rgb[..., 0] > 0.6) & (rgb[..., 2] < 0.3)
    blue = (rgb[..., 2] > 0.6) & (rgb[..., 0] < 0.4)
    assert red.sum() > 200 and blue.sum() > 200


def test_map_unlabelled_south_up_and_tuple_transform(tmp_path):
    dem, transform, x, y, p, _ = _scene(seed=1)
    south_up = (10.0, 0.0, 500_000.0, 0.0, 10.0, 4_600_000.0 - 3000.0)
    path = plot_map(dem[::-1], south_up, x, y, p, None, 0.5, tmp_path / "a.png")
    _check_png(path, MAP_FIGSIZE_IN)
    with pytest.raises(ValueError, match="north-up"):
        plot_map(dem, (10.0, 1.0, 0.0, 1.0, -10.0, 0.0), x, y, p, None, 0.5,
                 tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def test_nice_scale_bar_lengths():
    assert _nice_length(4000) == 500
    assert _nice_length(12_000) == 2000
    assert _nice_length(30_000) == 5000
    assert _nice_length(999) == 100
