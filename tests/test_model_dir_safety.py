"""A model folder may come from anywhere: the artifact names of its card must stay plain files
inside it (no ``../x``, absolute path, ``/dev/zero``, symlink out, directory or FIFO), and its
ONNX files must hold their tensors (no external data ONNX Runtime would open)."""

import json
import os

import numpy as np
import pytest
from psirel_testing import card_meta

from psirel.errors import ModelError
from psirel.model_dir import load_card, register_artifact, save_card, sha256_file

NO_HASH = "0" * 64  # for names refused before any hashing (hashing /dev/zero never ends)


def _model_dir(path, extra=None):
    """A valid model folder (hashes matching), its card listing ``extra`` {name: sha256} too."""
    path.mkdir(exist_ok=True)
    (path / "weights.safetensors").write_bytes(b"0123456789")
    meta = card_meta()
    register_artifact(meta, path, "weights.safetensors")
    meta["artifacts"].update({n: {"sha256": h} for n, h in (extra or {}).items()})
    save_card(path, meta)
    return path


@pytest.fixture
def outside(tmp_path):
    """A regular file next to the model folder, not in it."""
    f = tmp_path / "outside.bin"
    f.write_bytes(b"secret")
    return f


def _refused(model, name, why, verify=True):
    with pytest.raises(ModelError, match=why) as exc:
        load_card(model, verify=verify)
    msg = str(exc.value)
    assert f"artifact '{name}'" in msg and "model.json" in msg and "\n" not in msg
    return msg


def test_absolute_name_refused(tmp_path, outside):
    model = _model_dir(tmp_path / "m", {str(outside): sha256_file(outside)})
    _refused(model, str(outside), "is an absolute path")


def test_dotdot_name_refused_even_when_the_hash_matches(tmp_path, outside):
    model = _model_dir(tmp_path / "m", {"../outside.bin": sha256_file(outside)})
    _refused(model, "../outside.bin", r"'\.\.' component")


def test_dev_zero_refused_by_its_name_without_reading_it(tmp_path):
    model = _model_dir(tmp_path / "m", {"/dev/zero": NO_HASH})
    _refused(model, "/dev/zero", "is an absolute path")


def test_symlink_out_of_the_folder_refused(tmp_path, outside):
    model = tmp_path / "m"
    model.mkdir()
    (model / "link.bin").symlink_to(outside)
    _model_dir(model, {"link.bin": sha256_file(outside)})
    msg = _refused(model, "link.bin", "resolves outside the model folder")
    assert str(outside) in msg


def test_relative_symlink_to_dev_zero_refused_without_hanging(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "z").symlink_to("/dev/zero")
    _model_dir(model, {"z": NO_HASH})
    _refused(model, "z", "resolves outside the model folder")
    _refused(model, "z", "resolves outside the model folder", verify=False)


def test_directory_refused(tmp_path):
    model = tmp_path / "m"
    (model / "sub").mkdir(parents=True)
    _model_dir(model, {"sub": NO_HASH})
    _refused(model, "sub", "is a directory, not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_inside_refused_before_it_is_opened(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    os.mkfifo(model / "pipe")  # opening it to hash would wait for a writer forever
    (model / "to_pipe").symlink_to("pipe")
    _model_dir(model, {"to_pipe": NO_HASH})
    _refused(model, "to_pipe", "is a FIFO, not a regular file")
    _refused(model, "to_pipe", "is a FIFO", verify=False)  # export hashes after an unverified load


@pytest.mark.parametrize("name,why", [
    ("", "is not a file name"), ("a\\b.bin", "backslash"), ("sub/../w.bin", r"'\.\.' component"),
    ("./w.bin", "empty or '.' component"), ("a//w.bin", "empty or '.' component"),
    ("sub/", "empty or '.' component"),
])
def test_names_that_are_not_plain_relative_names_refused(tmp_path, name, why):
    model = _model_dir(tmp_path / "m", {name: NO_HASH})
    _refused(model, name, why)


def test_unverified_load_still_checks_names_but_not_hashes(tmp_path):
    model = _model_dir(tmp_path / "m", {"gnn.onnx": NO_HASH})  # missing: export writes it
    assert load_card(model, verify=False).has("gnn.onnx")
    with pytest.raises(ModelError, match="gnn.onnx: listed in model.json but missing"):
        load_card(model)
    meta = json.loads((model / "model.json").read_text())
    meta["artifacts"]["../gnn.onnx"] = {"sha256": NO_HASH}
    (model / "model.json").write_text(json.dumps(meta))
    _refused(model, "../gnn.onnx", r"'\.\.' component", verify=False)


def test_model_json_that_is_not_a_regular_file_refused(tmp_path):
    model = tmp_path / "m"
    (model / "model.json").mkdir(parents=True)
    with pytest.raises(ModelError, match="model.json: is not a regular file"):
        load_card(model)


def test_good_model_still_loads(tmp_path):
    model = tmp_path / "m"
    (model / "baselines").mkdir(parents=True)
    (model / "baselines" / "training_features.npz").write_bytes(b"npz")
    (model / "alias.bin").symlink_to("weights.safetensors")  # a symlink inside stays inside
    _model_dir(model)
    meta = json.loads((model / "model.json").read_text())
    for name in ("baselines/training_features.npz", "alias.bin"):
        register_artifact(meta, model, name)
    save_card(model, meta)
    card = load_card(model)
    assert card.artifact("baselines/training_features.npz").read_bytes() == b"npz"
    assert card.artifact("alias.bin").read_bytes() == b"0123456789"


# ---------------------------------------------------------------------------- ONNX external data
def _onnx_model(in_subgraph: bool = False):
    """A tiny ONNX model with one initializer ``W``, in the main graph or an If's branch."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    if not in_subgraph:
        graph = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"])], "g", [x], [y], [w])
    else:
        out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in ("t", "e")]
        then = helper.make_graph([helper.make_node("Identity", ["W"], ["t"])], "then", [],
                                 [out[0]], [w])
        other = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                                  [out[1]])
        c = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
        node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
        graph = helper.make_graph([node], "g", [c, x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("in_subgraph", [False, True])
def test_onnx_with_external_data_refused(tmp_path, in_subgraph):
    onnx = pytest.importorskip("onnx")
    from onnx.external_data_helper import uses_external_data

    model = tmp_path / "m"
    model.mkdir()
    onnx.save_model(_onnx_model(in_subgraph), model / "ext.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    saved = onnx.load(model / "ext.onnx", load_external_data=False)
    branches = {a.name: a.g for a in saved.graph.node[0].attribute}
    graph = branches["then_branch"] if in_subgraph else saved.graph
    assert uses_external_data(graph.initializer[0]) and (model / "w.bin").exists()
    _model_dir(model, {"ext.onnx": sha256_file(model / "ext.onnx"),
                       "w.bin": sha256_file(model / "w.bin")})
    _refused(model, "ext.onnx", "keeps tensor 'W' in an external data file")


def test_self_contained_onnx_loads_and_runs(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    model = tmp_path / "m"
    model.mkdir()
    for name, sub in (("pw.onnx", False), ("sub.onnx", True)):
        onnx.save_model(_onnx_model(sub), model / name)
    _model_dir(model, {n: sha256_file(model / n) for n in ("pw.onnx", "sub.onnx")})
    card = load_card(model)
    sess = ort.InferenceSession(str(card.artifact("pw.onnx")), providers=["CPUExecutionProvider"])
    x = np.ones(4, np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], x + np.arange(4))


def test_onnx_that_is_not_protobuf_is_left_to_onnx_runtime(tmp_path):
    """Garbage is not refused here: ONNX Runtime refuses it when the session opens, naming it
    (tests/infer/test_backends.py)."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "gnn.onnx").write_bytes(b"\xff" * 64)
    _model_dir(model, {"gnn.onnx": sha256_file(model / "gnn.onnx")})
    assert load_card(model).has("gnn.onnx")
