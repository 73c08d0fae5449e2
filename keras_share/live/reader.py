"""The live reader: a Keras model in memory -> the ``ModelFile`` every static reader produces.

The config is rebuilt from the objects themselves, in the schema a saved file uses (Keras 3 dict nodes
for Keras 3, Keras 2 list nodes with their node-index convention for tf_keras), so ``build_graph`` and
``analyze`` work unchanged. It differs from ``get_config()`` where the saved config would lie: a
Sequential that holds one layer object twice lists it twice (``get_config`` keeps it once), and a
custom layer whose ``get_config`` fails still appears, with its calls and variables.

Weights: each layer's variables, ``location = "live:<id(variable)>"``, so equal locations are the same
variable object, the identity ``analyze`` relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keras_share.live.flavors import Flavor, layer_config
from keras_share.read.base import LayerKey, ModelFile, WeightArray, WeightIndex
from keras_share.vocabulary import Format


def live_location(variable: Any) -> str:
    """The ``WeightArray.location`` of a live variable: its object identity."""
    return f"live:{id(variable)}"


@dataclass
class LiveReading:
    """A live model read into a ``ModelFile``, with what only the objects know."""

    model_file: ModelFile
    model: Any
    flavor: Flavor
    objects: dict[str, Any] = field(default_factory=dict)
    """Layer path -> the layer object placed there."""
    variables: dict[str, list[Any]] = field(default_factory=dict)
    """Layer path -> its variable objects, in the order of its ``WeightArray`` list."""
    repeats: dict[str, int] = field(default_factory=dict)
    """Layer path -> how many times the object is listed in its Sequential, when more than once."""
    graph_models: list[Any] = field(default_factory=list)
    """The top model and every nested graph model (each once): whose graphs are "inside" this model."""


class _Walker:
    def __init__(self, flavor: Flavor, reading: LiveReading) -> None:
        self.flavor = flavor
        self.reading = reading
        self.index = reading.model_file.weights
        self.seen_models: set[int] = set()

    def weights(self, key: LayerKey, layer: Any, variables: list[Any]) -> None:
        path = "/".join(key)
        if path in self.reading.variables or not variables:
            return
        self.reading.variables[path] = variables
        self.index.by_layer[key] = [
            WeightArray(
                name=self.flavor.variable_name(variable, layer),
                shape=self.flavor.variable_shape(variable),
                dtype=self.flavor.variable_dtype(variable),
                location=live_location(variable),
            )
            for variable in variables
        ]

    def model_entry(self, model: Any, key: LayerKey) -> dict[str, Any]:
        """The config envelope of a graph model, its layers (and nested models) included."""
        flavor = self.flavor
        if id(model) not in self.seen_models:
            self.seen_models.add(id(model))
            self.reading.graph_models.append(model)
        sequential = flavor.is_sequential(model)
        entries: list[dict[str, Any]] = []
        for child in flavor.children(model):
            child_key = key + (child.name,)
            path = "/".join(child_key)
            if path in self.reading.objects and self.reading.objects[path] is child:
                self.reading.repeats[path] = self.reading.repeats.get(path, 1) + 1
            self.reading.objects.setdefault(path, child)
            if flavor.is_graph_model(child):
                entry = self.model_entry(child, child_key)
                self.weights(child_key, child, flavor.own_variables(child))
            else:
                entry = {
                    "module": type(child).__module__,
                    "class_name": type(child).__name__,
                    "config": layer_config(child, input_layer=flavor.is_input_layer(child)),
                }
                if not flavor.is_input_layer(child):
                    self.weights(child_key, child, flavor.layer_variables(child))
            entry["name"] = child.name
            if not sequential:
                entry["inbound_nodes"] = flavor.node_entries(model, child)
            entries.append(entry)
        config: dict[str, Any] = {"name": model.name, "trainable": bool(model.trainable), "layers": entries}
        if sequential:
            config.update(flavor.sequential_extras(model))
        else:
            config["input_layers"], config["output_layers"] = flavor.io_layers(model)
        return {"module": type(model).__module__, "class_name": type(model).__name__, "config": config,
                "name": model.name}

    def unattached(self, model: Any) -> None:
        """A model without a graph (subclassed): its variables grouped by owner, as the static readers do."""
        for variable in self.flavor.layer_variables(model):
            group = self.flavor.variable_path(variable).rpartition("/")[0] or "/"
            self.index.unattached.setdefault(group, []).append(
                WeightArray(self.flavor.variable_name(variable, model), self.flavor.variable_shape(variable),
                            self.flavor.variable_dtype(variable), live_location(variable))
            )


def read_live(model: Any, flavor: Flavor, label: str) -> LiveReading:
    """Read a live Keras model (or layer) into a ``ModelFile`` of format ``live`` named ``label``."""
    model_file = ModelFile(path=label, format=Format.LIVE, keras_version=flavor.version, config=None,
                           weights=WeightIndex(), backend=flavor.backend())
    reading = LiveReading(model_file=model_file, model=model, flavor=flavor)
    walker = _Walker(flavor, reading)
    if flavor.is_graph_model(model):
        model_file.config = walker.model_entry(model, ())
    else:
        model_file.config = {"module": type(model).__module__, "class_name": type(model).__name__,
                             "config": layer_config(model)}
        walker.unattached(model)
        reading.graph_models.append(model)
    return reading
