"""Every user mistake: one line on stderr naming the file/column/ids, exit code 2, no traceback."""

import shutil

import numpy as np
import pytest
from psirel_testing import scene_args

from psirel.cli import main
from psirel.io.points import write_points


def run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_inspect_ok(tiny_scene, capsys):
    code, out, err = run(["inspect", *scene_args(tiny_scene)], capsys)
    assert code == 0, err
    assert "3,000 points" in out and "EPSG:32632" in out and "61 dates" in out


def test_missing_points_file(tiny_scene, tmp_path, capsys):
    args = scene_args(tiny_scene)
    args[1] = str(tmp_path / "nope.gpkg")
    code, _, err = run(["inspect", *args], capsys)
    assert_one_line_error(code, err, "nope.gpkg", "not found")


def test_missing_velocity_column(tiny_scene, tmp_path, capsys):
    p = tmp_path / "novel.gpkg"
    write_points(p, np.array([653000.0]), np.array([5180000.0]), "EPSG:32632",
                 {"coherence": np.array([0.9], np.float32)})
    args = scene_args(tiny_scene)
    args[1] = str(p)
    code, _, err = run(["inspect", *args], capsys)
    assert_one_line_error(code, err, "novel.gpkg", "velocity")


def test_nan_values_counted(tiny_scene, tmp_path, capsys):
    p = tmp_path / "nan.gpkg"
    write_points(p, np.array([653000.0, 653010.0, 653020.0]), np.full(3, 5180000.0), "EPSG:32632",
                 {"velocity": np.array([1.0, np.nan, np.nan], np.float32),
                  "coherence": np.array([0.9, 0.8, 0.7], np.float32)})
    args = scene_args(tiny_scene)
    args[1] = str(p)
    code, _, err = run(["inspect", *args], capsys)
    assert_one_line_error(code, err, "nan.gpkg", "2", "velocity")


def test_points_outside_rasters(tiny_scene, tmp_path, capsys):
    p = tmp_path / "far.gpkg"
    write_points(p, np.array([653000.0, 900000.0]), np.array([5180000.0, 5180000.0]), "EPSG:32632",
                 {"pid": np.array([7, 8]), "velocity": np.array([1.0, 2.0], np.float32),
                  "coherence": np.array([0.9, 0.8], np.float32)})
    args = scene_args(tiny_scene)
    args[1] = str(p)
    code, _, err = run(["inspect", *args], capsys)
    assert_one_line_error(code, err, "far.gpkg", "1 of 2", "8")


def test_unreadable_raster(tiny_scene, tmp_path, capsys):
    bad = tmp_path / "dem.tif"
    bad.write_bytes(b"this is not a GeoTIFF")
    args = scene_args(tiny_scene)
    args[3] = str(bad)
    code, _, err = run(["inspect", *args], capsys)
    assert_one_line_error(code, err, "dem.tif")


def test_corrupt_weights_refused(tiny_model, tiny_scene, tmp_path, capsys):
    m = tmp_path / "model"
    shutil.copytree(tiny_model, m)
    w = m / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    code, _, err = run(["evaluate", "--model", str(m), *scene_args(tiny_scene),
                        "--out", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "weights.safetensors", "SHA-256")


@pytest.mark.parametrize("bad", ["--gnn=gcn", "--fanout=8"])
def test_bad_train_options(tiny_scene, tmp_path, capsys, bad):
    code, _, err = run(["train", *scene_args(tiny_scene), "--out", str(tmp_path / "m"), bad],
                       capsys)
    assert_one_line_error(code, err)


def test_film_fusion_needs_the_patch_encoder(tiny_scene, tmp_path, capsys):
    code, _, err = run(["train", *scene_args(tiny_scene), "--out", str(tmp_path / "m"),
                        "--fusion", "film"], capsys)
    assert_one_line_error(code, err, "--fusion film", "--encoder patch")


def test_int8_of_a_shared_map_model_runs_and_fp16_needs_cuda(tiny_model, tiny_scene, tmp_path,
                                                            capsys):
    """The default encoder (shared-map) has an INT8 stage 1 (written by train) that predict
    runs; FP16 is for the CUDA execution provider only, refused on the CPU in one line."""
    code, _, _ = run(["predict", "--model", str(tiny_model), *scene_args(tiny_scene),
                      "--out", str(tmp_path / "p.csv"), "--precision", "int8",
                      "--no-quicklook"], capsys)
    assert code == 0 and (tmp_path / "p.csv").exists()
    code, _, err = run(["predict", "--model", str(tiny_model), *scene_args(tiny_scene),
                        "--out", str(tmp_path / "h.gpkg"), "--precision", "fp16"], capsys)
    assert_one_line_error(code, err, "--precision fp16", "--device cuda")
    assert not (tmp_path / "h.gpkg").exists()


@pytest.mark.parametrize("extra", [[], ["--dask", "sync", "--partitioned"]])
def test_an_unwritable_output_is_one_line_before_any_work(tiny_model, tiny_scene, tmp_path,
                                                          capsys, extra):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / ("parts" if extra else "o.gpkg")
    code = main(["predict", "--model", str(tiny_model), *scene_args(tiny_scene), "--out",
                 str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {out}") and "cannot write the output there" in err


def test_check_writable_creates_missing_folders_and_refuses_a_file_in_the_way(tmp_path):
    from psirel.errors import UnwritableOutput
    from psirel.io.atomic import check_writable

    deeper = tmp_path / "new" / "deeper"
    check_writable(deeper / "o.gpkg")
    assert deeper.is_dir() and not any(deeper.iterdir())
    (tmp_path / "f").write_text("")
    with pytest.raises(UnwritableOutput, match="cannot write the output there"):
        check_writable(tmp_path / "f" / "o.gpkg")


def test_an_os_error_nobody_foresaw_is_still_one_line(monkeypatch, capsys):
    import psirel.cli as cli

    def boom(*a, **k):
        raise PermissionError(13, "Permission denied", "/somewhere/x")

    monkeypatch.setattr(cli, "app", boom)
    assert main(["inspect"]) == 2
    assert capsys.readouterr().err.strip() == "error: /somewhere/x: Permission denied"


def test_remove_if_empty_keeps_a_folder_with_a_users_file(tmp_path):
    from psirel.io.atomic import remove_if_empty

    (tmp_path / "empty").mkdir()
    remove_if_empty(tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("x")
    remove_if_empty(tmp_path / "kept")
    remove_if_empty(tmp_path / "never_existed")
    assert (tmp_path / "kept" / "mine.txt").exists()


@pytest.mark.parametrize("argv", [["predict", "--model", "m"], ["train", "--colour", "red"],
                                  ["no-such-command"]])
def test_usage_mistakes_are_a_usage_message_not_a_traceback(argv, capsys):
    """typer vendors its own click (``typer._click``): its usage errors are caught too."""
    code, _, err = run(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert "Usage:" in err or "Error" in err


@pytest.mark.parametrize("option", ["--gnn", "--encoder", "--fusion"])
def test_choices_come_from_the_registry(option, tiny_scene, tmp_path, capsys):
    from psirel.config import ENCODERS, FUSIONS, GNN_TYPES
    names = {"--gnn": GNN_TYPES, "--encoder": ENCODERS, "--fusion": FUSIONS}[option]
    code, _, err = run(["train", *scene_args(tiny_scene), "--out", str(tmp_path / "m"),
                        option, "nonsense"], capsys)
    assert_one_line_error(code, err, option, *names)
