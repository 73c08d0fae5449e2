"""Inspect many inputs, serially or in parallel worker processes, keeping results in input order.

What inspecting one input means is the pipeline's (``keras_share.pipeline``): this module expands folders,
spreads the inputs over worker processes and shows progress.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

from keras_share.errors import ReadError, describe

if TYPE_CHECKING:
    from keras_share.analysis.report import ModelReport

Result = Union["ModelReport", ReadError]
InspectOne = Callable[[Path], Result]
"""Inspects one input; an unreadable one is returned as a ReadError, not raised. Picklable, for worker processes."""

NO_MODELS = "folder holds no model files (.keras, .h5, .hdf5, SavedModel)"
WORKER_DIED = "not read: a worker process died while this batch ran (rerun with --jobs 1 to find the file)"


def expand(paths: Iterable[str | os.PathLike[str]],
           excluded: Callable[[Path], bool] | None = None) -> list[tuple[Path, ReadError | None]]:
    """Every model input the paths name, in order, with the ReadError reported instead of reading it (a folder
    without models, one that cannot be listed, a link leading out of the folder given), or None.

    Inputs ``excluded`` (the ``exclude`` setting) are dropped, whether named or found in a folder.
    """
    from keras_share.read.detect import discover

    items: list[tuple[Path, ReadError | None]] = []
    for path in paths:
        found = list(discover(path))
        if not found:
            items.append((Path(path), ReadError(str(path), NO_MODELS)))
        items.extend(item for item in found if excluded is None or not excluded(item[0]))
    return items


class _Progress:
    """A transient rich progress bar on stderr, or nothing when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self._progress = None
        self._task = None
        if total > 1 and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("inspecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._task = self._progress.add_task("inspect", total=total)

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def inspect_each(
    paths: Sequence[str | os.PathLike[str]], inspect_one: InspectOne, jobs: int = 1,
    excluded: Callable[[Path], bool] | None = None,
) -> list[tuple[Path, Result]]:
    """``inspect_one`` every input (folders expanded); return ``(path, report or ReadError)`` in input order.

    ``jobs > 1`` reads the files in that many worker processes (never more than there are inputs,
    and no pool at all for a single input); ``jobs == 1`` reads them one by one in this process.
    """
    items = expand(paths, excluded)
    results: list[Result | None] = [error for _, error in items]
    todo = [index for index, (_, error) in enumerate(items) if error is None]
    workers = min(max(jobs, 1), len(todo))
    if workers < 2:
        if len(todo) > 1:
            from keras_share.read.detect import import_readers

            import_readers()  # once here: each file's reader child inherits them instead of importing them
        with _Progress(len(todo)) as progress:
            for index in todo:
                results[index] = inspect_one(items[index][0])
                progress.advance()
    else:
        _run_pool(items, todo, results, workers, inspect_one)
    done: list[tuple[Path, Result]] = []
    for (path, _), result in zip(items, results):
        assert result is not None
        done.append((path, result))
    return done


_worker_inspect_one: InspectOne | None = None
"""In a pool worker: what ``_init_worker`` was handed, sent once per worker rather than with every input."""


def _init_worker(inspect_one: InspectOne) -> None:
    """Set up a pool worker: deep configs unpickle, each file's reader child inherits the imported readers, and
    ``inspect_one`` (with the settings and ``--base`` report it holds) is kept for every input."""
    global _worker_inspect_one  # noqa: PLW0603 - a pool worker keeps what its initializer was handed
    from keras_share.read.deadline import allow_deep_pickles
    from keras_share.read.detect import import_readers

    allow_deep_pickles()
    import_readers()
    _worker_inspect_one = inspect_one


def _inspect_in_worker(path: Path) -> Result:
    assert _worker_inspect_one is not None, "a pool worker set up by _init_worker"
    return _worker_inspect_one(path)


def _run_pool(items: list[tuple[Path, ReadError | None]], todo: list[int], results: list[Result | None],
              workers: int, inspect_one: InspectOne) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from keras_share.read.deadline import allow_deep_pickles

    allow_deep_pickles()
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(inspect_one,)) as pool:
        # Submit everything (which starts the workers) before the progress bar starts its refresh thread.
        futures = {pool.submit(_inspect_in_worker, items[index][0]): index for index in todo}
        with _Progress(len(todo)) as progress:
            for future in as_completed(futures):
                index = futures[future]
                try:
                    results[index] = future.result()
                except BrokenProcessPool:
                    results[index] = ReadError(str(items[index][0]), WORKER_DIED)
                except Exception as error:  # noqa: BLE001 - a worker's failure must not end the batch
                    results[index] = ReadError(str(items[index][0]), f"unexpected failure while reading ({describe(error)})")
                progress.advance()

