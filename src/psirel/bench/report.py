"""The benchmark's result: the issue's targets checked, ``latest.json`` and ``latest.md``.

The JSON contract (figures ``null`` with a ``"missing": {key: reason}`` note beside them when
they could not be measured; more keys are welcome)::

    machine     cpu, cores, threads, versions (numpy, onnxruntime, torch, rasterio, psirel ...)
    pw_encoder  batch_32 / batch_1024: torch_ms, ort_fp32_ms, ort_int8_ms (per batch)
    pipeline    naive_points_per_s, two_stage_points_per_s (same model, scene, ONNX backend);
                random_order: the same on the scene's points file in random order
    end_to_end  points, model_points_per_s, gradient_boosting_points_per_s,
                patch_points_per_s, peak_rss_mb (default model), runs: {method: {seconds,
                points_per_s, peak_rss_mb, stages: {read_s, windows_s, encoder_s, ...}}}
    scaling     [{points, seconds, points_per_s, peak_rss_mb,
                  stages: {patches_s, pw_encoder_s, graph_s, gnn_s, io_s}}] (default model)
    training    runs: [{points, train_seconds, train_peak_rss_mb, evaluate_seconds,
                evaluate_peak_rss_mb}], peak_rss_mb_1m (train), evaluate_peak_rss_mb_1m
    quality     fp32_auc, int8_auc, patch_auc, shared_map_auc (held-out scene)
    shared_map  patch_points_per_s, shared_points_per_s (dense scene)
    roofline    pw_flops_per_point, machine_gflops, pw_gflops_achieved; shared_map:
                flops_per_km2, flops_per_point, gflops_achieved (default model, end to end)
    targets     {name: {rule, met (true / false / null when a figure is missing), values}}
"""

from __future__ import annotations

import json
from pathlib import Path

from psirel.bench.end_to_end import E2E_STAGES as E2E_STAGE_ORDER
from psirel.io.atomic import atomic_write_text

ENCODER_KEYS = ("torch_ms", "ort_fp32_ms", "ort_int8_ms")
STAGE_KEYS = ("patches_s", "pw_encoder_s", "graph_s", "gnn_s", "io_s")
SCALING_KEYS = ("points", "seconds", "points_per_s", "peak_rss_mb", "stages")
REQUIRED: dict[str, tuple[str, ...]] = {
    "pipeline": ("naive_points_per_s", "two_stage_points_per_s"),
    "quality": ("fp32_auc", "int8_auc", "patch_auc", "shared_map_auc"),
    "shared_map": ("patch_points_per_s", "shared_points_per_s"),
    "roofline": ("pw_flops_per_point", "machine_gflops", "pw_gflops_achieved"),
    "end_to_end": ("points", "model_points_per_s", "gradient_boosting_points_per_s",
                   "patch_points_per_s", "peak_rss_mb"),
    "training": ("peak_rss_mb_1m",),
}
E2E_POINTS_PER_S = 10_000.0   # the default model end to end at 1M points on 2 cores
RSS_LIMIT_MB = 3000.0  # "< 3 GB" (decimal GB; the peak is read in MiB, so this is strict)


def missing_keys(result: dict) -> list[str]:
    """Dotted paths of the contract's keys that ``result`` lacks (empty when complete)."""
    gaps = [k for k in ("machine", "pw_encoder", "scaling", "targets", *REQUIRED)
            if k not in result]
    for b in ("batch_32", "batch_1024"):
        row = result.get("pw_encoder", {}).get(b)
        gaps += [f"pw_encoder.{b}"] if row is None else \
            [f"pw_encoder.{b}.{k}" for k in ENCODER_KEYS if k not in row]
    for section, keys in REQUIRED.items():
        gaps += [f"{section}.{k}" for k in keys if k not in result.get(section, {})]
    for i, entry in enumerate(result.get("scaling", [])):
        gaps += [f"scaling[{i}].{k}" for k in SCALING_KEYS if k not in entry]
        gaps += [f"scaling[{i}].stages.{k}" for k in STAGE_KEYS
                 if k not in entry.get("stages", {})]
    return gaps


# ---------------------------------------------------------------------------- targets
def _get(result: dict, *path):
    v = result
    for p in path:
        if not isinstance(v, dict) or v.get(p) is None:
            return None
        v = v[p]
    return v


def _scaling_at(result: dict, points: int) -> dict | None:
    return next((e for e in result.get("scaling", []) if e.get("points") == points), None)


def _target(rule: str, values: dict, test) -> dict:
    known = all(v is not None for v in values.values())
    return {"rule": rule, "met": bool(test(**values)) if known else None, "values": values}


def evaluate_targets(result: dict) -> dict:
    """The issue's six targets: rule, values and whether each is met (None: a figure missing)."""
    b32, b1024 = ("pw_encoder", "batch_32"), ("pw_encoder", "batch_1024")
    rnd = ("pipeline", "random_order") if _get(result, "pipeline", "random_order") \
        else ("pipeline",)
    s100k, s1m = _scaling_at(result, 100_000) or {}, _scaling_at(result, 1_000_000) or {}
    return {
        "ort_fp32_vs_torch": _target(
            "ort_fp32_ms <= torch_ms / 2 at batch 32",
            {"ort_fp32_ms": _get(result, *b32, "ort_fp32_ms"),
             "torch_ms": _get(result, *b32, "torch_ms")},
            lambda ort_fp32_ms, torch_ms: ort_fp32_ms <= torch_ms / 2),
        "two_stage_vs_naive": _target(
            "two_stage_points_per_s >= 20 x naive_points_per_s (points file in random order)",
            {"two_stage_points_per_s": _get(result, *rnd, "two_stage_points_per_s"),
             "naive_points_per_s": _get(result, *rnd, "naive_points_per_s")},
            lambda two_stage_points_per_s, naive_points_per_s:
                two_stage_points_per_s >= 20 * naive_points_per_s),
        "end_to_end": _target(
            f"default model end to end: model_points_per_s >= {E2E_POINTS_PER_S:,.0f} and "
            f">= 0.5 x gradient_boosting_points_per_s, peak RSS < {RSS_LIMIT_MB:.0f} MB "
            "(1M points)",
            {"model_points_per_s": _get(result, "end_to_end", "model_points_per_s"),
             "gradient_boosting_points_per_s": _get(result, "end_to_end",
                                                    "gradient_boosting_points_per_s"),
             "peak_rss_mb": _get(result, "end_to_end", "peak_rss_mb")},
            lambda model_points_per_s, gradient_boosting_points_per_s, peak_rss_mb:
                model_points_per_s >= E2E_POINTS_PER_S
                and model_points_per_s >= 0.5 * gradient_boosting_points_per_s
                and peak_rss_mb < RSS_LIMIT_MB),
        "memory_bounded": _target(
            f"peak RSS at 1M <= 1.3 x peak RSS at 100k and < {RSS_LIMIT_MB:.0f} MB",
            {"peak_rss_mb_1m": s1m.get("peak_rss_mb"),
             "peak_rss_mb_100k": s100k.get("peak_rss_mb")},
            lambda peak_rss_mb_1m, peak_rss_mb_100k:
                peak_rss_mb_1m <= 1.3 * peak_rss_mb_100k and peak_rss_mb_1m < RSS_LIMIT_MB),
        "int8": _target(
            "ort_int8_ms <= ort_fp32_ms / 1.5 at batch 1024 and int8_auc >= fp32_auc - 0.005",
            {"ort_int8_ms": _get(result, *b1024, "ort_int8_ms"),
             "ort_fp32_ms": _get(result, *b1024, "ort_fp32_ms"),
             "int8_auc": _get(result, "quality", "int8_auc"),
             "fp32_auc": _get(result, "quality", "fp32_auc")},
            lambda ort_int8_ms, ort_fp32_ms, int8_auc, fp32_auc:
                ort_int8_ms <= ort_fp32_ms / 1.5 and int8_auc >= fp32_auc - 0.005),
        "int8_default_encoder": _target(
            "default (shared-map) model: int8_encoder_s <= fp32_encoder_s / 1.5 and "
            "int8_auc >= fp32_auc - 0.005",
            {k: _get(result, "quality", "default_precision", k)
             for k in ("int8_encoder_s", "fp32_encoder_s", "int8_auc", "fp32_auc")},
            lambda int8_encoder_s, fp32_encoder_s, int8_auc, fp32_auc:
                int8_encoder_s <= fp32_encoder_s / 1.5 and int8_auc >= fp32_auc - 0.005),
        "shared_map": _target(
            "shared_points_per_s >= 10 x patch_points_per_s and "
            "shared_map_auc >= patch_auc - 0.01",
            {"shared_points_per_s": _get(result, "shared_map", "shared_points_per_s"),
             "patch_points_per_s": _get(result, "shared_map", "patch_points_per_s"),
             "shared_map_auc": _get(result, "quality", "shared_map_auc"),
             "patch_auc": _get(result, "quality", "patch_auc")},
            lambda shared_points_per_s, patch_points_per_s, shared_map_auc, patch_auc:
                shared_points_per_s >= 10 * patch_points_per_s
                and shared_map_auc >= patch_auc - 0.01),
        "roofline": _target(
            "pw_gflops_achieved >= 0.3 x machine_gflops",
            {"pw_gflops_achieved": _get(result, "roofline", "pw_gflops_achieved"),
             "machine_gflops": _get(result, "roofline", "machine_gflops")},
            lambda pw_gflops_achieved, machine_gflops:
                pw_gflops_achieved >= 0.3 * machine_gflops),
    }


# ---------------------------------------------------------------------------- markdown
def _f(v, digits: int = 1, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or (isinstance(v, float) and abs(v) >= 1000):
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def missing_notes(result: dict, prefix: str = "") -> list[str]:
    """``section.key: reason`` for every figure reported missing, anywhere in ``result``."""
    notes = []
    for k, v in result.items():
        if k == "missing" and isinstance(v, dict):
            notes += [f"{prefix}{key}: {reason}" for key, reason in v.items()]
        elif isinstance(v, dict) and k != "targets":
            notes += missing_notes(v, f"{prefix}{k}.")
    return notes


def to_markdown(result: dict) -> str:
    """The result as Markdown tables: targets first, then each section's figures."""
    m = result.get("machine", {})
    ver = m.get("versions", {})
    lines = [f"# psirel benchmark ({result.get('mode', '?')})", "",
             f"{m.get('cpu', '?')}, {m.get('usable_cores', '?')} usable cores, "
             f"{m.get('threads', '?')} threads per measurement; load average "
             f"{m.get('load_average_start')} → {m.get('load_average_end')}; "
             + ", ".join(f"{k} {v}" for k, v in ver.items() if v) + ".",
             f"Every figure is the median of repeated runs after a warm-up "
             f"({result.get('settings', {}).get('repeats', '?')} encoder repeats). "
             f"{result.get('created', '')}", ""]

    lines += ["| target | values | met |", "|:--|:--|:-:|"]
    for name, t in result.get("targets", {}).items():
        vals = ", ".join(f"{k} {_f(v, 3)}" for k, v in t["values"].items())
        lines.append(f"| {name}: {t['rule']} | {vals} | {_f(t['met'])} |")

    enc = result.get("pw_encoder", {})
    lines += ["", "**Stage-1 encoder** (ms per batch)", "",
              "| batch | torch | ORT fp32 | ORT int8 | fp32 vs torch | int8 vs fp32 |",
              "|--:|--:|--:|--:|--:|--:|"]
    for b, row in enc.items():
        if not b.startswith("batch_"):
            continue
        lines.append(f"| {b[6:]} | {_f(row.get('torch_ms'))} | {_f(row.get('ort_fp32_ms'))} | "
                     f"{_f(row.get('ort_int8_ms'))} | "
                     f"{_f(row.get('ort_fp32_speedup_vs_torch'), 2, '×')} | "
                     f"{_f(row.get('ort_int8_speedup_vs_fp32'), 2, '×')} |")

    p = result.get("pipeline", {})
    lines += ["", f"**Pipeline** ({_f(p.get('points'))} points, ONNX backend)", "",
              "| strategy | points/s | seconds |", "|:--|--:|--:|",
              f"| naive | {_f(p.get('naive_points_per_s'))} | {_f(p.get('naive_seconds'), 2)} |",
              f"| two-stage | {_f(p.get('two_stage_points_per_s'))} | "
              f"{_f(p.get('two_stage_seconds'), 2)} |",
              f"| speed-up | {_f(p.get('speedup'), 2, '×')} | |"]
    rnd = p.get("random_order")
    if rnd:
        timed = (f", its first {_f(rnd.get('naive_points_timed'))} points"
                 if rnd.get("naive_points_timed") else "")
        lines += [f"| naive, file of {_f(rnd.get('points'))} points in random order{timed} | "
                  f"{_f(rnd.get('naive_points_per_s'))} | {_f(rnd.get('naive_seconds'), 2)} |",
                  f"| two-stage, the whole file in random order | "
                  f"{_f(rnd.get('two_stage_points_per_s'))} | "
                  f"{_f(rnd.get('two_stage_seconds'), 2)} |",
                  f"| speed-up, random order | {_f(rnd.get('speedup'), 2, '×')} | |"]

    e = result.get("end_to_end", {})
    if e.get("runs"):
        keys = sorted({k for r in e["runs"].values() for k in r.get("stages", {})},
                      key=list(E2E_STAGE_ORDER).index)
        lines += ["", f"**End to end** ({_f(e.get('points'))} points, a fresh process each, "
                  f"{e.get('threads')} threads, quick-look {'on' if e.get('quicklook') else 'off'}"
                  "; stage seconds)", "",
                  "| method | points/s | seconds | peak RSS (MB) | "
                  + " | ".join(k[:-2] for k in keys) + " |",
                  "|:--|--:|--:|--:|" + "--:|" * len(keys)]
        for name, r in e["runs"].items():
            st = r.get("stages", {})
            lines.append(f"| {name} | {_f(r.get('points_per_s'))} | {_f(r.get('seconds'), 1)} | "
                         f"{_f(r.get('peak_rss_mb'))} | "
                         + " | ".join(_f(st.get(k), 1) for k in keys) + " |")

    lines += ["", "**Scaling** (two-stage, a fresh process per run; stage seconds)", "",
              "| points | seconds | points/s | peak RSS (MB) | patches | encoder | graph | gnn "
              "| io | runs |", "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for e in result.get("scaling", []):
        st = e.get("stages", {})
        lines.append(f"| {_f(e.get('points'))} | {_f(e.get('seconds'), 2)} | "
                     f"{_f(e.get('points_per_s'))} | {_f(e.get('peak_rss_mb'))} | "
                     + " | ".join(_f(st.get(k), 2) for k in STAGE_KEYS)
                     + f" | {e.get('runs', '')} |")

    t = result.get("training")
    if t:
        lines += ["", "**Training and evaluate** (default model, one member, "
                  f"{t.get('max_steps')} steps; a fresh process each)", "",
                  "| points | train s | train peak RSS (MB) | evaluate s "
                  "| evaluate peak RSS (MB) |",
                  "|--:|--:|--:|--:|--:|"]
        lines += [f"| {_f(r.get('points'))} | {_f(r.get('train_seconds'))} | "
                  f"{_f(r.get('train_peak_rss_mb'))} | {_f(r.get('evaluate_seconds'))} | "
                  f"{_f(r.get('evaluate_peak_rss_mb'))} |" for r in t.get("runs", [])]

    q, s, r = result.get("quality", {}), result.get("shared_map", {}), result.get("roofline", {})
    lines += ["", "**Quality** (ROC-AUC, unreliable class, held-out scene) and **shared map** "
              "(dense scene, stage-1 points/s)", "",
              "| fp32 | int8 | patch | shared map | patch points/s | shared-map points/s |",
              "|--:|--:|--:|--:|--:|--:|",
              f"| {_f(q.get('fp32_auc'), 3)} | {_f(q.get('int8_auc'), 3)} | "
              f"{_f(q.get('patch_auc'), 3)} | {_f(q.get('shared_map_auc'), 3)} | "
              f"{_f(s.get('patch_points_per_s'))} | {_f(s.get('shared_points_per_s'))} |"]
    dp = q.get("default_precision")
    if dp:
        lines += ["", "**Default model, FP32 vs INT8 stage 1** (held-out scene; encoder seconds "
                  "of a two-stage predict, median)", "",
                  "| fp32 s | int8 s | speed-up | fp32 AUC | int8 AUC |", "|--:|--:|--:|--:|--:|",
                  f"| {_f(dp.get('fp32_encoder_s'), 3)} | {_f(dp.get('int8_encoder_s'), 3)} | "
                  f"{_f(dp.get('int8_speedup'), 2, '×')} | {_f(dp.get('fp32_auc'), 3)} | "
                  f"{_f(dp.get('int8_auc'), 3)} |"]
    lines += ["", "**Roofline** (stage-1 encoder, ORT fp32, batch 1024)", "",
              "| FLOPs/point | machine GFLOP/s | achieved GFLOP/s | fraction |",
              "|--:|--:|--:|--:|",
              f"| {_f(r.get('pw_flops_per_point'))} | {_f(r.get('machine_gflops'))} | "
              f"{_f(r.get('pw_gflops_achieved'), 2)} | {_f(r.get('fraction_of_machine'), 3)} |"]
    sm = r.get("shared_map")
    if sm:
        lines += ["", "**Roofline of the shared-map encoder** (default model, its end-to-end "
                  "run)", "", "| FLOPs/km² of raster | FLOPs/point | windows | achieved GFLOP/s "
                  "| fraction |", "|--:|--:|--:|--:|--:|",
                  f"| {_f(sm.get('flops_per_km2'))} | {_f(sm.get('flops_per_point'))} | "
                  f"{_f(sm.get('windows'))} | {_f(sm.get('gflops_achieved'), 2)} | "
                  f"{_f(sm.get('fraction_of_machine'), 3)} |"]

    notes = missing_notes(result)
    if notes:
        lines += ["", "Missing figures:", ""] + [f"- {n}" for n in notes]
    if result.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def write_report(out: Path | str, result: dict) -> tuple[Path, Path]:
    """Set ``result["targets"]`` (:func:`evaluate_targets`), check the contract's keys, then
    write ``out/latest.json`` and ``out/latest.md`` atomically; returns both paths. A result
    lacking a contract key is a ValueError (nothing is written)."""
    result["targets"] = evaluate_targets(result)
    gaps = missing_keys(result)
    if gaps:
        raise ValueError(f"benchmark result lacks {', '.join(gaps)}")
    out = Path(out)
    js, md = out / "latest.json", out / "latest.md"
    atomic_write_text(js, json.dumps(result, indent=2) + "\n")
    atomic_write_text(md, to_markdown(result))
    return js, md
