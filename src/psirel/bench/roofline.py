"""How close the stage-1 encoder runs to what the machine can do.

* ``pw_flops_per_point``: analytic FLOPs of the ConvNeXt on one patch
  (:meth:`psirel.models.reliability.ReliabilityModel.flops_per_patch`: 2 × multiply-accumulates
  of the convolutions and linear maps; the scalar MLP, the patch summary and the fusion, all
  small, are not counted), or the figure ``model.json`` records under ``"flops_per_patch"``.
* ``machine_gflops``: a float32 matrix product (numpy's BLAS) on the same threads, in a fresh
  process whose BLAS pool is limited to them (threadpoolctl where installed, and the usual
  ``*_NUM_THREADS`` variables) — the dense-GEMM peak the encoder could at best approach.
* ``pw_gflops_achieved = pw_flops_per_point × points/s / 1e9``, with the points/s of the ORT
  fp32 encoder at batch 1024.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from psirel.bench.timing import Missing, put
from psirel.model_dir import ModelCard


def flops_per_point(card: ModelCard) -> tuple[int | Missing, str]:
    """The encoder's FLOPs per point and where the number comes from."""
    recorded = card.meta.get("flops_per_patch")
    if isinstance(recorded, int | float) and recorded > 0:
        return int(recorded), "model.json flops_per_patch"
    try:
        from psirel.models.reliability import ReliabilityModel
    except ImportError:
        return Missing("model.json records no flops_per_patch and counting them needs torch"), ""
    model = ReliabilityModel(card.config)
    return int(model.flops_per_patch()), "ReliabilityModel.flops_per_patch() (ConvNeXt only)"


def achieved_gflops(flops: float, points_per_s: float) -> float:
    """GFLOP/s an encoder doing ``flops`` per point achieves at ``points_per_s``."""
    return flops * points_per_s / 1e9


def machine_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of an ``n × n`` float32 matrix product on ``threads`` BLAS threads,
    measured in a fresh process (so this process's BLAS pool does not matter)."""
    env = {**os.environ, **{v: str(threads) for v in
                            ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}}
    proc = subprocess.run([sys.executable, "-m", "psirel.bench.roofline", str(n), str(threads),
                           str(repeats)], capture_output=True, text=True, env=env, check=True)
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["gflops"])


def roofline(card: ModelCard, ort_fp32_points_per_s: float | None, threads: int,
             n: int = 2048, repeats: int = 5) -> dict:
    """The ``roofline`` section: FLOPs per point, machine GFLOP/s, achieved GFLOP/s, their
    ratio, and the sources of the numbers."""
    out: dict = {}
    flops, source = flops_per_point(card)
    put(out, "pw_flops_per_point", flops)
    out["machine_gflops"] = round(machine_gflops(threads, n, repeats), 2)
    if isinstance(flops, Missing):
        put(out, "pw_gflops_achieved", Missing("no FLOP count"))
    elif not ort_fp32_points_per_s:
        put(out, "pw_gflops_achieved", Missing("no ORT fp32 timing at batch 1024"))
    else:
        out["pw_gflops_achieved"] = round(achieved_gflops(flops, ort_fp32_points_per_s), 3)
        out["fraction_of_machine"] = round(out["pw_gflops_achieved"] / out["machine_gflops"], 4)
    out["ort_fp32_points_per_s"] = ort_fp32_points_per_s
    out["flops_source"] = source
    out["machine_measure"] = f"numpy float32 matmul {n}x{n}, {threads} threads, median of " \
                             f"{repeats} after a warm-up"
    return out


def _matmul(n: int, threads: int, repeats: int) -> float:
    import time

    import numpy as np

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variables set by the parent still hold
        threadpool_limits = None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)

    def timed() -> list[float]:
        np.matmul(a, b, out=c)  # warm-up
        ts = []
        for _ in range(max(repeats, 1)):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            ts.append(time.perf_counter() - t0)
        return ts

    if threadpool_limits is not None:
        with threadpool_limits(limits=threads):
            ts = timed()
    else:
        ts = timed()
    return 2.0 * n**3 / sorted(ts)[len(ts) // 2] / 1e9


if __name__ == "__main__":
    n_, threads_, repeats_ = (int(v) for v in sys.argv[1:4])
    print(json.dumps({"gflops": _matmul(n_, threads_, repeats_)}))
