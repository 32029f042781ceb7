"""Does a faster variant keep the model's quality? ROC-AUC on a held-out scene, and the
shared-map encoder against the patch encoder.

Labels are the ``reliable`` column of the synthetic scene's points; the score is the pipeline's
``reliability`` (its output file, read back). The AUC is that of P(unreliable) = 1 − reliability
for the unreliable class, which is the same number as the ROC-AUC of ``reliability`` for the
reliable class (:func:`psirel.report.metrics.reliability_metrics`).

:func:`shared_map_comparison` takes two model directories — one trained with the patch encoder,
one with ``psirel train --encoder shared-map`` — and runs both through the same
:func:`psirel.infer.pipeline.predict`; a model directory that encoder produces plugs in as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from psirel.bench.pipeline import remove_output, scene_files
from psirel.bench.timing import Missing, log, median_dict, put, value_of
from psirel.infer.backends import Backend


def auc_unreliable(labels: np.ndarray, p_reliable: np.ndarray) -> float:
    """ROC-AUC of ``1 - p_reliable`` for the unreliable class (label 0)."""
    from psirel.report.metrics import reliability_metrics

    return float(reliability_metrics(labels, p_reliable, threshold=0.5)["roc_auc"])


def predict_scores(model: Path, scene: Path, out: Path, *, backend: str | Backend = "onnx",
                   threads: int = 2) -> tuple[np.ndarray, np.ndarray, dict]:
    """Labels, P(reliable) and the summary of one two-stage ``predict`` of a labelled scene."""
    from psirel.infer.pipeline import predict
    from psirel.io.points import read_points

    try:
        summary = predict(model, **scene_files(scene), out=out, backend=backend, threads=threads)
        cloud = read_points(out, label="reliable")
        return cloud.labels, np.asarray(cloud.attributes["reliability"], np.float64), summary
    finally:
        remove_output(out)


def scene_auc(model: Path, scene: Path, work: Path, *, backend: str | Backend = "onnx",
              threads: int = 2) -> float:
    """ROC-AUC (unreliable class) of ``model`` on a labelled ``psirel synth`` folder."""
    work.mkdir(parents=True, exist_ok=True)
    labels, p, _ = predict_scores(model, scene, work / "quality.gpkg", backend=backend,
                                  threads=threads)
    return round(auc_unreliable(labels, p), 4)


def quality(model: Path, heldout: Path, work: Path, *, int8: Backend | Missing,
            threads: int = 2) -> dict:
    """``fp32_auc`` (ORT fp32) and ``int8_auc`` (ORT with the int8 encoder) on ``heldout``."""
    out: dict = {"scene": str(heldout)}
    log("quality: fp32 on the held-out scene")
    out["fp32_auc"] = scene_auc(model, heldout, work, threads=threads)
    if isinstance(int8, Missing):
        put(out, "int8_auc", int8)
    else:
        log("quality: int8 on the held-out scene")
        out["int8_auc"] = scene_auc(model, heldout, work, backend=int8, threads=threads)
    return out


def shared_map_comparison(patch_model: Path, shared_model: Path | Missing, dense: Path,
                          heldout: Path, work: Path, *, threads: int = 2, repeats: int = 1,
                          patch_auc: float | None = None) -> tuple[dict, dict]:
    """Throughput on a dense scene and ROC-AUC on the held-out scene of the patch encoder and
    the shared-map encoder.

    Throughput is stage 1 (patch extraction + PW encoder, which is what the shared map
    replaces) in points/s of a two-stage ``predict``, median of ``repeats`` runs after a
    warm-up; end-to-end points/s are given beside. ``patch_auc`` reuses a figure already
    measured for ``patch_model`` on ``heldout``.

    Returns:
        The ``shared_map`` section and ``{"patch_auc", "shared_map_auc"}`` for ``quality``
        (each a float or a :class:`~psirel.bench.timing.Missing`).
    """
    section: dict = {"scene": str(dense),
                     "measure": "stage 1 (patches + PW encoder) points/s of a two-stage "
                                "predict; *_total_points_per_s end to end"}
    aucs: dict = {}
    models = {"patch": patch_model, "shared": shared_model}
    for name, model in models.items():
        auc_key = "patch_auc" if name == "patch" else "shared_map_auc"
        if isinstance(model, Missing):
            put(section, f"{name}_points_per_s", model)
            put(section, f"{name}_total_points_per_s", model)
            aucs[auc_key] = model
            continue
        rates = []
        for r in range(max(repeats, 1) + 1):
            log(f"shared map: {name} encoder on the dense scene ({'warm-up' if r == 0 else r})")
            _, _, s = predict_scores(model, dense, work / f"dense-{name}.gpkg", threads=threads)
            if r:
                rates.append({"stage1": s["points_per_s"]["stage1"],
                              "total": s["points_per_s"]["total"]})
        med = median_dict(rates)
        put(section, f"{name}_points_per_s", med["stage1"] if med["stage1"] is not None else
            Missing("the pipeline summary gives no stage-1 rate (points_per_s.stage1) for "
                    "this model"))
        section[f"{name}_total_points_per_s"] = med["total"]
        if name == "patch" and patch_auc is not None:
            aucs[auc_key] = patch_auc
        else:
            log(f"shared map: {name} encoder on the held-out scene")
            aucs[auc_key] = scene_auc(model, heldout, work, threads=threads)
    p, s = value_of(section.get("patch_points_per_s")), value_of(section.get("shared_points_per_s"))
    if p and s:
        section["speedup"] = round(s / p, 3)
    return section, aucs


def default_precision(model: Path | Missing, heldout: Path, work: Path, *, threads: int = 2,
                      repeats: int = 2) -> dict:
    """FP32 against INT8 stage 1 of the default (shared-map) model on the held-out scene: the
    encoder's seconds in a two-stage ``predict`` (median of ``repeats`` rounds in which the two
    take turns, after a warm-up round) and the ROC-AUC of each (unreliable class)."""
    from psirel.infer.backends import OrtBackend
    from psirel.model_dir import load_card

    out: dict = {"scene": str(heldout), "measure": "stage-1 encoder seconds of a two-stage "
                 "predict, same windows, ORT CPU"}
    if isinstance(model, Missing):
        for k in ("fp32_encoder_s", "int8_encoder_s", "fp32_auc", "int8_auc"):
            put(out, k, model)
        return out
    card = load_card(model)
    if not card.has("pointwise.int8.onnx"):
        why = Missing(f"{model} has no pointwise.int8.onnx")
        for k in ("int8_encoder_s", "int8_auc"):
            put(out, k, why)
    precisions = ["fp32"] + (["int8"] if card.has("pointwise.int8.onnx") else [])
    work.mkdir(parents=True, exist_ok=True)
    secs: dict[str, list[float]] = {p: [] for p in precisions}
    for r in range(max(repeats, 1) + 1):
        for prec in precisions:
            log(f"default model {prec} on the held-out scene ({'warm-up' if r == 0 else r})")
            labels, p, s = predict_scores(model, heldout, work / f"precision-{prec}.gpkg",
                                          backend=OrtBackend(card, "cpu", threads, prec),
                                          threads=threads)
            if r:
                secs[prec].append(s["seconds"]["encoder"])
            else:
                out[f"{prec}_auc"] = round(auc_unreliable(labels, p), 4)
    for prec, v in secs.items():
        out[f"{prec}_encoder_s"] = round(float(np.median(v)), 3)
    if "int8" in secs:
        out["int8_speedup"] = round(out["fp32_encoder_s"] / out["int8_encoder_s"], 3)
    return out
