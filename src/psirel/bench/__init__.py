"""The benchmark suite of ``psirel bench`` / ``make bench`` (issue 5).

``run.run_bench`` measures, with the same threads and the median of repeated runs after a
warm-up: the stage-1 encoder (torch, ONNX Runtime fp32 and int8; :mod:`.encoder`), the naive
and two-stage pipelines and their scaling to 1M points in fresh processes (:mod:`.pipeline`),
quality on a held-out scene and the shared-map encoder (:mod:`.quality`), and the encoder's
share of the machine's float32 GEMM peak (:mod:`.roofline`); :mod:`.report` checks the issue's
targets and writes ``latest.json`` and ``latest.md``.
"""


__all__ = ["BenchConfig", "run_bench"]


def __getattr__(name: str):
    # lazy: the child processes (``psirel.bench.child``, the roofline's matmul) import this
    # package first and must stay as light as the inference install
    if name in __all__:
        from psirel.bench import run

        return getattr(run, name)
    raise AttributeError(f"module 'psirel.bench' has no attribute {name!r}")
