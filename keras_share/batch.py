"""Inspect many inputs, serially or in parallel worker processes, keeping results in input order."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

from keras_share.errors import ReadError, describe

if TYPE_CHECKING:
    from keras_share.analysis.report import ModelReport
    from keras_share.settings import LintSettings

Result = Union["ModelReport", ReadError]

NO_MODELS = "folder holds no model files (.keras, .h5, .hdf5, SavedModel)"
WORKER_DIED = "not read: a worker process died while this batch ran (rerun with --jobs 1 to find the file)"


def expand(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, ReadError | None]]:
    """Every model input the paths name, in order, with the ReadError reported instead of reading it (a folder
    without models, one that cannot be listed, a link leading out of the folder given), or None."""
    from keras_share.read.detect import discover

    items: list[tuple[Path, ReadError | None]] = []
    for path in paths:
        found = list(discover(path))
        if not found:
            items.append((Path(path), ReadError(str(path), NO_MODELS)))
        items.extend(found)
    return items


def inspect_one(path: Path, settings: LintSettings | None = None) -> Result:
    """Read, analyse and lint one input; unreadable input becomes a ReadError instead of an exception."""
    from keras_share.analysis.analyze import read_and_analyze
    from keras_share.lint import lint_report

    try:
        report = read_and_analyze(path)
        if settings is not None:
            lint_report(report, settings)
        return report
    except ReadError as error:
        return error
    except (RecursionError, MemoryError) as error:
        return ReadError(str(path), f"model too deeply nested or too large ({type(error).__name__})")


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


def inspect_paths(
    paths: Sequence[str | os.PathLike[str]], jobs: int = 1, settings: LintSettings | None = None
) -> list[tuple[Path, Result]]:
    """Inspect every input (folders expanded) and return ``(path, report or ReadError)`` in input order.

    ``jobs > 1`` reads the files in that many worker processes (never more than there are inputs,
    and no pool at all for a single input); ``jobs == 1`` reads them one by one in this process.
    """
    items = expand(paths)
    results: list[Result | None] = [error for _, error in items]
    todo = [index for index, (_, error) in enumerate(items) if error is None]
    workers = min(max(jobs, 1), len(todo))
    if workers < 2:
        if len(todo) > 1:
            from keras_share.read.detect import import_readers

            import_readers()  # once here: each file's reader child inherits them instead of importing them
        with _Progress(len(todo)) as progress:
            for index in todo:
                results[index] = inspect_one(items[index][0], settings)
                progress.advance()
    else:
        _run_pool(items, todo, results, workers, settings)
    done: list[tuple[Path, Result]] = []
    for (path, _), result in zip(items, results):
        assert result is not None
        done.append((path, result))
    return done


def _init_worker() -> None:
    """Set up a pool worker: deep configs unpickle, and each file's reader child inherits the imported readers."""
    from keras_share.read.deadline import allow_deep_pickles
    from keras_share.read.detect import import_readers

    allow_deep_pickles()
    import_readers()


def _run_pool(items: list[tuple[Path, ReadError | None]], todo: list[int], results: list[Result | None],
              workers: int, settings: LintSettings | None) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from keras_share.read.deadline import allow_deep_pickles

    allow_deep_pickles()
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        # Submit everything (which starts the workers) before the progress bar starts its refresh thread.
        futures = {pool.submit(inspect_one, items[index][0], settings): index for index in todo}
        with _Progress(len(todo)) as progress:
            for future in as_completed(futures):
                index = futures[future]
                try:
                    results[index] = future.result()
                except BrokenProcessPool:
                    results[index] = ReadError(str(items[index][0]), WORKER_DIED)
                except Exception as error:  # a worker's failure must not end the batch
                    results[index] = ReadError(str(items[index][0]), f"unexpected failure while reading ({describe(error)})")
                progress.advance()


def inspect_inputs(
    paths: Sequence[str | os.PathLike[str]], jobs: int, settings: LintSettings, live: bool = False, unsafe: bool = False,
    calls: Sequence[str] = (),
) -> list[Result]:
    """Reports (with findings) or errors for every path, then for the models of every ``calls`` target.

    A path is only ever read as a file or folder, statically, and also loaded with Keras when ``live``.
    Each ``calls`` target, ``package.module:function``, is imported and run (``--call``): its models are
    inspected live.
    """
    results: list[Result] = []
    if paths and not live:
        results.extend(result for _, result in inspect_paths(paths, jobs, settings))
    elif paths:
        from keras_share.lint import lint_report
        from keras_share.live.crosscheck import live_file_report

        for path, error in expand(paths):
            try:
                if error is not None:
                    raise error
                report = live_file_report(path, unsafe)
                lint_report(report, settings)
                results.append(report)
            except ReadError as failure:
                results.append(failure)
    if calls:
        from keras_share.live.lint import lint_live_report
        from keras_share.live.targets import target_reports

        for spec in calls:
            try:
                for report in target_reports(spec):
                    lint_live_report(report, settings)
                    results.append(report)
            except ReadError as error:
                results.append(error)
    return results
