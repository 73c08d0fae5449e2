"""Analyse live models: the static pipeline (build_graph, analyze) plus what only the objects know.

Live truth replaces the config-based guesses where the objects can say more:

* identity: two paths are one layer when they hold one Python object (``same_as``, ``shared``);
* trainability: a layer trains when one of its variables is in the top model's ``trainable_weights``;
* per layer: calls in other live models' graphs and their names, the model it was taken from;
* per variable: its effective trainable flag and the other layers reaching the same variable object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras_share.analysis.analyze import analyze
from keras_share.analysis.report import (
    LayerReport,
    LiveLayer,
    LiveModel,
    LiveVariable,
    ModelReport,
)
from keras_share.live.census import Census, ModelTree
from keras_share.live.flavors import Flavor, flavor_of
from keras_share.live.reader import LiveReading, live_location, read_live
from keras_share.vocabulary import LayerKind


class NotAModelError(TypeError):
    """An object given as a live model is not a Keras 3 or tf_keras layer or model."""


def is_live_model(obj: Any) -> bool:
    """True for a Keras 3 or tf_keras layer or model object (imports no Keras)."""
    return flavor_of(obj) is not None


def name_models(target: Any) -> dict[str, Any]:
    """``name -> model`` for one model, a list/tuple of models, or a dict of them (keys become names)."""
    if isinstance(target, Mapping):
        items = [(str(key), value) for key, value in target.items()]
    elif isinstance(target, (list, tuple)):
        items = [(str(getattr(model, "name", f"model_{index}")), model) for index, model in enumerate(target)]
    else:
        items = [(str(getattr(target, "name", "model")), target)]
    named: dict[str, Any] = {}
    for name, model in items:
        if not is_live_model(model):
            raise NotAModelError(f"{name!r} is a {type(model).__name__}, not a Keras 3 or tf_keras model")
        unique, count = name, 1
        while unique in named:
            count += 1
            unique = f"{name}#{count}"
        named[unique] = model
    return named


def _identity(report: ModelReport, reading: LiveReading) -> None:
    """``same_as`` and the object's calls by Python identity."""
    groups: dict[int, list[LayerReport]] = {}
    for layer in report.layers:
        obj = reading.objects.get(layer.layer.path)
        # InputLayers are never called and hold nothing: one per path, as in reports of files
        key = id(obj) if obj is not None and layer.layer.kind != LayerKind.INPUT else id(layer)
        groups.setdefault(key, []).append(layer)
    for members in groups.values():
        total = sum(member.effective_calls for member in members)
        for member in members:
            member.object_calls = total
            member.same_as = [other.layer.path for other in members if other is not member]
    report.summary.shared_layers = sum(1 for layer in report.layers if layer.shared)


def _trainability(report: ModelReport, reading: LiveReading, trainable_ids: set[int]) -> None:
    for layer in report.layers:
        variables = reading.variables.get(layer.layer.path)
        if variables:
            layer.trainable = any(id(variable) in trainable_ids for variable in variables)
    by_path = {layer.layer.path: layer for layer in report.layers}
    for layer in reversed(report.layers):
        if layer.layer.is_model:
            inner = [by_path[path] for path in layer.layer.children if path in by_path]
            weighted = [child for child in inner if child.layer.weights or child.layer.is_model]
            if weighted:
                layer.trainable = any(child.trainable for child in weighted)


def _ties(report: ModelReport, reading: LiveReading) -> dict[int, list[str]]:
    """Variable id -> ``path/name`` of each distinct layer object that reaches it (ties have 2 or more)."""
    holders: dict[int, list[str]] = {}
    seen_objects: set[int] = set()
    for layer in report.layers:
        obj = reading.objects.get(layer.layer.path)
        if obj is None or id(obj) in seen_objects:
            continue
        seen_objects.add(id(obj))
        for variable, array in zip(reading.variables.get(layer.layer.path, []), layer.layer.weights):
            holders.setdefault(id(variable), []).append(f"{layer.layer.path}/{array.name}")
    return {key: names for key, names in holders.items() if len(names) > 1}


def _usage(layer_obj: Any, flavor: Flavor, tree: ModelTree, others: list[ModelTree]) -> tuple[int, list[str], tuple[str, str] | None]:
    """External calls, other models' names, and (model, path) of the model that called it first."""
    external = 0
    names: list[str] = []
    origin: tuple[str, str] | None = None
    for index, node in enumerate(flavor.inbound_nodes(layer_obj)):
        owners = [other for other in others if id(node) in other.node_ids]
        for other in owners:
            if other.name not in names:
                names.append(other.name)
        inside = id(node) in tree.node_ids
        if not inside and owners:
            external += 1
            if index == 0:
                origin = (owners[0].name, owners[0].paths.get(id(layer_obj), getattr(layer_obj, "name", "")))
    return external, names, origin


def _repeat_notes(report: ModelReport, reading: LiveReading) -> None:
    if not reading.repeats:
        return
    stale = {f"duplicate layer name {path!r}: only the first entry is used" for path in reading.repeats}
    report.graph.notes[:] = [note for note in report.graph.notes if note not in stale]
    for path, count in reading.repeats.items():
        layer = report.graph.layers.get(path)
        if layer is not None:  # each listing is one call, in order
            for index, call in enumerate(layer.call_sites):
                call.index = index
        parent = path.rpartition("/")[0] or report.graph.root.name
        report.graph.notes.append(
            f"{path!r} is one layer object listed {count} times in Sequential {parent!r}: it runs {count} times "
            "here, but a saved file keeps it once"
        )


def analyze_reading(reading: LiveReading, tree: ModelTree, census: Census, inspected_with: list[str]) -> ModelReport:
    """Run the static analysis on a live reading and replace its guesses with the objects' truth."""
    report = analyze(reading.model_file)
    flavor = reading.flavor
    _identity(report, reading)
    trainable_ids = {id(variable) for variable in flavor.trainable_variables(reading.model)}
    _trainability(report, reading, trainable_ids)
    ties = _ties(report, reading)
    others = census.others(tree)
    values: dict[str, object] = {}
    first_path: dict[int, str] = {}
    for layer in report.layers:
        obj = reading.objects.get(layer.layer.path)
        if obj is None or layer.layer.kind == LayerKind.INPUT:
            continue
        home = first_path.setdefault(id(obj), layer.layer.path)
        variables = reading.variables.get(layer.layer.path, [])
        live_variables = []
        for variable, array in zip(variables, layer.layer.weights):
            values[array.location] = variable
            me = f"{home}/{array.name}"
            live_variables.append(LiveVariable(
                name=array.name, location=live_location(variable), trainable=id(variable) in trainable_ids,
                tied_with=[name for name in ties.get(id(variable), []) if name != me],
            ))
        external, names, origin = _usage(obj, flavor, tree, others)
        layer.live = LiveLayer(external_calls=external, other_models=names, variables=live_variables)
        if origin is not None:
            layer.live.origin_model, layer.live.origin_path = origin
            layer.transferred_from = origin[1]
    _repeat_notes(report, reading)
    report.live = LiveModel(
        source="object", keras=f"{flavor.name} {flavor.version}", inspected_with=inspected_with,
        tie_groups=sorted(sorted(names) for names in ties.values()), values=values,
    )
    return report


def live_reports(models: Mapping[str, Any], *, source: str | None = None, discover: bool = True) -> list[ModelReport]:
    """Reports of live models inspected together (sharing across them is reported), in the given order.

    ``source`` names where the models came from (a ``--call package.module:function`` spec): each report's
    ``file`` is ``source[name]``, or ``live:name`` without a source. ``discover`` also looks for other
    live models in the process (through the garbage collector) that share layers with these.
    """
    flavored: dict[str, tuple[Any, Flavor]] = {}
    for name, model in models.items():
        flavor = flavor_of(model)
        if flavor is None:
            raise NotAModelError(f"{name!r} is a {type(model).__name__}, not a Keras 3 or tf_keras model")
        flavored[name] = (model, flavor)
    census = Census(flavored, discover=discover)
    reports = []
    for name, (model, flavor) in flavored.items():
        label = f"{source}[{name}]" if source else f"live:{name}"
        reading = read_live(model, flavor, label)
        tree = census.tree_of(model)
        reports.append(analyze_reading(reading, tree, census, [other for other in flavored if other != name]))
    return reports


def live_report(model: Any, *, name: str | None = None, discover: bool = True) -> ModelReport:
    """The report of one live model."""
    return live_reports({name or str(getattr(model, "name", "model")): model}, discover=discover)[0]
