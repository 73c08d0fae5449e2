"""What the command line needs for live mode.

* ``load_target(spec)``: import the module, call the function with no arguments; it returns a model, or a
  list/dict of models: ``name -> model``.
* ``target_reports(spec)``: the reports of those models, inspected together (not linted: the pipeline does).

A spec comes only from ``--call``: a positional argument is always a path, never a spec.

Every failure to produce models raises ``TargetError``, a ``ReadError`` whose ``path`` is the spec and
whose ``problem`` is one line: handle it as an unreadable input.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError, describe

__all__ = ["TargetError", "load_target", "target_reports"]

_SPEC = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


_NATIVE_LOG_LINE = re.compile(
    r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "  # absl / TensorFlow C++ logging
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags"
)
"""A line TensorFlow's native code writes to standard error on import (GPU probing, CPU features)."""


@contextlib.contextmanager
def _native_logs_dropped() -> Iterator[None]:
    """Standard error, at the descriptor, without TensorFlow's native log lines while user code imports and runs:
    they are written before ``TF_CPP_MIN_LOG_LEVEL`` is read, and would flood a CI log. Everything else the code
    writes there is passed on, in order, once it returns."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not _NATIVE_LOG_LINE.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class TargetError(ReadError):
    """A ``package.module:function`` spec that yields no models (bad spec, import error, wrong return value)."""


def load_target(spec: str) -> dict[str, object]:
    """Import ``package.module``, call ``function()``; return ``name -> model`` for what it returns.

    A single model is named by its ``name``; a list or tuple by each model's ``name`` (repeats get
    ``#2``, ``#3``); a dict by its keys. The working directory is importable, as with ``python -m``.
    """
    if not _SPEC.fullmatch(spec):
        raise TargetError(spec, "expected package.module:function")
    module_name, _, attribute = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    with _native_logs_dropped():
        return _call_target(spec, module_name, attribute)


def _call_target(spec: str, module_name: str, attribute: str) -> dict[str, object]:
    from keras_share.live.report import NotAModelError, name_models

    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - user code: report whatever it raised
        raise TargetError(spec, f"cannot import {module_name!r} ({describe(error)})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise TargetError(spec, f"{module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise TargetError(spec, f"{attribute!r} is a {type(target).__name__}, not a function")
    try:
        result = target()
    except Exception as error:  # noqa: BLE001 - user code
        raise TargetError(spec, f"calling {attribute}() raised {describe(error)}") from None
    try:
        models = name_models(result)
    except NotAModelError as error:
        raise TargetError(spec, f"{attribute}() must return a Keras model, or a list/dict of them: {error}") from None
    if not models:
        raise TargetError(spec, f"{attribute}() returned no models")
    return models


def target_reports(spec: str) -> list[ModelReport]:
    """The reports of the models ``spec`` returns, inspected together (findings not filled in).

    Each report's ``file`` is ``spec[name]``.
    """
    from keras_share.live.report import live_reports

    models = load_target(spec)
    try:
        return live_reports(models, source=spec)
    except Exception as error:  # noqa: BLE001 - an object keras-share cannot read: one line, no traceback
        raise TargetError(spec, f"cannot read the returned models ({describe(error)})") from None
