"""The ``keras-share`` console script: for ``inspect``, reading starts before the command line is imported."""

from __future__ import annotations

import sys


def _prepare_reader() -> None:
    from keras_share.read.detect import prepare_reader_process

    prepare_reader_process()


def start_reading(args: list[str]) -> None:
    """Fork the spare reader child when the command line ``args`` will read model files statically: it
    imports h5py and the format readers on another CPU while this process imports typer and parses ``args``."""
    if args[:1] == ["inspect"] and "--live" not in args:
        from keras_share.read.deadline import start_spare_reader

        start_spare_reader(_prepare_reader)


def main() -> None:
    """``start_reading``, then the command line (``cli.main``)."""
    start_reading(sys.argv[1:])
    from keras_share.cli import main as run_command_line

    run_command_line()
