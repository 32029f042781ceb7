"""What ``psirel predict`` prints when it is done: counts, speed by stage, resumption, outputs."""

from __future__ import annotations

from rich.console import Console

from psirel.infer.run_spec import PredictionSummary


def print_prediction(console: Console, s: PredictionSummary) -> None:
    """Print a prediction summary (``infer.pipeline.predict`` / ``predict_tiled``)."""
    sec = s["seconds"]
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in sec.items() if k != "total" and v >= 0.05)
    console.print(f"{s['points']:,} points, {s['unreliable_fraction']:.1%} unreliable "
                  f"(threshold {s['threshold']:.3f}) in {sec['total']:.1f} s "
                  f"({s['points_per_s']['total']:,.0f} points/s); "
                  f"peak memory {s['peak_rss_mb']:,.0f} MB")
    console.print(f"stages: {stages}")
    fb = {k: v for k, v in s.get("fallbacks", {}).items() if v}
    if fb:
        console.print("fallbacks: " + ", ".join(f"{v:,} points {k.replace('_', ' ')}"
                                                for k, v in fb.items()))
    tl = s.get("tiles")
    if tl:
        rss = s["worker_peak_rss_mb"]
        console.print(f"tiles: {tl['total']} of {tl['tile_m']:g} m (halo {tl['halo_m']:g} m) "
                      f"on {s['executor']}; {tl['embedded_per_point']:.2f} embeddings per point"
                      + (f"; worker peak memory {max(rss.values()):,.0f} MB" if rss else ""))
        if tl["computed"] < tl["total"]:
            console.print(f"resumed from {s['work_dir']}: computed {tl['computed']} of "
                          f"{tl['total']} tiles; the rest were already done")
    ch, bl = s.get("chunks", {}), s.get("blocks", {})
    if ch and (ch["computed"] < ch["total"] or bl.get("computed", 0) < bl.get("total", 0)):
        console.print(f"resumed from {s['work_dir']}: computed {ch['computed']} of {ch['total']} "
                      f"stage-1 chunks and {bl.get('computed')} of {bl.get('total')} stage-2 "
                      "blocks; the rest were already done")
    console.print(f"output: [bold]{s['output']}[/]")
    if "report" in s:
        r = s["report"]
        console.print(f"quick-look: [bold]{r['png']}[/] (zoomable: {r['html']})"
                      + (f"; QGIS style: {r['qml']}" if "qml" in r else ""))

