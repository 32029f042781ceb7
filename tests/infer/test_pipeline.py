"""Two-stage prediction against the torch reference and the naive strategy; the output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from infer_support import Counting, read_output

from psirel.infer.backends import make_backend
from psirel.infer.pipeline import chunk_points_for, predict
from psirel.io.points import read_points
from psirel.model_dir import load_card

TOL = 1e-4


@pytest.fixture(scope="module")
def two_stage(trained, tmp_path_factory):
    """One uninterrupted ONNX two-stage run: (summary, output attributes, counting backend)."""
    out = tmp_path_factory.mktemp("two_stage") / "pred.gpkg"
    be = Counting(make_backend(load_card(trained.model)))
    summary = predict(trained.model, *trained.inputs, out, backend=be, chunk_points=512,
                      block_points=500)
    return summary, read_output(out), be


class LazyPatches:
    """``GraphData.patches`` extracted on demand in float32 (the training cache is float16)."""

    def __init__(self, stack, normalizer, x, y):
        self.stack, self.norm, self.x, self.y = stack, normalizer, x, y
        p = normalizer.patch_px
        self.shape = (len(x), 4, p, p)

    def __getitem__(self, rows):
        return self.norm.extract(self.stack, self.x[rows], self.y[rows])[0]


def test_two_stage_equals_torch_reference(trained, two_stage):
    torch = pytest.importorskip("torch")
    from psirel.train.checkpoint import load_predictor
    from psirel.train.data import load_inputs
    from psirel.train.loop import predict_ensemble
    from psirel.train.trainer import graph_data

    torch.set_num_threads(2)
    card = load_card(trained.model)
    f = card.features
    inputs = load_inputs(*trained.inputs, k=f.k, r_max_m=f.r_max_m,
                         **card.raster_options())
    try:
        norm = card.normalizer
        patches = LazyPatches(inputs.stack, norm, inputs.cloud.x, inputs.cloud.y)
        data = graph_data(inputs, patches, norm, card.edge_scale)
        rng = np.random.default_rng(0)
        points = np.sort(rng.choice(inputs.n, 160, replace=False))  # the reference is slow
        ref, ref_std = predict_ensemble(load_predictor(card), data, points)
    finally:
        inputs.stack.close()
    _, got, _ = two_stage
    diff = np.abs(got["reliability"][points] - ref)
    assert diff.max() <= TOL   # the calibrated ensemble mean, as the reference computes it
    assert np.abs(got["reliability_std"][points] - ref_std).max() <= TOL
    assert ref.std() > 1e-3  # the model is not constant: the comparison means something


def test_naive_equals_two_stage(trained, two_stage, tmp_path):
    summary, got, be_two = two_stage
    be = Counting(make_backend(load_card(trained.model)))
    s = predict(trained.model, *trained.inputs, tmp_path / "naive.gpkg", backend=be,
                strategy="naive")
    naive = read_output(tmp_path / "naive.gpkg")
    assert np.abs(naive["reliability"] - got["reliability"]).max() <= TOL
    assert (naive["reliable_pred"] == got["reliable_pred"]).mean() > 0.999
    # the naive strategy encodes shared neighbours again; two-stage encodes each point once
    assert be_two.embedded == summary["points"] == 2000
    assert be.embedded > be_two.embedded
    assert s["nodes_per_seed"] == pytest.approx(be.embedded / 2000, rel=1e-3)
    assert not (tmp_path / ".psirel-work-naive.gpkg").exists()


def test_naive_first_batches_equal_the_whole_runs_rows(trained, two_stage):
    """``max_batches`` (the benchmark's sample of the naive reference on a file in random
    order): the batches it runs give the whole run's numbers, the rows it does not reach NaN."""
    from psirel.infer.naive import predict_naive
    from psirel.infer.prepared import prepare

    _, got, _ = two_stage
    card = load_card(trained.model)
    scene = prepare(card, *trained.inputs, threads=2)
    try:
        rel, facts = predict_naive(scene, make_backend(card), batch_points=300, max_batches=2)
    finally:
        scene.stack.close()
    assert facts["points_done"] == 600 and facts["nodes_per_seed"] > 1
    assert np.abs(rel[:600, 0] - got["reliability"][:600]).max() <= TOL
    assert np.isnan(rel[600:]).all()


def test_output_keeps_input_attributes(trained, two_stage):
    summary, got, _ = two_stage
    src = read_points(trained.inputs[0])
    assert list(got) == [*src.attributes, "reliability", "reliability_std", "reliable_pred"]
    for name, col in src.attributes.items():
        np.testing.assert_array_equal(got[name], col)
    rel, pred = got["reliability"], got["reliable_pred"]
    assert rel.dtype == np.float32 and ((rel >= 0) & (rel <= 1)).all()
    card = load_card(trained.model)
    np.testing.assert_array_equal(pred.astype(bool), rel >= card.threshold)
    assert summary["unreliable_fraction"] == pytest.approx(1 - pred.astype(bool).mean())
    out = read_points(summary["output"])
    assert out.source_crs.equals(src.source_crs)
    np.testing.assert_array_equal(out.source_xy[0], src.source_xy[0])


def test_summary_and_work_dir_cleanup(two_stage):
    summary, _, _ = two_stage
    assert summary["chunks"] == {"total": 4, "computed": 4, "points_per_chunk": 512}
    assert summary["blocks"]["total"] == 4 and summary["blocks"]["computed"] == 4
    for k in ("read", "features", "patches", "encoder", "graph", "gnn", "write", "io", "total"):
        assert summary["seconds"][k] >= 0
    assert summary["points_per_s"]["encoder"] > 0 and summary["peak_rss_mb"] > 0
    # the default work dir sat beside the output and is gone after success
    wd = Path(summary["work_dir"])
    assert wd.name == ".psirel-work-pred.gpkg" and wd.parent == Path(summary["output"]).parent
    assert not wd.exists()


def test_given_work_dir_is_kept_and_reused(trained, two_stage, tmp_path):
    _, ref, _ = two_stage
    wd = tmp_path / "work"
    predict(trained.model, *trained.inputs, tmp_path / "a.gpkg", work_dir=wd, chunk_points=512,
            block_points=500)
    assert (wd / "manifest.json").exists() and (wd / "embeddings.f32.npy").exists()
    be = Counting(make_backend(load_card(trained.model)))
    s = predict(trained.model, *trained.inputs, tmp_path / "b.csv", work_dir=wd, backend=be,
                chunk_points=512, block_points=500)
    assert be.embed_calls == be.gnn_calls == 0  # everything was done: only the output is written
    assert s["chunks"]["computed"] == 0 and s["blocks"]["computed"] == 0
    # same input, same output, bit for bit (and in another format)
    np.testing.assert_array_equal(read_output(tmp_path / "a.gpkg")["reliability"],
                                  ref["reliability"])
    np.testing.assert_allclose(read_output(tmp_path / "b.csv")["reliability"],
                               ref["reliability"], atol=1e-6)


def test_chunk_size_from_memory_budget():
    # four channels of 80 x 80 float32: 102,400 bytes a point; two chunks in flight in a quarter
    assert chunk_points_for(2.0) == 2560
    assert chunk_points_for(0.01) == 256  # never below one encoder batch
    with pytest.raises(Exception, match="memory-gb"):
        chunk_points_for(0)
