"""Every prediction's quick-look and QGIS style: written by predict, predict_tiled and the CLI."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pyogrio
import pytest

from psirel.cli import main
from psirel.infer.pipeline import predict
from psirel.infer.quicklook_step import default_report_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _renderer_field(qml) -> str:
    root = ET.parse(qml).getroot()
    return root.find(".//renderer-v2").get("attr")


def test_default_report_dir_is_named_after_the_whole_output_name(tmp_path):
    assert default_report_dir(tmp_path / "pred.gpkg") == tmp_path / "pred.gpkg.quicklook"
    assert default_report_dir(tmp_path / "pred.gpkg") != default_report_dir(tmp_path / "pred.csv")


def test_predict_writes_the_quicklook_and_a_qml_beside_a_geopackage(trained, tmp_path):
    out = tmp_path / "pred.gpkg"
    s = predict(trained.model, *trained.inputs, out, report=True)
    r = s["report"]
    png = default_report_dir(out) / "quicklook.png"
    assert r["png"] == str(png) and png.read_bytes()[:8] == PNG_MAGIC
    assert "http" not in (default_report_dir(out) / "quicklook.html").read_text()
    assert r["qml"] == str(tmp_path / "pred.qml")
    assert _renderer_field(r["qml"]) == "reliability"
    rel = pyogrio.read_dataframe(out)["reliability"].to_numpy()
    assert r["counts"]["n_points"] == len(rel)
    assert r["counts"]["n_below_threshold"] == int((rel < s["threshold"]).sum())
    assert s["seconds"]["report"] > 0


def test_a_shapefile_style_names_its_laundered_field_and_a_csv_gets_none(trained, tmp_path):
    s = predict(trained.model, *trained.inputs, tmp_path / "p.shp", report=tmp_path / "ql")
    assert s["report"]["png"] == str(tmp_path / "ql" / "quicklook.png")
    assert _renderer_field(tmp_path / "p.qml") == "reliabilit"
    s = predict(trained.model, *trained.inputs, tmp_path / "c.csv", report=True)
    assert "qml" not in s["report"] and not (tmp_path / "c.qml").exists()


def test_without_report_nothing_but_the_output(trained, tmp_path):
    s = predict(trained.model, *trained.inputs, tmp_path / "pred.gpkg")
    assert "report" not in s and sorted(p.name for p in tmp_path.iterdir()) == ["pred.gpkg"]


def test_tiled_partitioned_report_equals_the_single_process_counts(trained, tmp_path):
    pytest.importorskip("distributed")
    from psirel.infer.distributed import predict_tiled

    single = predict(trained.model, *trained.inputs, tmp_path / "one.gpkg", report=True)
    parts = tmp_path / "parts"
    s = predict_tiled(trained.model, *trained.inputs, parts, dask="sync", partitioned=True,
                      tile_m=600, report=tmp_path / "ql")
    assert (tmp_path / "ql" / "quicklook.png").exists() and "qml" not in s["report"]
    a, b = single["report"]["counts"], s["report"]["counts"]
    assert a["n_points"] == b["n_points"]
    assert abs(a["n_below_threshold"] - b["n_below_threshold"]) <= 1
    assert np.isclose(a["mean_reliability"], b["mean_reliability"], atol=1e-5)


def test_cli_quicklook_by_default_elsewhere_or_not_at_all(trained, tmp_path, capsys):
    args = ["--model", str(trained.model), "--points", str(trained.inputs[0]),
            "--dem", str(trained.inputs[1]), "--lulc", str(trained.inputs[2]),
            "--amplitude", str(trained.inputs[3])]
    out = tmp_path / "a.gpkg"
    assert main(["predict", *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "quick-look:" in printed and (default_report_dir(out) / "quicklook.html").exists()
    assert (tmp_path / "a.qml").exists()
    assert main(["predict", *args, "--out", str(tmp_path / "b.gpkg"), "--no-quicklook"]) == 0
    assert not default_report_dir(tmp_path / "b.gpkg").exists()
    assert not (tmp_path / "b.qml").exists()
    assert main(["predict", *args, "--out", str(tmp_path / "c.gpkg"), "--report",
                 str(tmp_path / "r"), "--no-quicklook"]) == 2
    assert "--report and --no-quicklook" in capsys.readouterr().err
