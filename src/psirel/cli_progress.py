"""Progress bars for long commands (rich), fed by plain callbacks from the library code."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainReporter:
    """One bar per stage; epochs print a line with the loss and validation metrics."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=console)
        self.task = None

    def __enter__(self) -> TrainReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stage(self, name: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(name, total=total, info="")

    def advance(self, n: int = 1, **fields) -> None:
        info = " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in fields.items())
        self.progress.update(self.task, advance=n, info=info)

    def epoch(self, variant: str, rec: dict) -> None:
        self.advance(1, loss=rec["loss"], val_ap=rec["val_average_precision"],
                     val_auc=rec["val_roc_auc"])
        self.console.print(f"  {variant} epoch {rec['epoch']:>2}: loss {rec['loss']:.4f}  "
                           f"val ROC-AUC {rec['val_roc_auc']:.3f}  "
                           f"val AP(unreliable) {rec['val_average_precision']:.3f}  "
                           f"({rec['seconds']:.1f} s)", highlight=False)


class StageReporter:
    """One bar per pipeline stage, counting points, with the rate in points/s."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description:<18}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TimeElapsedColumn(), console=console)
        self.task = None

    def __enter__(self) -> StageReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def stage(self, name: str, total: int) -> None:
        self.task = self.progress.add_task(name, total=total, rate="")

    def advance(self, n: int = 1) -> None:
        self.progress.update(self.task, advance=n)
        t = self.progress.tasks[self.task]
        if t.elapsed:
            self.progress.update(self.task, rate=f"{t.completed / t.elapsed:,.0f} pts/s")


class TileBars:
    """The predict command's bars: points per stage, or tiles (with the tile rate) on Dask."""

    def __init__(self, console: Console):
        self.rep = StageReporter(console)

    def __enter__(self):
        self.rep.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.rep.__exit__(*exc)

    def stage(self, name: str, total: int) -> None:
        self.rep.stage(name, total)

    def advance(self, n: int = 1) -> None:
        self.rep.advance(n)
        bars = self.rep.progress
        t = bars.tasks[self.rep.task]
        if t.description == "tiles" and t.elapsed:
            bars.update(self.rep.task, rate=f"{t.completed / t.elapsed * 60:,.1f} tiles/min")
