import json

import numpy as np

from psirel.bench.protocol import (
    METHODS,
    ProtocolConfig,
    recall_by_reason,
    scene,
    scene_reasons,
    summarise,
    to_markdown,
)
from psirel.scene.labels import REASONS


def test_recall_by_reason_counts_the_least_reliable_k():
    labels = np.array([1, 1, 0, 0, 1, 0])
    noise, unwrap = REASONS["noise_dominated"], REASONS["unwrapping_error"]
    reasons = np.array([0, 0, noise, unwrap, 0, noise])
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.05])     # flagged (K = 3): rows 5, 1, 2
    r = recall_by_reason(p, labels, reasons)
    assert r["noise_dominated"] == 1.0 and r["unwrapping_error"] == 0.0
    assert r["reliable_among_flagged"] == 1 / 3 and r["sidelobe"] is None


def test_reasons_are_the_generators(tmp_path):
    d = scene(tmp_path, 4242, 800)
    reasons = scene_reasons(4242, 800)
    info = json.loads((d / "scene.json").read_text())
    assert len(reasons) == info["n_points"]
    for name, bit in REASONS.items():
        assert int(((reasons & bit) > 0).sum()) == info["label_reasons"][name]


def _cell(seed, world, ap_model, ap_gb):
    metrics = {m: {"roc_auc": 0.8, "average_precision": 0.5, "ece": 0.05} for m in METHODS}
    metrics["model"]["average_precision"] = ap_model
    metrics["gradient_boosting"]["average_precision"] = ap_gb
    rec = {m: {"noise_dominated": 0.5, "sidelobe": None} for m in METHODS}
    return {"train_seed": seed, "world": world, "world_name": f"w{world}", "metrics": metrics,
            "recall_by_reason": rec}


def test_summary_and_table_report_means_spreads_and_margins():
    cells = [_cell(0, 1, 0.80, 0.70), _cell(1, 1, 0.60, 0.70)]
    s = summarise(cells)
    assert s["metrics"]["model"]["average_precision"]["mean"] == 0.7
    assert abs(s["metrics"]["model"]["average_precision"]["std"] - 0.1) < 1e-12
    m = s["ap_margin_over_gb"]
    assert abs(m["mean"]) < 1e-12 and m["cells_won"] == 1 and abs(m["min"] + 0.1) < 1e-12
    assert s["recall_by_reason"]["model"]["sidelobe"]["n"] == 0
    result = {"config": {"train_seeds": [0, 1], "test_worlds": [1], "train_clouds": 3,
                         "points": 100, "ensemble": 3, "epochs": 12, "pixel_m": 10.0},
              "load_average": {"before": [1.0], "after": [2.0]}, "seconds": 3.0,
              "cells": cells, "summary": s}
    md = to_markdown(result)
    assert "| model | 0.800 ± 0.000 | 0.700 ± 0.100 |" in md and "1 of 2 cells" in md
    assert ProtocolConfig.full().training_worlds(2) == [1020, 1021, 1022]
