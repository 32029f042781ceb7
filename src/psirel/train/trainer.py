"""``psirel train``: prepare labelled clouds, train the model and its baselines, write MODEL_DIR.

One run trains the full model (PW encoder + GNN) as an ensemble of independently seeded
members, the ``pointwise_only`` variant (same encoder and head, no graph) so that the graph's gain
is always measured, and the baselines; each network variant is calibrated on the validation
points (:mod:`psirel.train.calibration`); everything lands in the model directory with its
SHA-256 in ``model.json``.

Several clouds (:mod:`psirel.train.clouds`) are prepared in two passes, each with only one
cloud's rasters open: the first reads points, features and graphs and fits per-cloud statistics,
pooled over the training clouds; the second writes each cloud's normalised patches (and, for the
shared-map encoder, its normalised scene raster) to memory-mapped files in the model folder's
cache, so memory stays bounded in the number of clouds.
"""

from __future__ import annotations

import dataclasses
import pickle
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import psirel
from psirel.baselines import BASELINES, save_training_features
from psirel.errors import PsirelError
from psirel.features.normalize import fit_normalizer
from psirel.features.patches import PATCH_PX
from psirel.features.tiles import scene_raster
from psirel.graph.edges import EDGE_FEATURES, fit_edge_scale
from psirel.io.grid import native_pixel_m
from psirel.io.raster_sources import open_raster
from psirel.io.rasters import LAYERS
from psirel.io.schema import PointSchema
from psirel.model_dir import register_artifact, save_card, sha256_file
from psirel.progress import Silent
from psirel.report.metrics import expected_calibration_error, reliability_metrics, tune_threshold
from psirel.train.calibration import apply_platt, fit_platt
from psirel.train.checkpoint import save_weights
from psirel.train.clouds import (
    CloudSpec,
    concat_point_data,
    pool_edge_scales,
    pool_normalizers,
    uses_whole_clouds,
)
from psirel.train.data import (
    CloudInputs,
    build_patch_cache,
    check_label_classes,
    check_split_labels,
    check_training_labels,
    load_inputs,
)
from psirel.train.loop import (
    GraphData,
    TrainPart,
    TrainSettings,
    epochs_for,
    fit,
    new_model,
    steps_for,
    val_logits,
)
from psirel.train.point_data import build_point_data, streamed_patch_stats
from psirel.train.split import block_split


def graph_data(inputs: CloudInputs, patches: np.ndarray | None, normalizer, edge_scale,
               raster: np.ndarray | None = None) -> GraphData:
    """Training arrays; ``raster`` (the normalised scene, :func:`full_raster`) switches the
    image input to shared-map windows."""
    c = inputs.cloud
    rows, cols = inputs.stack.to_pixel(c.x, c.y)
    return GraphData(patches=patches, scalars=normalizer.scalars(inputs.scalars_raw),
                     x_m=c.x, y_m=c.y, height_m=inputs.height_m, velocity_mm_yr=c.velocity_mm_yr,
                     idx=inputs.table.idx, mask=inputs.table.mask, edge_scale=edge_scale,
                     labels=c.labels, series_mm=c.series_mm, raster=raster, rows_px=rows,
                     cols_px=cols)


def train(points: Path, dem: Path, lulc: Path, amplitude: Path, out: Path, *,
          label: str | None = None, crs: str | None = None,
          settings: TrainSettings | None = None, reporter=None,
          schema: PointSchema | None = None) -> dict:
    """Train on one labelled cloud (the shorthand of :func:`train_clouds`); ``schema`` maps its
    columns and units."""
    spec = CloudSpec(Path(points), Path(dem), Path(lulc), Path(amplitude), label=label, crs=crs,
                     schema=schema)
    return train_clouds([spec], out, settings=settings, reporter=reporter)


def _reopen(inputs: CloudInputs) -> None:
    """Open a cloud's rasters again, on the same grid and legend (a stack pickles as its
    paths and options)."""
    inputs.stack = pickle.loads(pickle.dumps(inputs.stack))


def model_pixel_m(specs: list[CloudSpec], settings: TrainSettings) -> float:
    """The model's pixel size: the setting, else the first cloud's DEM's (in metres)."""
    if settings.pixel_m is not None:
        if not settings.pixel_m > 0:
            raise PsirelError(f"--pixel-m {settings.pixel_m}: must be positive")
        return float(settings.pixel_m)
    with open_raster(specs[0].dem, "dem") as src:
        return float(native_pixel_m(src))


def _splits(specs: list[CloudSpec], clouds: list[CloudInputs], settings: TrainSettings):
    """Per cloud ``(train, val, summary)``: whole clouds when any says ``split=val``, else
    spatial blocks of each with the buffer."""
    whole = uses_whole_clouds(specs)
    out = []
    for spec, inputs in zip(specs, clouds, strict=True):
        c, n = inputs.cloud, inputs.n
        if whole:
            is_val = spec.split == "val"
            train, val = np.full(n, not is_val), np.full(n, is_val)
            summary = {"n_train": int(train.sum()), "n_val": int(val.sum()), "n_buffer": 0,
                       "validation": "whole cloud" if is_val else "none (training cloud)"}
        else:
            sp = block_split(c.x, c.y, val_fraction=settings.val_fraction,
                             buffer_m=settings.layers * settings.r_max_m, seed=settings.seed)
            train, val = sp.train, sp.val
            summary = {**sp.summary(), "validation": "spatial blocks"}
        out.append((train, val, summary))
    y_train = np.concatenate([c.labels[t] for c, (t, _, _) in zip(clouds, out, strict=True)])
    y_val = np.concatenate([c.labels[v] for c, (_, v, _) in zip(clouds, out, strict=True)])
    check_split_labels(_where(specs), y_train, y_val, settings.layers * settings.r_max_m)
    return out


def _where(specs: list[CloudSpec]) -> str:
    """How an error names the training data: the points file, or every cloud's."""
    if len(specs) == 1:
        return str(specs[0].points)
    return f"the {len(specs)} clouds ({', '.join(Path(s.points).name for s in specs)})"


def _calibrated(members: list, parts: list[TrainPart]) -> dict:
    """Platt-calibrate each member on the validation points; the ensemble's mean calibrated
    probability then sets the threshold and the validation metrics."""
    scales, biases, probs, raw = [], [], [], []
    y = None
    for res in members:
        z, y = val_logits(res.model, parts)
        a, b = fit_platt(z, y)
        scales.append(a)
        biases.append(b)
        probs.append(apply_platt(z, a, b))
        raw.append(apply_platt(z, 1.0, 0.0))
    p = np.mean(probs, axis=0)
    thr = tune_threshold(y, p)
    return {"scale": scales, "bias": biases, "threshold": float(thr),
            "val_metrics": reliability_metrics(y, p, thr),
            "ece_before": expected_calibration_error(y, np.mean(raw, axis=0)),
            "ece_after": expected_calibration_error(y, p), "n_val": int(len(y))}


def train_clouds(specs: list[CloudSpec], out: Path, *, settings: TrainSettings | None = None,
                 reporter=None) -> dict:
    """Train on one or more labelled clouds and write the model directory; returns the
    model.json dict.

    ``reporter`` (optional) receives progress events: ``reporter.stage(name, total)``,
    ``reporter.advance(n, **fields)`` and ``reporter.epoch(variant, record)``.
    """
    settings = settings or TrainSettings()
    if settings.ensemble < 1:
        raise PsirelError(f"--ensemble {settings.ensemble}: need at least one member")
    rep = reporter or Silent()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # pass 1: points, features, graphs and per-cloud statistics, one cloud's rasters at a time
    clouds: list[CloudInputs] = []
    norms, scales = [], []
    pixel_m = model_pixel_m(specs, settings)
    for spec in specs:
        inputs = load_inputs(spec.points, spec.dem, spec.lulc, spec.amplitude, label=spec.label,
                             crs=spec.crs, schema=spec.schema, k=settings.k,
                             r_max_m=settings.r_max_m, need_labels=True, pixel_m=pixel_m,
                             lulc_legend=spec.lulc_legend or settings.lulc_legend)
        try:
            check_training_labels(spec.points, inputs.labels, classes=len(specs) == 1)
            c = inputs.cloud
            if clouds and inputs.scalar_names != clouds[0].scalar_names:
                raise PsirelError(f"{spec.points}: its scalar features differ from "
                                  f"{specs[0].points}'s (one has no time series?)")
            norms.append(fit_normalizer(inputs.stack, c.x, c.y, inputs.scalars_raw,
                                        inputs.scalar_names, seed=settings.seed))
            scales.append(fit_edge_scale(c.x, c.y, inputs.height_m, c.velocity_mm_yr,
                                         inputs.table.idx, inputs.table.mask,
                                         r_max_m=settings.r_max_m, series_mm=c.series_mm))
        finally:
            inputs.stack.close()
        clouds.append(inputs)
    if len(specs) > 1:
        check_label_classes(_where(specs), np.concatenate([c.labels for c in clouds]))
    splits = _splits(specs, clouds, settings)
    fitted = [i for i, s in enumerate(specs) if not uses_whole_clouds(specs) or s.split != "val"]
    counts = [clouds[i].n for i in fitted]
    normalizer = pool_normalizers([norms[i] for i in fitted], counts,
                                  np.concatenate([clouds[i].scalars_raw for i in fitted]))
    edge_scale = pool_edge_scales([scales[i] for i in fitted], counts)
    cache_dir = Path(tempfile.mkdtemp(prefix=".cache-", dir=out))
    try:
        # pass 2: each cloud's normalised inputs on disk
        rep.stage("patches", sum(c.n for c in clouds))
        parts, pdatas, n_unknown = [], [], 0
        for i, inputs in enumerate(clouds):
            _reopen(inputs)
            try:
                patches, pstats, raster = None, None, None
                if settings.encoder == "shared-map":  # the scene raster, and no patch cache
                    pstats, unk = streamed_patch_stats(inputs, normalizer,
                                                       progress=lambda n: rep.advance(n))
                    raster = scene_raster(normalizer, inputs.stack, cache_dir / f"raster{i}.npy")
                else:
                    patches, unk = build_patch_cache(inputs, normalizer, cache_dir / f"cloud{i}",
                                                     progress=lambda n: rep.advance(n))
                n_unknown += unk
                data = graph_data(inputs, patches, normalizer, edge_scale, raster)
                pdatas.append(build_point_data(inputs, patches, normalizer, pstats))
            finally:
                inputs.stack.close()
            train_m, val_m, _ = splits[i]
            parts.append(TrainPart(data, train_m, val_m))
        first = next(p for p in parts if p.train.any())
        n_lulc = len(normalizer.lulc_codes) + 1
        n_scalars = clouds[0].scalars_raw.shape[1]

        results, calibrations = {}, {}
        variants = [("model", settings.gnn, settings.fanout, settings.ensemble),
                    ("pointwise_only", "none", (), 1)]
        for variant, gnn, fanout, n_members in variants:
            cfg = settings.model_config(n_lulc, n_scalars, gnn)
            members = []
            for m in range(n_members):
                s_m = dataclasses.replace(settings, seed=settings.seed + m)
                model = new_model(cfg, s_m.seed, first.data.patches, first.data)
                name = variant if n_members == 1 else f"{variant} {m + 1}/{n_members}"
                n_seeds = sum(int(p.train.sum()) for p in parts)
                rep.stage(f"train {name}", epochs_for(s_m, steps_for(n_seeds, s_m)))
                members.append(fit(model, parts, s_m, fanout,
                                   on_epoch=lambda r, v=name: rep.epoch(v, r)))
            results[variant] = (cfg, members)
            calibrations[variant] = _calibrated(members, parts)
        weight_files = ["weights.safetensors"] + [f"weights.{m}.safetensors"
                                                  for m in range(1, settings.ensemble)]
        for res, name in zip(results["model"][1], weight_files, strict=True):
            save_weights(res.model, out / name)
        save_weights(results["pointwise_only"][1][0].model, out / "pointwise_only.safetensors")

        rep.stage("baselines", len(BASELINES))
        # baselines see exactly the network's training seeds, from every cloud
        ptrain = concat_point_data([pd.take(p.train) for pd, p in zip(pdatas, parts,
                                                                      strict=True)])
        ytrain = np.concatenate([p.data.labels[p.train] for p in parts])
        pval = concat_point_data([pd.take(p.val) for pd, p in zip(pdatas, parts, strict=True)])
        yval = np.concatenate([p.data.labels[p.val] for p in parts])
        (out / "baselines").mkdir(exist_ok=True)
        save_training_features(out / "baselines" / "training_features.npz", ptrain, ytrain)
        baselines = {}
        for name, cls in BASELINES.items():
            est = cls().fit(ptrain, ytrain)
            thr = tune_threshold(yval, est.predict_proba(pval)[:, 1])  # as for the network
            baselines[name] = {**est.to_json(), "threshold_tuned": float(thr)}
            rep.advance(1)

        meta = _card(specs, clouds, splits, settings, results, calibrations, normalizer,
                     edge_scale, baselines, weight_files, n_unknown, t_start)
        meta["artifacts"] = {}
        for name in (*weight_files, "pointwise_only.safetensors",
                     "baselines/training_features.npz"):
            register_artifact(meta, out, name)
        save_card(out, meta)
        # ONNX export (psirel.export.onnx): pointwise.onnx, gnn.onnx, pointwise_only.onnx, checked
        # against torch on real training patches; a parity failure fails the training run. The
        # INT8 stage 1 is checked on training points: patches, or a shared-map model's windows.
        from psirel.export.onnx import export_model, sample_from_graph_data
        from psirel.export.quantize import calibration_from_graph_data

        cfg = results["model"][0]
        hops = cfg.receptive_hops()
        return export_model(out, sample=sample_from_graph_data(first.data, hops=hops),
                            calibration=calibration_from_graph_data(first.data))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def _card(specs, clouds, splits, settings, results, calibrations, normalizer, edge_scale,
          baselines, weight_files, n_unknown, t_start) -> dict:
    """model.json's content (artifacts are registered after)."""
    cfg, members = results["model"]
    _, (res_pw,) = results["pointwise_only"]
    cal, cal_pw = calibrations["model"], calibrations["pointwise_only"]
    c0 = clouds[0]
    best = members[0]

    def files(spec: CloudSpec) -> dict:
        return {name: {"path": str(Path(p).resolve()), "sha256": sha256_file(p)}
                for name, p in spec.files.items()}

    cloud_records = [{**files(spec), "label": spec.label or inputs.cloud.roles.get("label",
                                                                                "reliable"),
                      "crs": inputs.stack.crs.to_string(), "pixel_m": inputs.stack.pixel_m,
                      "lulc_legend": inputs.stack.lulc_legend,
                      "columns": (spec.schema or PointSchema()).to_json(),
                      "profile": inputs.cloud.profile, "units": inputs.cloud.units,
                      "n_points": inputs.n, "n_dates": int(len(inputs.cloud.dates)),
                      "unreliable_fraction": float(1 - inputs.cloud.labels.mean()),
                      "split": split[2]}
                     for spec, inputs, split in zip(specs, clouds, splits, strict=True)]
    return {
        "psirel_version": psirel.__version__,
        "config": cfg.to_dict(),
        "features": {
            "patch_px": PATCH_PX, "layers": list(LAYERS), "k": settings.k,
            "r_max_m": settings.r_max_m, "edge_features": list(EDGE_FEATURES),
            "scalar_names": c0.scalar_names, "n_dates_trained": int(len(c0.cloud.dates)),
            "raster_crs": c0.stack.crs.to_string(), "pixel_m": c0.stack.pixel_m,
            # the model learns semantic land-cover classes (psirel.io.legends); the legend of
            # the first cloud is recorded, every cloud's in training.clouds
            "lulc_legend": c0.stack.lulc_legend,
        },
        "normalizer": normalizer.to_json(),
        "edge_scale": edge_scale.to_json(),
        "threshold": cal["threshold"],
        "ensemble": {"members": len(members), "weights": list(weight_files),
                     "seeds": [settings.seed + m for m in range(len(members))]},
        "calibration": {"method": "platt", "scale": cal["scale"], "bias": cal["bias"],
                        "fitted_on": f"{cal['n_val']} validation points",
                        "val_ece_before": cal["ece_before"], "val_ece_after": cal["ece_after"]},
        "pointwise_only": {"threshold": cal_pw["threshold"],
                           "calibration": {"method": "platt", "scale": cal_pw["scale"],
                                           "bias": cal_pw["bias"]}},
        "baselines": baselines,
        "training": {
            "settings": settings.to_json(),
            "clouds": cloud_records,
            "data": {k: v for k, v in cloud_records[0].items()
                     if k in ("points", "dem", "lulc", "amplitude")},
            "label": cloud_records[0]["label"],
            "split": {k: sum(r["split"].get(k, 0) for r in cloud_records)
                      for k in ("n_train", "n_val", "n_buffer")},
            "n_points": sum(c.n for c in clouds),
            "unreliable_fraction": float(np.mean(np.concatenate([c.cloud.labels
                                                                 for c in clouds]) == 0)),
            "unknown_lulc_points": n_unknown,
            "val_metrics": cal["val_metrics"], "best_epoch": best.best_epoch,
            "member_best_epochs": [r.best_epoch for r in members],
            "history": best.history, "seconds_per_epoch": best.seconds_per_epoch,
            "nodes_per_seed": best.nodes_per_seed,
            "pointwise_only": {"val_metrics": cal_pw["val_metrics"],
                               "best_epoch": res_pw.best_epoch,
                               "seconds_per_epoch": res_pw.seconds_per_epoch},
            "seconds": time.perf_counter() - t_start,
        },
        "versions": {"torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
