"""The evaluation report as Markdown: one metrics table (model and baselines side by side) and the
figures.

``metrics_json`` layout: each top-level entry whose value is a dict of metrics (the keys of
:func:`psirel.report.metrics.reliability_metrics`, directly or under ``"metrics"``) is a row, in
order (``"model"``, ``"pointwise"``, ...); ``"baselines"`` maps baseline names to such dicts and
adds one row each, after the others. Scalar top-level entries (threshold, split, point counts)
are listed as the setup. For example::

    {"split": "blocks 2 km, buffer 300 m", "threshold": 0.41,
     "model": {"roc_auc": 0.95, "average_precision": 0.81, "f1": 0.74, ...},
     "baselines": {"coherence_threshold": {...}, "neighbour_consistency": {...}}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from psirel.io.atomic import atomic_write_text

COLUMNS: list[tuple[str, str, bool]] = [
    # (metric key, header, higher is better)
    ("roc_auc", "ROC-AUC", True),
    ("average_precision", "AP (unreliable)", True),
    ("f1", "F1 (unreliable)", True),
    ("balanced_accuracy", "Balanced acc.", True),
    ("ece", "ECE", False),
]
_KEYS = {key for key, _, _ in COLUMNS}


def _as_metrics(value) -> Mapping | None:
    if not isinstance(value, Mapping):
        return None
    if isinstance(value.get("metrics"), Mapping):
        value = value["metrics"]
    return value if _KEYS & set(value) else None


def metric_rows(metrics_json: Mapping) -> list[tuple[str, Mapping]]:
    """``[(row name, metrics)]`` in table order: top-level rows, then ``"baselines"``."""
    rows: list[tuple[str, Mapping]] = []
    for key, value in metrics_json.items():
        if key == "baselines":
            continue
        m = _as_metrics(value)
        if m is not None:
            rows.append((str(key), m))
    for name, value in (metrics_json.get("baselines") or {}).items():
        m = _as_metrics(value)
        if m is not None:
            rows.append((str(name), m))
    return rows


def _value(m: Mapping, key: str) -> float | None:
    v = m.get(key)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def metrics_table(metrics_json: Mapping, digits: int = 3) -> str:
    """Markdown table: one row per model / baseline, columns ROC-AUC, AP (unreliable), F1
    (unreliable), balanced accuracy, ECE, rounded to ``digits``; the best value of each column in
    bold (highest, lowest for ECE; ties at the shown precision all bold). Missing or NaN: "–"."""
    rows = metric_rows(metrics_json)
    best: dict[str, float | None] = {}
    for key, _, higher in COLUMNS:
        vals = [round(v, digits) for _, m in rows if (v := _value(m, key)) is not None]
        best[key] = (max(vals) if higher else min(vals)) if vals else None
    lines = [
        "| Model | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
        "|:--|" + "--:|" * len(COLUMNS),
    ]
    for name, m in rows:
        cells = []
        for key, _, _ in COLUMNS:
            v = _value(m, key)
            if v is None:
                cells.append("–")
                continue
            text = f"{v:.{digits}f}"
            cells.append(f"**{text}**" if round(v, digits) == best[key] else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _link(report_dir: Path, target: str | os.PathLike) -> str:
    p = Path(target)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(report_dir.resolve())
        except ValueError:
            pass
    return p.as_posix()


def write_report(
    report_dir: Path | str,
    metrics_json: Mapping,
    figures: Mapping[str, str | os.PathLike],
    extra_md: str = "",
    title: str = "psirel evaluation report",
) -> Path:
    """Write ``report_dir/report.md`` (atomically) and return its path.

    Args:
        report_dir: folder of the report; figure paths inside it are linked relatively.
        metrics_json: see the module docstring.
        figures: ``caption -> PNG path``, in display order.
        extra_md: Markdown appended at the end (notes, data description).
    """
    report_dir = Path(report_dir)
    parts = [f"# {title}\n"]
    setup = [
        (k, v) for k, v in metrics_json.items()
        if isinstance(v, str | int | float | bool) and k != "baselines"
    ]
    if setup:
        parts.append("## Setup\n")
        parts.append("\n".join(f"- **{k}**: {v}" for k, v in setup) + "\n")
    parts.append("## Metrics\n")
    parts.append(metrics_table(metrics_json))
    parts.append(
        "ROC-AUC of P(reliable); AP: average precision of the unreliable class; F1 of the "
        "unreliable class and balanced accuracy at each row's tuned threshold (unreliable iff "
        "P(reliable) < threshold); ECE: expected calibration error, 15 equal-width bins. Higher "
        "is better except for ECE; the best value of each column is in bold.\n"
    )
    if figures:
        parts.append("## Figures\n")
        for caption, target in figures.items():
            parts.append(f"### {caption}\n\n![{caption}]({_link(report_dir, target)})\n")
    if extra_md.strip():
        parts.append(extra_md.rstrip() + "\n")
    path = report_dir / "report.md"
    atomic_write_text(path, "\n".join(parts))
    return path
