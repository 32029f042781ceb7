"""Labels that cannot train a model (one class, a handful of points, a validation block of one
class, no training point left) are one-line errors naming the points file, before any training
step; evaluating on one class warns and reports NaN ranking metrics."""

import json
import math

import numpy as np
import pyogrio
import pytest
from psirel_testing import scene_args

from psirel.cli import main
from psirel.config import TrainSettings
from psirel.io.points import read_points
from psirel.scene import generate_scene
from psirel.train.data import MIN_LABELLED_POINTS, MIN_PER_CLASS
from psirel.train.split import block_split

pytest.importorskip("torch")

N_POINTS = 400
QUICK = ["--epochs", "1", "--max-steps", "1", "--batch-size", "64", "--ensemble", "1"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("degenerate")
    generate_scene(d, n_points=N_POINTS, seed=1)
    return d


@pytest.fixture(scope="module")
def model(scene, tmp_path_factory):
    """A model of the untouched scene (it also shows that 400 points are enough)."""
    out = tmp_path_factory.mktemp("degenerate_model") / "model"
    assert main(["train", *scene_args(scene), "--out", str(out), *QUICK]) == 0
    return out


def rewrite(scene, tmp_path, edit, name="points.gpkg"):
    """The scene's points after ``edit(frame) -> frame``, written to ``tmp_path/name``."""
    df = edit(pyogrio.read_dataframe(scene / "points.gpkg"))
    path = tmp_path / name
    pyogrio.write_dataframe(df, path, layer="psi")
    return path


def train_on(scene, points, out, capsys):
    args = scene_args(scene)
    args[1] = str(points)
    code = main(["train", *args, "--out", str(out), *QUICK])
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize(("value", "name"), [(1, "reliable (1)"), (0, "unreliable (0)")])
def test_one_class(scene, tmp_path, capsys, value, name):
    p = rewrite(scene, tmp_path, lambda df: df.assign(reliable=value))
    code, err = train_on(scene, p, tmp_path / "m", capsys)
    assert_one_line_error(code, err, str(p), f"every labelled point is {name}", "both classes")
    assert not (tmp_path / "m" / "model.json").exists()


def test_a_handful_of_points(scene, tmp_path, capsys):
    p = rewrite(scene, tmp_path, lambda df: df.iloc[:5])
    code, err = train_on(scene, p, tmp_path / "m", capsys)
    assert_one_line_error(code, err, str(p), "5 labelled points",
                          f"at least {MIN_LABELLED_POINTS}")


def test_too_few_of_one_class(scene, tmp_path, capsys):
    few = MIN_PER_CLASS - 1
    p = rewrite(scene, tmp_path, lambda df: df.assign(reliable=(np.arange(len(df)) >= few)
                                                      .astype(np.int8)))
    code, err = train_on(scene, p, tmp_path / "m", capsys)
    assert_one_line_error(code, err, str(p), f"only {few} of {N_POINTS}", "unreliable (0)",
                          f"at least {MIN_PER_CLASS} of each class")


@pytest.mark.parametrize("side", ["validation", "training"])
def test_one_side_of_the_split_of_one_class(scene, tmp_path, capsys, side):
    """The trainer's own split (same settings) with every validation (or training) point
    made reliable: the rest of the cloud keeps both classes."""
    s = TrainSettings()
    c = read_points(scene / "points.gpkg")
    sp = block_split(c.x, c.y, val_fraction=s.val_fraction, buffer_m=s.layers * s.r_max_m,
                     seed=s.seed)
    chosen = sp.val if side == "validation" else sp.train
    labels = np.where(chosen, 1, c.labels).astype(np.int8)
    assert (labels == 0).sum() >= MIN_PER_CLASS   # the cloud itself passes
    p = rewrite(scene, tmp_path, lambda df: df.assign(reliable=labels))
    code, err = train_on(scene, p, tmp_path / "m", capsys)
    assert_one_line_error(code, err, str(p), f"all {int(chosen.sum())} {side} points are "
                          "reliable (1)", "give more labelled points")


def test_no_training_point_left(scene, tmp_path, capsys):
    """Points within 100 m of each other: the validation blocks' buffer swallows the rest."""
    def squeeze(df):
        df = df.iloc[:150].copy()
        x0, y0 = df.geometry.x.min(), df.geometry.y.min()
        return df.set_geometry(df.geometry.scale(0.01, 0.01, origin=(x0, y0)))

    p = rewrite(scene, tmp_path, squeeze)
    code, err = train_on(scene, p, tmp_path / "m", capsys)
    assert_one_line_error(code, err, str(p), "no training point is left", "200 m buffer")


def test_clouds_checked_together(scene, tmp_path, capsys):
    """Several clouds: one of a single class is allowed, but not all of them, and a whole
    validation cloud needs both classes."""
    a = rewrite(scene, tmp_path, lambda df: df.assign(reliable=1), "a.gpkg")
    b = rewrite(scene, tmp_path, lambda df: df, "b.gpkg")
    rasters = ",".join(str(scene / f) for f in ("dem.tif", "lulc.tif", "amplitude.tif"))
    csv = tmp_path / "clouds.csv"
    csv.write_text(f"points,dem,lulc,amplitude,split\n{a},{rasters},val\n{b},{rasters},train\n")
    code = main(["train", "--clouds", str(csv), "--out", str(tmp_path / "m"), *QUICK])
    assert_one_line_error(code, capsys.readouterr().err, "the 2 clouds (a.gpkg, b.gpkg)",
                          f"all {N_POINTS} validation points are reliable (1)")
    csv.write_text(f"points,dem,lulc,amplitude\n{a},{rasters}\n{a},{rasters}\n")
    code = main(["train", "--clouds", str(csv), "--out", str(tmp_path / "m"), *QUICK])
    assert_one_line_error(code, capsys.readouterr().err, "the 2 clouds (a.gpkg, a.gpkg)",
                          "every labelled point is reliable (1)")


def test_evaluate_one_class_warns(scene, model, tmp_path, capsys):
    p = rewrite(scene, tmp_path, lambda df: df.assign(reliable=1))
    args = scene_args(scene)
    args[1] = str(p)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), *args, "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "every labelled point is reliable (1)" in cap.out + cap.err
    assert "Traceback" not in cap.err and "UndefinedMetricWarning" not in cap.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert math.isnan(metrics["model"]["roc_auc"]) and metrics["unreliable_fraction"] == 0
    assert not (out / "roc.png").exists() and (out / "map.png").exists()
    assert "roc.png" not in (out / "report.md").read_text()
