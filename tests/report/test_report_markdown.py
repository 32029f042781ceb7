import json

from psirel.report.markdown import metric_rows, metrics_table, write_report

METRICS = {
    "split": "blocks of 2 km, 300 m buffer",
    "threshold": 0.41,
    "model": {"roc_auc": 0.9512, "average_precision": 0.8123, "f1": 0.7401,
              "balanced_accuracy": 0.8804, "ece": 0.0312},
    "pointwise": {"metrics": {"roc_auc": 0.9, "average_precision": 0.7, "f1": 0.69,
                              "balanced_accuracy": 0.83, "ece": 0.02}},
    "baselines": {
        "coherence_threshold": {"roc_auc": 0.7, "average_precision": 0.41, "f1": 0.45,
                                "balanced_accuracy": 0.66, "ece": 0.0904},
        "neighbour_consistency": {"roc_auc": 0.88, "average_precision": 0.63, "f1": 0.61,
                                  "balanced_accuracy": 0.8804, "ece": float("nan")},
    },
}


def _cells(table):
    lines = table.strip().splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_rows_columns_and_bold_best():
    rows = _cells(metrics_table(METRICS))
    assert rows[0] == ["Model", "ROC-AUC", "AP (unreliable)", "F1 (unreliable)",
                       "Balanced acc.", "ECE"]
    body = {r[0]: r[1:] for r in rows[2:]}
    assert list(body) == ["model", "pointwise", "coherence_threshold", "neighbour_consistency"]
    assert body["model"] == ["**0.951**", "**0.812**", "**0.740**", "**0.880**", "0.031"]
    assert body["pointwise"] == ["0.900", "0.700", "0.690", "0.830", "**0.020**"]  # ECE: lowest
    assert body["coherence_threshold"] == ["0.700", "0.410", "0.450", "0.660", "0.090"]
    # a tie at the shown precision is bold in both rows; NaN shows as a dash
    assert body["neighbour_consistency"][3] == "**0.880**"
    assert body["neighbour_consistency"][4] == "–"
    assert len(metric_rows(METRICS)) == 4


def test_write_report(tmp_path):
    fig = tmp_path / "figures" / "roc.png"
    fig.parent.mkdir()
    fig.write_bytes(b"png")
    path = write_report(tmp_path, json.loads(json.dumps(METRICS)),
                        {"ROC curves": str(fig), "Map": "figures/map.png"},
                        extra_md="## Notes\n\nSynthetic scene.")
    assert path == tmp_path / "report.md"
    text = path.read_text()
    assert text.startswith("# psirel evaluation report")
    assert "- **split**: blocks of 2 km, 300 m buffer" in text
    assert "- **threshold**: 0.41" in text
    assert metrics_table(METRICS) in text
    assert "![ROC curves](figures/roc.png)" in text  # absolute path made relative
    assert "![Map](figures/map.png)" in text
    assert text.rstrip().endswith("Synthetic scene.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "report.md"]
