"""The run folder's rules (``psirel.infer.manifest``): one run at a time, keys that see the
inputs' content and side cars, the psirel version, and no touching of files that are not ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from psirel.errors import WorkDirMismatch
from psirel.infer.manifest import (
    LOCK,
    content_fingerprint,
    file_identity,
    run_inputs_key,
    sidecars,
)
from psirel.infer.tile_work import TileWork
from psirel.infer.workdir import MANIFEST, WorkDir


def test_a_folder_in_use_by_another_process_is_refused(tmp_path):
    wd = tmp_path / "wd"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from psirel.infer.workdir import WorkDir
        w = WorkDir({str(wd)!r}, {{"run": 1}})
        print("held", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for cls in (WorkDir, TileWork):   # --restart does not break in either
            with pytest.raises(WorkDirMismatch, match=r"is in use by another psirel run \(wait "
                                                      r"for it to end or give another "
                                                      r"--work-dir\)$"):
                cls(wd, {"run": 1}, restart=True)
    finally:
        holder.kill()
        holder.wait()
    w = WorkDir(wd, {"run": 1})           # a killed run leaves no stale lock
    assert not w.resumed
    w.remove()
    assert not wd.exists()


def test_a_manifest_that_is_not_ours_is_never_touched(tmp_path):
    wd = tmp_path / "mine"
    wd.mkdir()
    (wd / MANIFEST).write_text('{"my": "notes"}')
    (wd / "tiles.json").write_text("not json at all")
    with pytest.raises(WorkDirMismatch, match=r"manifest\.json: is not a psirel-work manifest"):
        WorkDir(wd, {"run": 1}, restart=True)
    with pytest.raises(WorkDirMismatch, match=r"tiles\.json: is not a psirel-tiles manifest"):
        TileWork(wd, {"run": 1}, restart=True)
    assert (wd / MANIFEST).read_text() == '{"my": "notes"}'
    assert (wd / "tiles.json").read_text() == "not json at all"


def test_another_key_is_refused_and_restart_clears_only_our_files(tmp_path):
    wd = tmp_path / "wd"
    w = WorkDir(wd, {"model": "a", "psirel": "0.1.0"})
    w.mark("stage1", 0)
    w.close()
    (wd / "notes.txt").write_text("the user's")
    with pytest.raises(WorkDirMismatch, match=r"differs in: model, psirel version"):
        WorkDir(wd, {"model": "b", "psirel": "0.2.0"})
    w = WorkDir(wd, {"model": "b", "psirel": "0.2.0"}, restart=True)
    assert not w.resumed and (wd / "notes.txt").exists()
    w.remove()
    assert (wd / "notes.txt").exists() and not (wd / LOCK).exists()


def test_the_key_sees_side_cars_and_content_not_the_clock(tmp_path):
    shp = tmp_path / "pts.shp"
    shp.write_bytes(b"geometry")
    (tmp_path / "pts.dbf").write_bytes(b"velocity 1.0")
    (tmp_path / "pts.prj").write_text("EPSG:32632")
    (tmp_path / "other.dbf").write_bytes(b"not a side car")
    assert [p.name for p in sidecars(shp)] == ["pts.dbf", "pts.prj"]
    a = file_identity(shp)
    (tmp_path / "pts.dbf").write_bytes(b"velocity 2.0")   # same size, new velocities
    b = file_identity(shp)
    assert a != b and a["sha256"] == b["sha256"]
    os.utime(shp, (time.time() + 100, time.time() + 100))  # touched, not changed
    assert file_identity(shp) == b
    tif = tmp_path / "dem.tif"
    tif.write_bytes(b"\0" * 100)
    (tmp_path / "dem.tif.aux.xml").write_text("<PAMDataset/>")
    assert "dem.tif.aux.xml" in file_identity(tif)["sidecars"]


def test_large_files_are_fingerprinted_from_samples(tmp_path, monkeypatch):
    import psirel.infer.manifest as m

    monkeypatch.setattr(m, "FULL_HASH_BYTES", 1 << 10)
    monkeypatch.setattr(m, "SAMPLE_BYTES", 64)
    p = tmp_path / "big.bin"
    p.write_bytes(bytes(range(256)) * 64)
    first = content_fingerprint(p)
    data = bytearray(p.read_bytes())
    data[0] ^= 1                                          # inside the first sample
    p.write_bytes(bytes(data))
    assert content_fingerprint(p) != first


def test_run_inputs_key_names_the_model_inputs_and_version(tmp_path):
    import psirel

    files = {}
    for name in ("model.json", "p.gpkg", "dem.tif", "lulc.tif", "amp.tif"):
        files[name] = tmp_path / name
        files[name].write_text(name)
    key = run_inputs_key(files["model.json"], files["p.gpkg"],
                         {"dem": files["dem.tif"], "lulc": files["lulc.tif"],
                          "amplitude": files["amp.tif"]})
    assert key["psirel"] == psirel.__version__
    assert key["model"] == content_fingerprint(files["model.json"])
    assert set(key["rasters"]) == {"dem", "lulc", "amplitude"}
    assert json.loads(json.dumps(key)) == key
