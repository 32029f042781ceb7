"""One tiny synthetic scene and a model trained on it for a single step (built once a session).

``psirel train`` also exports the ONNX graphs, so the model directory is what inference gets.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Trained:
    scene: Path
    model: Path

    @property
    def inputs(self) -> tuple[Path, Path, Path, Path]:
        s = self.scene
        return s / "points.gpkg", s / "dem.tif", s / "lulc.tif", s / "amplitude.tif"


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    pytest.importorskip("torch")
    from psirel.scene.generate import generate_scene
    from psirel.train.loop import TrainSettings
    from psirel.train.trainer import train

    root = tmp_path_factory.mktemp("infer")
    generate_scene(root / "scene", n_points=2000, seed=5)
    t = Trained(root / "scene", root / "model")
    # the patch encoder: these tests cover its pipeline (the naive reference, INT8, batching);
    # tests/infer/test_shared_map_pipeline.py and the CLI's tiny_model cover the default one
    settings = TrainSettings(epochs=1, max_steps_per_epoch=1, batch_size=128, val_fraction=0.1,
                             encoder="patch", ensemble=2)
    train(*t.inputs, t.model, settings=settings)
    return t


@pytest.fixture
def model_copy(trained, tmp_path):
    """``model_copy(name) -> Path``: a private copy of the trained model directory."""

    def copy(name: str = "model") -> Path:
        return Path(shutil.copytree(trained.model, tmp_path / name))

    return copy
