"""``bench/gpu.sh`` and its driver ``bench/gpu_bench.py``, without a GPU: the refusal (exit 2,
one line), the pure helpers, and a ``--device cpu`` dry run of the whole driver."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from psirel.model_dir import MODEL_JSON, sha256_file

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "bench" / "gpu_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_bench = _load()


def test_split_batches_cycles_real_rows_into_contiguous_batches():
    patches = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 4, 2, 2),
                                                                           np.float32)
    scalars = np.arange(10, dtype=np.float32).reshape(5, 2)
    batches = gpu_bench.split_batches(patches, scalars, 3, 4)
    assert len(batches) == 3
    assert [b[0][:, 0, 0, 0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 0, 1, 2],
                                                            [3, 4, 0, 1]]
    assert all(p.flags.c_contiguous and s.flags.c_contiguous for p, s in batches)
    np.testing.assert_array_equal(batches[1][1], scalars[[4, 0, 1, 2]])
    with pytest.raises(ValueError, match="need ≥ 1 batch"):
        gpu_bench.split_batches(patches, scalars, 0, 4)


def test_variants_take_turns_after_their_warm_up():
    calls = []
    fns = {"torch": lambda x: calls.append(("torch", x)), "ort": lambda x: calls.append(("ort", x))}
    times = gpu_bench.time_interleaved(fns, [(1,), (2,), (3,)], warmup=2)
    assert calls[:4] == [("torch", 1), ("torch", 2), ("ort", 1), ("ort", 2)]  # warm-up
    assert calls[4:] == [("torch", 1), ("ort", 1), ("torch", 2), ("ort", 2), ("torch", 3),
                         ("ort", 3)]
    assert {k: len(v) for k, v in times.items()} == {"torch": 3, "ort": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_summary_is_medians_in_ms_and_speedups_over_torch():
    s = gpu_bench.summarise({"torch": [0.010, 0.030, 0.020], "ort_fp32": [0.005, 0.004, 0.006],
                             "ort_fp16": [0.002, 0.0025, 0.0021]})
    assert s["torch_ms"] == 20.0 and s["ort_fp32_ms"] == 5.0 and s["ort_fp16_ms"] == 2.1
    assert s["speedup_vs_torch"] == {"ort_fp32": 4.0, "ort_fp16": round(20 / 2.1, 3)}
    assert s["range_ms"]["torch"] == [10.0, 30.0]


def test_without_a_gpu_the_driver_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(gpu_bench, "cuda_missing", lambda: "PyTorch sees no CUDA device")
    assert gpu_bench.main(["--points", "10"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("gpu_bench: no usable GPU: PyTorch sees no CUDA device; run it on a "
                          "machine with an NVIDIA GPU")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():  # the real check agrees here
        assert "no CUDA device" in gpu_bench.cuda_missing()


def test_gpu_sh_exits_2_with_one_line_without_an_nvidia_gpu(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"  # as on a machine with the driver but no device
    smi.write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--points", "10"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no NVIDIA GPU here" in proc.stderr


def test_a_cpu_dry_run_measures_both_settings(tiny_model, tiny_patch_model, tmp_path,
                                              capsys):
    """The whole driver on the CPU with the session's tiny models and a 300-point scene: one
    JSON, the same on stdout and in --out, the models left as they were."""
    before = {m: sha256_file(m / MODEL_JSON) for m in (tiny_model, tiny_patch_model)}
    out = tmp_path / "gpu.json"
    code = gpu_bench.main(["--device", "cpu", "--work", str(tmp_path / "w"), "--points", "300",
                           "--model", str(tiny_model), "--patch-model", str(tiny_patch_model),
                           "--batches", "3", "--batch-size", "4", "--warmup", "1",
                           "--repeats", "1", "--threads", "1", "--out", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(out.read_text())
    assert result["dry_run"] and result["gpu"]["device"] == "cpu"
    assert result["models_trained_here"] == {}

    t1 = result["table1"]
    assert (t1["batches"], t1["batch_size"]) == (3, 4)
    assert t1["torch_ms"] > 0 and t1["ort_fp32_ms"] > 0
    assert t1["speedup_vs_torch"]["ort_fp32"] == round(t1["torch_ms"] / t1["ort_fp32_ms"], 3)
    assert t1["max_abs_emb_vs_torch"]["ort_fp32"] <= 1e-4   # the same encoder
    assert t1["ort_fp16_ms"] is None and "CUDA" in t1["missing"]["ort_fp16_ms"]

    e2e = result["end_to_end"]
    assert e2e["points"] == 300 and len(e2e["wall_s"]) == 1
    assert e2e["command"].startswith(f"psirel predict --model {tiny_model}")
    assert "--device cpu" in e2e["command"]
    assert e2e["points_per_s"] == round(300 / e2e["wall_s_best"], 1)
    assert e2e["in_process_fp32"]["seconds"] > 0 and e2e["in_process_fp16"] is None
    assert before == {m: sha256_file(m / MODEL_JSON) for m in (tiny_model, tiny_patch_model)}
