"""The ``psirel`` command line. Every user mistake ends in one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import typer

from psirel.errors import PsirelError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Which points of a PSI point cloud can you trust?")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, turning PsirelError into a one-line message."""
    try:
        app(args=argv, standalone_mode=False)
    except PsirelError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
