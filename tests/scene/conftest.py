"""Shared scenes for the scene-generator tests: generated once per session, small and fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
import shapely

from psirel.scene.generate import generate_scene, iter_chunks
from psirel.scene.params import SceneParams, default_size_px
from psirel.scene.psi_points import PointBlock
from psirel.scene.world import build_world

LABEL_SEEDS = (11, 12)  # the demo's training and test scenes
N_LABEL = 20_000


def _read_points(path: Path) -> dict[str, np.ndarray]:
    """All columns of layer ``psi`` (in file order) plus ``x``, ``y`` and ``_crs``."""
    meta, _, geometry, fields = pyogrio.raw.read(path, layer="psi")
    cols = {name: values for name, values in zip(meta["fields"], fields, strict=True)}
    pts = shapely.from_wkb(geometry)
    cols["x"], cols["y"] = shapely.get_x(pts), shapely.get_y(pts)
    cols["_crs"] = meta["crs"]
    return cols


@pytest.fixture(scope="session")
def read_points():
    return _read_points


@pytest.fixture(scope="session")
def make_scene(tmp_path_factory):
    """``make_scene(n_points, seed, **kwargs)`` → folder of a generated scene (cached)."""
    cache: dict[tuple, Path] = {}

    def make(n_points: int, seed: int, **kwargs) -> Path:
        key = (n_points, seed, tuple(sorted(kwargs.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"scene_{n_points}_{seed}")
            generate_scene(out, n_points=n_points, seed=seed, **kwargs)
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def label_scenes(make_scene) -> dict[int, Path]:
    """The 20,000-point scenes of seeds 11 and 12, on disk."""
    return {seed: make_scene(N_LABEL, seed) for seed in LABEL_SEEDS}


@pytest.fixture(scope="session")
def truth() -> dict[int, PointBlock]:
    """The same scenes simulated in memory, with the hidden truth (true velocity, reasons)."""
    out = {}
    for seed in LABEL_SEEDS:
        world = build_world(SceneParams(n_points=N_LABEL, seed=seed,
                                        size_px=default_size_px(N_LABEL, 10.0)))
        out[seed] = PointBlock.concat(list(iter_chunks(world)))
    return out


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC of ``score`` for the boolean ``positive`` (Mann–Whitney, average ranks)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, bool)
    ranks = rankdata(score)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.fixture(scope="session")
def auc():
    return roc_auc
