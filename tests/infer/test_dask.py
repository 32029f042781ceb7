"""``psirel predict --dask``: tiles on a local Dask cluster give the single-process output, for
every GNN type with the default encoder and for the patch encoder; failing tiles are retried or
named; an interrupted run resumes; partitioned output; the CLI and a user's script start their
own LocalCluster; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from infer_support import Interrupt, Stop, read_output

from psirel.cli import main
from psirel.errors import MissingExtra, PsirelError
from psirel.infer.distributed import predict_tiled
from psirel.infer.pipeline import predict

distributed = pytest.importorskip("distributed")

TOL = 1e-5
TILE_M = 640.0  # synthetic scenes span ~1.9 km: 3 × 3 tiles with a 300 m halo


@dataclass
class Case:
    model: Path
    inputs: tuple[Path, Path, Path, Path]
    reference: np.ndarray  # single-process P(reliable)


@pytest.fixture(scope="module")
def cases(trained, tmp_path_factory) -> dict[str, Case]:
    """One model per GNN type with the default (shared-map) encoder, trained for one small
    step on a 600-point scene (unimp with every other default too: the default model), plus
    ``patch``: the shared ``trained`` patch-encoder model; each with its scene and the
    single-process reference."""
    from psirel.scene.generate import generate_scene
    from psirel.train.loop import TrainSettings
    from psirel.train.trainer import train

    root = tmp_path_factory.mktemp("dask")
    s = root / "scene"
    generate_scene(s, n_points=600, seed=7)
    small = (s / "points.gpkg", s / "dem.tif", s / "lulc.tif", s / "amplitude.tif")
    out = {}
    for gnn in ("unimp", "gatv2", "gen", "patch"):
        if gnn == "patch":
            model, inputs = trained.model, trained.inputs
        else:
            model, inputs = root / f"model_{gnn}", small
            slim = {} if gnn == "unimp" else dict(emb_dim=16, hidden=16, ensemble=1)
            train(*inputs, model, settings=TrainSettings(   # unimp: the default model
                gnn=gnn, epochs=1, max_steps_per_epoch=1, batch_size=64, val_fraction=0.1,
                **slim))
        predict(model, *inputs, root / f"ref_{gnn}.gpkg", threads=1)
        out[gnn] = Case(model, inputs, read_output(root / f"ref_{gnn}.gpkg")["reliability"])
    return out


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def check_equal(path: Path, case: Case) -> None:
    got = read_output(path)["reliability"]
    assert np.abs(got - case.reference).max() <= TOL


@pytest.mark.parametrize("gnn", ["unimp", "gatv2", "gen", "patch"])
def test_dask_tiles_equal_single_process(gnn, cases, client, tmp_path):
    case = cases[gnn]
    s = predict_tiled(case.model, *case.inputs, tmp_path / "pred.gpkg", dask=client,
                      tile_m=TILE_M)
    assert s["tiles"]["total"] >= 9 and s["tiles"]["computed"] == s["tiles"]["total"]
    check_equal(tmp_path / "pred.gpkg", case)
    assert len(s["worker_peak_rss_mb"]) == 2  # both workers took tiles
    assert not (tmp_path / ".psirel-tiles-pred.gpkg").exists()  # own work dir removed


def test_workers_import_no_torch(cases, client, tmp_path):
    case = cases["gen"]
    predict_tiled(case.model, *case.inputs, tmp_path / "pred.gpkg", dask=client, tile_m=TILE_M)
    assert not any(client.run(lambda: "torch" in sys.modules).values())


class FailOnce:
    """Tile hook: tile ``tile`` raises on its first attempt (a marker file remembers it)."""

    def __init__(self, marker: Path, tile: int | None = None):
        self.marker, self.tile = marker, tile

    def __call__(self, tile: int) -> None:
        if self.tile in (None, tile) and not self.marker.exists():
            self.marker.touch()
            raise RuntimeError(f"injected failure in tile {tile}")


class AlwaysFail:
    def __init__(self, tile: int):
        self.tile = tile

    def __call__(self, tile: int) -> None:
        if tile == self.tile:
            raise RuntimeError("injected failure")


def test_failed_tile_is_retried(cases, client, tmp_path):
    case = cases["gatv2"]
    marker = tmp_path / "failed-once"
    s = predict_tiled(case.model, *case.inputs, tmp_path / "pred.gpkg", dask=client,
                      tile_m=TILE_M, retries=1, tile_hook=FailOnce(marker))
    assert marker.exists() and s["tiles"]["computed"] == s["tiles"]["total"]
    check_equal(tmp_path / "pred.gpkg", case)


def test_tile_that_keeps_failing_is_named(cases, client, tmp_path):
    case = cases["gatv2"]
    with pytest.raises(PsirelError, match=r"^tile 4 failed 2 times: RuntimeError: injected"):
        predict_tiled(case.model, *case.inputs, tmp_path / "pred.gpkg", dask=client,
                      tile_m=TILE_M, retries=1, tile_hook=AlwaysFail(4))
    assert not (tmp_path / "pred.gpkg").exists()


def test_interrupted_run_skips_finished_tiles(cases, client, tmp_path):
    case = cases["unimp"]
    wd, out = tmp_path / "work", tmp_path / "pred.parquet"
    pytest.importorskip("pyarrow")
    with pytest.raises(Stop):
        predict_tiled(case.model, *case.inputs, out, dask=client, tile_m=TILE_M, work_dir=wd,
                      progress=Interrupt("tiles", after=3))
    assert len(json.loads((wd / "tiles.json").read_text())["done"]) == 3
    assert not out.exists()
    s = predict_tiled(case.model, *case.inputs, out, dask=client, tile_m=TILE_M, work_dir=wd)
    assert s["tiles"]["computed"] == s["tiles"]["total"] - 3
    check_equal(out, case)
    assert (wd / "tiles.json").exists()  # a work dir the user named is kept


def test_resume_keeps_the_tile_size_on_another_cluster(cases, client, tmp_path):
    """The automatic tile size depends on the workers; a rerun elsewhere resumes, not re-plans."""
    case = cases["gen"]
    wd, out = tmp_path / "work", tmp_path / "pred.gpkg"
    with pytest.raises(Stop):
        predict_tiled(case.model, *case.inputs, out, dask="sync", work_dir=wd,
                      progress=Interrupt("tiles", after=1))
    s = predict_tiled(case.model, *case.inputs, out, dask=client, work_dir=wd)
    assert s["tiles"]["computed"] == s["tiles"]["total"] - 1
    check_equal(out, case)


def test_partitioned_output_one_part_per_tile(cases, client, tmp_path):
    pytest.importorskip("pyarrow")
    from psirel.io.partitioned import read_parts

    case = cases["gen"]
    out = tmp_path / "parts"
    s = predict_tiled(case.model, *case.inputs, out, dask=client, tile_m=TILE_M,
                      partitioned=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["parts"]) == s["tiles"]["total"] >= 9
    assert manifest["rows"] == len(case.reference) == sum(p["rows"] for p in manifest["parts"])
    assert manifest["crs"] == "EPSG:32632"
    names = {c["name"] for c in manifest["columns"]}
    assert {"input_row", "reliability", "reliable_pred", "geometry"} <= names
    parts = read_parts(out)
    np.testing.assert_array_equal(parts["input_row"], np.arange(len(case.reference)))
    assert np.abs(parts["reliability"] - case.reference).max() <= TOL
    with pytest.raises(PsirelError, match="not empty"):  # never mix two runs' parts
        predict_tiled(case.model, *case.inputs, out, dask=client, tile_m=TILE_M,
                      partitioned=True)


# ---------------------------------------------------------------------------- own cluster
def psirel_command() -> list[str]:
    exe = Path(sys.executable).with_name("psirel")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "psirel.cli"]


def test_cli_starts_a_local_cluster(cases, tmp_path):
    case = cases["gatv2"]
    p, dem, lulc, amp = case.inputs
    out = tmp_path / "pred.gpkg"
    run = subprocess.run([*psirel_command(), "predict", "--model", str(case.model),
                          "--points", str(p), "--dem", str(dem), "--lulc", str(lulc),
                          "--amplitude", str(amp), "--out", str(out), "--dask", "local:2",
                          "--tile-m", str(TILE_M)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "tiles: 9 of 640 m (halo 300 m) on local:2" in run.stdout
    check_equal(out, case)


def test_script_under_main_guard_starts_a_local_cluster(cases, tmp_path):
    case = cases["gen"]
    out = tmp_path / "pred.gpkg"
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(f"""
        from psirel.infer.distributed import predict_tiled

        if __name__ == "__main__":
            s = predict_tiled({str(case.model)!r}, *{tuple(map(str, case.inputs))!r},
                              {str(out)!r}, dask="local:2", tile_m={TILE_M})
            print("tiles", s["tiles"]["total"])
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "tiles 9" in run.stdout
    check_equal(out, case)


def test_script_without_main_guard_is_told(cases, tmp_path):
    case = cases["gen"]
    script = tmp_path / "score.py"
    script.write_text("from psirel.infer.distributed import predict_tiled\n"
                      f"predict_tiled({str(case.model)!r}, *{tuple(map(str, case.inputs))!r}, "
                      f"{str(tmp_path / 'pred.gpkg')!r}, dask='local:1', tile_m={TILE_M})\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert run.returncode != 0
    assert "did not start" in run.stderr and 'if __name__ == "__main__":' in run.stderr


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("args, message", [
    (["--dask", "ftp://host:21"], "--dask ftp://host:21: expected local, local:N"),
    (["--dask", "local:0"], "--dask local:0: give at least one worker"),
    (["--dask", "local:two"], "--dask local:two: expected local"),
    (["--dask", "local:2", "--tile-m", "0"], "--tile-m 0: must be a positive"),
    (["--dask", "local:2", "--tile-m", "-50"], "--tile-m -50: must be a positive"),
    (["--tile-m", "500"], "--tile-m needs --dask"),
    (["--partitioned"], "--partitioned needs --dask"),
    (["--dask", "local", "--backend", "torch"], "--dask runs the ONNX backend"),
])
def test_bad_options_are_one_line_errors(args, message, cases, tmp_path, capsys):
    case = cases["unimp"]
    p, dem, lulc, amp = case.inputs
    code = main(["predict", "--model", str(case.model), "--points", str(p), "--dem", str(dem),
                 "--lulc", str(lulc), "--amplitude", str(amp), "--out",
                 str(tmp_path / "pred.gpkg"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_unreachable_scheduler(cases, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    case = cases["unimp"]
    with pytest.raises(PsirelError, match=rf"^--dask tcp://127.0.0.1:{port}: no Dask scheduler "
                                          r"answered within 1 s"):
        predict_tiled(case.model, *case.inputs, tmp_path / "pred.gpkg",
                      dask=f"tcp://127.0.0.1:{port}", connect_timeout_s=1.0)


def test_missing_extras(cases, tmp_path, monkeypatch):
    case = cases["unimp"]
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow → ImportError
    with pytest.raises(MissingExtra, match="'parquet' extra"):
        predict_tiled(case.model, *case.inputs, tmp_path / "parts", dask="sync",
                      partitioned=True)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtra, match="--dask needs the 'dask' extra"):
        predict_tiled(case.model, *case.inputs, tmp_path / "pred.gpkg", dask="local:1")


def test_core_modules_import_without_dask():
    code = ("import sys; import psirel.cli, psirel.infer.distributed, psirel.infer.tiling; "
            "assert not {'dask', 'distributed', 'torch'} & set(sys.modules), sys.modules.keys()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
