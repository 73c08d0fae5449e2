"""Would ``model.load_weights(weights_file)`` fit the model? Decided statically, by the loader's own rules.

The loader is picked as Keras picks it, by the weights file's name and the Keras that loads the model (the one
that wrote it):

* Keras 3, ``.weights.h5`` / ``.weights.json`` / ``.keras``: ``saving_lib.load_weights_only`` walks the model and
  reads each layer's variables from the ``vars`` group at the layer's path (``layers/dense_1/vars``). A layer whose
  group holds another number of arrays, or an array of another shape, fails; the other layers still load, then
  load_weights raises (``skip_mismatch=True``: warns) and the failed layers keep their initial values. Groups no
  layer reads are ignored without a word. The model's paths are those its own ``.keras`` file stores.
* Keras 3 ``.h5`` / ``.hdf5``, tf_keras any ``.h5`` (a ``save_weights`` file listing ``layer_names``):
  ``load_weights_from_hdf5_group`` pairs the model's top-level layers that have weights with the file's layers
  that have weights, in order; another count of layers, another count of arrays for a layer or another shape
  raises. ``by_name=True`` pairs them by name instead: a model layer the file does not name keeps its initial
  values and a file layer no model layer is named after is ignored (both silently); counts and shapes raise
  (``skip_mismatch=True``: warn and skip the layer or the array).

Arrays are compared by count and shape, in the order each loader assigns them (``_legacy_weights`` for ``.h5``:
a layer's trainable weights, then its non-trainable ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from keras_share.analysis.report import LayerReport, ModelReport
from keras_share.read.base import ModelFile, WeightArray
from keras_share.vocabulary import Format

KERAS3_WEIGHTS_SUFFIXES = (".weights.h5", ".weights.json", ".keras")
"""Names Keras 3's ``load_weights`` reads by path (``saving_lib.load_weights_only``)."""
LEGACY_SUFFIXES = (".h5", ".hdf5")
"""Other names it (and tf_keras) reads as a legacy HDF5 file, by layer order or ``by_name``."""
VARS_LAYOUT_FORMATS = (Format.KERAS, Format.KERAS_DIR, Format.WEIGHTS_H5)
"""Formats whose arrays are stored in ``vars`` groups at the paths ``load_weights_only`` reads."""
NON_TRAINABLE_VARIABLES = frozenset({"moving_mean", "moving_variance", "mean", "variance", "count"})
"""Variables Keras creates non-trainable (BatchNormalization's statistics, Normalization's): ``_legacy_weights``
puts them after a layer's trainable weights."""
_VARS_LOCATION = re.compile(r"(?:[^/:]*:)?/?(?P<group>(?:.*/)?vars)/(?P<index>[^/]+)")
"""A ``vars``-layout array location, ``model.weights.h5:/layers/dense/vars/0`` or ``/layers/dense/vars/0``."""


@dataclass(frozen=True)
class WeightsMismatch:
    """One place where the weights file does not fit the model, as the loader sees it."""

    layer: str
    """Path of the model layer concerned; ``""`` for the whole model or a part of the file no layer reads."""
    message: str
    raises: bool
    """True when ``load_weights`` raises over it (by default); False when it goes on (the layer keeps its initial
    values, or the file's arrays are not used)."""


@dataclass
class WeightsCheck:
    """What ``load_weights(weights_file)`` would do to one model."""

    weights_path: str
    loader: str
    """How the loader pairs arrays with layers, in words (``Keras 3 load_weights, by path``)."""
    mismatches: list[WeightsMismatch] = field(default_factory=list)
    unchecked: str | None = None
    """Why the file could not be checked against the model (None: it was)."""


def check_weights(report: ModelReport, weights: ModelFile, by_name: bool = False) -> WeightsCheck:
    """Pair the arrays of ``weights`` with the layers of ``report`` as ``load_weights`` would."""
    name = weights.path.rstrip("/")
    generation = report.file.keras_generation
    if generation == 3 and name.endswith(KERAS3_WEIGHTS_SUFFIXES):
        check = WeightsCheck(weights.path, "Keras 3 load_weights, by path")
        if by_name:
            check.mismatches.append(WeightsMismatch("", "load_weights raises: by_name is accepted only for a legacy "
                                                    ".h5 or .hdf5 file", raises=True))
        elif report.file.format not in (Format.KERAS, Format.KERAS_DIR):
            check.unchecked = ("the model is not a .keras file, so the paths Keras 3 reads its weights from are not "
                               "known statically")
        else:
            check.mismatches.extend(_by_path(report, weights))
        return check
    legacy = name.endswith(LEGACY_SUFFIXES) and (generation == 2 or not name.endswith(".weights.h5"))
    if legacy:
        loader = "Keras 3" if generation == 3 else "tf_keras"
        check = WeightsCheck(weights.path, f"{loader} load_weights, legacy HDF5 "
                             f"{'by layer name' if by_name else 'by layer order'}")
        if weights.format != Format.H5_WEIGHTS:
            check.unchecked = "the weights file is not a legacy save_weights file (no layer_names list)"
        elif by_name:
            check.mismatches.extend(_legacy_by_name(report, weights))
        else:
            check.mismatches.extend(_legacy_by_order(report, weights))
        return check
    return WeightsCheck(weights.path, "none", unchecked=f"{'Keras 3' if generation == 3 else 'tf_keras'} "
                        "load_weights does not read a file of this name into this model")


# --------------------------------------------------------------------------
# Keras 3: by path
# --------------------------------------------------------------------------


def _vars_groups(file: ModelFile) -> dict[str, list[WeightArray]]:
    """The file's layer arrays by ``vars`` group path (``layers/dense``; ``""`` for the top model), in index order."""
    groups: dict[str, list[WeightArray]] = {}
    arrays = [array for each in (file.weights.by_layer, file.weights.unattached) for held in each.values()
              for array in held]
    seen: set[str] = set()
    for array in arrays:
        match = _VARS_LOCATION.fullmatch(array.location)
        if match is None or array.location in seen:
            continue
        seen.add(array.location)
        group = match.group("group").removesuffix("vars").rstrip("/")
        groups.setdefault(group, []).append(array)
    return groups


def _index_of(array: WeightArray) -> str:
    return array.location.rpartition("/")[2]


def _group_owners(report: ModelReport) -> dict[str, str]:
    """The path of the model layer whose variables each ``vars`` group holds (the first of a layer's places)."""
    owners: dict[str, str] = {}
    for layer in report.layers:
        for array in layer.layer.weights:
            match = _VARS_LOCATION.fullmatch(array.location)
            if match is not None:
                owners.setdefault(match.group("group").removesuffix("vars").rstrip("/"), layer.layer.path)
    return owners


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _by_path(report: ModelReport, weights: ModelFile) -> Iterator[WeightsMismatch]:
    expected = _vars_groups(report.file)
    stored = _vars_groups(weights) if weights.format in VARS_LAYOUT_FORMATS else {}
    owners = _group_owners(report)
    left = ("load_weights raises after loading the other layers; with skip_mismatch=True it warns, and either way "
            "this layer keeps its initial values")
    for group, arrays in expected.items():
        layer = owners.get(group, group)
        found = stored.get(group, [])
        if len(found) != len(arrays):
            held = f"holds {len(found)}" if found else "holds none"
            yield WeightsMismatch(layer, f"expects {len(arrays)} arrays at {group or '/'}/vars, the weights file "
                                  f"{held}: {left}", raises=True)
            continue
        by_index = {_index_of(array): array for array in found}
        for position, array in enumerate(arrays):
            other = by_index.get(str(position))
            if other is None:
                yield WeightsMismatch(layer, f"the weights file has no array {position} at {group or '/'}/vars: "
                                      f"{left}", raises=True)
                break
            if other.shape != array.shape:
                yield WeightsMismatch(layer, f"array {position} ({array.name}) has shape {_shape(array.shape)}, the "
                                      f"weights file's {_shape(other.shape)}: {left}", raises=True)
                break
    for group, arrays in stored.items():
        if group not in expected:
            yield WeightsMismatch("", f"the weights file's {len(arrays)} arrays at {group or '/'}/vars are not loaded: "
                                  "no layer of the model is at that path, and load_weights ignores them silently",
                                  raises=False)


# --------------------------------------------------------------------------
# Legacy HDF5: by order, by name
# --------------------------------------------------------------------------


def _legacy_weights(top: LayerReport, by_path: dict[str, LayerReport]) -> list[WeightArray]:
    """``_legacy_weights(layer)`` of a top-level layer: its and its sublayers' arrays, trainable ones first."""
    trainable: list[WeightArray] = []
    frozen: list[WeightArray] = []
    pending = [top]
    while pending:
        current = pending.pop(0)
        for array in current.layer.weights:
            (trainable if current.trainable and array.name not in NON_TRAINABLE_VARIABLES else frozen).append(array)
        pending[:0] = [by_path[child] for child in current.layer.children if child in by_path]
    return trainable + frozen


def _model_layers(report: ModelReport) -> list[tuple[LayerReport, list[WeightArray]]]:
    """The top model's layers (``model.layers``, in order), each with its legacy-ordered arrays."""
    by_path = {layer.layer.path: layer for layer in report.layers}
    tops = [by_path[path] for path in report.graph.root.children if path in by_path]
    return [(layer, _legacy_weights(layer, by_path)) for layer in tops if layer.layer.runs_on_tensors]


def _file_layers(weights: ModelFile) -> list[tuple[str, list[WeightArray]]]:
    """The file's layers that list weights, in ``layer_names`` order."""
    return [(group, arrays) for group, arrays in weights.weights.unattached.items() if arrays]


def _compare_arrays(layer: LayerReport, arrays: list[WeightArray], stored: list[WeightArray], saved_as: str,
                    by_name: bool) -> Iterator[WeightsMismatch]:
    skip = ("with skip_mismatch=True it warns and skips {what}, which keeps its initial values" if by_name else
            "skip_mismatch=True skips {what}, which keeps its initial values")
    if len(stored) != len(arrays):
        yield WeightsMismatch(layer.layer.path, f"expects {len(arrays)} arrays, the weights file's layer "
                              f"{saved_as!r} holds {len(stored)}: load_weights raises"
                              + ("; " + skip.format(what="the layer") if by_name else ""), raises=True)
        return
    for position, (array, other) in enumerate(zip(arrays, stored)):
        if array.shape != other.shape:
            yield WeightsMismatch(layer.layer.path, f"array {position} ({array.name}) has shape "
                                  f"{_shape(array.shape)}, the weights file's layer {saved_as!r} stores "
                                  f"{_shape(other.shape)}: load_weights raises; " + skip.format(what="the array"),
                                  raises=True)


def _legacy_by_order(report: ModelReport, weights: ModelFile) -> Iterator[WeightsMismatch]:
    model_layers = [(layer, arrays) for layer, arrays in _model_layers(report) if arrays]
    file_layers = _file_layers(weights)
    if len(model_layers) != len(file_layers):
        yield WeightsMismatch("", f"the model has {len(model_layers)} layers with weights, the weights file "
                              f"{len(file_layers)}: load_weights raises before loading any (layers are paired by "
                              "order; by_name=True pairs them by name)", raises=True)
        return
    for (layer, arrays), (saved_as, stored) in zip(model_layers, file_layers):
        yield from _compare_arrays(layer, arrays, stored, saved_as, by_name=False)


def _legacy_by_name(report: ModelReport, weights: ModelFile) -> Iterator[WeightsMismatch]:
    model_layers, file_layers = _model_layers(report), dict(_file_layers(weights))
    for layer, arrays in model_layers:
        stored = file_layers.get(layer.layer.name)
        if stored is None and arrays:
            yield WeightsMismatch(layer.layer.path, "the weights file has no layer of this name: "
                                  "load_weights(by_name=True) skips it silently, and it keeps its initial values",
                                  raises=False)
        elif stored is not None:
            yield from _compare_arrays(layer, arrays, stored, layer.layer.name, by_name=True)
    names = {layer.layer.name for layer, _ in model_layers}
    for saved_as, stored in file_layers.items():
        if saved_as not in names:
            yield WeightsMismatch("", f"the weights file's layer {saved_as!r} ({len(stored)} arrays) is not loaded: "
                                  "no layer of the model has that name, and load_weights(by_name=True) ignores it "
                                  "silently", raises=False)
