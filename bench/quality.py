"""The quality protocol (README "Results"): train on K random worlds, test on held-out worlds,
for several training seeds; mean ± std of ROC-AUC, AP, ECE and recall by label reason for the
model, pointwise-only and every baseline.

    .venv/bin/python bench/quality.py --out bench/results/quality            # the issue's sizes
    .venv/bin/python bench/quality.py --out bench/results/quality-quick --quick

Also `psirel bench --quality`. Scenes, models and evaluations are cached in OUT, so an
interrupted run resumes; delete OUT to start again.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from psirel.bench.protocol import ProtocolConfig, run_protocol


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/results/quality"))
    ap.add_argument("--quick", action="store_true", help="small smoke run of the same code")
    ap.add_argument("--points", type=int, help="points per cloud")
    ap.add_argument("--train-clouds", type=int, help="K training worlds per seed")
    ap.add_argument("--seeds", type=int, nargs="+", help="training seeds")
    ap.add_argument("--test-worlds", type=int, nargs="+", help="held-out world seeds")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--ensemble", type=int)
    ap.add_argument("--no-temporal", action="store_true", help="ablation: no temporal encoder")
    args = ap.parse_args()
    cfg = ProtocolConfig.quick() if args.quick else ProtocolConfig.full()
    over = {"points": args.points, "train_clouds": args.train_clouds,
            "train_seeds": tuple(args.seeds) if args.seeds else None,
            "test_worlds": tuple(args.test_worlds) if args.test_worlds else None,
            "epochs": args.epochs, "ensemble": args.ensemble,
            "temporal": False if args.no_temporal else None}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in over.items() if v is not None})
    result = run_protocol(args.out, cfg)
    print((args.out / "quality.md").read_text())
    print(f"written: {args.out / 'quality.json'} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
