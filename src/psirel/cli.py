"""The ``psirel`` command line. Every user mistake ends in one line on stderr and exit code 2.

Sub-commands import their modules lazily: ``psirel predict`` and ``psirel inspect`` must work in
the torch-free inference install.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from psirel.cli_bench import bench
from psirel.cli_options import (
    AmpOpt,
    ColumnsOpt,
    CrsOpt,
    DemOpt,
    LabelOpt,
    LegendOpt,
    LulcOpt,
    PointsOpt,
    UnitsOpt,
    registry_help,
)
from psirel.config import ENCODERS, FUSIONS, GNN_TYPES, TrainSettings
from psirel.errors import PsirelError

_TRAIN = TrainSettings()   # the defaults of `psirel train`, from psirel.config


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Which points of a PSI point cloud can you trust?")

def _schema(columns: str | None, units: str | None):
    """The ``--columns`` / ``--units`` schema (a one-line error for a malformed one)."""
    from psirel.io.schema import parse_columns

    return parse_columns(columns, units)


def _console():
    from rich.console import Console

    return Console(soft_wrap=True)  # never re-wrap report lines when piped


@app.command()
def synth(out_dir: Annotated[Path, typer.Argument(help="Folder for the scene's files")],
          points: Annotated[int, typer.Option("--points", help="Number of PSI points")] = 20_000,
          seed: Annotated[int, typer.Option("--seed")] = 0,
          size_px: Annotated[int | None, typer.Option("--size-px", help="Raster side (px); "
                                                      "default from the point count")] = None,
          pixel_m: Annotated[float | None, typer.Option(
              "--pixel-m", help="Pixel size (m); default: drawn (random world) or 10")] = None,
          fmt: Annotated[str, typer.Option("--format", help="gpkg | shp | parquet | csv")] = "gpkg",
          world: Annotated[str, typer.Option(
              "--world", help="random: the seed draws its own sensor, revisit, dates, pixel "
                              "size, terrain, land-cover product and mix of causes; default: "
                              "the reference world (C band, 12 days, hills, WorldCover)")
                           ] = "random",
          ) -> None:
    """Generate a realistic synthetic PSI scene: points with series and labels, DEM, LULC,
    amplitude."""
    from rich.progress import Progress

    from psirel.scene.generate import generate_scene

    if fmt not in ("gpkg", "shp", "parquet", "csv"):
        raise PsirelError(f"--format {fmt}: choose gpkg, shp, parquet or csv")
    t0 = time.perf_counter()
    with Progress(transient=True, console=_console(), disable=not sys.stdout.isatty()) as bar:
        task = bar.add_task("points", total=points)
        scene = generate_scene(out_dir, n_points=points, seed=seed, size_px=size_px,
                               pixel_m=pixel_m, fmt=fmt, world=world,
                               progress=lambda done, total: bar.update(task, completed=done))
    dt = time.perf_counter() - t0
    rates = scene.get("label_rates", {})
    unrel = rates.get("unreliable", rates.get("overall_unreliable"))
    drawn = scene.get("world", {})
    what = f" ({drawn['name']})" if "name" in drawn else ""
    _console().print(f"scene written to [bold]{out_dir}[/] in {dt:.1f} s: {points:,} points"
                     + (f", {unrel:.1%} unreliable" if isinstance(unrel, float) else "") + what)


@app.command()
def inspect(points: PointsOpt, dem: Annotated[Path | None, typer.Option("--dem")] = None,
            lulc: Annotated[Path | None, typer.Option("--lulc")] = None,
            amplitude: Annotated[Path | None, typer.Option("--amplitude")] = None,
            crs: CrsOpt = None, label: LabelOpt = None, lulc_legend: LegendOpt = None,
            pixel_m: Annotated[float | None, typer.Option(
                "--pixel-m", help="Grid pixel size to check (m); default the DEM's")] = None,
            columns: ColumnsOpt = None, units: UnitsOpt = None,
            ) -> None:
    """Validate inputs and print what psirel understood of them before a long run."""
    from psirel.inspect import format_report, inspect_inputs

    schema = _schema(columns, units)
    report = inspect_inputs(points, dem=dem, lulc=lulc, amplitude=amplitude, crs=crs, label=label,
                            pixel_m=pixel_m, lulc_legend=lulc_legend or "auto", schema=schema)
    _console().print(format_report(report), highlight=False)


@app.command()
def train(out: Annotated[Path, typer.Option("--out", help="Model directory to write")],
          points: Annotated[Path | None, typer.Option(
              "--points", help="One labelled cloud (with --dem/--lulc/--amplitude); or --clouds"
              )] = None,
          dem: Annotated[Path | None, typer.Option("--dem", help="DEM GeoTIFF (m)")] = None,
          lulc: Annotated[Path | None, typer.Option("--lulc", help="Land-cover GeoTIFF")] = None,
          amplitude: Annotated[Path | None, typer.Option("--amplitude",
                                                         help="Mean SAR amplitude GeoTIFF")
                               ] = None,
          clouds: Annotated[Path | None, typer.Option(
              "--clouds", help="CSV of labelled clouds, one a row: points,dem,lulc,amplitude "
                               "and optional label,crs,split (train|val),lulc_legend,columns,"
                               "units; paths relative to it")
                            ] = None,
          label: LabelOpt = None, crs: CrsOpt = None, lulc_legend: LegendOpt = None,
          columns: ColumnsOpt = None, units: UnitsOpt = None,
          pixel_m: Annotated[float | None, typer.Option(
              "--pixel-m", help="The model's grid pixel size (m): every raster is resampled "
                                "onto it; default the (first) DEM's")] = None,
          gnn: Annotated[str, typer.Option("--gnn", help=registry_help(GNN_TYPES))] = _TRAIN.gnn,
          epochs: Annotated[int, typer.Option("--epochs", help="Epochs (at least; see "
                                              "--min-steps)")] = _TRAIN.epochs,
          min_steps: Annotated[int, typer.Option(
              "--min-steps", help="At least this many optimiser steps per member: a small "
                                  "training set gets more epochs")] = _TRAIN.min_steps,
          seed: Annotated[int, typer.Option("--seed")] = 0,
          batch_size: Annotated[int, typer.Option("--batch-size", help="Seeds per step")
                                ] = _TRAIN.batch_size,
          fanout: Annotated[str, typer.Option("--fanout", help="Per-hop fan-outs, e.g. 8,4; "
                                              "its length sets the hops sampled")] = "8,4",
          layers: Annotated[int, typer.Option("--layers", help="GNN layers")] = _TRAIN.layers,
          fusion: Annotated[str, typer.Option(
              "--fusion", help=registry_help(FUSIONS))] = _TRAIN.fusion,
          max_steps: Annotated[int | None, typer.Option("--max-steps", help="Cap steps per "
                                                        "epoch (quick runs)")] = None,
          device: Annotated[str, typer.Option("--device", help="cpu | cuda")] = "cpu",
          encoder: Annotated[str, typer.Option("--encoder", help=registry_help(ENCODERS))
                             ] = _TRAIN.encoder,
          patch_summary: Annotated[bool, typer.Option(
              "--patch-summary/--no-patch-summary",
              help="Feed the patch's summary statistics (relief gradients, amplitude, land-cover "
                   "mix) to the scalar branch (as maps with --encoder shared-map)")
                                ] = _TRAIN.patch_summary,
          temporal: Annotated[bool, typer.Option(
              "--temporal/--no-temporal",
              help="Encode the displacement series' residuals (quantile function and lag-binned "
                   "autocorrelation, any length and sampling) with a 1-D CNN")
                           ] = _TRAIN.temporal,
          ensemble: Annotated[int, typer.Option(
              "--ensemble", help="Independently seeded members: their mean is 'reliability', "
                                 "their spread 'reliability_std'")] = _TRAIN.ensemble,
          ) -> None:
    """Train the reliability model (PW encoder + GNN), its pointwise-only twin and baselines,
    on one labelled cloud or on several (--clouds)."""
    from psirel.cli_progress import TrainReporter
    from psirel.train.clouds import CloudSpec, read_clouds_csv
    from psirel.train.trainer import train_clouds

    one = {"--points": points, "--dem": dem, "--lulc": lulc, "--amplitude": amplitude}
    if clouds is not None:
        given = [k for k, v in one.items() if v is not None]
        if given:
            raise PsirelError(f"--clouds names every cloud's files: drop {', '.join(given)}")
        if label is not None or crs is not None:
            raise PsirelError("--clouds: give label and crs as columns of the clouds file")
        if columns is not None or units is not None:
            raise PsirelError("--clouds: give columns and units as columns of the clouds file")
        specs = read_clouds_csv(clouds)
    else:
        missing = [k for k, v in one.items() if v is None]
        if missing:
            raise PsirelError(f"missing option(s) {', '.join(missing)} (or use --clouds FILE)")
        specs = [CloudSpec(points, dem, lulc, amplitude, label=label, crs=crs,
                           lulc_legend=lulc_legend, schema=_schema(columns, units))]
    if ensemble < 1:
        raise PsirelError(f"--ensemble {ensemble}: need at least one member")

    for flag, value, registry in (("--gnn", gnn, GNN_TYPES), ("--fusion", fusion, FUSIONS),
                                  ("--encoder", encoder, ENCODERS)):
        if value not in registry:
            raise PsirelError(f"{flag} {value}: choose {', '.join(registry)}")
    if encoder == "shared-map" and fusion != "concat":
        raise PsirelError("--fusion film needs --encoder patch: the shared-map encoder fuses by "
                          "concatenation")
    try:
        fan = tuple(int(v) for v in fanout.split(",") if v.strip())
    except ValueError:
        raise PsirelError(f"--fanout {fanout}: expected integers like 8,4") from None
    if len(fan) != layers:
        raise PsirelError(f"--fanout {fanout}: give one fan-out per GNN layer ({layers})")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise PsirelError("--device cuda: no CUDA device is available to torch")
    settings = TrainSettings(gnn=gnn, epochs=epochs, seed=seed, batch_size=batch_size,
                             fanout=fan, layers=layers, fusion=fusion,
                             max_steps_per_epoch=max_steps, device=device, encoder=encoder,
                             patch_summary=patch_summary, ensemble=ensemble, pixel_m=pixel_m,
                             temporal=temporal, min_steps=min_steps)
    console = _console()
    with TrainReporter(console) as rep:
        meta = train_clouds(specs, out, settings=settings, reporter=rep)
    t = meta["training"]
    vm = t["val_metrics"]
    cal = meta["calibration"]
    console.print(f"model written to [bold]{out}[/] ({t['seconds']:.0f} s; "
                  f"{len(t['clouds'])} cloud(s), {t['n_points']:,} points; "
                  f"{meta['ensemble']['members']} member(s), best epochs "
                  f"{t['member_best_epochs']}; {t['seconds_per_epoch']:.1f} s/epoch; "
                  f"{t['nodes_per_seed']:.2f} nodes encoded per seed)")
    console.print(f"validation: ROC-AUC {vm['roc_auc']:.3f}, AP(unreliable) "
                  f"{vm['average_precision']:.3f}, ECE {cal['val_ece_before']:.3f} → "
                  f"{cal['val_ece_after']:.3f} (Platt), threshold {meta['threshold']:.3f}")


@app.command()
def evaluate(model: Annotated[Path, typer.Option("--model", help="Model directory")],
             points: PointsOpt, dem: DemOpt, lulc: LulcOpt, amplitude: AmpOpt,
             out: Annotated[Path, typer.Option("--out", help="Report directory")],
             label: LabelOpt = None, crs: CrsOpt = None, lulc_legend: LegendOpt = None,
             columns: ColumnsOpt = None, units: UnitsOpt = None,
             ) -> None:
    """Compare the model with every baseline on a labelled cloud: metrics.json, plots, report."""
    schema = _schema(columns, units)
    from psirel.report.markdown import metrics_table
    from psirel.train.evaluate import evaluate as run_eval

    console = _console()
    result = run_eval(model, points, dem, lulc, amplitude, out, label=label, crs=crs,
                      warn=lambda m: console.print(f"[yellow]warning:[/] {m}"),
                      lulc_legend=lulc_legend, schema=schema)
    console.print(metrics_table(result), highlight=False)
    console.print(f"report: [bold]{Path(out) / 'report.md'}[/]")


@app.command()
def export(model: Annotated[Path, typer.Argument(help="Model directory")],
           int8: Annotated[bool, typer.Option("--int8", help="Also write pointwise.int8.onnx "
                                              "(checked on a random sample; train checks it on "
                                              "training patches)")] = False,
           fp16: Annotated[bool, typer.Option("--fp16", help="Also write pointwise.fp16.onnx "
                                              "for --device cuda --precision fp16 (checked on "
                                              "ONNX Runtime's CPU)")] = False) -> None:
    """Export the encoders to ONNX (pointwise.onnx, gnn.onnx, pointwise_only.onnx) and record
    opset, SHA-256 and torch/ONNX Runtime parity in model.json (train does this already)."""
    from psirel.export.onnx import export_model

    meta = export_model(model, int8=int8, fp16=fp16)
    onnx = meta["onnx"]
    parity = max(v for v in onnx["parity_max_abs_prob"].values() if isinstance(v, float))
    _console().print(f"exported to [bold]{model}[/] (opset {onnx['opset']}, max |p_torch − "
                     f"p_onnx| = {parity:.1e})")


@app.command()
def predict(model: Annotated[Path, typer.Option("--model", help="Model directory")],
            points: PointsOpt, dem: DemOpt, lulc: LulcOpt, amplitude: AmpOpt,
            out: Annotated[Path, typer.Option("--out", help="Output file: .gpkg .shp .fgb "
                                                            ".parquet .csv (a folder with "
                                                            "--partitioned)")],
            backend: Annotated[str, typer.Option("--backend", help="onnx | torch")] = "onnx",
            lulc_legend: LegendOpt = None,
            strategy: Annotated[str, typer.Option("--strategy",
                                                  help="two-stage | naive")] = "two-stage",
            work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Resumable work "
                                                          "folder (kept)")] = None,
            memory_gb: Annotated[float, typer.Option("--memory-gb", help="Memory budget that "
                                                     "sizes stage-1 chunks (GiB; per task "
                                                     "with --dask)")] = 2.0,
            threads: Annotated[int | None, typer.Option("--threads", help="ONNX Runtime "
                                                        "threads (per task with --dask, "
                                                        "default 1)")] = None,
            device: Annotated[str, typer.Option("--device", help="cpu | cuda")] = "cpu",
            restart: Annotated[bool, typer.Option("--restart", help="Clear a work dir left by "
                                                  "another model or input")] = False,
            crs: CrsOpt = None,
            dask: Annotated[str | None, typer.Option("--dask", help="Score tiles on Dask: "
                                                     "local[:N] (N worker processes), "
                                                     "tcp://scheduler:8786, or sync")] = None,
            tile_m: Annotated[float | None, typer.Option("--tile-m", help="Tile side with "
                                                         "--dask (m); default from density "
                                                         "and --memory-gb")] = None,
            partitioned: Annotated[bool, typer.Option("--partitioned", help="With --dask: "
                                                      "--out is a folder of one GeoParquet "
                                                      "part per tile + manifest.json")] = False,
            precision: Annotated[str, typer.Option("--precision", help="fp32 | int8 (stage 1 "
                                                   "from pointwise.int8.onnx) | fp16 (--device "
                                                   "cuda; pointwise.fp16.onnx)")] = "fp32",
            report: Annotated[Path | None, typer.Option("--report", help="Folder for the "
                                                        "quick-look (map PNG, zoomable HTML); "
                                                        "default <out>.quicklook")] = None,
            quicklook: Annotated[bool, typer.Option("--quicklook/--no-quicklook",
                                                    help="Write the quick-look and a QGIS "
                                                    ".qml style beside a .gpkg/.shp")] = True,
            columns: ColumnsOpt = None, units: UnitsOpt = None,
            baseline: Annotated[str | None, typer.Option(
                "--baseline", metavar="NAME",
                help="Score with one of the model directory's baselines instead of the model: "
                     "gradient_boosting (needs psirel[train]), neighbour_consistency or "
                     "coherence_threshold. Same output file (reliability = the baseline's "
                     "P(reliable), reliability_std = 0, reliable_pred at its tuned threshold) "
                     "and quick-look; one process, no work dir (--work-dir, --memory-gb, "
                     "--threads, --device and --restart do not apply)")] = None,
            ) -> None:
    """Score every point: two stages (PW encoder over chunks, then GNN over the graph) on ONNX
    Runtime; an interrupted run resumes from its work dir. With --dask, tiles with exact halos
    run as Dask tasks and give the same output. With --baseline, one of the model's baselines
    scores the cloud instead."""
    from psirel.cli_progress import TileBars
    from psirel.cli_summary import print_prediction
    from psirel.infer.pipeline import predict as run_predict

    if backend not in ("onnx", "torch"):
        raise PsirelError(f"--backend {backend}: choose onnx or torch")
    if device not in ("cpu", "cuda"):
        raise PsirelError(f"--device {device}: choose cpu or cuda")
    if dask is None and (tile_m is not None or partitioned):
        raise PsirelError(f"{'--tile-m' if tile_m is not None else '--partitioned'} needs "
                          "--dask (local, local:N, tcp://host:port or sync)")
    from psirel.infer.backends import check_precision

    check_precision(precision, device)
    if baseline is not None:
        from psirel.infer.baseline_predict import check_baseline_name

        check_baseline_name(baseline)
        refused = [flag for flag, used in (("--dask", dask is not None),
                                           (f"--strategy {strategy}", strategy != "two-stage"),
                                           ("--backend torch", backend == "torch"),
                                           (f"--precision {precision}",
                                            precision != "fp32")) if used]
        if refused:
            raise PsirelError(f"--baseline {baseline} scores in one process without the "
                              f"network: drop {', '.join(refused)}")
    if dask is not None and (backend != "onnx" or strategy != "two-stage"):
        raise PsirelError("--dask runs the ONNX backend's two-stage strategy only")
    schema = _schema(columns, units)
    if report is not None and not quicklook:
        raise PsirelError("--report and --no-quicklook: choose one")
    shown = (report if report is not None else True) if quicklook else False
    console = _console()
    warn = lambda m: console.print(f"[yellow]warning:[/] {m}")  # noqa: E731
    with TileBars(console) as rep:
        if baseline is not None:
            from psirel.infer.baseline_predict import predict_baseline

            s = predict_baseline(model, points, dem, lulc, amplitude, out, baseline=baseline,
                                 crs=crs, lulc_legend=lulc_legend, schema=schema, warn=warn,
                                 report=shown, progress=rep)
        elif dask is not None:
            from psirel.infer.distributed import predict_tiled

            s = predict_tiled(model, points, dem, lulc, amplitude, out, dask=dask,
                              tile_m=tile_m, partitioned=partitioned, work_dir=work_dir,
                              memory_gb=memory_gb, threads=threads, device=device,
                              restart=restart, crs=crs, progress=rep, warn=warn,
                              precision=precision, lulc_legend=lulc_legend, schema=schema,
                              report=shown)
        else:
            s = run_predict(model, points, dem, lulc, amplitude, out, backend=backend,
                            strategy=strategy, work_dir=work_dir, memory_gb=memory_gb,
                            threads=threads, device=device, restart=restart, crs=crs,
                            progress=rep, warn=warn, precision=precision,
                            lulc_legend=lulc_legend, schema=schema, report=shown)
    if baseline is not None:
        console.print(f"scored by the baseline {baseline} of {model}")
    print_prediction(console, s)

app.command()(bench)


def _click_errors() -> tuple[tuple, tuple, tuple]:
    """(ClickException, Abort, Exit) classes of click and of the click typer vendors (typer
    0.2x ships its own copy as ``typer._click``, whose errors are not click's)."""
    usage, abort, exit_ = [], [], []
    for name in ("click.exceptions", "typer._click.exceptions"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for cls_name, found in (("ClickException", usage), ("Abort", abort), ("Exit", exit_)):
            if hasattr(mod, cls_name):
                found.append(getattr(mod, cls_name))
    return tuple(usage), tuple(abort), tuple(exit_)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, turning PsirelError into a one-line message."""
    usage, abort, exit_ = _click_errors()
    try:
        app(args=argv, standalone_mode=False)
    except PsirelError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except abort:
        typer.echo("aborted", err=True)
        return 130
    except usage as exc:
        exc.show()
        return exc.exit_code
    except exit_ as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except OSError as exc:  # a file system refusal the drivers did not foresee: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return PsirelError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
