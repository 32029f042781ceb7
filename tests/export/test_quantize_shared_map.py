"""Reduced precision for the default (shared-map) encoder: ``pointwise.int8.onnx`` on the CPU,
``pointwise.fp16.onnx`` for CUDA (valid, and checked on the CPU where ORT runs it)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from psirel_testing import card_meta, v1_config  # noqa: E402
from test_onnx_model_dir import _spread, make_model_dir  # noqa: E402

from psirel.errors import ModelError, PsirelError  # noqa: E402
from psirel.export.onnx import export_model  # noqa: E402
from psirel.export.quantize import (  # noqa: E402
    FP16_TOL,
    INT8_TOL,
    calibration_windows,
    half_pointwise,
    quantize_pointwise,
)
from psirel.export.shared_map import random_window_sample  # noqa: E402
from psirel.infer.backends import (  # noqa: E402
    PW_FP16_ONNX,
    PW_INT8_ONNX,
    PW_ONNX,
    OrtBackend,
    make_backend,
    open_session,
)
from psirel.infer.shared_stage import CELL_PX  # noqa: E402
from psirel.model_dir import load_card, register_artifact, save_card  # noqa: E402
from psirel.models.reliability import ReliabilityModel  # noqa: E402
from psirel.train.checkpoint import save_weights  # noqa: E402

WINDOW_PX = CELL_PX + 2 * 64  # a lattice cell plus the context on every side


def make_shared_map_dir(path: Path, seed: int = 0) -> Path:
    """A slim shared-map model with summary maps, random weights and layer scales of ~0.3 (not
    the 1e-6 of an untrained model, whose blocks would hide any rounding)."""
    path.mkdir(parents=True)
    torch.manual_seed(seed)
    cfg = v1_config(n_lulc=6, n_scalars=5, encoder="shared-map", patch_summary=True,
                    depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), gnn_layers=2,
                    edge_summary_signed=True, edge_summary_robust=True)
    save_weights(_spread(ReliabilityModel(cfg), seed), path / "weights.safetensors")
    save_weights(_spread(ReliabilityModel(cfg.replace(gnn="none")), seed + 1),
                 path / "pointwise_only.safetensors")
    meta = card_meta(cfg=cfg, pointwise_only=True, threshold=0.5,
                     edge_scale={"xy_m": 100.0, "height_m": 5.0, "velocity_mm_yr": 2.0})
    for name in ("weights.safetensors", "pointwise_only.safetensors"):
        register_artifact(meta, path, name)
    save_card(path, meta)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The shared-map model exported to FP32 ONNX only; copy it before writing."""
    model_dir = make_shared_map_dir(tmp_path_factory.mktemp("sm") / "m", seed=4)
    export_model(model_dir)
    return model_dir


@pytest.fixture
def model_copy(exported, tmp_path):
    return Path(shutil.copytree(exported, tmp_path / "m"))


def _windows(card, seeds=(11, 12)):
    cfg = card.config
    out = []
    for s in seeds:
        w = random_window_sample(cfg.n_lulc, cfg.n_scalars, card.features.k, cfg.graph.edge_dim,
                                 n=30, seed=s)
        out.append(w)
    return out


def test_int8_of_a_shared_map_model_is_written_checked_and_run(model_copy):
    card = load_card(model_copy)
    cal = [(w.window, w.rc, w.scalars) for w in _windows(card)]
    meta = export_model(model_copy, calibration=cal)

    card = load_card(model_copy)  # every hash verified, the INT8 file included
    assert card.meta == meta
    info = meta["artifacts"][PW_INT8_ONNX]
    assert info["precision"] == "int8" and info["inputs"] == ["window", "rc", "scalars"]
    q = meta["int8"]
    assert q["calibration"] == "training points"
    assert q["calibration_points"] == 60 and q["calibration_windows"] == 2
    assert 0 < q["max_rel_emb"] <= INT8_TOL
    ops = Counter(n.op_type for n in onnx.load(str(model_copy / PW_INT8_ONNX)).graph.node)
    assert ops["MatMulInteger"] == 4 and ops["DynamicQuantizeLinear"] == 4  # stages ≥ 24 ch

    # another window (other size, other points) through the backends inference uses
    s = random_window_sample(6, 5, 16, card.config.graph.edge_dim, n=40, seed=7)
    fp32 = make_backend(card, threads=1)
    int8 = make_backend(card, threads=1, precision="int8")
    e32, e8 = fp32.embed_window(s.window, s.rc, s.scalars), int8.embed_window(s.window, s.rc,
                                                                                s.scalars)
    assert e8.shape == e32.shape == (40, card.config.encoder.emb_dim) and e8.dtype == np.float32
    # the MLP MatMuls of the two widest stages, activations rounded per call: 0.12 % of the
    # embeddings' spread measured here, 0.01 % on the trained default model (its layer scales
    # are ~0.01); 5 % still catches a broken scheme (static INT8 of every Conv: ~9 %)
    err = np.abs(e8 - e32).max() / e32.std()
    assert 0 < err <= INT8_TOL
    p32 = fp32.reliability(e32, s.idx, s.mask, s.edge_attr)
    p8 = int8.reliability(e8, s.idx, s.mask, s.edge_attr)
    assert 0 < np.abs(p8 - p32).max() <= 2e-3  # 2.5e-5 measured


def test_psirel_export_int8_checks_on_a_random_window(model_copy):
    meta = export_model(model_copy, int8=True)  # `psirel export --int8`: no training data
    assert meta["int8"]["calibration"].startswith("random window")
    assert meta["int8"]["calibration_windows"] == 1
    assert OrtBackend(load_card(model_copy), "cpu", 1, "int8").precision == "int8"


def test_a_shared_map_calibration_must_be_windows(model_copy):
    patches = np.zeros((3, 4, 80, 80), np.float32)
    with pytest.raises(ValueError, match=r"\(window \[1, 4, H, W\], rc \[n, 2\]"):
        quantize_pointwise(model_copy, (patches, np.zeros((3, 5), np.float32)))
    assert PW_INT8_ONNX not in load_card(model_copy).meta["artifacts"]


def test_calibration_windows_are_inference_windows_of_the_busiest_cells():
    """Lattice cells plus context cut from the normalised scene, the points' positions in them,
    the cells holding most of the drawn points first."""
    rng = np.random.default_rng(0)
    raster = rng.standard_normal((4, 600, 700)).astype(np.float32)
    rows = np.r_[rng.uniform(10, 250, 30), rng.uniform(300, 500, 60), 520.0]   # 3 cells
    cols = np.r_[rng.uniform(10, 250, 30), rng.uniform(300, 500, 60), 690.0]
    data = SimpleNamespace(raster=raster, rows_px=rows, cols_px=cols,
                           scalars=np.arange(len(rows) * 2, dtype=np.float64).reshape(-1, 2))
    wins = calibration_windows(data, n=len(rows), windows=2)
    assert [len(rc) for _, rc, _ in wins] == [60, 30]          # busiest cell first, 2 of 3
    (w1, rc1, s1), (w0, rc0, _) = wins
    assert w1.shape == w0.shape == (1, 4, WINDOW_PX, WINDOW_PX) and w1.dtype == np.float32
    # cell (1, 1) starts at 256 - 64 = 192 in both axes; cell (0, 0) at -64: zero-padded there
    np.testing.assert_array_equal(w1[0], raster[:, 192:192 + WINDOW_PX, 192:192 + WINDOW_PX])
    assert not w0[0, :, :64].any() and (w0[0, :, 64:, 64:] == raster[:, :320, :320]).all()
    in_cell = np.flatnonzero((rows >= 256) & (rows < 512) & (cols >= 256) & (cols < 512))
    np.testing.assert_allclose(rc1, np.stack([rows[in_cell] - 192, cols[in_cell] - 192], 1),
                               rtol=0, atol=1e-4)
    np.testing.assert_array_equal(s1, data.scalars[in_cell].astype(np.float32))
    assert ((rc0 >= 64) & (rc0 < 64 + CELL_PX)).all()


def test_train_writes_int8_for_the_default_encoder(tiny_model):
    """``psirel train`` (the shared-map default) checks INT8 on windows of its training scene."""
    meta = json.loads((tiny_model / "model.json").read_text())
    assert meta["config"]["encoder"]["kind"] == "shared-map"
    q = meta["int8"]
    assert meta["artifacts"][PW_INT8_ONNX]["inputs"] == ["window", "rc", "scalars"]
    assert q["calibration"] == "training points" and 1 <= q["calibration_windows"] <= 2
    assert q["calibration_points"] > 100 and q["max_rel_emb"] <= INT8_TOL
    card = load_card(tiny_model)
    s = random_window_sample(card.config.n_lulc, card.config.n_scalars, card.features.k,
                             card.config.graph.edge_dim, n=20, seed=3)
    e32 = make_backend(card, threads=1).embed_window(s.window, s.rc, s.scalars)
    e8 = make_backend(card, threads=1, precision="int8").embed_window(s.window, s.rc, s.scalars)
    assert np.abs(e8 - e32).max() <= INT8_TOL * e32.std()


# ---------------------------------------------------------------------------- FP16
def test_fp16_is_valid_keeps_the_points_fp32_and_is_close_on_cpu(model_copy):
    meta = export_model(model_copy, fp16=True)
    path = model_copy / PW_FP16_ONNX
    card = load_card(model_copy)  # hash verified
    assert card.meta == meta and meta["artifacts"][PW_FP16_ONNX]["precision"] == "fp16"
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    f16 = onnx.TensorProto.FLOAT16
    assert sum(i.data_type == f16 for i in graph.graph.initializer) > 10   # really half
    io = [*graph.graph.input, *graph.graph.output]
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in io)
    # positions are never rounded to FP16 (0.25 px beyond 256 px)
    to = {n.output[0]: next(a.i for a in n.attribute if a.name == "to")
          for n in graph.graph.node if n.op_type == "Cast"}
    readers = [n for n in graph.graph.node if "rc" in n.input]
    assert readers and all(to.get(n.output[0]) != f16 for n in readers)
    f = meta["fp16"]
    assert f["checked_on_cpu"] and 0 < f["max_rel_emb"] <= FP16_TOL

    # ORT's CPU EP runs it: on another, larger window, within FP16_TOL of FP32, not equal
    s = random_window_sample(6, 5, 16, card.config.graph.edge_dim, n=40, seed=9)
    e32 = open_session(model_copy / PW_ONNX).run(None, s.feed())[0]
    e16 = open_session(path).run(None, s.feed())[0]
    assert e16.dtype == np.float32
    # 0.3 % measured here, 0.4-1 % on the trained default model; 5 % leaves room for CUDA's
    # kernels. Casting the positions too (the converter's default) gave 17 % there.
    assert 0 < np.abs(e16 - e32).max() / e32.std() <= FP16_TOL


def test_fp16_of_a_patch_model(tmp_path):
    model_dir = make_model_dir(tmp_path / "p", "unimp", seed=1)
    meta = export_model(model_dir, fp16=True)
    assert meta["artifacts"][PW_FP16_ONNX]["inputs"] == ["patches", "scalars"]
    assert meta["fp16"]["checked_on_cpu"] and 0 < meta["fp16"]["max_rel_emb"] <= FP16_TOL


def test_fp16_beyond_tolerance_writes_nothing(model_copy):
    before = (model_copy / "model.json").read_text()
    with pytest.raises(ModelError, match=r"pointwise\.fp16\.onnx: FP16 embeddings differ"):
        half_pointwise(model_copy, tol=1e-9)
    assert (model_copy / "model.json").read_text() == before
    assert not (model_copy / PW_FP16_ONNX).exists() and not list(model_copy.glob(".fp16-*"))


def test_fp16_runs_on_cuda_only_and_says_how_to_make_it(exported):
    card = load_card(exported)
    for be in ("onnx", "torch"):
        with pytest.raises(PsirelError, match=r"^--precision fp16: runs on the GPU only "
                                              r"\(--device cuda\)") as exc:
            make_backend(card, be, "cpu", precision="fp16")
        assert "\n" not in str(exc.value)
    with pytest.raises(PsirelError, match="--precision fp16: runs on the GPU only"):
        OrtBackend(card, "cpu", precision="fp16")
    # on CUDA, a model without the file says how to make it, before any CUDA is needed
    with pytest.raises(ModelError, match=r"lists no 'pointwise\.fp16\.onnx': run `psirel "
                                         r"export --fp16 ") as exc:
        OrtBackend(card, "cuda", precision="fp16")
    assert "\n" not in str(exc.value)
    with pytest.raises(PsirelError, match=r"--precision fp16: only the onnx backend"):
        make_backend(card, "torch", "cuda", precision="fp16")
