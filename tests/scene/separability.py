"""How separable are a synthetic scene's labels from single statistics? (a script, not a test)

Generates the 20,000-point scenes of seeds 11 and 12 (or reads them from ``--dir``), then
prints, per seed, the single-feature ROC-AUC (``max(a, 1 − a)``) for the label of:

* the point's own measurements: coherence, |velocity|;
* its series (``psirel.features.series.series_features`` on the written series and dates):
  residual std and MAD around a linear + annual fit, largest step, half-wave jump count;
* the rasters at the point: slope (from dem.tif), land cover (scored by its class's unreliable
  rate in that scene), amplitude;
* its neighbours: |velocity − median velocity of the 16 nearest other points|;

and the ROC-AUC and average precision of a ``HistGradientBoostingClassifier`` (random_state=0)
trained on seed 11 and tested on seed 12 with all of those plus every series feature: how much
of the label hand features of the point and its 16 neighbours can decide, the rest needing
context (the spatial pattern, terrain relative to the look direction, the land cover around).

    .venv/bin/python tests/scene/separability.py [--points 20000] [--dir DIR] [--reasons]

``--reasons`` adds, from an in-memory simulation of the same scenes, the label reasons with
their counts and median residual std (the hidden truth: what each mechanism looks like).

What the scene model aims at (defaults, seeds 11 and 12): 10–30 % unreliable; coherence
0.6–0.9; no single series statistic above about 0.85, nor |velocity|; gradient boosting on these
hand features about 0.80–0.92 — the rest needs context. ``test_scene_labels.py`` checks the
residual's AUC (at most 0.88) and that the smooth-but-wrong points are as smooth as reliable ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pyogrio.raw
import rasterio
import shapely
from scipy.spatial import cKDTree
from scipy.stats import rankdata

from psirel.features.series import series_features
from psirel.scene.generate import generate_scene, iter_chunks
from psirel.scene.labels import REASONS
from psirel.scene.params import SceneParams, default_size_px
from psirel.scene.psi_points import PointBlock
from psirel.scene.terrain import slope_aspect
from psirel.scene.world import build_world

SEEDS = (11, 12)
K_NEIGHBOURS = 16
SINGLE = ("coherence", "abs_velocity", "residual_std", "residual_mad", "max_step",
          "halfwave_jumps", "slope", "lulc", "amplitude", "neighbour_dv")


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC of ``score`` for the boolean ``positive`` (Mann–Whitney, average ranks)."""
    positive = np.asarray(positive, bool)
    ranks = rankdata(score)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def load(scene_dir: Path) -> dict[str, np.ndarray]:
    """The scene's points with every feature of the table (and the series features)."""
    meta, _, geometry, fields = pyogrio.raw.read(scene_dir / "points.gpkg", layer="psi")
    cols = dict(zip(meta["fields"], fields, strict=True))
    pts = shapely.from_wkb(geometry)
    names = [n for n in cols if n.startswith("D") and n[1:].isdigit()]
    dates = np.array([dt.datetime.strptime(n[1:], "%Y%m%d").date() for n in names],
                     dtype="datetime64[D]")
    rasters = {}
    for name in ("dem", "lulc", "amplitude"):
        with rasterio.open(scene_dir / f"{name}.tif") as src:
            rasters[name], transform = src.read(1), src.transform
    return features(shapely.get_x(pts), shapely.get_y(pts),
                    np.column_stack([cols[n] for n in names]), dates, cols["velocity"],
                    cols["coherence"], cols["reliable"] == 1, rasters, transform)


def features(x: np.ndarray, y: np.ndarray, series: np.ndarray, dates: np.ndarray,
             velocity: np.ndarray, coherence: np.ndarray, reliable: np.ndarray,
             rasters: dict[str, np.ndarray], transform) -> dict[str, np.ndarray]:
    """Every feature of the table from the points' columns and the rasters (dem, lulc,
    amplitude) with their affine ``transform``."""
    feats, feat_names = series_features(np.asarray(series, np.float64), dates)
    t = transform
    rows = np.floor((t.f - y) / -t.e).astype(int)
    cs = np.floor((x - t.c) / t.a).astype(int)
    slope = slope_aspect(rasters["dem"].astype(np.float64), t.a)[0]
    velocity = np.asarray(velocity, np.float64)
    xy = np.column_stack([x, y])
    _, nn = cKDTree(xy).query(xy, K_NEIGHBOURS + 1)
    dv = np.abs(velocity - np.median(velocity[nn[:, 1:]], axis=1))
    f = {n: feats[:, i].astype(np.float64) for i, n in enumerate(feat_names)}
    return {
        "reliable": np.asarray(reliable, bool), "coherence": np.asarray(coherence, np.float64),
        "abs_velocity": np.abs(velocity), "residual_std": f["series_residual_std_mm"],
        "residual_mad": f["series_residual_mad_mm"], "max_step": f["series_max_step_mm"],
        "halfwave_jumps": f["series_halfwave_jumps"], "slope": slope[rows, cs],
        "lulc": rasters["lulc"][rows, cs].astype(np.int64),
        "amplitude": rasters["amplitude"][rows, cs].astype(np.float64), "neighbour_dv": dv,
        "series": feats.astype(np.float64), "series_names": np.array(feat_names)}


def single_aucs(s: dict[str, np.ndarray]) -> dict[str, float]:
    bad = ~s["reliable"]
    out = {}
    for name in SINGLE:
        v = s[name]
        if name == "lulc":  # a category: score each point by its class's unreliable rate
            rate = np.bincount(v, weights=bad, minlength=256) / np.maximum(
                np.bincount(v, minlength=256), 1)
            v = rate[v]
        a = roc_auc(v, bad)
        out[name] = max(a, 1.0 - a)
    return out


def design(s: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([s[n] for n in SINGLE] + [s["series"]])


def boosting(train: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> tuple[float, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score

    categorical = np.zeros(len(SINGLE) + train["series"].shape[1], bool)
    categorical[SINGLE.index("lulc")] = True
    clf = HistGradientBoostingClassifier(random_state=0, categorical_features=categorical)
    clf.fit(design(train), ~train["reliable"])
    p = clf.predict_proba(design(test))[:, 1]
    return (float(roc_auc_score(~test["reliable"], p)),
            float(average_precision_score(~test["reliable"], p)))


def reasons(n_points: int, seed: int) -> None:
    """Label reasons from the hidden truth, with counts and median residual std."""
    from psirel.scene.acquisition import Acquisition

    world = build_world(SceneParams(n_points=n_points, seed=seed,
                                    size_px=default_size_px(n_points, 10.0)))
    block = PointBlock.concat(list(iter_chunks(world)))
    dates = np.array(Acquisition().dates, dtype="datetime64[D]")
    feats, names = series_features(block.series.astype(np.float64), dates)
    res = feats[:, names.index("series_residual_std_mm")]
    print(f"  seed {seed}: reliable {np.sum(block.reliable == 1)} points, median residual std "
          f"{np.median(res[block.reliable == 1]):.2f} mm")
    for name, bit in REASONS.items():
        on = (block.reasons & bit) > 0
        only = block.reasons == bit
        if on.any():
            print(f"    {name:24s} {on.sum():6d} (alone {only.sum():5d})  median residual std "
                  f"{np.median(res[on]):6.2f} mm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20_000)
    ap.add_argument("--dir", type=Path, help="scenes in DIR/seed_<seed> (generated if missing)")
    ap.add_argument("--reasons", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        scenes = {}
        for seed in SEEDS:
            d = root / f"seed_{seed}"
            if not (d / "points.gpkg").exists():
                t0 = time.perf_counter()
                generate_scene(d, n_points=args.points, seed=seed)
                print(f"seed {seed}: generated {args.points} points in "
                      f"{time.perf_counter() - t0:.1f} s")
            scenes[seed] = load(d)
        table = {seed: single_aucs(s) for seed, s in scenes.items()}
        print(f"\n{'ROC-AUC (max(a, 1-a))':24s}" + "".join(f"  seed {s:>3d}" for s in SEEDS))
        print(f"{'unreliable rate':24s}" + "".join(
            f"  {1 - scenes[s]['reliable'].mean():8.3f}" for s in SEEDS))
        for name in SINGLE:
            print(f"{name:24s}" + "".join(f"  {table[s][name]:8.3f}" for s in SEEDS))
        auc, ap_ = boosting(scenes[SEEDS[0]], scenes[SEEDS[1]])
        print(f"\nHistGradientBoosting, train {SEEDS[0]} → test {SEEDS[1]}: "
              f"ROC-AUC {auc:.3f}, AP {ap_:.3f}")
    if args.reasons:
        print("\nlabel reasons (hidden truth):")
        for seed in SEEDS:
            reasons(args.points, seed)


if __name__ == "__main__":
    main()
