"""``--live`` on a file: load it with Keras and hold the static reading against the loaded objects.

Every disagreement becomes a ``LiveMismatch`` on ``report.live``, which the ``live-static-mismatch``
rule (KS104) turns into findings: a load failure (quoting Keras, and naming the static rule it confirms),
a layer, call count, sharing, trainability or weight shape that differs, or sharing that the static rules
predicted would be lost and that the loaded model indeed lost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from keras_share.analysis.report import (
    LayerReport,
    LiveLayer,
    LiveMismatch,
    LiveModel,
    ModelReport,
)
from keras_share.errors import ReadError
from keras_share.limits import LIVE_LOAD_ADDRESS_SPACE_BYTES, MAX_JSON_BYTES
from keras_share.read.base import CONFIG_MEMBER, SHARDED_WEIGHTS_MEMBER, WEIGHTS_MEMBER
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, call_with_deadline
from keras_share.read.files import open_member
from keras_share.read.json_text import load_json
from keras_share.rules.base import RuleContext
from keras_share.rules.cross_model_sharing import placements
from keras_share.rules.missing_weights import MissingWeights
from keras_share.rules.unsafe_lambda import describe_site
from keras_share.vocabulary import Format, Severity

_CUSTOM_CLASS_HINTS = ("Could not locate", "Unknown layer", "Unknown object", "custom_objects", "not a KerasSaveable",
                       "Could not deserialize")
_SAFE_MODE_HINTS = ("safe_mode", "safe mode")


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = " ".join(lines)
    if len(text) > 400:
        text = text[:397] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _loader(report: ModelReport) -> tuple[str, Any]:
    """The Keras to load the file with: the one that wrote it when available (tf_keras for Keras 2 files)."""
    fmt = report.file.format
    if fmt == Format.SAVEDMODEL or report.file.keras_generation == 2:
        try:
            import tf_keras

            return f"tf_keras {tf_keras.__version__}", tf_keras.models.load_model
        except ImportError:
            if fmt == Format.SAVEDMODEL:
                raise
    import keras

    return f"Keras {keras.__version__}", keras.models.load_model


@contextlib.contextmanager
def _loadable(path: str, fmt: Format) -> Iterator[str]:
    """A path Keras accepts: Keras picks the loader by suffix, and wants a .keras zip, not its folder form."""
    source = Path(path)
    wanted = {Format.KERAS: (".keras",), Format.KERAS_DIR: (), Format.H5: (".h5", ".hdf5")}.get(fmt)
    if wanted is None or (wanted and source.suffix.lower() in wanted):
        yield str(source)
        return
    folder = tempfile.mkdtemp(prefix="keras-share-live-")
    try:
        if fmt == Format.KERAS_DIR:
            target = Path(folder) / "model.keras"
            with zipfile.ZipFile(target, "w") as archive:
                for member in sorted(source.iterdir()):
                    if member.is_file():
                        archive.write(member, member.name)
        else:
            target = Path(folder) / f"model{wanted[0]}"
            shutil.copyfile(source, target)
        yield str(target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _holds_sharded_weights(report: ModelReport) -> bool:
    """Whether the input is a model folder whose weights are sharded (a KerasHub preset): Keras's load_model does
    not read those, KerasHub loads them itself."""
    folder = Path(report.file.path)
    return (report.file.format == Format.KERAS_DIR and not os.path.lexists(folder / WEIGHTS_MEMBER)
            and os.path.lexists(folder / SHARDED_WEIGHTS_MEMBER))


def _load_sharded_folder(folder: Path, unsafe: bool) -> Any:
    """The model of a folder with ``config.json`` and sharded weights, loaded as KerasHub loads a preset: the
    config deserialized, then ``load_weights`` of its ``model.weights.json``."""
    import keras

    with open_member(folder, CONFIG_MEMBER) as stream:
        config = load_json(stream.read(MAX_JSON_BYTES + 1))
    model = keras.saving.deserialize_keras_object(config, safe_mode=not unsafe)
    model.load_weights(str(folder / SHARDED_WEIGHTS_MEMBER))
    return model


def _load_failure(report: ModelReport, keras: str, error: BaseException) -> list[LiveMismatch]:
    message = _one_line(error)
    groups = placements(report)
    if groups and report.file.format.keras_archive:
        return [
            LiveMismatch(
                group[-1].layer.path,
                f"{keras} cannot load this file, confirming cross-model-sharing (KS101) for "
                f"{[member.layer.path for member in group]}: {message}",
            )
            for group in groups
        ]
    missing = list(MissingWeights().check(report, RuleContext()))
    if missing:
        return [LiveMismatch(missing[0].layer,
                             f"{keras} cannot load this file, confirming missing-weights (KS102): {message}")]
    if any(hint in str(error) for hint in _SAFE_MODE_HINTS):
        return [LiveMismatch("", f"{keras} refused to load this file in safe mode, so nothing was cross-checked "
                             f"(pass --unsafe only for a file you trust): {message}", Severity.WARNING)]
    if any(hint in str(error) for hint in _CUSTOM_CLASS_HINTS):
        return [LiveMismatch("", f"{keras} cannot rebuild a custom class without its code, so nothing was "
                             "cross-checked; inspect the code that builds the model instead "
                             f"(keras-share inspect --call package.module:function): {message}", Severity.WARNING)]
    return [LiveMismatch("", f"{keras} cannot load this file: {message}")]


def _comparable(report: ModelReport) -> dict[str, LayerReport]:
    return {layer.layer.path: layer for layer in report.layers if layer.layer.runs_on_tensors}


def dropped_by_keras3(report: ModelReport) -> set[str]:
    """Paths of the layers Keras 3 leaves out of the model it loads from this file: none of their calls reaches an
    output (``unreachable_calls``), and what is inside them. tf_keras keeps such layers."""
    if report.file.keras_generation != 3:
        return set()
    dropped: set[str] = set()
    for layer in report.layers:  # parents first
        if (layer.layer.parent or "") in dropped or (layer.layer.calls and not layer.reaching_calls):
            dropped.add(layer.layer.path)
    return dropped


def compare(static: ModelReport, loaded: ModelReport, keras: str) -> list[LiveMismatch]:
    """Every disagreement between a file's static report and the report of the model Keras loaded from it."""
    found: list[LiveMismatch] = []
    dropped = dropped_by_keras3(static)
    mine = {path: layer for path, layer in _comparable(static).items() if path not in dropped}
    theirs = _comparable(loaded)
    for path in sorted(set(mine) - set(theirs)):
        found.append(LiveMismatch(path, f"the file lists this {mine[path].layer.class_name}, but the model {keras} "
                                  "loads has no layer at this path"))
    for path in sorted(set(theirs) - set(mine)):
        found.append(LiveMismatch(path, f"{keras} builds a {theirs[path].layer.class_name} here that the file's "
                                  "config does not list"))
    weights_read = bool(static.file.weights.by_layer)
    for path in sorted(set(mine) & set(theirs), key=list(mine).index):
        ours, live = mine[path], theirs[path]
        facts = [("calls that reach an output", ours.reaching_calls, live.reaching_calls),
                 ("effective calls", ours.effective_calls, live.effective_calls),
                 ("shared", ours.shared, live.shared),
                 ("same layer as", sorted(ours.same_as), sorted(live.same_as))]
        if live.layer.weights and (ours.layer.weights or not weights_read):
            facts.append(("trainable", ours.trainable, live.trainable))
        if weights_read:
            facts.append(("weight shapes", sorted(list(a.shape) for a in ours.layer.weights),
                          sorted(list(a.shape) for a in live.layer.weights)))
        for what, said, built in facts:
            if said != built:
                found.append(LiveMismatch(path, f"{what}: the file says {said}, the model {keras} loads says {built}"))
    kept = {array.location for layer in mine.values() for array in layer.layer.weights}
    left_out = {array.location: array.size for layer in static.layers if layer.layer.path in dropped
                for array in layer.layer.weights if array.location not in kept}
    expected_params = static.summary.unique_params - sum(left_out.values())
    if weights_read and expected_params != loaded.summary.unique_params:
        found.append(LiveMismatch("", f"unique parameters: the file says {expected_params}, the model "
                                  f"{keras} loads has {loaded.summary.unique_params}"))
    for group in placements(static):
        paths = [member.layer.path for member in group]
        loaded_group = [theirs[path] for path in paths if path in theirs]
        if len(loaded_group) == len(paths) and not all(set(paths) - {m.layer.path} <= set(m.same_as)
                                                       for m in loaded_group):
            found.append(LiveMismatch(
                paths[-1],
                f"{keras} loads {paths} as {len(paths)} independent layers, confirming cross-model-sharing (KS101): "
                "the sharing the model had before saving is lost",
            ))
    return found


@dataclass
class LiveLoad:
    """What loading a file with Keras showed: plain data, computed where the file was loaded."""

    keras: str | None = None
    load_error: str | None = None
    mismatches: list[LiveMismatch] = field(default_factory=list)
    tie_groups: list[list[str]] = field(default_factory=list)
    layers: dict[str, LiveLayer] = field(default_factory=dict)
    """The loaded model's live facts by layer path."""


def _attach(static: ModelReport, layers: dict[str, LiveLayer]) -> None:
    """Give the static layers the loaded layers' live facts (variables matched in order)."""
    for layer in static.layers:
        live = layers.get(layer.layer.path)
        if live is None:
            continue
        layer.live = live
        if len(layer.layer.weights) == len(live.variables):
            for variable, array in zip(live.variables, layer.layer.weights):
                variable.location = array.location


def refuse_bytecode(report: ModelReport) -> None:
    """Raise a ReadError naming where the file carries a serialized Python function, if it carries one: such
    a file is never handed to Keras without ``--unsafe``."""
    if not report.bytecode:
        return
    more = len(report.bytecode) - 1
    also = f" (and {more} more)" if more else ""
    raise ReadError(report.file.path, f"--live will not load it with Keras: {describe_site(report.bytecode[0])}{also} "
                    "holds a serialized Python function that loading could run (unsafe-lambda); "
                    "pass --unsafe only for a file you trust")


def load_and_compare(report: ModelReport, unsafe: bool) -> LiveLoad:
    """Load ``report``'s file with Keras and compare the model with the static reading (in the loading child)."""
    outcome = LiveLoad()
    try:
        keras, load_model = _loader(report)
    except ImportError as error:
        outcome.mismatches.append(LiveMismatch(
            "", f"--live needs Keras (pip install 'keras-share[tensorflow]'): {_one_line(error)}", Severity.WARNING))
        return outcome
    outcome.keras = keras
    try:
        if _holds_sharded_weights(report):
            model = _load_sharded_folder(Path(report.file.path), unsafe)
        else:
            with _loadable(report.file.path, report.file.format) as path:
                model = load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as error:  # noqa: BLE001 - whatever Keras raises is the answer
        outcome.load_error = _one_line(error)
        outcome.mismatches.extend(_load_failure(report, keras, error))
        return outcome
    from keras_share.live.report import live_reports

    loaded = live_reports({report.graph.root.name or os.path.basename(report.file.path): model}, discover=False)[0]
    outcome.mismatches.extend(compare(report, loaded, keras))
    outcome.tie_groups = loaded.live.tie_groups if loaded.live is not None else []
    outcome.layers = {layer.layer.path: layer.live for layer in loaded.layers if layer.live is not None}
    return outcome


def _load_quietly(report: ModelReport, unsafe: bool) -> LiveLoad:
    """``load_and_compare`` in the loading child, its standard output and error sent to the null device: Keras
    and TensorFlow print what they like (names from the file among it); what the report says is this
    child's answer, which the parent renders."""
    quiet = os.open(os.devnull, os.O_WRONLY)
    for stream_fd in (1, 2):
        os.dup2(quiet, stream_fd)
    os.close(quiet)
    return load_and_compare(report, unsafe)


def _keras_imported() -> bool:
    """Whether this process already runs Keras or TensorFlow (a forked child could not use them safely)."""
    return any(name in sys.modules for name in ("tensorflow", "keras", "tf_keras"))


def cross_check(report: ModelReport, unsafe: bool = False, timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Load ``report``'s file with Keras and record every disagreement in ``report.live``.

    Without ``unsafe``, a file carrying a serialized Python function anywhere in its configs is refused
    (``refuse_bytecode``) before anything is handed to Keras. Keras loads the file in a child process
    killed after ``timeout`` seconds (a ReadError then), which alone imports TensorFlow and whose output
    is discarded; a process that already runs Keras (or ``timeout`` None) loads it itself.
    """
    live = LiveModel(source="file")
    report.live = live
    if report.file.config is None or report.file.format.weights_only:
        report.file.notes.append("--live: a weights-only file holds no model for Keras to load; nothing was cross-checked")
        return
    if not unsafe:
        refuse_bytecode(report)
    in_child = timeout is not None and not _keras_imported()
    try:
        outcome = call_with_deadline(partial(_load_quietly if in_child else load_and_compare, report, unsafe),
                                     report.file.path, timeout if in_child else None, LIVE_LOAD_ADDRESS_SPACE_BYTES)
    except ReadError as error:
        raise ReadError(report.file.path, f"--live: loading with Keras failed ({error.problem})") from None
    live.keras, live.load_error, live.tie_groups = outcome.keras, outcome.load_error, outcome.tie_groups
    live.mismatches.extend(outcome.mismatches)
    _attach(report, outcome.layers)

