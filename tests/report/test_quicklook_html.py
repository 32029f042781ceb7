import json
import re

from psirel.report.quicklook_html import counts_rows, render_html

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _page(**change):
    args = dict(title="t </script><b>", subtitle="s & co", map_png=PNG, map_size_px=(300, 200),
                extent=(0.0, 3000.0, 0.0, 2000.0), crs_label="EPSG:32633 </script>",
                geographic=False, hist_png=PNG, rows=[("points", "1,000"), ("<x>", "y&z")],
                threshold=0.4, gradient_stops=[(0.0, "#a50026"), (0.4, "#fdae61"),
                                               (0.4, "#e0f3f8"), (1.0, "#313695")])
    return render_html(**(args | change))


def test_page_is_self_contained_and_escaped():
    page = _page()
    assert not re.search(r"(?i)https?:|<link|url\(", page)
    assert page.count("data:image/png;base64,") == 2
    assert "t &lt;/script&gt;&lt;b&gt;" in page and "s &amp; co" in page
    assert "<td>&lt;x&gt;</td>" in page and "y&amp;z" in page
    # the map's geometry reaches the script intact, and cannot close it early
    script = page[page.index("<script>"):page.index("</script>")]
    grid = json.loads(re.search(r"var G = (\{.*?\});", script).group(1).replace("<\\/", "</"))
    assert grid == {"width": 300, "height": 200, "left": 0.0, "right": 3000.0, "bottom": 0.0,
                    "top": 2000.0, "decimals": 1, "crs": "EPSG:32633 </script>"}
    # the colour bar: a hard stop at the threshold, the tick there
    assert "#fdae61 40.00%, #e0f3f8 40.00%" in page and "left: calc(40.000% - 1px)" in page
    assert 'width="300" height="200"' in page
    assert "no score" not in page
    assert "no score (1,234 points)" in _page(n_no_score=1234)


def test_counts_rows():
    counts = {"n_points": 1234567, "n_scored": 1234000, "n_no_score": 567,
              "n_below_threshold": 4321, "pct_below_threshold": 0.35016, "threshold": 0.45,
              "mean_reliability": 0.81234, "n_no_position": 0, "mean_reliability_std": None}
    rows = dict(counts_rows(counts))
    assert rows["points"] == "1,234,567" and rows["no score (NaN)"] == "567"
    assert rows["below threshold 0.45 (flagged)"] == "4,321"
    assert rows["flagged, % of scored"] == "0.4 %" and rows["mean reliability"] == "0.812"
    assert rows["mean reliability_std"] == "n/a"
    assert "without coordinates (not mapped)" not in rows
    counts |= {"n_no_position": 3, "pct_below_threshold": None, "mean_reliability": None}
    del counts["mean_reliability_std"]
    rows = dict(counts_rows(counts))
    assert rows["without coordinates (not mapped)"] == "3"
    assert rows["flagged, % of scored"] == "n/a" and rows["mean reliability"] == "n/a"
    assert "mean reliability_std" not in rows
