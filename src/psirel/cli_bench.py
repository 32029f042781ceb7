"""``psirel bench``: the benchmark suite (registered in :mod:`psirel.cli` with
``app.command()(bench)``). Imports its modules lazily, as the other commands do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bench(out: Annotated[Path, typer.Option("--out", help="Results folder: latest.json, "
                                            "latest.md, cache/ (scenes, models)")]
          = Path("bench/results"),
          quick: Annotated[bool, typer.Option("--quick", help="A few minutes: small scenes, "
                                              "one repeat, no 1M-point run, a barely trained "
                                              "model (timings only)")] = False,
          model: Annotated[Path | None, typer.Option("--model", help="Use this patch-encoder "
                                                     "model directory instead of training one "
                                                     "(psirel train --encoder patch)")] = None,
          shared_model: Annotated[Path | None, typer.Option(
              "--shared-model", help="A model trained with the shared-map encoder (default: "
              "trained when psirel train supports it)")] = None,
          quality: Annotated[bool, typer.Option(
              "--quality", help="Run the quality protocol instead (bench/quality.py): train on "
              "K random worlds, test on held-out worlds, over training seeds; writes "
              "OUT/quality/quality.{json,md}")] = False) -> None:
    """Benchmark the encoder (torch / ONNX fp32 / int8), naive vs two-stage inference, scaling
    to 1M points, quality and the roofline; writes OUT/latest.json and OUT/latest.md."""
    if quality:
        from psirel.bench.protocol import ProtocolConfig, run_protocol

        cfg = ProtocolConfig.quick() if quick else ProtocolConfig.full()
        run_protocol(Path(out) / "quality", cfg)
        typer.echo((Path(out) / "quality" / "quality.md").read_text())
        return
    from psirel.bench.report import to_markdown
    from psirel.bench.run import BenchConfig, run_bench
    from psirel.errors import PsirelError
    from psirel.model_dir import load_card

    for m, encoder, flag in ((model, "patch", "--model"),
                             (shared_model, "shared-map", "--shared-model")):
        if m is not None:  # a wrong model fails now, not after minutes of measuring
            got = load_card(m).encoder
            if got != encoder:
                raise PsirelError(f"{flag} {m}: a {got} model; {flag} takes a model trained "
                                  f"with --encoder {encoder}")
    cfg = BenchConfig.quick() if quick else BenchConfig.full()
    result = run_bench(out, cfg, model=model, shared_model=shared_model)
    typer.echo(to_markdown(result))
    typer.echo(f"written: {Path(out) / 'latest.json'}, {Path(out) / 'latest.md'}")
