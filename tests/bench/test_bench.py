"""The benchmark suite: report contract, targets, roofline arithmetic, a tiny end-to-end run.

No test depends on a timing's value: only on keys, on arithmetic between figures, and on
missing figures being ``null`` with a reason.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from psirel_testing import card_meta

from psirel.bench.pipeline import STAGES, stages
from psirel.bench.report import (
    STAGE_KEYS,
    evaluate_targets,
    missing_keys,
    missing_notes,
    to_markdown,
    write_report,
)
from psirel.bench.roofline import achieved_gflops, flops_per_point, roofline
from psirel.bench.timing import Missing, median_seconds, put
from psirel.model_dir import ModelCard

TOP_KEYS = {"pw_encoder", "pipeline", "scaling", "quality", "shared_map", "roofline"}


def synthetic_result() -> dict:
    """A complete result with made-up figures, int8 and shared map missing."""
    def entry(n: int, rss: float) -> dict:
        return {"points": n, "seconds": n / 1000, "points_per_s": 1000.0, "peak_rss_mb": rss,
                "stages": dict.fromkeys(STAGE_KEYS, 0.5), "runs": 1}

    enc = {}
    for b, fp32, torch_ms in (("batch_32", 10.0, 25.0), ("batch_1024", 400.0, 900.0)):
        enc[b] = {"torch_ms": torch_ms, "ort_fp32_ms": fp32}
        put(enc[b], "ort_int8_ms", Missing("no INT8 export yet"))
    quality = {"fp32_auc": 0.85, "patch_auc": 0.85}
    put(quality, "int8_auc", Missing("no INT8 export yet"))
    put(quality, "shared_map_auc", Missing("no shared-map encoder yet"))
    shared = {"patch_points_per_s": 900.0}
    put(shared, "shared_points_per_s", Missing("no shared-map encoder yet"))
    return {
        "mode": "test", "machine": {"cpu": "test CPU", "usable_cores": 2, "threads": 2,
                                    "versions": {"numpy": "2"}},
        "pw_encoder": enc,
        "pipeline": {"points": 50_000, "naive_points_per_s": 100.0,
                     "two_stage_points_per_s": 2500.0},
        "scaling": [entry(10_000, 800.0), entry(100_000, 1000.0), entry(1_000_000, 1200.0)],
        "quality": quality, "shared_map": shared,
        "roofline": {"pw_flops_per_point": 12_000_000, "machine_gflops": 100.0,
                     "pw_gflops_achieved": 30.72},
        "end_to_end": {"points": 1_000_000, "model_points_per_s": 12_000.0,
                       "gradient_boosting_points_per_s": 20_000.0,
                       "patch_points_per_s": 1_500.0, "peak_rss_mb": 2_000.0,
                       "threads": 2, "quicklook": True,
                       "runs": {"model": {"points": 1_000_000, "seconds": 83.3,
                                          "points_per_s": 12_000.0, "peak_rss_mb": 2_000.0,
                                          "stages": {"read_s": 9.0, "encoder_s": 40.0}}}},
        "training": {"runs": [{"points": 1_000_000, "train_seconds": 100.0,
                               "train_peak_rss_mb": 5_000.0, "evaluate_seconds": 90.0,
                               "evaluate_peak_rss_mb": 4_000.0, "max_steps": 2}],
                     "max_steps": 2, "peak_rss_mb_1m": 5_000.0},
    }


# ---------------------------------------------------------------------------- report
def test_report_writes_every_key_and_markdown_tables(tmp_path):
    js, md = write_report(tmp_path, synthetic_result())
    data = json.loads(js.read_text())
    assert TOP_KEYS | {"machine", "targets"} <= set(data)
    assert missing_keys(data) == []
    for b in ("batch_32", "batch_1024"):
        assert set(data["pw_encoder"][b]) >= {"torch_ms", "ort_fp32_ms", "ort_int8_ms"}
        assert data["pw_encoder"][b]["ort_int8_ms"] is None
        assert data["pw_encoder"][b]["missing"]["ort_int8_ms"] == "no INT8 export yet"
    assert [e["points"] for e in data["scaling"]] == [10_000, 100_000, 1_000_000]
    assert set(data["scaling"][0]["stages"]) == set(STAGE_KEYS)
    assert data["quality"]["shared_map_auc"] is None and "shared_map_auc" in \
        data["quality"]["missing"]

    text = md.read_text()
    assert "| target | values | met |" in text
    table = [ln for ln in text.splitlines()
             if ln.startswith("| 1,000,000 |") and ln.count("|") == 11]
    assert len(table) == 1   # the scaling table's row (10 columns)
    assert "| 1,000,000 | 100.0 | 5,000 | 90.0 | 4,000 |" in text   # training and evaluate
    assert "quality.int8_auc: no INT8 export yet" in text


def test_report_refuses_an_incomplete_result(tmp_path):
    result = synthetic_result()
    del result["pipeline"]["naive_points_per_s"], result["scaling"][0]["stages"]["gnn_s"]
    with pytest.raises(ValueError, match="pipeline.naive_points_per_s"):
        write_report(tmp_path, result)
    assert missing_keys(result) == ["pipeline.naive_points_per_s", "scaling[0].stages.gnn_s"]
    assert not (tmp_path / "latest.json").exists()


def test_targets_met_failed_or_unknown():
    t = evaluate_targets(synthetic_result())
    assert t["ort_fp32_vs_torch"]["met"] is True            # 10 <= 25 / 2
    assert t["two_stage_vs_naive"]["met"] is True           # 2500 >= 20 * 100
    assert t["memory_bounded"]["met"] is True               # 1200 <= 1.3 * 1000, < 3000
    assert t["roofline"]["met"] is True                     # 30.72 >= 0.3 * 100
    assert t["int8"]["met"] is None and t["shared_map"]["met"] is None  # figures missing

    r = synthetic_result()
    r["pw_encoder"]["batch_32"]["torch_ms"] = 19.0          # 10 > 19 / 2
    r["scaling"][2]["peak_rss_mb"] = 1400.0                 # > 1.3 x 1000
    r["pw_encoder"]["batch_1024"]["ort_int8_ms"] = 200.0
    r["quality"]["int8_auc"] = 0.84                          # fp32 - 0.01: too much lost
    t = evaluate_targets(r)
    assert t["ort_fp32_vs_torch"]["met"] is False
    assert t["memory_bounded"]["met"] is False
    assert t["int8"]["met"] is False
    del r["scaling"][2]                                      # quick mode: no 1M run
    assert evaluate_targets(r)["memory_bounded"]["met"] is None


def test_end_to_end_target_and_random_order_naive():
    r = synthetic_result()
    t = evaluate_targets(r)
    assert t["end_to_end"]["met"] is True   # 12,000 >= 10,000 and >= 0.5 x 20,000; 2 GB
    r["end_to_end"]["gradient_boosting_points_per_s"] = 25_000.0   # 12,000 < 12,500
    assert evaluate_targets(r)["end_to_end"]["met"] is False
    r = synthetic_result()
    r["end_to_end"]["peak_rss_mb"] = 3_100.0
    assert evaluate_targets(r)["end_to_end"]["met"] is False
    r["end_to_end"]["model_points_per_s"] = None
    assert evaluate_targets(r)["end_to_end"]["met"] is None
    # with a random-order run, the naive target is judged on it, not on the scan-line file
    r["pipeline"]["random_order"] = {"naive_points_per_s": 200.0,
                                     "two_stage_points_per_s": 2500.0}
    t = evaluate_targets(r)["two_stage_vs_naive"]
    assert t["met"] is False and t["values"]["naive_points_per_s"] == 200.0
    assert "random order" in t["rule"]
    md = to_markdown({**r, "targets": evaluate_targets(r)})
    assert "| model | 12,000 | 83.3 | 2,000 | 9.0 | 40.0 |" in md


def test_end_to_end_entry_and_shared_map_roofline():
    from psirel.bench.end_to_end import e2e_stages, entry, shared_map_roofline
    from psirel.models.convnext import convnext_flops

    summary = {"points": 2000, "seconds": {"read": 1.0, "patches": 2.0, "encoder": 3.0,
                                           "graph": 0.5, "gnn": 0.25, "write": 0.75,
                                           "total": 8.0},
               "peak_rss_mb": 321.0, "counts": {"windows": 4, "window_px": 4 * 384 * 384}}
    assert e2e_stages({"read": 1.0, "predict": 2.0}) == {"read_s": 1.0, "predict_s": 2.0}
    e = entry(summary)
    assert e["points_per_s"] == 250.0 and e["seconds"] == 8.0 and e["peak_rss_mb"] == 321.0
    assert e["stages"] == {"read_s": 1.0, "windows_s": 2.0, "encoder_s": 3.0, "graph_s": 0.5,
                           "gnn_s": 0.25, "write_s": 0.75}
    card = ModelCard.parse(Path("."), card_meta(config={"encoder": "shared-map"}))
    rf = shared_map_roofline(card, e, machine_gflops=100.0)
    enc = card.config.encoder
    per_px = convnext_flops(3 + enc.lulc_dim, enc.depths, enc.dims, 32) / 32**2
    assert rf["flops_per_pixel"] == pytest.approx(per_px, rel=1e-4)
    assert rf["flops_per_km2"] == pytest.approx(per_px * 1e6 / card.features.pixel_m**2,
                                                rel=1e-6)
    assert rf["flops_per_point"] == pytest.approx(per_px * 4 * 384 * 384 / 2000, rel=1e-6)
    assert rf["gflops_achieved"] == pytest.approx(per_px * 4 * 384 * 384 / 3.0 / 1e9,
                                                  rel=1e-3)
    assert rf["fraction_of_machine"] == pytest.approx(rf["gflops_achieved"] / 100, abs=1e-4)
    del e["counts"]
    assert shared_map_roofline(card, e, 100.0)["gflops_achieved"] is None


def test_missing_notes_and_markdown_dashes():
    r = synthetic_result()
    notes = missing_notes(r)
    assert "pw_encoder.batch_32.ort_int8_ms: no INT8 export yet" in notes
    assert "shared_map.shared_points_per_s: no shared-map encoder yet" in notes
    assert "| 32 | 25.0 | 10.0 | — |" in to_markdown({**r, "targets": evaluate_targets(r)})


# ---------------------------------------------------------------------------- helpers
def test_stage_mapping_from_the_pipeline_summary():
    seconds = {"read": 1.0, "write": 2.0, "io": 3.0, "features": 0.25, "patches": 4.0,
               "encoder": 5.0, "manifest": 0.5, "stage1_wall": 7.0, "graph": 0.75, "gnn": 1.5,
               "total": 12.0}
    st = stages(seconds)
    assert set(STAGES) == set(STAGE_KEYS)
    assert {k: st[k] for k in STAGE_KEYS} == {"patches_s": 4.0, "pw_encoder_s": 5.0,
                                              "graph_s": 0.75, "gnn_s": 1.5, "io_s": 3.0}
    assert st["features_s"] == 0.25 and st["manifest_s"] == 0.5 and st["stage1_wall_s"] == 7.0


def test_median_after_warmup():
    calls = []
    median_seconds(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5


def test_roofline_is_consistent():
    pytest.importorskip("torch")
    from psirel.models.reliability import ReliabilityModel

    meta = card_meta()
    card = ModelCard.parse(Path("."), meta)
    flops, source = flops_per_point(card)
    assert flops == ReliabilityModel(card.config).flops_per_patch()
    assert "flops_per_patch" in source
    recorded = ModelCard.parse(Path("."), {**meta, "flops_per_patch": 1_000_000})
    assert flops_per_point(recorded) == (1_000_000, "model.json flops_per_patch")

    assert achieved_gflops(12e6, 2500.0) == pytest.approx(30.0)
    r = roofline(card, 1234.5, threads=1, n=64, repeats=1)
    assert r["machine_gflops"] > 0
    assert r["pw_gflops_achieved"] == pytest.approx(flops * 1234.5 / 1e9, abs=1e-3)
    assert r["fraction_of_machine"] == pytest.approx(
        r["pw_gflops_achieved"] / r["machine_gflops"], abs=1e-4)
    none = roofline(card, None, threads=1, n=64, repeats=1)
    assert none["pw_gflops_achieved"] is None and "pw_gflops_achieved" in none["missing"]


def test_scenes_are_cached(tmp_path):
    from psirel.bench import assets

    d = assets.scene(tmp_path, 300, seed=3)
    stamp = (d / "scene.json").stat().st_mtime_ns
    assert assets.scene(tmp_path, 300, seed=3) == d
    assert (d / "scene.json").stat().st_mtime_ns == stamp
    assert assets.scene_density(d)["points"] == 300


def test_cli_rejects_a_missing_model(tmp_path, capsys):
    from psirel.bench.__main__ import main

    assert main(["--out", str(tmp_path), "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope" in err and len(err.splitlines()) == 1


def test_cli_rejects_models_of_the_wrong_encoder(tiny_model, tiny_patch_model, tmp_path, capsys):
    from psirel.bench.__main__ import main

    for flag, m, want in (("--model", tiny_model, "--encoder patch"),
                          ("--shared-model", tiny_patch_model, "--encoder shared-map")):
        assert main(["--out", str(tmp_path), flag, str(m)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {flag} {m}") and want in err
        assert len(err.splitlines()) == 1


# ---------------------------------------------------------------------------- end to end
def test_tiny_run_writes_every_key(tiny_patch_model, tiny_model, tmp_path):
    pytest.importorskip("torch")
    from psirel.bench import BenchConfig, run_bench

    cfg = BenchConfig(mode="test", repeats=1, encoder_points=64, calibration_points=16,
                      pipeline_points=1500, pipeline_repeats=1, scaling_points=(1500,),
                      scaling_repeats=1, heldout_points=1500, dense_points=1500,
                      matmul_n=128, matmul_repeats=1, train_points=1500, epochs=1,
                      max_steps=2, batch_size=128, memory_points=(1500,), e2e_points=1500,
                      random_order_points=1500, random_order_naive_batches=1)
    run_bench(tmp_path, cfg, model=tiny_patch_model, shared_model=tiny_model)
    data = json.loads((tmp_path / "latest.json").read_text())
    assert missing_keys(data) == []
    assert TOP_KEYS <= set(data)
    # scaling is the default (shared-map) model's; at 1,500 points its end-to-end run
    assert data["scaling_model"].startswith("default")
    assert data["scaling"][0]["points"] == 1500 and data["scaling"][0]["peak_rss_mb"] > 0
    assert data["pipeline"]["points"] == 1500
    assert data["pipeline"]["random_order"]["points"] == 1500
    rnd = data["pipeline"]["random_order"]
    assert rnd["naive_points_per_s"] > 0 and rnd["two_stage_points_per_s"] > 0
    assert rnd["naive_batches_timed"] == 1 and rnd["naive_points_timed"] == 512
    assert rnd["speedup"] == pytest.approx(rnd["two_stage_points_per_s"]
                                           / rnd["naive_points_per_s"], rel=1e-3)
    e = data["end_to_end"]
    assert e["points"] == 1500 and set(e["runs"]) == {"model", "gradient_boosting", "patch"}
    for name in ("model", "gradient_boosting", "patch"):
        run = e["runs"][name]
        assert e[f"{name}_points_per_s"] == run["points_per_s"] > 0
        assert run["points_per_s"] == pytest.approx(1500 / run["seconds"], rel=0.01)
        assert run["peak_rss_mb"] > 0 and run["stages"]["read_s"] > 0
        assert run["stages"]["write_s"] > 0 and run["stages"]["report_s"] > 0
    assert e["runs"]["model"]["stages"]["encoder_s"] > 0
    assert e["runs"]["gradient_boosting"]["stages"]["predict_s"] > 0
    assert e["peak_rss_mb"] == e["runs"]["model"]["peak_rss_mb"]
    assert e["runs"]["model"]["counts"]["windows"] > 0
    sm = data["roofline"]["shared_map"]
    assert sm["windows"] == e["runs"]["model"]["counts"]["windows"]
    assert sm["flops_per_point"] * 1500 == pytest.approx(
        sm["flops_per_pixel"] * e["runs"]["model"]["counts"]["window_px"], rel=1e-3)
    t = data["training"]
    assert [r["points"] for r in t["runs"]] == [1500]
    assert t["runs"][0]["train_peak_rss_mb"] > 0 and t["runs"][0]["evaluate_peak_rss_mb"] > 0
    assert t["peak_rss_mb_1m"] is None and "1,000,000" in t["missing"]["peak_rss_mb_1m"]
    md = (tmp_path / "latest.md").read_text()
    assert "Training and evaluate" in md and "**End to end**" in md
    # a figure is a number, or null with its reason
    for section, key in (("quality", "int8_auc"), ("quality", "shared_map_auc"),
                         ("shared_map", "shared_points_per_s")):
        value = data[section][key]
        assert isinstance(value, float) or (value is None and data[section]["missing"][key])
    for b in ("batch_32", "batch_1024"):
        row = data["pw_encoder"][b]
        assert row["ort_fp32_ms"] > 0
        assert row["ort_int8_ms"] is None and row["missing"]["ort_int8_ms"] or \
            row["ort_int8_ms"] > 0
    assert set(data["targets"]) == {"ort_fp32_vs_torch", "two_stage_vs_naive",
                                    "memory_bounded", "int8", "shared_map", "roofline",
                                    "end_to_end", "int8_default_encoder"}
    dp = data["quality"]["default_precision"]
    assert dp["fp32_encoder_s"] > 0 and dp["int8_encoder_s"] > 0
    assert dp["int8_speedup"] == pytest.approx(dp["fp32_encoder_s"] / dp["int8_encoder_s"],
                                               rel=1e-2)
    assert abs(dp["int8_auc"] - dp["fp32_auc"]) < 0.05
    assert data["targets"]["memory_bounded"]["met"] is None  # no 100k / 1M runs here
    assert (tmp_path / "latest.md").read_text().startswith("# psirel benchmark (test)")
    assert not (tmp_path / "cache" / "work").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM of /proc/self/status")
def test_a_child_reports_its_own_peak_not_its_parents():
    """Linux carries ``ru_maxrss`` over from the forked parent; the peak the benchmark's
    children report is their own."""
    import subprocess

    import numpy as np

    from psirel.infer.pipeline import peak_rss_mb

    held = np.ones(400 * 2 ** 20 // 8)              # this process holds 400 MB
    code = ("import resource; from psirel.infer.pipeline import peak_rss_mb; "
            "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    own, inherited = map(float, subprocess.run([sys.executable, "-c", code], check=True,
                                               capture_output=True, text=True).stdout.split())
    assert inherited > 400 > 300 > own > 10       # ru_maxrss is the parent's, VmHWM the child's
    assert peak_rss_mb() >= 400 and held.sum() > 0
