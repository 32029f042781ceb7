"""Backends: ONNX Runtime vs torch, damaged exports, missing CUDA, and no torch at all."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from psirel.errors import ModelError, PsirelError
from psirel.infer.backends import make_backend
from psirel.model_dir import load_card, register_artifact, save_card


def _real_inputs(trained, n: int = 40):
    """Real normalised patches and scalars of ``n`` points, with their kNN subgraph."""
    from psirel.graph.sampling import full_neighbourhood
    from psirel.infer.prepared import prepare

    card = load_card(trained.model)
    scene = prepare(card, *trained.inputs)
    try:
        from psirel.graph.knn import knn_table

        t = knn_table(scene.cloud.x, scene.cloud.y, k=scene.k, r_max_m=scene.r_max_m)
        sub = full_neighbourhood((t.idx, t.mask), np.sort(scene.order[:n]), 1)
        patches, _ = scene.extract(sub.nodes, scene.patch_buffer(sub.n_nodes))
        ea = scene.edge_attr(sub.nodes, sub.idx, sub.mask)
        return card, patches.copy(), scene.scalars[sub.nodes], sub, ea
    finally:
        scene.stack.close()


def test_onnx_and_torch_backends_agree(trained):
    pytest.importorskip("torch")
    card, patches, scalars, sub, ea = _real_inputs(trained)
    ort_be, torch_be = make_backend(card, threads=2), make_backend(card, "torch", threads=2)
    e_o, e_t = ort_be.embed(patches, scalars), torch_be.embed(patches, scalars)
    assert e_o.shape == (sub.n_nodes, card.embedding_dim) and e_o.dtype == np.float32
    assert np.abs(e_o - e_t).max() <= 1e-4
    p_o = ort_be.reliability(e_o, sub.idx, sub.mask, ea)
    p_t = torch_be.reliability(e_o, sub.idx, sub.mask, ea)
    # calibrated reliability and its ensemble spread, identical in both backends
    assert p_o.shape == (sub.n_nodes, 2) and np.abs(p_o - p_t).max() <= 1e-5
    assert card.members > 1 and p_o[:, 1].max() > 0 and (p_o[:, 1] >= 0).all()
    p_o = p_o[:, 0]
    q_o, q_t = ort_be.pointwise_only(patches, scalars), torch_be.pointwise_only(patches, scalars)
    assert np.abs(q_o - q_t).max() <= 1e-4
    assert p_o.std() > 1e-4  # not a constant model


def test_sub_batches_give_the_one_call_result(trained):
    from psirel.infer.backends import OrtBackend, sub_batch_size

    card, patches, scalars, _, _ = _real_inputs(trained)
    one, parts = OrtBackend(card, threads=1, sub_batch=1 << 20), OrtBackend(card, threads=1,
                                                                             sub_batch=7)
    e1, e7 = one.embed(patches, scalars), parts.embed(patches, scalars)
    assert len(patches) > 7 and e7.shape == e1.shape and e7.dtype == np.float32
    np.testing.assert_allclose(e7, e1, rtol=0, atol=1e-5)
    np.testing.assert_allclose(parts.pointwise_only(patches, scalars),
                               one.pointwise_only(patches, scalars), rtol=0, atol=1e-6)
    assert sub_batch_size(1) == 32 and sub_batch_size(2) == 64 and sub_batch_size(64) == 256
    assert sub_batch_size(2, "cuda") > 1e6  # a GPU gets the whole batch


def test_corrupt_onnx_is_a_model_error_naming_the_file(model_copy):
    model = model_copy()
    path = model / "gnn.onnx"
    data = path.read_bytes()
    path.write_bytes(b"\xff" * 64 + data[64:])  # the protobuf's first fields are garbage
    with pytest.raises(ModelError, match="SHA-256"):  # the hash check sees it first
        load_card(model)
    meta = json.loads((model / "model.json").read_text())
    register_artifact(meta, model, "gnn.onnx")  # ... a hash updated by hand does not fool ORT
    save_card(model, meta)
    with pytest.raises(ModelError, match=r"gnn\.onnx.*ONNX Runtime cannot load"):
        make_backend(load_card(model))


def test_missing_onnx_export_says_how_to_make_it(model_copy):
    model = model_copy()
    meta = json.loads((model / "model.json").read_text())
    for name in ("pointwise.onnx", "gnn.onnx"):
        del meta["artifacts"][name]
        (model / name).unlink()
    save_card(model, meta)
    with pytest.raises(ModelError, match="psirel export"):
        make_backend(load_card(model))


def test_cuda_without_cuda_provider(trained):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA execution provider")
    with pytest.raises(PsirelError, match="CUDA execution provider is not available.*CPUExecut"):
        make_backend(load_card(trained.model), device="cuda")


def test_bad_arguments(trained):
    card = load_card(trained.model)
    with pytest.raises(PsirelError, match="--backend"):
        make_backend(card, "tensorrt")
    with pytest.raises(PsirelError, match="--threads"):
        make_backend(card, threads=0)


def test_inference_runs_without_torch(trained, tmp_path):
    """The inference install has no torch: import every inference module and predict with
    torch, safetensors and torch-geometric made unimportable."""
    out = tmp_path / "p.gpkg"
    code = textwrap.dedent(f"""
        import sys
        for m in ("torch", "safetensors", "torch_geometric", "sklearn"):
            sys.modules[m] = None  # 'import torch' now raises ImportError
        import psirel.infer, psirel.infer.backends, psirel.infer.naive, psirel.infer.pipeline
        import psirel.infer.prepared, psirel.infer.workdir
        from psirel.errors import MissingExtra
        from psirel.infer.backends import make_backend
        from psirel.infer.pipeline import predict
        from psirel.model_dir import load_card
        try:
            make_backend(load_card({str(trained.model)!r}), "torch")
        except MissingExtra as exc:
            print("missing:", exc)
        s = predict({str(trained.model)!r}, *{tuple(map(str, trained.inputs))!r}, {str(out)!r},
                    threads=1)
        print("points:", s["points"])
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "missing: --backend torch needs the 'train' extra" in res.stdout
    assert "points: 2000" in res.stdout
    assert out.exists()
