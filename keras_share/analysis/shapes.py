"""Input and output shapes of every call, from the file where it stores them and inferred elsewhere.

Shapes flow through each model's graph in call order, from its inputs' declared shapes, through
``layer_shapes.output_shapes`` for a layer and through the nested model's own graph for a call of a nested model
(each call with its own input shapes). A nested model's own layers show the shapes of its own graph, as Keras
prints them. Unknown stays None; every call is evaluated once, plus a bounded number of re-runs of a nested
model called on other shapes than its own inputs."""

from __future__ import annotations

from dataclasses import dataclass

from keras_share.analysis.layer_shapes import output_shapes
from keras_share.graph.model import Graph, Layer, Shape, TensorRef
from keras_share.graph.nodes import io_refs
from keras_share.vocabulary import LayerKind

STORED = "stored"
INFERRED = "inferred"

RERUN_BUDGET_FACTOR = 2
"""Calls evaluated again for nested models called on other shapes, at most this many times the graph's calls."""


@dataclass(frozen=True)
class CallShapes:
    """The shapes of one call: each input (positional and keyword, as ``CallSite.inputs``) and each output
    tensor, with where each comes from (``stored`` in the file, ``inferred`` here, or None: unknown)."""

    inputs: list[Shape | None]
    input_sources: list[str | None]
    outputs: list[Shape | None] | None
    """None when not even the number of output tensors is known."""
    output_sources: list[str | None] | None


_Key = tuple[str, int]
"""A call: (layer path, call index)."""
CallShapesByKey = dict[_Key, CallShapes]
"""Every call's shapes by (layer path, call index): what ``infer_shapes`` gives."""


class _Propagation:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.stored_outputs: dict[tuple[str, int, int], Shape] = {}
        for layer in graph.layers.values():
            for call in layer.call_sites:
                for ref in call.inputs:
                    if ref.shape is not None and ref.call is not None:
                        self.stored_outputs.setdefault((ref.layer, ref.call, ref.tensor), ref.shape)
        self.results: dict[_Key, CallShapes] = {}
        self.orders: dict[str, list[tuple[Layer, int]]] = {}
        self.recorded: set[str] = set()
        self.memo: dict[tuple[str, tuple[Shape | None, ...]], list[Shape | None] | None] = {}
        total_calls = sum(layer.calls for layer in graph.layers.values())
        self.budget = RERUN_BUDGET_FACTOR * total_calls + 64

    def order(self, model: Layer) -> list[tuple[Layer, int]]:
        """The calls of a model's layers, each after the calls it takes tensors from (Kahn's algorithm; calls on
        a cycle are left out)."""
        found = self.orders.get(model.path)
        if found is not None:
            return found
        layers = [self.graph.layers[path] for path in model.children if path in self.graph.layers]
        waiting: dict[_Key, int] = {}
        consumers: dict[_Key, list[_Key]] = {}
        for layer in layers:
            for call in layer.call_sites:
                key = (layer.path, call.index)
                waiting[key] = 0
                for ref in call.inputs:  # a tensor taken twice is two edges, released twice
                    if ref.call is not None and (ref.layer != layer.path or ref.call != call.index):
                        consumers.setdefault((ref.layer, ref.call), []).append(key)
                        waiting[key] += 1
        for producer in list(consumers):
            if producer not in waiting:  # an InputLayer or a layer of another model: ready from the start
                for key in consumers.pop(producer):
                    waiting[key] -= 1
        ready = [key for key, count in waiting.items() if count == 0]
        ready.reverse()
        ordered: list[tuple[Layer, int]] = []
        while ready:
            key = ready.pop()
            ordered.append((self.graph.layers[key[0]], key[1]))
            for consumer in consumers.get(key, []):
                waiting[consumer] -= 1
                if waiting[consumer] == 0:
                    ready.append(consumer)
        self.orders[model.path] = ordered
        return ordered

    def input_layers(self, model: Layer) -> list[Layer]:
        """A Functional model's input layers, in the order its calls take their tensors."""
        names = {self.graph.layers[path].name: self.graph.layers[path] for path in model.children
                 if path in self.graph.layers}
        found = [names.get(raw.layer) for raw in io_refs(model.config.get("input_layers"))]
        return [layer for layer in found if layer is not None and layer.kind == LayerKind.INPUT]

    def run(self, model: Layer, given: list[Shape | None] | None) -> list[Shape | None] | None:
        """The output shapes of ``model`` on inputs of shapes ``given`` (None: its own inputs); the first run
        records every call's shapes."""
        record = model.path not in self.recorded
        if not record:
            key = (model.path, tuple(given or ()))
            if key in self.memo:
                return self.memo[key]
            self.memo[key] = None  # a model reached again while it runs: unknown
        self.recorded.add(model.path)
        outputs: dict[_Key, list[Shape | None] | None] = {}
        model_inputs: list[Shape | None] = list(given or [])
        used: list[Shape | None] = []
        for position, layer in enumerate(self.input_layers(model)):
            given_shape = model_inputs[position] if position < len(model_inputs) else None
            own = self._declared(layer)
            shape = own if own is not None and (record or given_shape is None) else given_shape
            used.append(shape)
            outputs[(layer.path, 0)] = [shape]
        for path in model.children:
            child = self.graph.layers.get(path)
            if child is not None and child.kind == LayerKind.INPUT and (path, 0) not in outputs:
                own = self._declared(child)
                shape = own if own is not None and (record or not model_inputs) else (
                    model_inputs[0] if model_inputs else None)
                used.append(shape)
                outputs[(path, 0)] = [shape]
        last: _Key | None = None
        for layer, index in self.order(model):
            if not record:
                self.budget -= 1
                if self.budget < 0:
                    return None
            call = layer.call_sites[index]
            shapes: list[Shape | None] = []
            sources: list[str | None] = []
            for ref in call.inputs:
                shape, source = self._ref_shape(ref, model, model_inputs, outputs, record)
                shapes.append(shape)
                sources.append(source)
            positional = _positional(call.inputs, shapes)
            if layer.is_model:
                result = self.run(layer, positional)
            elif layer.kind == LayerKind.LAYER:
                found = output_shapes(layer.class_name, layer.config, positional)
                result = list(found) if found is not None else None
            else:
                result = None
            outputs[(layer.path, index)] = result
            last = (layer.path, index)
            if record:
                self._record(layer, index, shapes, sources, result)
        result = self._model_outputs(model, model_inputs, outputs, last)
        self.memo[(model.path, tuple(given or ()) if not record else tuple(used))] = result
        if record and given is not None and any(shape is not None and shape != own for shape, own in zip(given, used)):
            return self.run(model, given)  # called on other shapes than its own inputs: run again on those
        return result

    def _declared(self, layer: Layer) -> Shape | None:
        for key in ("batch_shape", "batch_input_shape"):
            value = layer.config.get(key)
            if isinstance(value, list) and all(dim is None or (isinstance(dim, int) and not isinstance(dim, bool))
                                               for dim in value):
                return tuple(value)
        return None

    def _ref_shape(self, ref: TensorRef, model: Layer, model_inputs: list[Shape | None],
                   outputs: dict[_Key, list[Shape | None] | None], record: bool) -> tuple[Shape | None, str | None]:
        if record and ref.shape is not None:
            return ref.shape, STORED
        if ref.layer == model.path and ref.call is None:  # the input of a Sequential without an InputLayer
            shape = model_inputs[ref.tensor] if 0 <= ref.tensor < len(model_inputs) else None
            return shape, INFERRED if shape is not None else None
        if ref.call is None:
            return None, None
        produced = outputs.get((ref.layer, ref.call))
        shape = produced[ref.tensor] if produced is not None and 0 <= ref.tensor < len(produced) else None
        return shape, INFERRED if shape is not None else None

    def _record(self, layer: Layer, index: int, shapes: list[Shape | None], sources: list[str | None],
                result: list[Shape | None] | None) -> None:
        out_sources: list[str | None] | None = None
        if result is not None:
            out_sources = []
            for tensor, shape in enumerate(result):
                stored = self.stored_outputs.get((layer.path, index, tensor))
                if stored is not None:
                    result[tensor] = stored
                out_sources.append(STORED if stored is not None else INFERRED if shape is not None else None)
        self.results[(layer.path, index)] = CallShapes(shapes, sources, result, out_sources)

    def _model_outputs(self, model: Layer, model_inputs: list[Shape | None],
                       outputs: dict[_Key, list[Shape | None] | None],
                       last: _Key | None) -> list[Shape | None] | None:
        if model.kind == LayerKind.SEQUENTIAL:
            return list(outputs.get(last) or []) or None if last is not None else None
        if model.outputs is None:
            return None
        return [self._ref_shape(ref, model, model_inputs, outputs, False)[0] for ref in model.outputs]


FIRST_ARGUMENT_NAMES = ("inputs", "query", "sequences")
"""The name of the first argument of a layer's ``call`` (MultiHeadAttention's ``query``, an RNN's ``sequences``):
a call that passes it by keyword passes the tensor the shape functions take first."""


def _positional(refs: list[TensorRef], shapes: list[Shape | None]) -> list[Shape | None]:
    """The shapes of a call's positional tensors; the first argument's when it was passed by keyword."""
    positional = [shape for ref, shape in zip(refs, shapes) if ref.keyword is None]
    if positional:
        return positional
    by_keyword = {ref.keyword: shape for ref, shape in zip(refs, shapes)}
    return next(([by_keyword[name]] for name in FIRST_ARGUMENT_NAMES if name in by_keyword), [])


def infer_shapes(graph: Graph) -> CallShapesByKey:
    """The shapes of every call of every layer in ``graph``, by (layer path, call index)."""
    propagation = _Propagation(graph)
    if graph.has_graph:
        propagation.run(graph.root, None)
        for layer in graph.layers.values():  # nested models no call of which was reached
            if layer.is_model and layer.path not in propagation.recorded:
                propagation.run(layer, None)
    return propagation.results
