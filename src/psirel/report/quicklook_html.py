"""The quick-look as one self-contained HTML page: the map zoomable and pannable, the
histogram, the counts.

Everything is inline: the images are base64 ``data:`` URIs, the CSS and the JavaScript (mouse
wheel or +/− to zoom about the cursor, drag to pan, double-click or "fit" to reset, the cursor's
coordinates in the points' CRS) sit in the page. It opens from a file, an e-mail attachment or
an air-gapped machine alike: nothing is fetched at view time.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from string import Template

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { padding: 10px 16px; background: #fff; border-bottom: 1px solid #ddd; }
h1 { font-size: 18px; margin: 0 0 4px; }
.sub { color: #555; }
main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
#viewport { position: relative; flex: 1 1 640px; height: 78vh; min-height: 360px;
  overflow: hidden; background: #e8e8e8; border: 1px solid #ccc; cursor: grab;
  touch-action: none; user-select: none; }
#viewport.dragging { cursor: grabbing; }
#map { position: absolute; left: 0; top: 0; transform-origin: 0 0; max-width: none;
  image-rendering: auto; }
#map.pixelated { image-rendering: pixelated; }
.tools { position: absolute; right: 8px; top: 8px; display: flex; gap: 4px; }
.tools button { font: inherit; width: 32px; height: 28px; border: 1px solid #999;
  background: #fff; border-radius: 4px; cursor: pointer; }
.tools button.wide { width: auto; padding: 0 8px; }
#coords { position: absolute; left: 8px; bottom: 8px; background: rgba(255,255,255,.85);
  padding: 2px 6px; border-radius: 3px; font-family: ui-monospace, monospace; font-size: 12px; }
aside { flex: 0 1 420px; }
.legend { margin: 4px 0 14px; }
.bar { position: relative; height: 14px; border: 1px solid #888; background: $gradient; }
.tick { position: absolute; top: -4px; bottom: -4px; width: 2px; background: #000;
  left: calc($threshold_pct% - 1px); }
.scale { display: flex; justify-content: space-between; font-size: 12px; color: #444; }
table { border-collapse: collapse; margin-bottom: 14px; }
td { padding: 2px 10px 2px 0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
aside img { width: 100%; height: auto; border: 1px solid #ddd; background: #fff; }
.nodata { display: inline-block; width: 10px; height: 10px; background: #000; }
</style>
</head>
<body>
<header><h1>$title</h1><div class="sub">$subtitle</div></header>
<main>
<div id="viewport">
<img id="map" alt="reliability map" width="$map_w" height="$map_h"
  src="data:image/png;base64,$map_b64">
<div class="tools"><button id="zin" title="zoom in">+</button>
<button id="zout" title="zoom out">&minus;</button>
<button id="fit" class="wide" title="fit the map (double-click)">fit</button></div>
<div id="coords">&nbsp;</div>
</div>
<aside>
<div class="legend"><div>Reliability (threshold $threshold; below it: flagged)</div>
<div class="bar"><div class="tick"></div></div>
<div class="scale"><span>0</span><span>0.5</span><span>1</span></div>
$nodata_note</div>
<table>$rows</table>
<img alt="histogram of reliability" src="data:image/png;base64,$hist_b64">
</aside>
</main>
<script>
(function () {
  "use strict";
  var G = $grid;
  var vp = document.getElementById("viewport"), img = document.getElementById("map");
  var out = document.getElementById("coords");
  var s = 1, tx = 0, ty = 0, fit = 1, drag = null;
  function apply() {
    img.style.transform = "translate(" + tx + "px," + ty + "px) scale(" + s + ")";
    img.classList.toggle("pixelated", s > 1.5);
  }
  function reset() {
    var w = vp.clientWidth, h = vp.clientHeight;
    fit = Math.min(w / G.width, h / G.height);
    s = fit; tx = (w - G.width * s) / 2; ty = (h - G.height * s) / 2; apply();
  }
  function zoom(k, mx, my) {
    var ns = Math.min(Math.max(s * k, fit * 0.5), Math.max(fit, 1) * 40);
    tx = mx - (mx - tx) * ns / s; ty = my - (my - ty) * ns / s; s = ns; apply();
  }
  function local(e) {
    var r = vp.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }
  vp.addEventListener("wheel", function (e) {
    e.preventDefault();
    var p = local(e);
    zoom(Math.exp(-e.deltaY * (e.deltaMode ? 0.05 : 0.0015)), p[0], p[1]);
  }, { passive: false });
  vp.addEventListener("pointerdown", function (e) {
    if (e.target.tagName === "BUTTON") return;
    drag = { x: e.clientX, y: e.clientY }; vp.setPointerCapture(e.pointerId);
    vp.classList.add("dragging");
  });
  vp.addEventListener("pointermove", function (e) {
    if (drag) {
      tx += e.clientX - drag.x; ty += e.clientY - drag.y;
      drag = { x: e.clientX, y: e.clientY }; apply();
    }
    var p = local(e), px = (p[0] - tx) / s, py = (p[1] - ty) / s;
    if (px >= 0 && py >= 0 && px <= G.width && py <= G.height) {
      var x = G.left + px / G.width * (G.right - G.left);
      var y = G.top - py / G.height * (G.top - G.bottom);
      out.textContent = x.toFixed(G.decimals) + ", " + y.toFixed(G.decimals) + " " + G.crs;
    }
  });
  function end() { drag = null; vp.classList.remove("dragging"); }
  vp.addEventListener("pointerup", end);
  vp.addEventListener("pointercancel", end);
  vp.addEventListener("dblclick", reset);
  function centre(k) { zoom(k, vp.clientWidth / 2, vp.clientHeight / 2); }
  document.getElementById("zin").addEventListener("click", function () { centre(1.5); });
  document.getElementById("zout").addEventListener("click", function () { centre(1 / 1.5); });
  document.getElementById("fit").addEventListener("click", reset);
  window.addEventListener("resize", reset);
  reset();
})();
</script>
</body>
</html>
""")


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def render_html(
    *,
    title: str,
    subtitle: str,
    map_png: bytes,
    map_size_px: tuple[int, int],
    extent: tuple[float, float, float, float],
    crs_label: str,
    geographic: bool,
    hist_png: bytes,
    rows: Sequence[tuple[str, str]],
    threshold: float,
    gradient_stops: Sequence[tuple[float, str]],
    n_no_score: int = 0,
) -> str:
    """The page as text.

    Args:
        title, subtitle: page heading (plain text, escaped here).
        map_png: the map image (PNG bytes), ``map_size_px = (width, height)`` pixels, covering
            ``extent = (left, right, bottom, top)`` in the points' CRS (``crs_label``).
        geographic: coordinates in degrees (the readout shows 6 decimals, else 1).
        hist_png: the histogram image (PNG bytes).
        rows: the counts table, ``(label, value)`` pairs of plain text.
        threshold: the model's threshold, marked on the colour bar.
        gradient_stops: ``(position 0..1, "#rrggbb")`` pairs of the colour bar, ascending (a
            position may repeat: a hard stop).
        n_no_score: points without a reliability, drawn black; noted under the colour bar.
    """
    left, right, bottom, top = (float(v) for v in extent)
    grid = {"width": int(map_size_px[0]), "height": int(map_size_px[1]), "left": left,
            "right": right, "bottom": bottom, "top": top, "decimals": 6 if geographic else 1,
            "crs": crs_label}
    stops = ", ".join(f"{c} {100 * p:.2f}%" for p, c in gradient_stops)
    table = "\n".join(f"<tr><td>{html.escape(k)}</td><td class=\"n\">{html.escape(v)}</td></tr>"
                      for k, v in rows)
    note = (f'<div><span class="nodata"></span> no score ({n_no_score:,} points)</div>'
            if n_no_score else "")
    # json.dumps escapes quotes; "</" must not close the script element early
    grid_js = json.dumps(grid).replace("</", "<\\/")
    return _PAGE.substitute(
        title=html.escape(title), subtitle=html.escape(subtitle), map_b64=_b64(map_png),
        map_w=grid["width"], map_h=grid["height"], hist_b64=_b64(hist_png), rows=table,
        threshold=f"{threshold:g}", threshold_pct=f"{100 * threshold:.3f}",
        gradient=f"linear-gradient(to right, {stops})", nodata_note=note, grid=grid_js,
    )


def counts_rows(counts: Mapping[str, float | int | None]) -> list[tuple[str, str]]:
    """The counts of :func:`psirel.report.quicklook.quicklook_counts` as ``(label, value)``
    rows, shared by the figure and the page."""
    def pct(v):
        return "n/a" if v is None else f"{v:.1f} %"

    rows = [("points", f"{counts['n_points']:,}")]
    if counts["n_no_position"]:
        rows.append(("without coordinates (not mapped)", f"{counts['n_no_position']:,}"))
    rows += [
        ("scored", f"{counts['n_scored']:,}"),
        ("no score (NaN)", f"{counts['n_no_score']:,}"),
        (f"below threshold {counts['threshold']:g} (flagged)",
         f"{counts['n_below_threshold']:,}"),
        ("flagged, % of scored", pct(counts["pct_below_threshold"])),
    ]
    mean = counts["mean_reliability"]
    rows.append(("mean reliability", "n/a" if mean is None else f"{mean:.3f}"))
    if "mean_reliability_std" in counts:
        v = counts["mean_reliability_std"]
        rows.append(("mean reliability_std", "n/a" if v is None else f"{v:.3f}"))
    return rows
