import xml.etree.ElementTree as ET

import pytest

from psirel.io.columns import SHAPEFILE_OUTPUT_NAMES
from psirel.report.qml import N_ABOVE, N_BELOW, class_breaks, qml_text, write_qml


def _renderer(text):
    root = ET.fromstring(text)  # well-formed, DOCTYPE included
    assert root.tag == "qgis"
    (rend,) = root.findall("renderer-v2")
    return root, rend


def _qgis_class(rend, value):
    """The range QGIS picks: the first listed with lower <= value <= upper."""
    for i, r in enumerate(rend.find("ranges")):
        if float(r.get("lower")) <= value <= float(r.get("upper")):
            return i, r
    return None, None


def _colour(rend, symbol_name):
    for sym in rend.find("symbols"):
        if sym.get("name") == symbol_name:
            layer = sym.find("layer")
            opt = {o.get("name"): o.get("value") for o in layer.find("Option")}
            legacy = {p.get("k"): p.get("v") for p in layer.findall("prop")}
            assert opt == legacy  # both forms carry the same properties
            return tuple(int(c) for c in opt["color"].split(","))
    raise AssertionError(f"no symbol {symbol_name}")


def test_graduated_renderer_on_the_field_with_the_threshold_as_a_break():
    text = qml_text(threshold=0.45)
    assert text.startswith("<!DOCTYPE qgis")
    root, rend = _renderer(text)
    assert rend.get("type") == "graduatedSymbol" and rend.get("attr") == "reliability"
    assert root.find("layerGeometryType").text == "0"
    ranges = rend.find("ranges").findall("range")
    assert len(ranges) == N_BELOW + N_ABOVE
    lowers = [float(r.get("lower")) for r in ranges]
    uppers = [float(r.get("upper")) for r in ranges]
    assert 0.45 in lowers and 0.45 in uppers  # a class break
    assert max(uppers) == 1.0 and min(lowers) == 0.0
    assert lowers == sorted(lowers, reverse=True)  # most reliable first
    # QGIS's first-match rule reproduces psirel's: unreliable iff reliability < threshold
    for v, flagged in ((0.0, True), (0.2, True), (0.4499, True), (0.45, False), (0.8, False),
                       (1.0, False)):
        _, r = _qgis_class(rend, v)
        assert r is not None and r.get("label").startswith("unreliable" if flagged else "reliable")
        red, _, blue, _ = _colour(rend, r.get("symbol"))
        assert (red > blue) == flagged
    assert "threshold 0.45" in " ".join(r.get("label") for r in ranges)
    clause = rend.find("orderby/orderByClause")
    assert clause.text == '"reliability"' and clause.get("asc") == "0"
    assert rend.get("enableorderby") == "1"
    assert rend.find("source-symbol/symbol") is not None
    assert rend.find("colorramp").get("type") == "gradient"


def test_shapefile_field_name_and_file_written(tmp_path):
    field = SHAPEFILE_OUTPUT_NAMES["reliability"]
    out = write_qml(tmp_path / "pred.qml", field, threshold=0.3, unreliable_on_top=False)
    assert out == tmp_path / "pred.qml"
    assert [p.name for p in tmp_path.iterdir()] == ["pred.qml"]  # no temporary left behind
    _, rend = _renderer(out.read_text())
    assert rend.get("attr") == "reliabilit" and rend.get("enableorderby") == "0"
    sizes = {o.get("value") for o in rend.iter("Option") if o.get("name") == "size"}
    assert sizes == {"1.6"}
    # an awkward field name is escaped, not broken
    _, rend = _renderer(qml_text('rel "x" <&>', threshold=0.5))
    assert rend.get("attr") == 'rel "x" <&>'
    assert rend.find("orderby/orderByClause").text == '"rel ""x"" <&>"'


def test_class_breaks_edge_thresholds():
    assert class_breaks(0.5)[N_BELOW - 1][1] == 0.5 and class_breaks(0.5)[N_BELOW][0] == 0.5
    only_reliable = class_breaks(0.0)
    assert len(only_reliable) == N_ABOVE and only_reliable[0][0] == 0.0
    only_flagged = class_breaks(1.0)
    assert len(only_flagged) == N_BELOW and only_flagged[-1][1] == 1.0
    for t in (0.0, 1.0):
        _, rend = _renderer(qml_text(threshold=t))
        assert len(rend.find("ranges")) == len(class_breaks(t))
    with pytest.raises(ValueError, match="threshold"):
        qml_text(threshold=1.2)
    with pytest.raises(ValueError, match="field"):
        qml_text("", threshold=0.5)
