"""What a prediction run is, validated once: inputs, budget, runtime and precision.

Both drivers (:func:`psirel.infer.pipeline.predict` and
:func:`psirel.infer.distributed.predict_tiled`) build one :class:`RunSpec` from their
arguments before any work, so a bad value is one line naming the option, and both key their
work dirs with :meth:`RunSpec.key`: the model card's hash, every input's content fingerprint
and side cars, the psirel version (:func:`psirel.infer.manifest.run_inputs_key`), plus what
the run reads and how it cuts the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from psirel.errors import PsirelError
from psirel.infer.backends import DEVICES, PRECISIONS
from psirel.infer.manifest import run_inputs_key
from psirel.io.schema import PointSchema
from psirel.model_dir import MODEL_JSON

EMBED_BATCH = 256        # patches per encoder call
# Stage-2 seeds per GNN call. A block also runs its L-hop halo: at 4,096 seeds 1.41 nodes per
# seed, at 8,192 ~1.3, at 16,384 1.18 (1M points: graph + GNN 31.9 s at 16,384); the GNN's
# [nodes, k, hidden] intermediates grow with it (+270 MB at 16,384 vs 4,096, 200k points).
BLOCK_POINTS = 8192


@dataclass(frozen=True)
class RunSpec:
    """One prediction run (paths as given; see the drivers for each field's meaning)."""

    model_dir: Path
    points: Path
    dem: Path
    lulc: Path
    amplitude: Path
    out: Path
    crs: str | None = None
    schema: PointSchema = field(default_factory=PointSchema)
    lulc_legend: str | None = None
    memory_gb: float = 2.0
    chunk_points: int | None = None
    block_points: int = BLOCK_POINTS
    threads: int | None = None
    device: str = "cpu"
    precision: str = "fp32"
    work_dir: Path | None = None
    restart: bool = False

    def __post_init__(self) -> None:
        for name in ("model_dir", "points", "dem", "lulc", "amplitude", "out"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        if self.work_dir is not None:
            object.__setattr__(self, "work_dir", Path(self.work_dir))
        if self.schema is None:
            object.__setattr__(self, "schema", PointSchema())
        if self.crs is not None:
            object.__setattr__(self, "crs", str(self.crs))
        if not (isinstance(self.memory_gb, (int, float)) and math.isfinite(self.memory_gb)
                and self.memory_gb > 0):
            raise PsirelError(f"--memory-gb {self.memory_gb}: must be a positive number of GiB")
        for name, value in (("chunk_points", self.chunk_points),
                            ("block_points", self.block_points), ("--threads", self.threads)):
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise PsirelError(f"{name} {value}: must be a whole number, at least 1")
        if self.device not in DEVICES:
            raise PsirelError(f"--device {self.device}: choose one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise PsirelError(f"--precision {self.precision}: choose one of "
                              f"{', '.join(PRECISIONS)}")

    @property
    def rasters(self) -> dict[str, Path]:
        return {"dem": self.dem, "lulc": self.lulc, "amplitude": self.amplitude}

    def work_dir_for(self, prefix: str) -> Path:
        """The given work dir, else ``<prefix><output name>`` beside the output (the full
        name: ``pred.gpkg`` and ``pred.csv`` never share one)."""
        return self.work_dir if self.work_dir is not None else \
            self.out.resolve().parent / f"{prefix}{self.out.name}"

    def key(self, n_points: int, backend: str, chunk: int, precision: str | None = None
            ) -> dict:
        """What a work dir's content depends on: a resumed run never mixes results of another
        model, input (content or side car), column map, backend, precision (default this
        spec's) or chunking."""
        precision = precision or self.precision
        return {
            **run_inputs_key(self.model_dir / MODEL_JSON, self.points, self.rasters),
            "crs": self.crs,
            "schema": self.schema.to_json(),
            "n_points": int(n_points),
            "backend": backend + ("" if precision == "fp32" else f"/{precision}"),
            "chunking": {"chunk_points": int(chunk), "block_points": int(self.block_points),
                         "embed_batch": EMBED_BATCH},
        }


class PredictionSummary(TypedDict, total=False):
    """What both drivers return and ``psirel predict`` prints (:mod:`psirel.cli_summary`).

    Always: ``points``, ``output``, ``threshold``, ``unreliable_fraction``, ``seconds`` and
    ``points_per_s`` by stage, ``peak_rss_mb``, ``strategy``, ``backend``, ``device``. One
    process adds ``chunks``/``blocks`` (total, computed), ``fallbacks`` (points given a
    stated fallback) and ``work_dir``; tiles add ``tiles`` (total, computed, size, halo,
    embeddings per point), ``executor`` and ``worker_peak_rss_mb``; ``report`` when asked;
    ``counts`` of the work done where a stage counts it (a shared-map model: ``windows``
    encoded and their ``window_px``)."""

    points: int
    output: str
    threshold: float
    unreliable_fraction: float
    seconds: dict[str, float]
    points_per_s: dict[str, float]
    peak_rss_mb: float | None
    strategy: str
    backend: str
    device: str
    precision: str
    unknown_lulc_points: int
    chunks: dict[str, int]
    blocks: dict[str, int]
    fallbacks: dict[str, int]
    work_dir: str
    tiles: dict[str, float]
    executor: str
    worker_peak_rss_mb: dict[str, float]
    task_seconds: dict[str, float]
    report: dict[str, str]
    counts: dict[str, int]
