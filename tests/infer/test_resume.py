"""A killed run resumes from its work dir; a work dir of another run is refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from infer_support import Counting, Interrupt, Stop, read_output

from psirel.errors import WorkDirMismatch
from psirel.infer.backends import make_backend
from psirel.infer.pipeline import predict
from psirel.model_dir import load_card, save_card

OPTS = {"chunk_points": 512, "block_points": 500}  # 2,000 points: 4 chunks, 4 blocks


@pytest.fixture(scope="module")
def reference(trained, tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("reference") / "ref.gpkg"
    predict(trained.model, *trained.inputs, out, **OPTS)
    return read_output(out)["reliability"]


def counting(model):
    return Counting(make_backend(load_card(model)))


def test_resume_after_stage1_interruption(trained, reference, tmp_path):
    out = tmp_path / "pred.gpkg"
    first = counting(trained.model)
    with pytest.raises(Stop):
        predict(trained.model, *trained.inputs, out, backend=first,
                progress=Interrupt("patches + encoder"), **OPTS)
    assert not out.exists()
    wd = tmp_path / ".psirel-work-pred.gpkg"  # the default work dir stays after a failure
    assert json.loads((wd / "manifest.json").read_text())["stage1"]["done"] == [0]
    assert first.embedded == 512

    again = counting(trained.model)
    s = predict(trained.model, *trained.inputs, out, backend=again, **OPTS)
    assert again.embedded == 2000 - 512  # chunk 0 was not encoded again
    assert s["chunks"] == {"total": 4, "computed": 3, "points_per_chunk": 512}
    np.testing.assert_array_equal(read_output(out)["reliability"], reference)
    assert not wd.exists()


def test_resume_after_stage2_interruption(trained, reference, tmp_path):
    out = tmp_path / "pred.parquet"
    pytest.importorskip("pyarrow")
    first = counting(trained.model)
    with pytest.raises(Stop):
        predict(trained.model, *trained.inputs, out, backend=first, progress=Interrupt("gnn", 2),
                **OPTS)
    assert first.embedded == 2000 and first.gnn_calls == 2

    again = counting(trained.model)
    s = predict(trained.model, *trained.inputs, out, backend=again, **OPTS)
    assert again.embedded == 0 and again.gnn_calls == 2  # blocks 0 and 1 were kept
    assert s["blocks"]["computed"] == 2 and s["chunks"]["computed"] == 0
    np.testing.assert_array_equal(read_output(out)["reliability"], reference)


def test_work_dir_of_another_model_or_input_is_refused(trained, model_copy, tmp_path):
    wd = tmp_path / "work"
    with pytest.raises(Stop):
        predict(trained.model, *trained.inputs, tmp_path / "a.gpkg", work_dir=wd,
                progress=Interrupt("patches + encoder"), **OPTS)

    other = model_copy("other")  # same weights, another threshold: another model.json
    meta = load_card(other).meta
    meta["threshold"] = 0.3
    save_card(other, meta)
    with pytest.raises(WorkDirMismatch, match="differs in: model"):
        predict(other, *trained.inputs, tmp_path / "a.gpkg", work_dir=wd, **OPTS)

    points, dem, lulc, amp = trained.inputs
    moved = shutil.copy(points, tmp_path / "points.gpkg")
    with pytest.raises(WorkDirMismatch, match="points file"):
        predict(trained.model, moved, dem, lulc, amp, tmp_path / "a.gpkg", work_dir=wd, **OPTS)
    with pytest.raises(WorkDirMismatch, match="chunk sizes"):
        predict(trained.model, *trained.inputs, tmp_path / "a.gpkg", work_dir=wd,
                chunk_points=1024, block_points=500)

    (wd / "notes.txt").write_text("mine")  # restart removes only the run's own files
    be = counting(other)
    s = predict(other, *trained.inputs, tmp_path / "a.gpkg", work_dir=wd, restart=True,
                backend=be, **OPTS)
    assert be.embedded == 2000 and s["chunks"]["computed"] == 4
    assert (wd / "notes.txt").read_text() == "mine"
    assert json.loads((wd / "manifest.json").read_text())["stage1"]["done"] == [0, 1, 2, 3]


def test_lost_embeddings_restart_stage1(trained, reference, tmp_path):
    wd = tmp_path / "work"
    predict(trained.model, *trained.inputs, tmp_path / "a.gpkg", work_dir=wd, **OPTS)
    (wd / "embeddings.f32.npy").unlink()  # the manifest says done, but the data is gone
    be = counting(trained.model)
    predict(trained.model, *trained.inputs, tmp_path / "b.gpkg", work_dir=wd, backend=be, **OPTS)
    assert be.embedded == 2000 and be.gnn_calls == 4
    np.testing.assert_array_equal(read_output(tmp_path / "b.gpkg")["reliability"], reference)
