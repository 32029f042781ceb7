"""Helpers shared by test modules (conftest.py files cannot be imported by name: several exist)."""

from __future__ import annotations

from pathlib import Path


def scene_args(d: Path) -> list[str]:
    """The four input options of a scene folder, as the CLI takes them."""
    return ["--points", str(d / "points.gpkg"), "--dem", str(d / "dem.tif"),
            "--lulc", str(d / "lulc.tif"), "--amplitude", str(d / "amplitude.tif")]
