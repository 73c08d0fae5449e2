"""Sharing, weight identity and effective trainability of a rebuilt graph."""

from __future__ import annotations

from typing import NamedTuple

from keras_share import configs
from keras_share.analysis import keras_hub
from keras_share.analysis.params import count_params
from keras_share.analysis.report import LayerReport, ModelReport, ModuleReference, Summary
from keras_share.analysis.shapes import CallShapesByKey, infer_shapes
from keras_share.errors import ReadError
from keras_share.graph.build import build_graph
from keras_share.graph.model import Graph, Layer
from keras_share.limits import MAX_SAME_LAYER_CHARACTERS
from keras_share.read.base import BytecodeSite, ModelFile
from keras_share.vocabulary import Format

LAZY_SUBLAYER_CLASSES = frozenset({"MultiHeadAttention"})
"""Keras 3 classes that build their sublayers after ``from_config`` restored ``trainable=False``: the
sublayers' variables come back trainable (tests/test_live_truth.py, frozen MultiHeadAttention)."""


def own_trainable(graph: Graph, layer: Layer, model_file: ModelFile, frozen_by: str | None) -> bool:
    """Whether a layer's weights train once the file is loaded by the Keras that wrote it.

    * Keras 3 honours each layer's own flag; among the enclosing models only the top model's flag
      counts (``trainable_weights`` of the top model), and a top-level Sequential forgets its flag
      on load. A frozen MultiHeadAttention comes back trainable (``LAZY_SUBLAYER_CLASSES``).
    * tf_keras loading ``.h5`` or ``.keras`` drops every model's flag (``Model.from_config``), so
      only the layer's own flag counts; a SavedModel keeps them, and a frozen model freezes all it
      contains (``frozen_by``: the nearest enclosing model whose own flag is false, or None); a SavedModel
      also records each variable's own flag, and a layer with no trainable variable does not train.
    """
    if model_file.keras_generation == 3:
        flag = layer.trainable_flag or layer.class_name in LAZY_SUBLAYER_CLASSES
        return flag and (graph.root.trainable_flag or graph.root.kind == "sequential")
    if model_file.format == Format.SAVEDMODEL:
        return layer.trainable_flag and frozen_by is None and _has_trainable_variable(layer)
    return layer.trainable_flag


def _has_trainable_variable(layer: Layer) -> bool:
    """False for a layer whose every array is known to be a non-trainable variable (a Normalization layer's
    statistics): Keras never trains those, whatever the flags."""
    return not layer.weights or any(array.trainable is not False for array in layer.weights)


def _frozen_models(graph: Graph) -> dict[str, str | None]:
    """For the top model and each nested model: the path of itself or its nearest enclosing model whose own flag
    is ``trainable: false``, or None (one pass, parents first)."""
    frozen: dict[str, str | None] = {"": None if graph.root.trainable_flag else ""}
    for layer in graph.layers.values():
        if layer.is_model:
            frozen[layer.path] = layer.path if not layer.trainable_flag else frozen.get(layer.parent or "")
    return frozen


class _OwnPath(NamedTuple):
    """A layer that is one object wherever it is placed, named by its (canonical) path."""

    path: str


class _StoredArrays(NamedTuple):
    """A layer that is the object holding these stored arrays (the same arrays at two paths: one layer)."""

    locations: tuple[str, ...]


class _NestedLayers(NamedTuple):
    """A nested model that is the set of its layers' objects, each named by a number."""

    members: tuple[int, ...]


ObjectKey = _OwnPath | _StoredArrays | _NestedLayers
"""What makes two layer paths one layer object once the file is loaded."""


def _object_keys(graph: Graph, model_file: ModelFile) -> dict[str, ObjectKey]:
    """Group paths that are one layer object once the file is loaded.

    Where weights were read, a layer is its stored arrays (the same arrays at two paths are one layer) and a
    nested model is the set of its layers' arrays; a weightless layer placed twice loads as two copies. A
    SavedModel restores shared objects, weightless ones too, and two layers may hold one variable there (arrays
    do not tell objects apart): an entry carrying ``shared_object_id`` that repeats an earlier class and name is
    that entry, and so is everything below it.
    """
    keys: dict[str, ObjectKey] = {}
    if model_file.format == Format.SAVEDMODEL:
        canonical: dict[str, str] = {}
        first: dict[tuple[str, str], str] = {}
        for layer in graph.layers.values():
            identity = (layer.class_name, layer.name)
            parent = canonical.get(layer.parent or "", layer.parent or "")
            if parent != (layer.parent or ""):
                canonical[layer.path] = f"{parent}/{layer.name}" if parent else layer.name
            elif layer.shared_object_id is not None and identity in first:
                canonical[layer.path] = first[identity]
            else:
                canonical[layer.path] = layer.path
            first.setdefault(identity, layer.path)
            keys[layer.path] = _OwnPath(canonical[layer.path])
        return keys
    numbers: dict[ObjectKey, int] = {}  # a nested model names its layers' keys by number: no nesting
    for layer in reversed(graph.layers.values()):
        if layer.weights:
            keys[layer.path] = _StoredArrays(tuple(array.location for array in layer.weights))
        elif layer.is_model:
            inner = tuple(sorted(numbers.setdefault(keys[child], len(numbers))
                                 for child in layer.children if not isinstance(keys[child], _OwnPath)))
            keys[layer.path] = _NestedLayers(inner) if inner else _OwnPath(layer.path)
        else:
            keys[layer.path] = _OwnPath(layer.path)
    return keys


def _traced_models(graph: Graph) -> tuple[list[Layer], set[str]]:
    """The top model and every nested model, and the paths of those whose graph Keras maps back from outputs the
    file lists (Functional models whose ``output_layers`` all name a call)."""
    models = [graph.root, *(layer for layer in graph.layers.values() if layer.is_model)]
    return models, {model.path for model in models if model.kind == "functional" and model.outputs is not None}


def calls_feeding_outputs(graph: Graph) -> dict[str, set[int]]:
    """For every layer: the indices of its calls whose result an output of its own model uses (the data flow from
    the model's outputs back, whatever Keras then runs). Inside a Sequential, and in a Functional whose outputs the
    file does not list, every call counts. One pass over the call sites: each call is visited once."""
    models, traced = _traced_models(graph)
    reached: dict[str, set[int]] = {}
    for layer in graph.layers.values():
        if (layer.parent or "") not in traced:
            reached[layer.path] = set(range(layer.calls))
        else:
            reached[layer.path] = set()
    pending = [(ref.layer, ref.call) for model in models if model.path in traced
               for ref in model.outputs or [] if ref.call is not None]
    while pending:
        path, call = pending.pop()
        producer = graph.layers.get(path)
        if producer is None or call >= producer.calls or call in reached[path] or (producer.parent or "") not in traced:
            continue  # an InputLayer has no call to reach
        reached[path].add(call)
        pending.extend((ref.layer, ref.call) for ref in producer.call_sites[call].inputs if ref.call is not None)
    return reached


def calls_reaching_outputs(graph: Graph, keras_generation: int, feeding: dict[str, set[int]]) -> dict[str, set[int]]:
    """For every layer: the indices of its calls that are in the graph Keras rebuilds for its own model.

    Keras maps that graph back from the model's outputs (Keras 3 ``Function``, tf_keras ``_map_graph_network``):
    a call whose result no output uses is not part of it (``calls_feeding_outputs``). tf_keras then adds back
    layers that reach no output at all (``connect_ancillary_layers``): when a model has one, every call of every
    layer in it is part of its graph, except the first call of a nested model numbered from 1 (tf_keras skips it
    as if it were that model's own node 0). ``feeding`` is ``calls_feeding_outputs(graph)``, left unchanged.
    """
    if keras_generation != 2:
        return feeding
    reached = dict(feeding)  # the ancillary calls replace a layer's set, never change it
    models, traced = _traced_models(graph)
    _add_ancillary_calls(graph, models, traced, reached)
    return reached


def _add_ancillary_calls(graph: Graph, models: list[Layer], traced: set[str], reached: dict[str, set[int]]) -> None:
    """tf_keras's ``connect_ancillary_layers`` on each traced model that has a layer reaching no output."""
    for model in models:
        if model.path not in traced:
            continue
        children = [graph.layers[path] for path in model.children if path in graph.layers]
        if all(reached[child.path] or child.kind == "input" for child in children):
            continue
        for child in children:
            skipped = {0} if child.numbered_from and 0 not in reached[child.path] else set()
            reached[child.path] = set(range(child.calls)) - skipped


class GraphFacts(NamedTuple):
    """What the layer graph alone says, before any weights are attached: ``analyze_graph`` takes them ready when
    they were worked out while the reader child still read the weights."""

    shapes: CallShapesByKey
    feeding: dict[str, set[int]]
    """``calls_feeding_outputs`` of the graph."""


def graph_facts(graph: Graph) -> GraphFacts:
    """The call shapes and the calls feeding outputs of ``graph`` (neither depends on its weights)."""
    return GraphFacts(infer_shapes(graph), calls_feeding_outputs(graph))


def analyze_graph(model_file: ModelFile, graph: Graph, facts: GraphFacts | None = None) -> ModelReport:
    """Effective calls, sharing, identity and trainability for every layer of ``graph``; ``facts``, when given,
    are ``graph_facts(graph)`` (worked out while the weights were read)."""
    stored_groups = {**model_file.weights.unattached}
    configured = graph
    graph = keras_hub.preset_graph(model_file, graph)
    if facts is None or graph is not configured:
        facts = graph_facts(graph)
    shapes, feeding = facts
    effective: dict[str, int] = {"": 1}
    frozen = _frozen_models(graph)
    reached = calls_reaching_outputs(graph, model_file.keras_generation, feeding)
    reports: list[LayerReport] = []
    for layer in graph.layers.values():
        live = reached[layer.path]
        effective[layer.path] = len(live) * effective.get(layer.parent or "", 1)
        frozen_by = frozen.get(layer.parent or "")
        reports.append(LayerReport(layer=layer, effective_calls=effective[layer.path], frozen_by=frozen_by,
                                   trainable=own_trainable(graph, layer, model_file, frozen_by),
                                   unreachable_calls=[index for index in range(layer.calls) if index not in live]))
    keys = _object_keys(graph, model_file)
    members: dict[ObjectKey, list[LayerReport]] = {}
    for report in reports:
        members.setdefault(keys[report.layer.path], []).append(report)
    groups = [group for group in members.values() if len(group) > 1]
    listed = sum((len(group) - 1) * sum(len(report.layer.path) + 1 for report in group) for group in groups)
    if listed > MAX_SAME_LAYER_CHARACTERS:
        raise ReadError(model_file.path, f"config too large: {listed:,} characters of paths that name one layer "
                        f"object several times (limit {MAX_SAME_LAYER_CHARACTERS:,})")
    for group in members.values():
        total = sum(report.effective_calls for report in group)
        for report in group:
            report.object_calls = total
    for group in groups:
        for report in group:
            report.same_as = [other.layer.path for other in group if other is not report]
    _mark_shared_via(reports)
    for report in reports:
        report.call_shapes = [shapes.get((report.layer.path, call.index)) for call in report.layer.call_sites]
    _containers_train_with_their_layers(reports)
    seen: set[str] = set()
    unique = 0
    for report in reports:
        for array in report.layer.weights:
            if array.location not in seen:
                seen.add(array.location)
                unique += array.size
    unattached = sum(array.size for arrays in model_file.weights.unattached.values() for array in arrays)
    known = graph.has_graph or graph.from_class_table
    summary = Summary(
        layers=sum(1 for report in reports if report.layer.kind not in ("input", "op")) if known else None,
        shared_layers=sum(1 for report in reports if report.shared) if known else None,
        unique_params=unique + unattached,
        naive_params=sum(report.param_count * report.effective_calls for report in reports) + unattached
        if known else None,
        optimizer_arrays=len(model_file.weights.optimizer),
    )
    count_params(reports, summary, known)
    preset = keras_hub.preset_report(model_file, graph, stored_groups)
    summary.tied_embeddings = (preset.tied_embeddings if preset is not None
                               else keras_hub.tied_embeddings([report.layer for report in reports]))
    return ModelReport(file=model_file, graph=graph, layers=reports, summary=summary,
                       bytecode=bytecode_sites(model_file, graph), preset=preset,
                       module_references=module_references(model_file, graph), calls_feeding_outputs=feeding)


def bytecode_sites(model_file: ModelFile, graph: Graph) -> list[BytecodeSite]:
    """Every serialized Python function in the file's configs, placed on the layer whose config holds it.

    The model config is walked whole (``configs.bytecode_sites``), so a Lambda inside a wrapper, a nested
    model or any other config is found. A site a reader found outside it (a SavedModel's other metadata
    nodes) is placed on the deepest graph layer its path names, and kept unless that layer already has one.
    """
    found: list[BytecodeSite] = []
    if not model_file.config_bytecode_free:
        layer_of = {id(layer.config): layer.path for layer in graph.layers.values()}
        layer_of[id(graph.root.config)] = ""
        found = [BytecodeSite(layer, location) for layer, location in configs.bytecode_sites(model_file.config, layer_of)]
    if len(found) == configs.MAX_BYTECODE_SITES:
        model_file.notes.append(f"more serialized Python functions than the {configs.MAX_BYTECODE_SITES} listed")
    placed = {site.layer for site in found}
    for site in model_file.bytecode:
        parts = site.layer.split("/")
        owner = next((path for path in ("/".join(parts[:end]) for end in range(len(parts), 0, -1))
                      if path in graph.layers), "")
        if owner not in placed:
            placed.add(owner)
            found.append(BytecodeSite(owner, site.location, site.source))
    return found


NAMED_CUSTOM_OBJECTS = 5
"""Custom objects the note about them names."""


def module_references(model_file: ModelFile, graph: Graph) -> list[ModuleReference]:
    """Every reference by module outside Keras's own in the model config (its compile config included) and in the
    ``training_config`` beside it, placed on the layer whose entry holds it; custom objects are also named in one
    note."""
    found: list[ModuleReference] = []
    if model_file.config is not None and not model_file.config_module_free:
        layer_of = {id(layer.config): layer.path for layer in graph.layers.values()}
        layer_of[id(graph.root.config)] = ""
        found = [ModuleReference(layer, location, module, name, kind == "unsafe")
                 for kind, layer, location, module, name in configs.module_references(model_file.config, layer_of)]
    if model_file.training_config is not None:
        found += [ModuleReference(layer, location, module, name, kind == "unsafe")
                  for kind, layer, location, module, name in configs.module_references(
                      {"training_config": model_file.training_config}, limit=configs.MAX_MODULE_REFERENCES - len(found))]
    if len(found) == configs.MAX_MODULE_REFERENCES:
        model_file.notes.append(f"more references to modules outside Keras than the {configs.MAX_MODULE_REFERENCES} listed")
    custom = list(dict.fromkeys(".".join(part for part in (reference.module, reference.name) if part)
                                for reference in found if not reference.unsafe))
    if custom:
        more = f" and {len(custom) - NAMED_CUSTOM_OBJECTS} more" if len(custom) > NAMED_CUSTOM_OBJECTS else ""
        model_file.notes.append("custom objects (Keras needs their code to load the file): "
                                + ", ".join(repr(name) for name in custom[:NAMED_CUSTOM_OBJECTS]) + more)
    return found


def _mark_shared_via(reports: list[LayerReport]) -> None:
    """Set ``shared_via`` on each shared layer that a shared enclosing model runs as often as it runs itself
    (one pass, parents first: a layer inherits its parent's outermost such model, or takes its parent)."""
    by_path = {report.layer.path: report for report in reports}
    for report in reports:
        parent = by_path.get(report.layer.parent or "")
        if parent is None or not report.shared or not parent.shared or parent.object_calls != report.object_calls:
            continue
        report.shared_via = parent.shared_via or parent.layer.path


def _containers_train_with_their_layers(reports: list[LayerReport]) -> None:
    """A nested model trains when any weight-bearing layer inside it does."""
    by_path = {report.layer.path: report for report in reports}
    for report in reversed(reports):
        if not report.layer.is_model:
            continue
        inner = [by_path[path] for path in report.layer.children]
        weighted = [child for child in inner if child.layer.weights or child.layer.is_model]
        if weighted:
            report.trainable = any(child.trainable for child in weighted)


def analyze(model_file: ModelFile) -> ModelReport:
    """Rebuild the graph of a read file and analyse it."""
    return analyze_graph(model_file, build_graph(model_file))

