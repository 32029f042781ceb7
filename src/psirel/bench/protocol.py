"""The quality protocol: train on K random worlds, test on held-out worlds, over training seeds.

A single scene can be tuned to; a protocol over worlds cannot. Every cloud is a ``psirel synth
--world random`` scene, whose seed draws its own sensor (band, revisit, dates), pixel size,
terrain, land-cover product and mix of unreliable causes. For each training seed ``s`` the
model trains on ``K`` worlds of its own (``psirel train --clouds``, seed ``s``) and is tested on
the same held-out worlds as every other seed, so the table holds (training seed × test cloud)
cells. Each cell scores the model, ``pointwise_only`` and every baseline through
``psirel evaluate``; recall by label reason uses the generator's recorded reasons (re-simulated
from the scene's seed: they are not in the points file, which an expert would not have).

Recall by reason: among the ``K_u`` points each method ranks least reliable (``K_u`` = number
of unreliable points of the cloud), the share of each reason's points it finds. Figures are
mean ± std over cells.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from psirel.bench.machine import load_average, machine_info
from psirel.bench.timing import log
from psirel.io.atomic import atomic_write_text

METHODS = ("model", "pointwise_only", "gradient_boosting", "neighbour_consistency",
           "coherence_threshold")
METRICS = ("roc_auc", "average_precision", "ece")


@dataclass(frozen=True)
class ProtocolConfig:
    """Sizes of the protocol. ``full()`` is the issue's (3 × 20,000-point training clouds,
    3 training seeds, 3 held-out clouds); ``quick()`` a smoke run of the same code."""

    points: int = 20_000
    train_clouds: int = 3
    train_seeds: tuple[int, ...] = (0, 1, 2)
    test_worlds: tuple[int, ...] = (9001, 9002, 9003)
    world_base: int = 1000           # training world w of seed s: world_base + 10·s + w
    epochs: int = 12
    ensemble: int = 3
    max_steps: int | None = None
    pixel_m: float | None = 10.0     # the model's grid (every world is resampled onto it)
    temporal: bool = True            # the temporal encoder (False: its ablation)

    @classmethod
    def full(cls) -> ProtocolConfig:
        return cls()

    @classmethod
    def quick(cls) -> ProtocolConfig:
        return cls(points=2000, train_clouds=2, train_seeds=(0, 1), test_worlds=(9001, 9002),
                   epochs=1, ensemble=2, max_steps=4)

    def training_worlds(self, seed: int) -> list[int]:
        return [self.world_base + 10 * seed + w for w in range(self.train_clouds)]


def scene(root: Path, world_seed: int, points: int) -> Path:
    """A random-world scene, generated once (cached by its scene.json)."""
    from psirel.scene.generate import generate_scene

    d = root / f"world_{world_seed}"
    if not (d / "scene.json").exists():
        generate_scene(d, n_points=points, seed=world_seed, world="random")
    return d


def scene_reasons(world_seed: int, points: int) -> np.ndarray:
    """The generator's label-reason bit masks of a random-world scene, in file order."""
    from psirel.scene.generate import iter_chunks
    from psirel.scene.world import build_world
    from psirel.scene.worlds import draw

    world = build_world(draw(world_seed, points).params)
    return np.concatenate([c.reasons for c in iter_chunks(world)])


def recall_by_reason(p_reliable: np.ndarray, labels: np.ndarray, reasons: np.ndarray
                     ) -> dict[str, float | None]:
    """Per reason, the share of its points among the ``K_u`` least reliable by ``p_reliable``
    (``K_u`` = unreliable points); None for a reason the cloud lacks."""
    from psirel.scene.labels import REASONS

    k = int((np.asarray(labels) == 0).sum())
    flagged = np.zeros(len(labels), bool)
    flagged[np.argsort(p_reliable, kind="stable")[:k]] = True
    out: dict[str, float | None] = {}
    for name, bit in REASONS.items():
        has = (reasons & bit) > 0
        out[name] = float(flagged[has].mean()) if has.any() else None
    out["reliable_among_flagged"] = float((labels[flagged] == 1).mean()) if k else None
    return out


def train_seed(root: Path, cfg: ProtocolConfig, seed: int) -> Path:
    """Train the model of one seed on its K worlds (cached by its model.json)."""
    from psirel.train.clouds import CloudSpec
    from psirel.train.loop import TrainSettings
    from psirel.train.trainer import train_clouds

    model = root / f"model_seed{seed}"
    if (model / "model.json").exists():
        return model
    specs = []
    for w in cfg.training_worlds(seed):
        d = scene(root / "scenes", w, cfg.points)
        specs.append(CloudSpec(d / "points.gpkg", d / "dem.tif", d / "lulc.tif",
                               d / "amplitude.tif"))
    settings = TrainSettings(seed=seed, epochs=cfg.epochs, ensemble=cfg.ensemble,
                             max_steps_per_epoch=cfg.max_steps, pixel_m=cfg.pixel_m,
                             temporal=cfg.temporal)
    t0 = time.perf_counter()
    meta = train_clouds(specs, model, settings=settings)
    log(f"protocol: seed {seed} trained in {time.perf_counter() - t0:.0f} s "
        f"({meta['training']['seconds']:.0f} s in train_clouds)")
    return model


def evaluate_cell(root: Path, cfg: ProtocolConfig, model: Path, world_seed: int) -> dict:
    """Every method's metrics and recall by reason on one held-out world."""
    from psirel.train.evaluate import evaluate

    d = scene(root / "scenes", world_seed, cfg.points)
    out = root / f"eval_{model.name}_world{world_seed}"
    res = evaluate(model, d / "points.gpkg", d / "dem.tif", d / "lulc.tif", d / "amplitude.tif",
                   out, warn=lambda m: None, save_scores=True)
    with np.load(out / "scores.npz") as z:
        scores = {k: z[k] for k in z.files}
    labels = scores.pop("labels")
    scores.pop("reliability_std")
    reasons = scene_reasons(world_seed, cfg.points)
    world = json.loads((d / "scene.json").read_text()).get("world", {})
    metrics = {"model": res["model"], **res["baselines"]}
    return {"world": world_seed, "world_name": world.get("name"),
            "metrics": {m: {k: float(metrics[m][k]) for k in METRICS} for m in METHODS},
            "recall_by_reason": {m: recall_by_reason(scores[m], labels, reasons)
                                 for m in METHODS},
            "uncertainty": res.get("uncertainty"), "n_points": res["n_points"],
            "unreliable_fraction": res["unreliable_fraction"]}


def _mean_std(values: list[float]) -> dict:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if not v.size:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def summarise(cells: list[dict]) -> dict:
    """Mean ± std over cells of every metric and reason recall, and the model's AP margin over
    gradient boosting per cell."""
    reasons = sorted({r for c in cells for r in c["recall_by_reason"]["model"]})
    out = {"metrics": {m: {k: _mean_std([c["metrics"][m][k] for c in cells]) for k in METRICS}
                       for m in METHODS},
           "recall_by_reason": {m: {r: _mean_std([c["recall_by_reason"][m].get(r)
                                                  for c in cells]) for r in reasons}
                                for m in METHODS}}
    margins = [c["metrics"]["model"]["average_precision"]
               - c["metrics"]["gradient_boosting"]["average_precision"] for c in cells]
    out["ap_margin_over_gb"] = {**_mean_std(margins), "min": float(min(margins)),
                                "cells_won": int(sum(m > 0 for m in margins)),
                                "cells": len(margins)}
    return out


def run_protocol(root: Path | str, cfg: ProtocolConfig | None = None) -> dict:
    """Run (or resume: scenes, models and evaluations are cached under ``root``) the protocol;
    writes ``root/quality.json`` and ``root/quality.md``."""
    cfg = cfg or ProtocolConfig.full()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    load_before = load_average()
    cells, train_s = [], {}
    for seed in cfg.train_seeds:
        t = time.perf_counter()
        model = train_seed(root, cfg, seed)
        card = json.loads((model / "model.json").read_text())
        train_s[seed] = round(card["training"]["seconds"], 1)
        log(f"protocol: seed {seed} ready ({time.perf_counter() - t:.0f} s)")
        for w in cfg.test_worlds:
            cells.append({"train_seed": seed, **evaluate_cell(root, cfg, model, w)})
    result = {"config": dataclasses.asdict(cfg), "machine": machine_info(threads=2),
              "load_average": {"before": load_before, "after": load_average()},
              "training_seconds": train_s, "seconds": round(time.perf_counter() - t0, 1),
              "cells": cells, "summary": summarise(cells)}
    atomic_write_text(root / "quality.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(root / "quality.md", to_markdown(result))
    return result


def _fmt(s: dict, digits: int = 3) -> str:
    return "–" if s["mean"] is None else f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def to_markdown(result: dict) -> str:
    """The README's quality tables: metrics and recall by reason, mean ± std over cells."""
    cfg, summ = result["config"], result["summary"]
    lines = [f"Protocol: {len(cfg['train_seeds'])} training seeds × {len(cfg['test_worlds'])} "
             f"held-out worlds ({len(result['cells'])} cells); each model trained on "
             f"{cfg['train_clouds']} random worlds of {cfg['points']:,} points "
             f"(ensemble of {cfg['ensemble']}, {cfg['epochs']} epochs, {cfg['pixel_m']} m grid"
             f"{'' if cfg.get('temporal', True) else ', no temporal encoder'})."
             f" Load average {result['load_average']['before']} → "
             f"{result['load_average']['after']}; {result['seconds']:.0f} s in all.", "",
             "| method | ROC-AUC | AP (unreliable) | ECE |", "|:--|--:|--:|--:|"]
    for m in METHODS:
        s = summ["metrics"][m]
        lines.append(f"| {m} | {_fmt(s['roc_auc'])} | {_fmt(s['average_precision'])} | "
                     f"{_fmt(s['ece'])} |")
    mg = summ["ap_margin_over_gb"]
    lines += ["", f"AP margin of the model over gradient boosting: {_fmt(mg)} (min "
                  f"{mg['min']:+.3f}; model ahead in {mg['cells_won']} of {mg['cells']} cells).",
              "", "Recall by label reason (share of each reason's points among the K least "
                  "reliable, K = unreliable points):", ""]
    reasons = list(summ["recall_by_reason"]["model"])
    lines += ["| reason | " + " | ".join(METHODS) + " |",
              "|:--|" + "--:|" * len(METHODS)]
    for r in reasons:
        lines.append(f"| {r} | " + " | ".join(_fmt(summ["recall_by_reason"][m][r], 2)
                                              for m in METHODS) + " |")
    lines += ["", "| train seed | world | " + " | ".join(f"AP {m}" for m in METHODS[:3])
              + " | ECE model |", "|--:|:--|" + "--:|" * 4]
    for c in result["cells"]:
        ap = [f"{c['metrics'][m]['average_precision']:.3f}" for m in METHODS[:3]]
        lines.append(f"| {c['train_seed']} | {c['world_name'] or c['world']} | "
                     + " | ".join(ap) + f" | {c['metrics']['model']['ece']:.3f} |")
    return "\n".join(lines) + "\n"
