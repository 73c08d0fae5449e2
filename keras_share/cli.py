"""The ``keras-share`` command: wires read -> graph -> analysis -> render, and sets exit codes."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from keras_share import __version__

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREADABLE = 3

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 2 usage error; 3 at least one input could not be read "
    "(the others are still reported)."
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Inspect weight sharing in saved Keras models, statically (no TensorFlow needed).\n\n" + EXIT_CODES_HELP,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class OutputFormat(str, Enum):
    """Output formats of ``inspect``."""

    rich = "rich"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keras-share {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """Inspect weight sharing in saved Keras models."""


def _use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@app.command(help="Report the layers applied more than once, weight identity, trainability and call shapes.\n\n"
             + EXIT_CODES_HELP)
def inspect(
    paths: Annotated[list[Path], typer.Argument(help="Model files (.keras, .h5, SavedModel folders) or folders of them.")],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.rich,
    all_layers: Annotated[bool, typer.Option("--all-layers", help="Also show every layer as a nesting tree.")] = False,
    jobs: Annotated[
        Optional[int],
        typer.Option("--jobs", "-j", min=1, help="Worker processes reading inputs in parallel (default: the CPU count)."),
    ] = None,
) -> None:
    """Inspect each input and print one report per model."""
    from keras_share.analysis.report import ModelReport
    from keras_share.batch import inspect_paths
    from keras_share.errors import ReadError

    reports: list[ModelReport] = []
    errors: list[ReadError] = []
    for _, result in inspect_paths(paths, jobs if jobs is not None else os.cpu_count() or 1):
        if isinstance(result, ReadError):
            errors.append(result)
        else:
            reports.append(result)
    for error in errors:
        typer.echo(f"keras-share: error: {error.path}: {error.problem}", err=True)
    if output_format is OutputFormat.json:
        from keras_share.render.json_format import JsonFormatter

        formatter = JsonFormatter()
    else:
        from rich.console import Console

        from keras_share.render.terminal import TerminalFormatter

        color = _use_color()
        width = Console().width if color else None
        formatter = TerminalFormatter(all_layers=all_layers, color=color, width=width)
    sys.stdout.write(formatter.format(reports, errors))
    raise typer.Exit(EXIT_UNREADABLE if errors else EXIT_OK)


def main() -> None:
    """Console-script entry point."""
    app()
