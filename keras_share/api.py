"""The Python API: inspect saved model files or live Keras models and get ModelReport objects."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from keras_share.analysis.analyze import read_and_analyze
from keras_share.analysis.report import ModelReport
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS
from keras_share.read.detect import import_readers


def inspect_file(path: str | os.PathLike[str], timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelReport:
    """Read one saved model statically and analyse it; raises ``ReadError`` on bad input.

    Reading is abandoned after ``timeout`` seconds (a damaged HDF5 file can make libhdf5 loop). The
    readers (h5py) are imported in this process on the first call: the reader child forked for each
    call inherits them.
    """
    import_readers()
    return read_and_analyze(path, timeout)


def inspect(
    target: object,
    *,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    base: object = None,
) -> ModelReport | list[ModelReport]:
    """Inspect a saved file or live Keras models and run the rules: the report the CLI prints, as objects.

    ``target`` is a path (read statically, no TensorFlow needed), a live ``keras.Model`` (Keras 3) or
    tf_keras model, or a list/tuple/dict of them. Live models given together are inspected together:
    layers they share are reported on each (``layer-shared-with-other-model``), and a dict's keys name
    them. A list returns a list of reports in the same order (paths in it are read statically); a single
    target returns one report.

    ``select``/``ignore`` pick rules by code, code prefix or name, as ``--select``/``--ignore`` do.
    ``base`` (a path or a live model) is the ``--base`` model of ``transferred-layer-trainable``; live models
    need no base to report layers taken from another live model.

    Live reports use the same ``ModelReport`` and JSON schema as files (``format`` ``live``), with live-only
    facts in ``report.live`` and each ``layer.live``. TensorFlow is imported only for live targets.
    """
    def to_list(value: Iterable[str] | str | None) -> list[str]:
        return [value] if isinstance(value, str) else list(value or ())

    single = not isinstance(target, (list, tuple, Mapping))
    items = [target] if single else list(target.items()) if isinstance(target, Mapping) else list(target)
    reports: list[ModelReport | None] = [None] * len(items)
    live_items: dict[int, tuple[str, object]] = {}
    for index, item in enumerate(items):
        name, value = item if isinstance(target, Mapping) else (None, item)
        if isinstance(value, (str, os.PathLike)):
            reports[index] = inspect_file(value)
        else:
            live_items[index] = (name, value)
    if live_items:
        from keras_share.live.report import live_reports, name_models

        named = name_models({name: value for name, value in live_items.values()} if isinstance(target, Mapping)
                            else [value for _, value in live_items.values()])
        for index, report in zip(live_items, live_reports(named)):
            reports[index] = report
    base_report: ModelReport | None = None
    if isinstance(base, (str, os.PathLike)):
        base_report = inspect_file(base)
    elif base is not None:
        from keras_share.live.report import live_report

        base_report = live_report(base)
    from keras_share.live.lint import lint

    done = [report for report in reports if report is not None]
    for report in done:
        lint(report, to_list(select), to_list(ignore), base_report)
    return done[0] if single else done
