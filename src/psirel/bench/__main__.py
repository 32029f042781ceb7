"""``python -m psirel.bench [--out DIR] [--quick] [--model DIR]``: the ``psirel bench`` command
without the main CLI (errors as one line, exit code 2)."""

from __future__ import annotations

import sys

import typer

from psirel.cli_bench import bench
from psirel.errors import PsirelError


def main(argv: list[str] | None = None) -> int:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench)
    try:
        app(args=argv, standalone_mode=False)
    except PsirelError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
