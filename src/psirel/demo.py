"""``make demo``: the main job end to end on embedded synthetic scenes, in a few minutes on 2 cores.

1. generate a training scene (seed 11) and a separate test scene (seed 12);
2. inspect the inputs and measure patch extraction;
3. train the default model (shared-map ConvNeXt encoder + UniMP GNN, psirel train's defaults),
   its pointwise-only twin and the baselines: the README's results run;
4. evaluate everything on the test scene and print the metrics table and where the outputs are.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from psirel.cli import main as cli_main
from psirel.scene.files import scene_args


def run(argv: list[str]) -> None:
    """Run one ``psirel`` command; stop with its exit code if it fails."""
    code = cli_main(argv)
    if code:
        sys.exit(code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    # the README's results run: 20,000 points, psirel train's defaults (12 epochs, seed 0)
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()
    out: Path = args.out
    t0 = time.perf_counter()
    train_dir, test_dir = out / "scene_train", out / "scene_test"
    print(f"[1/5] synthetic scenes ({args.points:,} points each)")
    for folder, seed in ((train_dir, "11"), (test_dir, "12")):   # the reference world
        run(["synth", str(folder), "--points", str(args.points), "--seed", seed,
             "--world", "default"])
    print("[2/5] inspect the training inputs")
    run(["inspect", *scene_args(train_dir)])
    print("[3/5] patch extraction speed")
    rate = patch_rate(train_dir)
    print(f"      {rate:,.0f} patches/s (80×80×3, windowed reads)")
    print("[4/5] train (shared-map ConvNeXt encoder + UniMP GNN, pointwise-only twin, "
          "baselines)")
    model_dir = out / "model"
    run(["train", *scene_args(train_dir), "--out", str(model_dir), "--gnn", "unimp",
         "--epochs", str(args.epochs)])
    print("[5/5] evaluate on the separate test scene")
    report_dir = out / "report"
    run(["evaluate", "--model", str(model_dir), *scene_args(test_dir), "--out", str(report_dir)])
    print(f"\ndone in {time.perf_counter() - t0:.0f} s. Outputs:\n"
          f"  scenes:  {train_dir}/, {test_dir}/\n  model:   {model_dir}/ (model.json, weights)\n"
          f"  report:  {report_dir}/report.md (metrics.json, roc.png, pr.png, map.png)")


def patch_rate(scene: Path) -> float:
    import numpy as np

    from psirel.features.patches import extract_patches
    from psirel.graph.hilbert import spatial_order
    from psirel.io.points import read_points
    from psirel.io.rasters import RasterStack

    with RasterStack(scene / "dem.tif", scene / "lulc.tif", scene / "amplitude.tif") as stack:
        cloud = read_points(scene / "points.gpkg", target_crs=stack.crs)
        order = spatial_order(cloud.x, cloud.y)  # spatially compact chunks, as the pipeline reads
        buf = np.empty((2048, 3, 80, 80), np.float32)
        buf.fill(0.0)  # a long run reuses one buffer: do not time its first page faults
        t = time.perf_counter()
        for s in range(0, len(cloud.x), 2048):
            sel = order[s:s + 2048]
            extract_patches(stack, cloud.x[sel], cloud.y[sel], out=buf[:len(sel)])
        return len(cloud.x) / (time.perf_counter() - t)


if __name__ == "__main__":
    main()
