"""Evaluation: metrics (DESIGN.md §8), figures (PNG) and the Markdown report.

Submodules are imported on first use: ``metrics`` needs scikit-learn (the ``train`` extra) and
``plots`` matplotlib, and neither belongs on the inference path.

* :mod:`psirel.report.metrics` — ``reliability_metrics``, ``tune_threshold``.
* :mod:`psirel.report.plots` — ``plot_roc``, ``plot_pr``, ``plot_map``.
* :mod:`psirel.report.markdown` — ``metrics_table``, ``write_report``.
* :mod:`psirel.report.quicklook` — ``write_quicklook`` (PNG + self-contained HTML of one
  prediction, matplotlib), ``quicklook_counts``, ``QuickLook``.
* :mod:`psirel.report.qml` — ``write_qml``: the QGIS style of a prediction layer (no matplotlib).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "reliability_metrics": "metrics",
    "tune_threshold": "metrics",
    "expected_calibration_error": "metrics",
    "METRIC_KEYS": "metrics",
    "plot_roc": "plots",
    "plot_pr": "plots",
    "plot_map": "plots",
    "metrics_table": "markdown",
    "write_report": "markdown",
    "QuickLook": "quicklook",
    "write_quicklook": "quicklook",
    "quicklook_counts": "quicklook",
    "write_qml": "qml",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"psirel.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'psirel.report' has no attribute {name!r}")
