"""``psirel train``: prepare a labelled cloud, train the model and its baselines, write MODEL_DIR.

One run trains the full model (PW encoder + GNN), the ``pointwise_only`` variant (same encoder
and head, no graph) so that the graph's gain is always measured, and the baselines; everything
lands in the model directory with its SHA-256 in ``model.json``.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import psirel
from psirel.baselines import BASELINES, save_training_features
from psirel.features.normalize import fit_normalizer
from psirel.features.patches import PATCH_PX
from psirel.features.tiles import full_raster
from psirel.graph.knn import EDGE_FEATURES, fit_edge_scale
from psirel.io.rasters import LAYERS
from psirel.model_dir import receptive_hops, register_artifact, save_card, sha256_file
from psirel.progress import Silent
from psirel.report.metrics import tune_threshold
from psirel.train.checkpoint import save_weights
from psirel.train.data import CloudInputs, build_patch_cache, load_inputs
from psirel.train.loop import GraphData, TrainSettings, fit, model_config, new_model
from psirel.train.point_data import build_point_data
from psirel.train.split import block_split


def graph_data(inputs: CloudInputs, patches: np.ndarray, normalizer, edge_scale,
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
          settings: TrainSettings | None = None, reporter=None) -> dict:
    """Train and write the model directory; returns the model.json dict.

    ``reporter`` (optional) receives progress events: ``reporter.stage(name, total)``,
    ``reporter.advance(n, **fields)`` and ``reporter.epoch(variant, record)``.
    """
    settings = settings or TrainSettings()
    rep = reporter or Silent()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = load_inputs(points, dem, lulc, amplitude, label=label, crs=crs, k=settings.k,
                         r_max_m=settings.r_max_m, need_labels=True)
    c = inputs.cloud
    cache_dir = Path(tempfile.mkdtemp(prefix=".cache-", dir=out))
    try:
        normalizer = fit_normalizer(inputs.stack, c.x, c.y, inputs.scalars_raw,
                                    inputs.scalar_names, seed=settings.seed)
        edge_scale = fit_edge_scale(c.x, c.y, inputs.height_m, c.velocity_mm_yr,
                                    inputs.table.idx, inputs.table.mask, r_max_m=settings.r_max_m,
                                    series_mm=c.series_mm)
        rep.stage("patches", inputs.n)
        patches, n_unknown = build_patch_cache(inputs, normalizer, cache_dir,
                                               progress=lambda n: rep.advance(n))
        raster = None
        if settings.encoder == "shared-map":
            raster = full_raster(normalizer, inputs.stack)
        data = graph_data(inputs, patches, normalizer, edge_scale, raster)
        split = block_split(c.x, c.y, val_fraction=settings.val_fraction,
                            buffer_m=settings.layers * settings.r_max_m, seed=settings.seed)
        n_lulc = len(normalizer.lulc_codes) + 1
        n_scalars = inputs.scalars_raw.shape[1]

        results = {}
        for variant, gnn, fanout in (("model", settings.gnn, settings.fanout),
                                     ("pointwise_only", "none", ())):
            cfg = model_config(settings, n_lulc, n_scalars, gnn)
            model = new_model(cfg, settings.seed, patches, data)
            rep.stage(f"train {variant}", settings.epochs)
            res = fit(model, data, split.train, split.val, settings, fanout,
                      on_epoch=lambda r, v=variant: rep.epoch(v, r))
            results[variant] = (cfg, res)
            save_weights(res.model, out / ("weights.safetensors" if variant == "model"
                                           else "pointwise_only.safetensors"))

        rep.stage("baselines", len(BASELINES))
        pdata = build_point_data(inputs, patches, normalizer)
        # baselines see exactly the network's training seeds
        ptrain, ytrain = pdata.take(split.train), c.labels[split.train]
        (out / "baselines").mkdir(exist_ok=True)
        save_training_features(out / "baselines" / "training_features.npz", ptrain, ytrain)
        pval, yval = pdata.take(split.val), c.labels[split.val]
        baselines = {}
        for name, cls in BASELINES.items():
            est = cls().fit(ptrain, ytrain)
            thr = tune_threshold(yval, est.predict_proba(pval)[:, 1])  # as for the network
            baselines[name] = {**est.to_json(), "threshold_tuned": float(thr)}
            rep.advance(1)

        cfg, res = results["model"]
        _, res_pw = results["pointwise_only"]
        meta = {
            "psirel_version": psirel.__version__,
            "config": cfg.to_dict(),
            "features": {
                "patch_px": PATCH_PX, "layers": list(LAYERS), "k": settings.k,
                "r_max_m": settings.r_max_m, "edge_features": list(EDGE_FEATURES),
                "scalar_names": inputs.scalar_names, "n_dates_trained": int(len(c.dates)),
                "raster_crs": inputs.stack.crs.to_string(), "pixel_m": inputs.stack.pixel_m,
            },
            "normalizer": normalizer.to_json(),
            "edge_scale": edge_scale.to_json(),
            "threshold": res.threshold,
            "pointwise_only": {"threshold": res_pw.threshold},
            "baselines": baselines,
            "training": {
                "settings": settings.to_json(),
                "data": {name: {"path": str(Path(p).resolve()), "sha256": sha256_file(p)}
                         for name, p in (("points", points), ("dem", dem), ("lulc", lulc),
                                         ("amplitude", amplitude))},
                "label": label or c.roles.get("label", "reliable"),
                "split": split.summary(),
                "n_points": inputs.n,
                "unreliable_fraction": float(1 - c.labels.mean()),
                "unknown_lulc_points": n_unknown,
                "val_metrics": res.val_metrics, "best_epoch": res.best_epoch,
                "history": res.history, "seconds_per_epoch": res.seconds_per_epoch,
                "nodes_per_seed": res.nodes_per_seed,
                "pointwise_only": {"val_metrics": res_pw.val_metrics,
                                   "best_epoch": res_pw.best_epoch,
                                   "seconds_per_epoch": res_pw.seconds_per_epoch},
                "seconds": time.perf_counter() - t_start,
            },
            "versions": {"torch": torch.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
        }
        meta["artifacts"] = {}
        for name in ("weights.safetensors", "pointwise_only.safetensors",
                     "baselines/training_features.npz"):
            register_artifact(meta, out, name)
        save_card(out, meta)
        # ONNX export (psirel.export.onnx): pointwise.onnx, gnn.onnx, pointwise_only.onnx, checked
        # against torch on real training patches; a parity failure fails the training run.
        from psirel.export.onnx import export_model, sample_from_graph_data

        hops = receptive_hops(cfg.to_dict())
        calibration = None
        if settings.encoder == "patch":  # INT8 applies to the patch encoder's MLPs
            from psirel.export.quantize import calibration_from_graph_data

            calibration = calibration_from_graph_data(data)
        return export_model(out, sample=sample_from_graph_data(data, hops=hops),
                            calibration=calibration)
    finally:
        inputs.stack.close()
        shutil.rmtree(cache_dir, ignore_errors=True)

