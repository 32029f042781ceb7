"""Train all three GNN types on a 20k-point scene (seed 11), evaluate on another (seed 12).

Reproduces the README's results table:

    .venv/bin/python bench/gnn_table.py --out bench/results/gnn_table

Writes ``OUT/table.md`` and ``OUT/table.json`` (metrics, training seconds, s/epoch, nodes per
seed for each GNN type). About 10 minutes on 2 CPU cores with the default shared-map encoder
(25-35 with ``--encoder patch``). A GNN type whose model and report
already exist in OUT is not trained again (so runs of single ``--gnn`` types, e.g. in parallel
with one thread each, can be assembled into one table afterwards).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from psirel.demo import run
from psirel.report.markdown import metrics_table
from psirel.scene.files import scene_args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("bench/results/gnn_table"))
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--gnn", nargs="+", default=["unimp", "gatv2", "gen"])
    ap.add_argument("--seed", type=int, default=0, help="training seed (psirel train --seed)")
    ap.add_argument("--encoder", choices=["shared-map", "patch"], default=None,
                    help="psirel train --encoder (default: psirel's default)")
    args = ap.parse_args()
    out: Path = args.out
    train_s, test_s = out / "scene_11", out / "scene_12"
    for d, seed in ((train_s, 11), (test_s, 12)):
        if not (d / "scene.json").exists():
            run(["synth", str(d), "--points", str(args.points), "--seed", str(seed)])
    results, rows = {}, []
    for gnn in args.gnn:
        model, report = out / f"model_{gnn}", out / f"report_{gnn}"
        if not ((model / "model.json").exists() and (report / "metrics.json").exists()):
            extra = ["--encoder", args.encoder] if args.encoder else []
            run(["train", *scene_args(train_s), "--out", str(model), "--gnn", gnn,
                 "--epochs", str(args.epochs), "--seed", str(args.seed), *extra])
            run(["evaluate", "--model", str(model), *scene_args(test_s), "--out", str(report)])
        metrics = json.loads((report / "metrics.json").read_text())
        card = json.loads((model / "model.json").read_text())
        meta = card["training"]
        results[gnn] = {"metrics": metrics, "encoder": card["config"].get("encoder", "patch"),
                        "seed": meta["settings"]["seed"],
                        "train_seconds": meta["seconds"],
                        "seconds_per_epoch": meta["seconds_per_epoch"],
                        "nodes_per_seed": meta["nodes_per_seed"], "best_epoch": meta["best_epoch"]}
        rows.append((gnn, metrics))
    # one table: each GNN's model row, then the baselines (identical across runs) once
    table = {f"model ({g})": m["model"] for g, m in rows}
    table["baselines"] = rows[0][1]["baselines"]
    md = metrics_table(table)
    md += ("\n\n| GNN | encoder | seed | training (s) | s/epoch | nodes encoded per seed | "
           "best epoch |\n|:--|:--|--:|--:|--:|--:|--:|\n")
    for g, r in results.items():
        md += (f"| {g} | {r['encoder']} | {r['seed']} | {r['train_seconds']:.0f} | "
               f"{r['seconds_per_epoch']:.1f} | "
               f"{r['nodes_per_seed']:.2f} | {r['best_epoch']} |\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(md)
    (out / "table.json").write_text(json.dumps(results, indent=2))
    print(md)


if __name__ == "__main__":
    main()
