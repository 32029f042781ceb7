"""The input files of a ``psirel synth`` folder (default format), as the CLI takes them.

Code that runs the CLI on a generated scene (the demo, the benchmark, the tests) names the
files through :func:`scene_args`, so that none of it depends on another's helpers.
"""

from __future__ import annotations

from pathlib import Path

POINTS = "points.gpkg"
DEM = "dem.tif"
LULC = "lulc.tif"
AMPLITUDE = "amplitude.tif"


def scene_args(d: Path) -> list[str]:
    """The four input options of a ``psirel synth`` folder, as the CLI takes them."""
    return ["--points", str(d / POINTS), "--dem", str(d / DEM),
            "--lulc", str(d / LULC), "--amplitude", str(d / AMPLITUDE)]
