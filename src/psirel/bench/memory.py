"""Peak memory of ``psirel train`` and ``psirel evaluate`` on a large scene, each command in a
fresh process (so that one's peak is not the other's), as a user runs them.

Training is cut to ``max_steps`` steps and one member: the memory of a run is set by its data
(the cloud, its kNN graph, the scene raster, the baselines' features), not by how long it
trains. The child reports its own peak (``VmHWM``, see
:func:`psirel.infer.pipeline.peak_rss_mb`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from psirel.bench.timing import log
from psirel.errors import PsirelError
from psirel.scene.files import scene_args

CHILD = ("import json, sys; from psirel.cli import main; "
         "from psirel.infer.pipeline import peak_rss_mb; "
         "code = main(json.loads(sys.argv[1])); "
         "print(json.dumps({'code': code, 'peak_rss_mb': peak_rss_mb()}))")


def cli_in_child(argv: list[str], threads: int) -> dict:
    """``psirel <argv>`` in a fresh interpreter: ``{"seconds", "peak_rss_mb"}``; a failing
    command is a PsirelError with its last line."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True,
                          text=True, env=env)
    seconds = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    got = json.loads(lines[-1]) if proc.returncode == 0 and lines else {"code": proc.returncode}
    if got.get("code") != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise PsirelError(f"bench: psirel {argv[0]} failed in a child process: {last}")
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(float(got["peak_rss_mb"]), 1)}


def train_evaluate_memory(scene: Path, work: Path, n_points: int, *, threads: int = 2,
                          max_steps: int = 2) -> dict:
    """Seconds and peak RSS of ``psirel train`` (default model, one member, ``max_steps``)
    and of ``psirel evaluate`` of that model on the same scene."""
    model, report = work / "memory_model", work / "memory_report"
    args = scene_args(scene)
    log(f"training memory ({n_points:,} points, fresh process)")
    train = cli_in_child(["train", *args, "--out", str(model), "--epochs", "1", "--max-steps",
                          str(max_steps), "--ensemble", "1"], threads)
    log(f"evaluate memory ({n_points:,} points, fresh process)")
    evaluate = cli_in_child(["evaluate", "--model", str(model), *args, "--out", str(report)],
                            threads)
    return {"points": int(n_points), "train_seconds": train["seconds"],
            "train_peak_rss_mb": train["peak_rss_mb"], "evaluate_seconds": evaluate["seconds"],
            "evaluate_peak_rss_mb": evaluate["peak_rss_mb"], "max_steps": max_steps}
