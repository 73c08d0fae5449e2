"""Truth from Keras about shapes: the output shapes of every call of every layer of a live model, by the
path keras-share gives the layer, and the comparison with keras-share's stored-or-inferred shapes."""

from __future__ import annotations

from typing import Any

from live_truth import _api

from keras_share.analysis.report import ModelReport

Shape = tuple[int | None, ...]


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in _flat(item)]
    if isinstance(value, dict):
        return [tensor for item in value.values() for tensor in _flat(item)]
    return [value]


def _shape(tensor: Any) -> Shape:
    shape = tensor.shape
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return tuple(None if dim is None else int(dim) for dim in dims)


def live_output_shapes(model: Any, generation: int) -> dict[str, list[list[Shape]]]:
    """Per layer path (InputLayers included, as one call), the output shapes of each call in its parent's
    graph, in call order (the node's output tensors, flattened)."""
    api = _api(generation)
    found: dict[str, list[list[Shape]]] = {}

    def visit(parent: Any, prefix: str) -> None:
        for layer in api.children(parent):
            path = f"{prefix}{layer.name}"
            nodes = api.own_nodes(layer, parent)
            if nodes is None:
                found[path] = [[_shape(tensor) for tensor in _flat(layer.output)]]
            else:
                found[path] = [[_shape(tensor) for tensor in _flat(node.outputs)] for node in nodes]
            if api.is_model(layer):
                visit(layer, path + "/")

    visit(model, "")
    return found


def static_output_shapes(report: ModelReport) -> dict[str, list[list[Shape | None] | None]]:
    """Per layer path, keras-share's output shapes of each call Keras keeps (calls reaching no output left out);
    an InputLayer gives its declared shape as its one call."""
    found: dict[str, list[list[Shape | None] | None]] = {}
    for layer in report.layers:
        if layer.layer.kind == "input":
            config = layer.layer.config
            declared = config.get("batch_shape", config.get("batch_input_shape"))
            found[layer.layer.path] = [[tuple(declared) if isinstance(declared, list) else None]]
            continue
        calls = []
        for index, shapes in enumerate(layer.call_shapes):
            if index not in layer.unreachable_calls:
                calls.append(None if shapes is None or shapes.outputs is None else list(shapes.outputs))
        found[layer.layer.path] = calls
    return found


def shape_mismatches(report: ModelReport, model: Any, generation: int,
                     must_know: frozenset[str] = frozenset()) -> list[str]:
    """Lines naming each call whose static output shapes disagree with Keras': a known shape that differs, or
    an unknown one for a layer whose class is in ``must_know``."""
    live = live_output_shapes(model, generation)
    static = static_output_shapes(report)
    classes = {layer.layer.path: layer.layer.class_name for layer in report.layers}
    problems = []
    for path, live_calls in live.items():
        if path not in static:
            continue  # a layer Keras keeps that the file names otherwise: the graph tests cover that
        static_calls = static[path]
        if len(static_calls) != len(live_calls):
            problems.append(f"{path}: {len(live_calls)} calls in Keras, {len(static_calls)} in keras-share")
            continue
        for index, (expected, got) in enumerate(zip(live_calls, static_calls)):
            if got is None or any(shape is None for shape in got):
                if classes.get(path) in must_know:
                    problems.append(f"{path} ({classes[path]}) call {index}: Keras says {expected}, keras-share "
                                    f"does not know ({got})")
                continue
            if [tuple(shape) for shape in got if shape is not None] != expected:
                problems.append(f"{path} ({classes.get(path)}) call {index}: Keras says {expected}, keras-share "
                                f"says {got}")
    return problems
