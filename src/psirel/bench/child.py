"""One ``predict`` in a fresh process, for the scaling and end-to-end benchmarks
(:mod:`psirel.bench.pipeline`, :mod:`psirel.bench.end_to_end`).

    python -m psirel.bench.child '{"model": ..., "points": ..., "dem": ..., "lulc": ...,
                                   "amplitude": ..., "out": ..., "threads": 2,
                                   "baseline": null, "report": false}'

Prints the driver's summary as one JSON line on stdout; its ``peak_rss_mb`` is this process's
own peak (:func:`psirel.infer.pipeline.peak_rss_mb`: ``VmHWM``, not ``ru_maxrss``, which Linux
carries over from the parent), so it holds one run's memory and nothing else. ``baseline``
names one of the model directory's baselines (``psirel predict --baseline``) instead of the
model; ``report`` writes the quick-look as ``psirel predict`` does by default. Imports no torch,
as the inference install.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    from psirel.errors import PsirelError

    args = json.loads((argv if argv is not None else sys.argv[1:])[0])
    inputs = (args["model"], args["points"], args["dem"], args["lulc"], args["amplitude"],
              args["out"])
    report = bool(args.get("report", False))
    try:
        if args.get("baseline"):
            from psirel.infer.baseline_predict import predict_baseline

            summary = predict_baseline(*inputs, baseline=args["baseline"], report=report)
        else:
            from psirel.infer.pipeline import predict

            summary = predict(*inputs, threads=int(args["threads"]), report=report)
    except PsirelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
