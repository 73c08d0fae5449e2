"""The Python API: inspect saved model files or live Keras models and get ModelReport objects."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, overload

from keras_share.analysis.diff import ModelDiff
from keras_share.analysis.report import ModelReport
from keras_share.pipeline import Pipeline, diff_files, inspect_file, read_base, read_weights
from keras_share.render.json_format import dumps_outlined, model_to_dict
from keras_share.settings import LintSettings

__all__ = ["diff", "inspect", "inspect_file", "to_dict", "to_json"]

Targets = list[Any] | tuple[Any, ...] | Mapping[str, Any]
"""Several targets inspected together: ``inspect`` returns one report per target, in order."""


# A list typed as ``object`` would match the second overload while a list comes back: the first match wins, as
# intended (the usual overload order, e.g. typeshed's).
@overload
def inspect(  # type: ignore[overload-overlap]
    target: Targets,
    *,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    base: object = None,
    weights: str | os.PathLike[str] | None = None,
    weights_by_name: bool = False,
    baseline: str | os.PathLike[str] | None = None,
) -> list[ModelReport]: ...


@overload
def inspect(
    target: object,
    *,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    base: object = None,
    weights: str | os.PathLike[str] | None = None,
    weights_by_name: bool = False,
    baseline: str | os.PathLike[str] | None = None,
) -> ModelReport: ...


def inspect(
    target: object,
    *,
    select: Iterable[str] | str | None = None,
    ignore: Iterable[str] | str | None = None,
    base: object = None,
    weights: str | os.PathLike[str] | None = None,
    weights_by_name: bool = False,
    baseline: str | os.PathLike[str] | None = None,
) -> ModelReport | list[ModelReport]:
    """Inspect a saved file or live Keras models and run the rules: the report the CLI prints, as objects.

    ``target`` is a path (read statically, no TensorFlow needed), a live ``keras.Model`` (Keras 3) or
    tf_keras model, or a list/tuple/dict of them. Live models given together are inspected together:
    layers they share are reported on each (``layer-shared-with-other-model``), and a dict's keys name
    them. A list returns a list of reports in the same order (paths in it are read statically); a single
    target returns one report.

    ``select``/``ignore`` pick rules by code, code prefix or name, as ``--select``/``--ignore`` do.
    ``base`` (a path or a live model) is the ``--base`` model: each layer whose weights equal one of its layers'
    names it in ``transferred_from`` (whatever rules are selected), and ``transferred-layer-trainable`` flags
    those left trainable; live models need no base to report layers taken from another live model.

    Live reports use the same ``ModelReport`` and JSON schema as files (``format`` ``live``), with live-only
    facts in ``report.live`` and each ``layer.live``. TensorFlow is imported only for live targets.

    ``weights`` is the ``--weights`` file: rule ``weights-mismatch`` reports where ``load_weights`` would not fit
    it into each model (``weights_by_name``: as ``load_weights(by_name=True)``); a ``ReadError`` when it cannot be
    read. ``baseline`` is the ``--baseline`` JSON report of an earlier run: the findings it holds move from
    ``report.findings`` to ``report.in_baseline``; a ``BaselineError`` (a ValueError) when it is not such a report.
    """
    def to_list(value: Iterable[str] | str | None) -> list[str]:
        return [value] if isinstance(value, str) else list(value or ())

    if weights_by_name and weights is None:
        raise ValueError("weights_by_name applies to a weights file: give weights=PATH")
    pipeline = Pipeline(LintSettings(select=to_list(select), ignore=to_list(ignore)),
                        base=read_base(base) if base is not None else None)
    if weights is not None:
        pipeline.weights = read_weights(weights, weights_by_name)
    if baseline is not None:
        from keras_share.baseline import read_baseline

        pipeline.baseline = read_baseline(Path(baseline))
    single = not isinstance(target, (list, tuple, Mapping))
    items: list[tuple[str | None, object]]
    if isinstance(target, Mapping):
        items = [(str(key), value) for key, value in target.items()]
    else:
        items = [(None, value) for value in (target if isinstance(target, (list, tuple)) else [target])]
    reports: list[ModelReport | None] = [None] * len(items)
    live_items: dict[int, tuple[str | None, object]] = {}
    for index, (name, value) in enumerate(items):
        if isinstance(value, (str, os.PathLike)):
            reports[index] = pipeline.finish(inspect_file(value))
        else:
            live_items[index] = (name, value)
    if live_items:
        from keras_share.live.report import name_models

        named = name_models(dict(live_items.values()) if isinstance(target, Mapping)
                            else [value for _, value in live_items.values()])
        for index, report in zip(live_items, pipeline.live_models(named)):
            reports[index] = report
    done = [report for report in reports if report is not None]
    return done[0] if single else done


def diff(old: str | os.PathLike[str], new: str | os.PathLike[str]) -> ModelDiff:
    """What changed from the saved model ``old`` to ``new``, as ``keras-share diff`` reports it: ``changes`` (each
    with a ``ChangeKind``, the layer path, before and after), ``changed`` (whether any matters: the command's
    exit 1), ``unchanged_weights``, ``params_delta``. Raises ``ReadError`` for the first input that cannot be read."""
    result = diff_files(old, new)
    if isinstance(result, list):
        raise result[0]
    return result


def to_dict(report: ModelReport | ModelDiff) -> dict[str, Any]:
    """The report as the JSON object ``--format json`` writes for it (one entry of ``models``, docs/json-schema.md);
    a diff as the document ``diff --format json`` writes (docs/diff.md)."""
    if isinstance(report, ModelDiff):
        from keras_share.render.diff import diff_to_dict

        return diff_to_dict(report)
    return model_to_dict(report)


def to_json(report: ModelReport | ModelDiff) -> str:
    """``to_dict(report)`` as JSON text, laid out as ``--format json`` writes it (one line per layer, or per change)."""
    return dumps_outlined(to_dict(report), depth=2)
