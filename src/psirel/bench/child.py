"""One ``predict`` in a fresh process, for the scaling benchmark (:mod:`psirel.bench.pipeline`).

    python -m psirel.bench.child '{"model": ..., "points": ..., "dem": ..., "lulc": ...,
                                   "amplitude": ..., "out": ..., "threads": 2}'

Prints the pipeline's summary as one JSON line on stdout; its ``peak_rss_mb`` is this process's
own ``ru_maxrss``, so it holds one cloud size's memory and nothing else. Imports no torch, as
the inference install.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    from psirel.errors import PsirelError
    from psirel.infer.pipeline import predict

    args = json.loads((argv if argv is not None else sys.argv[1:])[0])
    try:
        summary = predict(args["model"], args["points"], args["dem"], args["lulc"],
                          args["amplitude"], args["out"], threads=int(args["threads"]))
    except PsirelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
