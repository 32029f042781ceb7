"""Scenes and models the benchmark needs, generated once and cached under ``OUT/cache``.

A scene folder is complete when its ``scene.json`` exists (written last, atomically); a model
directory when it loads with both ONNX stages. Anything incomplete (an interrupted run) is
rebuilt. Training runs ``psirel train`` in a child process, so the benchmark's own process
never holds the training data.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

from psirel.bench.timing import Missing, log
from psirel.errors import PsirelError
from psirel.infer.backends import GNN_ONNX, PW_ONNX
from psirel.model_dir import load_card

ENCODERS = ("patch", "shared-map")


def scene(cache: Path, n_points: int, seed: int, size_px: int | None = None) -> Path:
    """A ``psirel synth`` folder of ``n_points`` points (seed ``seed``; raster side
    ``size_px``, default from the point count), generated unless cached."""
    from psirel.scene.generate import generate_scene

    name = f"n{n_points}_seed{seed}" + (f"_px{size_px}" if size_px else "")
    d = cache / "scenes" / name
    if not (d / "scene.json").exists():
        log(f"generating scene {name}")
        shutil.rmtree(d, ignore_errors=True)
        generate_scene(d, n_points=n_points, seed=seed, size_px=size_px)
    return d


def dense_size_px(n_points: int, per_km2: float, pixel_m: float = 10.0) -> int:
    """Raster side (px) that puts ``n_points`` at ``per_km2`` points per km² of raster."""
    return max(64, math.ceil(math.sqrt(n_points / per_km2) * 1000.0 / pixel_m))


def scene_density(scene_dir: Path) -> dict:
    """Points per km² over the raster and on built-up land (ESA WorldCover code 50)."""
    meta = json.loads((scene_dir / "scene.json").read_text())
    side_km = meta["size_px"] * meta["pixel_m"] / 1000.0
    built = next((c for c in meta.get("land_cover", {}).get("classes", [])
                  if c.get("code") == 50), {})
    return {"points": meta["n_points"], "per_km2": round(meta["n_points"] / side_km**2, 1),
            "built_up_per_km2": built.get("density_per_km2"),
            "built_up_points": built.get("points")}


def _complete(model_dir: Path) -> bool:
    try:
        card = load_card(model_dir)
    except PsirelError:
        return False
    return card.has(PW_ONNX) and card.has(GNN_ONNX)


def encoder_supported(encoder: str) -> Missing | None:
    """None when ``psirel train`` can train ``encoder``; else why not."""
    if encoder == "patch":
        return None
    try:
        import dataclasses

        from psirel.train.loop import TrainSettings
    except ImportError as exc:
        return Missing(f"training needs torch ({exc})")
    if "encoder" not in {f.name for f in dataclasses.fields(TrainSettings)}:
        return Missing(f"psirel train has no --encoder {encoder} yet (TrainSettings has no "
                       "'encoder' field)")
    return None


def model(cache: Path, train_scene: Path, *, encoder: str = "patch", epochs: int = 12,
          max_steps: int | None = None, batch_size: int = 256, seed: int = 0,
          gnn: str = "unimp") -> Path | Missing:
    """A model trained on ``train_scene`` with ``encoder`` (cached), or Missing when this
    psirel cannot train that encoder."""
    why = encoder_supported(encoder)
    if why is not None:
        return why
    name = (f"{encoder}_{gnn}_{train_scene.name}_e{epochs}_b{batch_size}_seed{seed}"
            + (f"_steps{max_steps}" if max_steps else ""))
    d = cache / "models" / name
    if _complete(d):
        return d
    shutil.rmtree(d, ignore_errors=True)
    log(f"training model {name} (psirel train, child process)")
    from psirel.scene.files import scene_args

    cmd = [sys.executable, "-m", "psirel.cli", "train", *scene_args(train_scene), "--out", str(d),
           "--gnn", gnn, "--epochs", str(epochs), "--batch-size", str(batch_size),
           "--seed", str(seed)]
    if max_steps:
        cmd += ["--max-steps", str(max_steps)]
    cmd += ["--encoder", encoder]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not _complete(d):
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        if encoder != "patch":  # a new encoder that fails is a missing figure, not a crash
            return Missing(f"psirel train --encoder {encoder} failed: {last[:200]}")
        raise PsirelError(f"bench: psirel train of {name} failed: {last[:200]}")
    return d


def shuffled(scene_dir: Path, seed: int = 0) -> Path:
    """A copy of ``scene_dir`` whose points file lists the points in random order (the rasters
    and ``scene.json`` linked, not copied), cached beside it as ``<name>_shuffled``.

    ``psirel synth`` writes points in scan-line order, so consecutive rows are neighbours and a
    naive batch's neighbourhoods overlap; a file in random order is the case where the naive
    application re-encodes every point's whole receptive field."""
    import numpy as np
    import pyogrio.raw

    d = scene_dir.parent / f"{scene_dir.name}_shuffled"
    if (d / "scene.json").exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    meta, _, geometry, fields = pyogrio.raw.read(scene_dir / "points.gpkg")
    perm = np.random.default_rng(seed).permutation(len(geometry))
    pyogrio.raw.write(d / "points.gpkg", geometry[perm], [f[perm] for f in fields],
                      fields=meta["fields"], crs=meta["crs"], geometry_type=meta["geometry_type"],
                      layer=meta.get("layer_name") or "psi", driver="GPKG")
    for name in ("dem.tif", "lulc.tif", "amplitude.tif"):
        (d / name).symlink_to((scene_dir / name).resolve())
    shutil.copyfile(scene_dir / "scene.json", d / "scene.json")  # last: marks it complete
    return d
