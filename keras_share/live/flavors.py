"""Keras 3 and tf_keras behind one small interface: what the live reader asks of a model.

The Keras modules are imported when a flavor object is created, never at import time of this module.
``flavor_of(obj)`` looks only at modules that are already imported (an object of a Keras that was never
imported cannot exist), so asking it about a path or a plain Python object imports nothing.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from functools import cache
from typing import Any

_JSON_SCALARS = (str, int, float, bool, type(None))


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (lists, dicts, scalars); anything else becomes its ``str``."""
    def default(item: Any) -> Any:
        tolist = getattr(item, "tolist", None)
        try:
            return tolist() if callable(tolist) else str(item)
        except Exception:  # noqa: BLE001 - any failure: fall back to text
            return str(item)

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError, RecursionError):
        return None


def layer_config(layer: Any, input_layer: bool = False) -> dict[str, Any]:
    """A layer's ``get_config()`` as JSON data, with its live name and trainable flag.

    Custom layers that cannot describe themselves (``get_config`` raises) get just the name and flag:
    the graph and the weights come from the objects, not from the config. An InputLayer gets no flag,
    as in saved files (freezing a model flips it, and it means nothing there).
    """
    try:
        config = jsonable(layer.get_config())
    except Exception:  # noqa: BLE001 - user code: any failure means "no config"
        config = None
    if not isinstance(config, dict):
        config = {}
    config["name"] = layer.name
    if not input_layer:
        config["trainable"] = bool(getattr(layer, "trainable", True))
    return config


def _strip_device_suffix(name: str) -> str:
    return re.sub(r":\d+$", "", name)


class Flavor:
    """The questions the live reader asks; one subclass per Keras."""

    name: str
    generation: int
    version: str
    Layer: type
    InputLayer: type
    Sequential: Any

    # -- what an object is ------------------------------------------------------------------------
    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, self.Layer)

    def is_graph_model(self, obj: Any) -> bool:
        """A Functional or Sequential model: its config lists its layers."""
        return isinstance(obj, self.graph_classes)

    graph_classes: tuple[type, ...] = ()
    """The classes of graph models (``isinstance`` of these is ``is_graph_model``)."""

    def is_sequential(self, obj: Any) -> bool:
        return isinstance(obj, self.Sequential)

    def is_input_layer(self, obj: Any) -> bool:
        return isinstance(obj, self.InputLayer)

    # -- the graph --------------------------------------------------------------------------------
    def children(self, model: Any) -> list[Any]:
        """The entries of a graph model's config, in config order (a Sequential keeps repeats)."""
        raise NotImplementedError

    def graph_node_ids(self, model: Any) -> set[int] | None:
        """``id`` of every node object in the model's own graph; None when it has no graph yet."""
        raise NotImplementedError

    def node_entries(self, model: Any, layer: Any) -> list[Any]:
        """The ``inbound_nodes`` of ``layer`` inside the Functional ``model``, as a saved file writes them."""
        raise NotImplementedError

    def io_layers(self, model: Any) -> tuple[list[Any], list[Any]]:
        """``input_layers`` and ``output_layers`` of a Functional config."""
        raise NotImplementedError

    def sequential_extras(self, model: Any) -> dict[str, Any]:
        """Extra keys of a Sequential config (``build_input_shape``)."""
        return {}

    @staticmethod
    def inbound_nodes(layer: Any) -> list[Any]:
        return list(getattr(layer, "_inbound_nodes", []) or [])

    # -- variables --------------------------------------------------------------------------------
    def layer_variables(self, layer: Any) -> list[Any]:
        """A leaf layer's variables, those of its inner sublayers included."""
        return list(layer.weights)

    def own_variables(self, model: Any) -> list[Any]:
        """A graph model's own variables (its layers' variables belong to them)."""
        raise NotImplementedError

    def trainable_variables(self, model: Any) -> list[Any]:
        return list(model.trainable_weights)

    def variable_path(self, variable: Any) -> str:
        raise NotImplementedError

    def variable_name(self, variable: Any, layer: Any) -> str:
        """The variable's name relative to its layer (``kernel``, ``query/kernel``).

        A variable created by another layer (a tied weight, a sublayer held as an attribute) keeps its
        full path (``enc/kernel``): it does not live under this layer's name.
        """
        path = self.variable_path(variable)
        parts = path.split("/")
        name = getattr(layer, "name", None)
        if name in parts[:-1]:
            last = len(parts) - 2 - parts[-2::-1].index(name)
            return "/".join(parts[last + 1:])
        return path

    @staticmethod
    def variable_shape(variable: Any) -> tuple[int, ...]:
        return tuple(int(dim) for dim in variable.shape)

    @staticmethod
    def variable_dtype(variable: Any) -> str:
        dtype = variable.dtype
        return str(getattr(dtype, "name", dtype))

    @staticmethod
    def variable_value(variable: Any) -> Any:
        import numpy as np

        numpy = getattr(variable, "numpy", None)
        return np.asarray(numpy() if callable(numpy) else variable)

    def backend(self) -> str | None:
        return None


class Keras3(Flavor):
    """Keras 3 (``import keras``; also ``tf.keras`` from TensorFlow 2.16 on)."""

    name = "keras"
    generation = 3

    def __init__(self) -> None:
        import keras
        from keras.src.backend import KerasTensor
        from keras.src.layers import InputLayer, Layer
        from keras.src.models.functional import Functional
        from keras.src.models.sequential import Sequential
        from keras.src.ops.function import make_node_key

        self.keras = keras
        self.version = keras.__version__
        self.KerasTensor = KerasTensor
        self.InputLayer = InputLayer
        self.Layer = Layer
        self.Functional = Functional
        self.Sequential = Sequential
        self.make_node_key = make_node_key
        self.graph_classes = (Functional, Sequential)

    def graph(self, model: Any) -> Any:
        """The Functional holding the model's graph: itself, or a built Sequential's ``_functional``."""
        if isinstance(model, self.Sequential):
            return getattr(model, "_functional", None)
        return model

    def children(self, model: Any) -> list[Any]:
        if isinstance(model, self.Sequential):
            return list(model._layers)
        return list(model.operations)

    def graph_node_ids(self, model: Any) -> set[int] | None:
        graph = self.graph(model)
        if graph is None:
            return None
        keys = graph._nodes
        return {
            id(node)
            for operation in graph.operations
            for index, node in enumerate(self.inbound_nodes(operation))
            if self.make_node_key(operation, index) in keys
        }

    def _reindex(self, operation: Any, node_index: int, keys: Any, functional_offset: bool) -> int:
        """The node index a saved config uses: only the nodes of this graph count."""
        kept = sum(1 for i in range(node_index) if self.make_node_key(operation, i) in keys)
        return kept + (1 if functional_offset and isinstance(operation, self.Functional) else 0)

    def _tensor(self, tensor: Any, keys: Any) -> dict[str, Any]:
        operation, node_index, tensor_index = tensor._keras_history
        return {
            "class_name": "__keras_tensor__",
            "config": {
                "shape": [None if dim is None else int(dim) for dim in tensor.shape],
                "dtype": str(tensor.dtype),
                "keras_history": [operation.name, self._reindex(operation, node_index, keys, False), tensor_index],
            },
        }

    def _arguments(self, value: Any, keys: Any) -> Any:
        if isinstance(value, self.KerasTensor):
            return self._tensor(value, keys)
        if isinstance(value, (list, tuple)):
            return [self._arguments(item, keys) for item in value]
        if isinstance(value, dict):
            return {str(key): self._arguments(item, keys) for key, item in value.items()}
        return value if isinstance(value, _JSON_SCALARS) else None

    def node_entries(self, model: Any, layer: Any) -> list[Any]:
        keys = model._nodes
        entries = []
        for index, node in enumerate(self.inbound_nodes(layer)):
            if self.make_node_key(layer, index) not in keys or not node.input_tensors:
                continue  # Keras saves only this graph's nodes, and only those fed tensors
            arguments = node.arguments
            entries.append({"args": self._arguments(list(arguments.args), keys),
                            "kwargs": self._arguments(dict(arguments.kwargs), keys)})
        return entries

    def io_layers(self, model: Any) -> tuple[list[Any], list[Any]]:
        keys = model._nodes

        def refs(structure: Any) -> list[Any]:
            found = []
            for tensor in _tensors(structure, self.KerasTensor):
                operation, node_index, tensor_index = tensor._keras_history
                found.append([operation.name, self._reindex(operation, node_index, keys, True), tensor_index])
            return found

        return refs(getattr(model, "_inputs_struct", model.inputs)), refs(getattr(model, "_outputs_struct", model.outputs))

    def sequential_extras(self, model: Any) -> dict[str, Any]:
        layers = list(model._layers)
        if getattr(model, "_functional", None) is not None and layers:
            shape = getattr(layers[0], "batch_shape", None)
            if shape is not None:
                return {"build_input_shape": [None if dim is None else int(dim) for dim in shape]}
        return {}

    def own_variables(self, model: Any) -> list[Any]:
        return list(getattr(model, "_trainable_variables", [])) + list(getattr(model, "_non_trainable_variables", []))

    def variable_path(self, variable: Any) -> str:
        return str(getattr(variable, "path", None) or variable.name)

    def backend(self) -> str | None:
        try:
            return str(self.keras.backend.backend())
        except Exception:  # noqa: BLE001
            return None

    def sequential_internal_graphs(self, model: Any) -> list[Any]:
        """Functional objects a Sequential built for itself (rebuilding after ``add`` keeps the old ones)."""
        found: list[Any] = []
        tracker = getattr(model, "_tracker", None)
        config = getattr(tracker, "config", None)
        if isinstance(config, dict):
            for value in config.values():
                items = value[1] if isinstance(value, tuple) and len(value) == 2 else value
                if isinstance(items, list):
                    found.extend(item for item in items if isinstance(item, self.Functional))
        current = getattr(model, "_functional", None)
        if current is not None:
            found.append(current)
        return found


class TfKeras(Flavor):
    """tf_keras, the Keras 2 package (``import tf_keras``)."""

    name = "tf_keras"
    generation = 2

    def __init__(self) -> None:
        import tf_keras
        from tf_keras.src.engine.base_layer import Layer
        from tf_keras.src.engine.functional import Functional
        from tf_keras.src.engine.input_layer import InputLayer
        from tf_keras.src.engine.sequential import Sequential

        self.version = tf_keras.__version__
        self.Layer = Layer
        self.Functional = Functional
        self.InputLayer = InputLayer
        self.Sequential = Sequential
        self.graph_classes = (Functional,)
        try:
            from tf_keras.src.engine.functional import _should_skip_first_node
        except ImportError:  # pragma: no cover - older tf_keras
            _should_skip_first_node = self._skip_first_node
        self.skip_first_node = _should_skip_first_node

    def _skip_first_node(self, layer: Any) -> bool:
        trackables = getattr(layer, "_self_tracked_trackables", None)
        if trackables:
            return isinstance(layer, self.Functional) and isinstance(trackables[0], self.InputLayer)
        return isinstance(layer, self.Functional)

    def children(self, model: Any) -> list[Any]:
        if isinstance(model, self.Sequential):
            chain = self._sequential_chain(model) if getattr(model, "_is_graph_network", False) else None
            return chain if chain is not None else list(model._self_tracked_trackables)
        return list(model.layers)

    def _sequential_chain(self, model: Any) -> list[Any] | None:
        """The layers a graph-network Sequential applies, in order, repeats included (from its output back)."""
        outputs = list(model.outputs or [])
        if len(outputs) != 1:
            return None
        chain: list[Any] = []
        tensor = outputs[0]
        while True:
            history = getattr(tensor, "_keras_history", None)
            if history is None:
                return None
            layer, node_index = history.layer, history.node_index
            chain.append(layer)
            if isinstance(layer, self.InputLayer):
                break
            inputs = list(layer._inbound_nodes[node_index].keras_inputs)
            if len(inputs) != 1 or len(chain) > 100_000:
                return None
            tensor = inputs[0]
        chain.reverse()
        return chain

    def _graph_layers(self, model: Any) -> list[Any]:
        layers = list(model.layers)
        layers += [layer for layer in getattr(model, "_input_layers", []) if layer not in layers]
        return layers

    def graph_node_ids(self, model: Any) -> set[int] | None:
        if not getattr(model, "_is_graph_network", False):
            return None
        keys = model._network_nodes
        return {
            id(node)
            for layer in self._graph_layers(model)
            for index, node in enumerate(self.inbound_nodes(layer))
            if f"{layer.name}_ib-{index}" in keys
        }

    def _conversion_map(self, model: Any) -> dict[str, int]:
        keys = model._network_nodes
        conversion: dict[str, int] = {}
        for layer in model.layers:
            kept = 1 if self.skip_first_node(layer) else 0
            for index, _ in enumerate(self.inbound_nodes(layer)):
                key = f"{layer.name}_ib-{index}"
                if key in keys:
                    conversion[key] = kept
                    kept += 1
        return conversion

    def node_entries(self, model: Any, layer: Any) -> list[Any]:
        keys = model._network_nodes
        conversion = self._conversion_map(model)
        entries = []
        for index, node in enumerate(self.inbound_nodes(layer)):
            if f"{layer.name}_ib-{index}" not in keys or node.is_input:
                continue
            try:
                data = jsonable(node.serialize(lambda name, i: f"{name}_ib-{i}", conversion))
            except Exception:  # noqa: BLE001 - non-serializable call arguments: keep the tensors only
                data = None
            if not isinstance(data, list):
                data = [
                    [tensor._keras_history.layer.name,
                     conversion.get(f"{tensor._keras_history.layer.name}_ib-{tensor._keras_history.node_index}", 0),
                     tensor._keras_history.tensor_index, {}]
                    for tensor in node.keras_inputs
                ]
            entries.append(data)
        return entries

    def io_layers(self, model: Any) -> tuple[list[Any], list[Any]]:
        conversion = self._conversion_map(model)

        def refs(coordinates: Any) -> list[Any]:
            return [[layer.name, conversion.get(f"{layer.name}_ib-{node}", 0), tensor]
                    for layer, node, tensor in coordinates]

        return (refs(getattr(model, "_input_coordinates", [])), refs(getattr(model, "_output_coordinates", [])))

    def own_variables(self, model: Any) -> list[Any]:
        return list(getattr(model, "_trainable_weights", [])) + list(getattr(model, "_non_trainable_weights", []))

    def variable_path(self, variable: Any) -> str:
        return _strip_device_suffix(str(variable.name))

    def backend(self) -> str | None:
        return "tensorflow"


def _tensors(value: Any, tensor_type: type) -> Iterator[Any]:
    """Tensors inside nested lists, tuples and dicts, in order."""
    if isinstance(value, tensor_type):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item, tensor_type)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item, tensor_type)


@cache
def keras3() -> Keras3:
    return Keras3()


@cache
def tf_keras() -> TfKeras:
    return TfKeras()


def loaded_flavors() -> list[Flavor]:
    """The flavors whose Keras is already imported in this process."""
    flavors: list[Flavor] = []
    keras = sys.modules.get("keras")
    if keras is not None and str(getattr(keras, "__version__", "")).startswith("3"):
        flavors.append(keras3())
    if sys.modules.get("tf_keras") is not None:
        flavors.append(tf_keras())
    return flavors


def flavor_of(obj: Any) -> Flavor | None:
    """The flavor of a live Keras layer or model, or None for anything else (paths, plain objects)."""
    modules = {klass.__module__.split(".")[0] for klass in type(obj).__mro__}
    if not modules & {"keras", "tf_keras"}:
        return None
    for flavor in loaded_flavors():
        if flavor.is_layer(obj):
            return flavor
    return None
