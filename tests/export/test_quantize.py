"""``quantize_pointwise``: an INT8 stage 1 in the model directory, checked, registered, chosen."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_onnx_model_dir import make_model_dir  # noqa: E402

from psirel.errors import ModelError, PsirelError  # noqa: E402
from psirel.export.onnx import export_model, random_sample  # noqa: E402
from psirel.export.quantize import INT8_TOL, quantize_pointwise  # noqa: E402
from psirel.infer.backends import PW_INT8_ONNX, make_backend  # noqa: E402
from psirel.model_dir import load_card, register_artifact, save_card, sha256_file  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A slim random model exported to FP32 ONNX (no INT8 yet); copy it before writing."""
    model_dir = make_model_dir(tmp_path_factory.mktemp("q") / "m", "unimp", seed=2)
    export_model(model_dir)
    return model_dir


@pytest.fixture
def model_copy(exported, tmp_path):
    return Path(shutil.copytree(exported, tmp_path / "m"))


def _calibration(model_dir: Path, n: int = 48, seed: int = 3):
    s = random_sample(load_card(model_dir, verify=False), n=n, seed=seed)
    return s.patches, s.scalars


def test_int8_is_registered_and_close_to_fp32(model_copy):
    path = quantize_pointwise(model_copy, _calibration(model_copy))

    card = load_card(model_copy)  # every hash verified, the INT8 file included
    info = card.meta["artifacts"][PW_INT8_ONNX]
    assert path == model_copy / PW_INT8_ONNX
    assert info["sha256"] == sha256_file(path) and info["precision"] == "int8"
    q = card.meta["int8"]
    assert q["calibration_points"] == 48 and 0 < q["max_rel_emb"] <= INT8_TOL
    ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    assert ops["MatMulInteger"] == 4 and ops["DynamicQuantizeLinear"] == 4  # stages of ≥ 24 ch

    # other points than calibrated with, through the backends inference uses
    s = random_sample(card, n=23, seed=7)
    fp32 = make_backend(card, threads=1)
    int8 = make_backend(card, threads=1, precision="int8")
    e32, e8 = fp32.embed(s.patches, s.scalars), int8.embed(s.patches, s.scalars)
    assert e8.shape == e32.shape == (23, card.config.encoder.emb_dim) and e8.dtype == np.float32
    # Activations are rounded per call to 1/255 of their range, weights per output channel to
    # 1/254 of theirs; four quantised MatMuls feed the embedding, which ends up ~1 % of its
    # spread off (1.0 % measured on the trained model, 0.3 % here). 5 % leaves room and still
    # catches a broken scheme (static s8 quantisation of every op: ~400 %).
    err = np.abs(e8 - e32).max() / e32.std()
    assert 0 < err <= INT8_TOL
    p32 = fp32.reliability(e32, s.idx, s.mask, s.edge_attr)
    p8 = int8.reliability(e8, s.idx, s.mask, s.edge_attr)
    assert np.abs(p8 - p32).max() <= 2e-3  # 3e-5 measured


def test_export_model_with_calibration_writes_int8(exported, tmp_path):
    model_dir = Path(shutil.copytree(exported, tmp_path / "m"))
    meta = export_model(model_dir, calibration=_calibration(model_dir))
    assert PW_INT8_ONNX in meta["artifacts"] and meta["int8"]["calibration"] == "training points"
    assert load_card(model_dir).meta == meta


def test_int8_beyond_tolerance_writes_nothing(model_copy):
    before = (model_copy / "model.json").read_text()
    with pytest.raises(ModelError, match=r"pointwise\.int8\.onnx: INT8 embeddings differ"):
        quantize_pointwise(model_copy, _calibration(model_copy), tol=1e-9)
    assert (model_copy / "model.json").read_text() == before
    assert not (model_copy / PW_INT8_ONNX).exists()
    assert not list(model_copy.glob(".int8-export-*"))


def test_corrupt_int8_is_refused_in_one_line(model_copy):
    quantize_pointwise(model_copy)  # `psirel export --int8`: checked on a random sample
    assert load_card(model_copy).meta["int8"]["calibration"].startswith("random")
    path = model_copy / PW_INT8_ONNX
    data = path.read_bytes()
    path.write_bytes(b"\xff" * 64 + data[64:])
    with pytest.raises(ModelError, match=r"pointwise\.int8\.onnx: SHA-256") as exc:
        load_card(model_copy)
    assert "\n" not in str(exc.value)
    meta = json.loads((model_copy / "model.json").read_text())
    register_artifact(meta, model_copy, PW_INT8_ONNX)  # a hash updated by hand...
    save_card(model_copy, meta)
    with pytest.raises(ModelError, match=r"pointwise\.int8\.onnx.*ONNX Runtime cannot load") as exc:
        make_backend(load_card(model_copy), precision="int8")
    assert "\n" not in str(exc.value)
    make_backend(load_card(model_copy))  # ... and FP32 inference does not need the file


def test_missing_int8_says_how_to_make_it(exported):
    card = load_card(exported)
    with pytest.raises(ModelError, match=r"model\.json: lists no 'pointwise\.int8\.onnx'.*"
                                         r"psirel export --int8") as exc:
        make_backend(card, precision="int8")
    assert "\n" not in str(exc.value)
    with pytest.raises(PsirelError, match=r"^--precision fp16: runs on the GPU only"):
        make_backend(card, precision="fp16")  # CUDA only (tests/export/test_quantize_shared_map)
    with pytest.raises(PsirelError, match="--precision int8.*--backend onnx"):
        make_backend(card, "torch", precision="int8")
