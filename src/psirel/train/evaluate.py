"""``psirel evaluate``: the model and every baseline on one labelled cloud, side by side.

Baselines are rebuilt from ``model.json`` without pickle: the coherence threshold and the
neighbour-consistency model from their JSON parameters, gradient boosting refitted
deterministically from the training features saved in ``baselines/training_features.npz``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from psirel.baselines import BASELINES, load_baseline, load_training_features
from psirel.features.tiles import scene_raster
from psirel.infer.prepared import PreparedCloud
from psirel.io.atomic import atomic_path, atomic_write_text
from psirel.io.schema import PointSchema
from psirel.model_dir import load_card
from psirel.report.hillshade import read_dem_on_grid
from psirel.report.markdown import write_report
from psirel.report.metrics import reliability_metrics
from psirel.report.plots import plot_map, plot_pr, plot_roc
from psirel.report.rasterise import map_grid
from psirel.train.checkpoint import load_predictor
from psirel.train.data import CLASSES, build_patch_cache, load_inputs
from psirel.train.loop import predict_ensemble
from psirel.train.point_data import build_point_data, streamed_patch_stats
from psirel.train.trainer import graph_data

MAP_CELLS = 1024   # the evaluation map's terrain: at most this many cells a side

def uncertainty_metrics(y: np.ndarray, p: np.ndarray, std: np.ndarray, threshold: float,
                        members: int) -> dict:
    """Does high ``reliability_std`` mark the model's mistakes? ROC-AUC of the std against
    "wrong at the threshold" (0.5 = no better than chance; undefined for one member or when
    the model makes no mistake or only mistakes), with the error rates of the most and least
    uncertain fifths."""
    wrong = (p >= threshold) != (np.asarray(y) > 0)
    out = {"members": int(members), "mean_std": float(np.mean(std)) if len(std) else 0.0,
           "error_rate": float(wrong.mean()) if len(wrong) else 0.0,
           "std_auc_for_errors": None}
    if members > 1 and 0 < wrong.sum() < len(wrong):
        from sklearn.metrics import roc_auc_score

        out["std_auc_for_errors"] = float(roc_auc_score(wrong, std))
        order = np.argsort(std, kind="stable")
        fifth = max(len(order) // 5, 1)
        out["error_rate_least_uncertain_fifth"] = float(wrong[order[:fifth]].mean())
        out["error_rate_most_uncertain_fifth"] = float(wrong[order[-fifth:]].mean())
    return out


def uncertainty_md(u: dict) -> str:
    """The report's paragraph on ``reliability_std``."""
    if u["std_auc_for_errors"] is None:
        return (f"Uncertainty: {u['members']} ensemble member(s), mean reliability_std "
                f"{u['mean_std']:.3f}; its ranking of the errors is undefined here.\n")
    return (f"Uncertainty: {u['members']} ensemble members, mean reliability_std "
            f"{u['mean_std']:.3f}. ROC-AUC of reliability_std for the model's errors at its "
            f"threshold: {u['std_auc_for_errors']:.3f} (0.5 = no better than chance); error rate "
            f"{u['error_rate_least_uncertain_fifth']:.1%} in the least and "
            f"{u['error_rate_most_uncertain_fifth']:.1%} in the most uncertain fifth of the "
            f"points (overall {u['error_rate']:.1%}).\n")


def one_class_warning(path: Path | str, y: np.ndarray) -> str | None:
    """The warning for test labels of a single class, else None. Evaluation goes on (unlike
    training): how many known-good (or known-bad) points a model flags is a fair question,
    answered by F1, ECE and the error rate; only the ranking metrics need both classes."""
    if np.unique(y).size > 1:
        return None
    return (f"{path}: every labelled point is {CLASSES[int(y[0])]}; ROC-AUC, average precision "
            "and balanced accuracy are undefined (NaN), and the ROC and precision-recall plots "
            "are left out")


def rebuild_baselines(card) -> dict:
    training = load_training_features(card.artifact("baselines/training_features.npz"))
    return {name: load_baseline(card.baseline(name), training=training)
            for name in BASELINES}


def evaluate(model_dir: Path, points: Path, dem: Path, lulc: Path, amplitude: Path, out: Path,
             *, label: str | None = None, crs: str | None = None, warn=print,
             lulc_legend: str | None = None, save_scores: bool = False,
             schema: PointSchema | None = None) -> dict:
    """Score the model, ``pointwise_only`` and the baselines; write metrics.json, plots, report
    (and ``scores.npz``, every method's P(reliable) per point, with ``save_scores``). ``schema``
    maps the points' columns and units (``--columns``, ``--units``)."""
    card = load_card(model_dir)
    f = card.features
    inputs = load_inputs(points, dem, lulc, amplitude, label=label, crs=crs, schema=schema,
                         k=f.k, r_max_m=f.r_max_m, need_labels=True,
                         **card.raster_options(lulc_legend))
    one_class = one_class_warning(points, inputs.labels)
    if one_class:
        warn(one_class)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(tempfile.mkdtemp(prefix=".cache-", dir=out))
    try:
        prepared = PreparedCloud.from_cloud(card, inputs.stack, inputs.cloud,
                                            features=(inputs.scalars_raw, inputs.scalar_names))
        normalizer = prepared.normalizer
        patches, pstats = None, None
        if card.shared_map:  # patches only for the baselines' statistics: none kept
            pstats, n_unknown = streamed_patch_stats(inputs, normalizer)
        else:
            patches, n_unknown = build_patch_cache(inputs, normalizer, cache_dir)
        card.check_unknown_lulc(n_unknown, inputs.n, warn=warn,
                           codes=inputs.stack.unknown_lulc_codes)
        raster = scene_raster(normalizer, inputs.stack, cache_dir / "raster.npy",
                              np.float32) if card.shared_map else None
        data = graph_data(inputs, patches, normalizer, prepared.edge_scale,
                          raster)
        y = inputs.labels
        everyone = np.arange(inputs.n)
        p_model, std = predict_ensemble(load_predictor(card), data, everyone)
        scores = {"model": p_model}
        thresholds = {"model": card.threshold}
        scores["pointwise_only"] = predict_ensemble(load_predictor(card, "pointwise_only"),
                                                    data, everyone)[0]
        thresholds["pointwise_only"] = card.variant("pointwise_only").threshold
        pdata = build_point_data(inputs, patches, normalizer, pstats)
        for name, est in rebuild_baselines(card).items():
            scores[name] = est.predict_proba(pdata)[:, 1].astype(np.float32)
            thresholds[name] = float(card.baseline(name).get("threshold_tuned", 0.5))
        metrics = {name: reliability_metrics(y, p, thresholds[name]) for name, p in scores.items()}
        result = {"model": metrics["model"],
                  "baselines": {k: v for k, v in metrics.items() if k != "model"},
                  "uncertainty": uncertainty_metrics(y, p_model, std, card.threshold,
                                                     card.members),
                  "n_points": int(inputs.n), "unreliable_fraction": float(1 - y.mean())}
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
        if save_scores:   # per point, input order: for analyses by label reason (bench)
            with atomic_path(out / "scores.npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, labels=y, reliability_std=std, **scores)
        order = ["model", "pointwise_only", "gradient_boosting", "neighbour_consistency",
                 "coherence_threshold"]
        curves = {k: (y, scores[k]) for k in order if k in scores}
        figures = {}
        if not one_class:
            plot_roc(curves, out / "roc.png")
            plot_pr(curves, out / "pr.png")
            figures = {"ROC": "roc.png", "Precision-recall": "pr.png"}
        # the terrain read decimated under the points, as the quick-look reads it
        grid = map_grid(inputs.cloud.x, inputs.cloud.y, MAP_CELLS)
        plot_map(read_dem_on_grid(dem, grid, inputs.stack.crs), grid.transform, inputs.cloud.x,
                 inputs.cloud.y, scores["model"], y, card.threshold, out / "map.png")
        gnn = card.config.graph.kind
        write_report(out, result, {**figures, "Map": "map.png"},
                     extra_md=f"Model: `{Path(model_dir)}` (GNN: {gnn}); test points: "
                              f"`{points}`; unknown land-cover points: {n_unknown}.\n\n"
                              + uncertainty_md(result["uncertainty"]))
        return result
    finally:
        inputs.stack.close()
        shutil.rmtree(cache_dir, ignore_errors=True)
