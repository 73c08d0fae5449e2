"""Truth from Keras: what the live objects of a loaded model say, compared with keras-share's report.

``live_facts(model, generation)`` walks a model loaded by Keras 3 (``generation=3``, ``keras``)
or tf_keras (``generation=2``) and returns, per layer path (names from the top model down joined
by "/", the top model's own name left out: keras-share's ``path``), the facts keras-share claims
to read statically:

* ``calls``: inbound nodes of the layer that belong to its parent model's graph, the graph Keras
  rebuilt from the file by mapping it back from the outputs (tf_keras then adds back every call when
  a layer reaches no output, ``connect_ancillary_layers``, and runs them); keras-share's counterpart
  is ``calls`` minus ``unreachable_calls``. A layer none of whose calls is in Keras 3's graph is not
  in the loaded model at all: it is left out of the comparison, its arrays out of ``count_params``. Keras 3 keys
  nodes as ``make_node_key(layer, i)`` (``f"{id(layer)}_ib-{i}"``) in ``Functional._nodes``; a
  Keras 3 Sequential keeps its graph in ``_functional`` (none: one call); tf_keras keys them as
  ``f"{layer.name}_ib-{i}"`` in ``_network_nodes``.
* ``effective_calls``: ``calls`` times the parent's effective calls (the top model counts 1).
* ``trainable``: for a layer with weights, whether any of its weights (by ``id``) is in the top
  model's ``trainable_weights``; for a nested model, whether any weight-bearing layer below it is.
  Weightless leaf layers get no ``trainable`` fact.
* ``variables``: ``(id, shape)`` of the layer's variables (``layer.weights`` for a leaf layer,
  sublayers such as MultiHeadAttention's projections included; a nested model's own variables
  only, its layers having their own paths).
* ``input_shapes`` (Keras 3 only): per call, the shapes of the KerasTensors of that node's
  arguments, positional arguments first, then keyword arguments in call order (the order
  ``keras_share/graph/nodes.py::node_refs`` uses).

InputLayers are left out: keras-share gives them zero calls and no weights by design.

``assert_static_matches_live(path, model, generation)`` runs ``keras_share.api.inspect_file`` on
the same file and fails with a readable, line-per-mismatch diff.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

Shape = tuple[int | None, ...]


# --------------------------------------------------------------------------
# Live side
# --------------------------------------------------------------------------


class _Keras3:
    def __init__(self) -> None:
        from keras.src.backend import KerasTensor
        from keras.src.layers import InputLayer
        from keras.src.models.functional import Functional
        from keras.src.models.sequential import Sequential
        from keras.src.ops.function import make_node_key

        self.KerasTensor = KerasTensor
        self.InputLayer = InputLayer
        self.Functional = Functional
        self.Sequential = Sequential
        self.make_node_key = make_node_key

    def is_model(self, layer: Any) -> bool:
        return isinstance(layer, (self.Functional, self.Sequential))

    def children(self, model: Any) -> list[Any]:
        return list(model.layers)

    def graph_nodes(self, parent: Any) -> set[str] | None:
        """Node keys of the parent's graph; None for a Sequential that has no graph (one call each)."""
        if isinstance(parent, self.Sequential):
            functional = getattr(parent, "_functional", None)
            return None if functional is None else functional._nodes
        return parent._nodes

    def own_nodes(self, layer: Any, parent: Any) -> list[Any] | None:
        keys = self.graph_nodes(parent)
        if keys is None:
            return None
        return [node for i, node in enumerate(layer._inbound_nodes) if self.make_node_key(layer, i) in keys]

    @staticmethod
    def own_variables(model: Any) -> list[Any]:
        return list(model._trainable_variables) + list(model._non_trainable_variables)


class _Keras2:
    def __init__(self) -> None:
        from tf_keras.src.engine.functional import Functional
        from tf_keras.src.engine.input_layer import InputLayer
        from tf_keras.src.engine.sequential import Sequential

        self.InputLayer = InputLayer
        self.Functional = Functional
        self.Sequential = Sequential

    def is_model(self, layer: Any) -> bool:
        return isinstance(layer, (self.Functional, self.Sequential))

    def children(self, model: Any) -> list[Any]:
        return list(model.layers)

    def own_nodes(self, layer: Any, parent: Any) -> list[Any] | None:
        if not getattr(parent, "_is_graph_network", False):
            return None
        keys = parent._network_nodes
        return [node for i, node in enumerate(layer._inbound_nodes) if f"{layer.name}_ib-{i}" in keys]

    @staticmethod
    def own_variables(model: Any) -> list[Any]:
        return list(model._trainable_weights) + list(model._non_trainable_weights)


def _api(generation: int) -> _Keras3 | _Keras2:
    if generation not in (2, 3):
        raise ValueError(f"generation must be 2 (tf_keras) or 3 (keras), not {generation!r}")
    return _Keras3() if generation == 3 else _Keras2()


def _shape(value: Any) -> Shape:
    return tuple(None if dim is None else int(dim) for dim in value)


def _digest(array: Any) -> str:
    """A short fingerprint of an array's values (float32, C order)."""
    import hashlib

    import numpy as np

    data = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    return hashlib.sha1(data.tobytes()).hexdigest()[:12]


def _variable_facts(variables: list[Any]) -> list[tuple[int, Shape, str]]:
    return [(id(v), _shape(v.shape), _digest(v.numpy())) for v in variables]


def _ordered_tensors(value: Any, tensor_type: type) -> Iterator[Any]:
    """KerasTensors inside ``value``: lists/tuples in order, dicts in insertion order."""
    if isinstance(value, tensor_type):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _ordered_tensors(item, tensor_type)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _ordered_tensors(item, tensor_type)


def _node_input_shapes(node: Any, api: _Keras3) -> list[Shape]:
    arguments = node.arguments
    tensors = list(_ordered_tensors(list(arguments.args), api.KerasTensor))
    for value in arguments.kwargs.values():
        tensors.extend(_ordered_tensors(value, api.KerasTensor))
    return [_shape(tensor.shape) for tensor in tensors]


def live_facts(loaded_model: Any, generation: int) -> dict[str, dict[str, Any]]:
    """Per layer path, what the live Keras objects say (see the module docstring)."""
    api = _api(generation)
    top_trainable = {id(variable) for variable in loaded_model.trainable_weights}
    facts: dict[str, dict[str, Any]] = {}

    def visit(model: Any, prefix: str, parent_effective: int) -> None:
        for layer in api.children(model):
            if isinstance(layer, api.InputLayer):
                continue
            path = f"{prefix}{layer.name}"
            nodes = api.own_nodes(layer, model)
            calls = 1 if nodes is None else len(nodes)
            fact: dict[str, Any] = {
                "object": id(layer),
                "class_name": type(layer).__name__,
                "is_model": api.is_model(layer),
                "parent_is_sequential": isinstance(model, api.Sequential),
                "calls": calls,
                "effective_calls": calls * parent_effective,
            }
            if generation == 3:
                fact["input_shapes"] = None if nodes is None else [_node_input_shapes(node, api) for node in nodes]
            if fact["is_model"]:
                fact["variables"] = _variable_facts(api.own_variables(layer))
                facts[path] = fact
                visit(layer, path + "/", fact["effective_calls"])
                below = [
                    other["trainable"]
                    for other_path, other in facts.items()
                    if other_path.startswith(path + "/") and "trainable" in other and not other["is_model"]
                ]
                if below:
                    fact["trainable"] = any(below)
            else:
                weights = list(layer.weights)
                fact["variables"] = _variable_facts(weights)
                if weights:
                    fact["trainable"] = any(id(v) in top_trainable for v in weights)
                facts[path] = fact

    visit(loaded_model, "", 1)
    return facts


def live_count_params(loaded_model: Any) -> int:
    """Scalars in the model's weights; Keras counts a shared variable once."""
    return int(loaded_model.count_params())


# --------------------------------------------------------------------------
# Static side and the comparison
# --------------------------------------------------------------------------


def static_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """keras-share's JSON form of one file."""
    import inspect

    from keras_share.api import inspect_file
    from keras_share.render.json_format import model_to_dict

    # Read in this process: forking a process that has TensorFlow's threads running is needless risk.
    in_process = {"timeout": None} if "timeout" in inspect.signature(inspect_file).parameters else {}
    return model_to_dict(inspect_file(path, **in_process))


class StoredArrays:
    """Read the array keras-share names by ``location`` back from the file (h5py, or TensorFlow's
    checkpoint reader for a SavedModel).

    Locations are ``<zip member>:/<hdf5 path>`` inside a ``.keras`` archive or directory, plain HDF5
    paths in legacy ``.h5`` files, and checkpoint keys in a SavedModel's ``variables/`` bundle.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._open: dict[str, Any] = {}
        self._closers: list[Any] = []

    def _h5(self, member: str | None) -> Any:
        import zipfile

        import h5py

        key = member or ""
        if key not in self._open:
            if member is None:
                handle = h5py.File(self.path, "r")
            elif os.path.isdir(self.path):
                handle = h5py.File(os.path.join(self.path, member), "r")
            else:
                archive = zipfile.ZipFile(self.path)
                stream = archive.open(member)
                self._closers += [stream, archive]
                handle = h5py.File(stream, "r")
            self._open[key] = handle
        return self._open[key]

    def _checkpoint(self) -> Any:
        """TensorFlow's own reader of a SavedModel folder's ``variables/`` bundle."""
        if "checkpoint" not in self._open:
            import tensorflow as tf

            self._open["checkpoint"] = tf.train.load_checkpoint(os.path.join(self.path, "variables", "variables"))
        return self._open["checkpoint"]

    def digest(self, location: str) -> str:
        if os.path.isfile(os.path.join(self.path, "saved_model.pb")):
            return _digest(self._checkpoint().get_tensor(location))
        member, sep, inner = location.partition(":/")
        if sep and (os.path.isdir(self.path) or not self.path.endswith((".h5", ".hdf5"))) and "/" not in member:
            dataset = self._h5(member)["/" + inner]
        else:
            dataset = self._h5(None)[location]
        return _digest(dataset[()])

    def close(self) -> None:
        for key, handle in self._open.items():
            if key != "checkpoint":
                handle.close()
        for closer in reversed(self._closers):
            closer.close()


def _identity_signatures(per_path: dict[str, list[tuple[Any, Shape, str]]]) -> Counter[tuple[frozenset[str], Shape, str]]:
    """For every distinct variable (or stored location): the paths holding it, its shape and values.

    Two sides describe the same sharing exactly when these multisets are equal: the same
    variable object must be one location, different variables different locations, and each
    location must hold the values Keras loaded into that layer.
    """
    holders: dict[Any, set[str]] = {}
    described: dict[Any, tuple[Shape, str]] = {}
    for path, items in per_path.items():
        for key, shape, digest in items:
            holders.setdefault(key, set()).add(path)
            described[key] = (shape, digest)
    return Counter((frozenset(paths), *described[key]) for key, paths in holders.items())


def _fmt_signature(signature: tuple[frozenset[str], Shape, str]) -> str:
    paths, shape, digest = signature
    return f"shape {list(shape)} (values {digest}) held by {sorted(paths)}"


def compare(
    static: dict[str, Any],
    live: dict[str, dict[str, Any]],
    generation: int,
    *,
    count_params: int | None,
    weights: bool = True,
    stored: StoredArrays | None = None,
) -> list[str]:
    """Every disagreement between keras-share's report and the live facts, one line each."""
    problems: list[str] = []
    by_path = {layer["path"]: layer for layer in static["layers"]}
    dropped = _dropped_by_keras3(static) if generation == 3 else set()
    static_paths = {path for path, layer in by_path.items()
                    if layer["kind"] not in ("input", "op") and path not in dropped}
    for path in sorted(set(live) - static_paths):
        problems.append(f"{path}: Keras has this layer, keras-share does not list it")
    for path in sorted(static_paths - set(live)):
        problems.append(f"{path}: keras-share lists a {by_path[path]['kind']} Keras does not have")

    common = sorted(set(live) & static_paths)
    for path in common:
        fact, layer = live[path], by_path[path]
        reaching = layer["calls"] - len(layer["unreachable_calls"])
        if fact["calls"] != reaching:
            problems.append(f"{path}: calls: Keras says {fact['calls']}, keras-share says {reaching} reach an output "
                            f"({layer['calls']} in the file, unreachable {layer['unreachable_calls']})")
        if fact["effective_calls"] != layer["effective_calls"]:
            problems.append(f"{path}: effective_calls: Keras says {fact['effective_calls']}, keras-share says "
                            f"{layer['effective_calls']}")
        if "trainable" in fact and fact["trainable"] != layer["trainable"]:
            problems.append(
                f"{path}: trainable: Keras says {fact['trainable']}, keras-share says {layer['trainable']}"
                f" (trainable_flag={layer['trainable_flag']}, frozen_by={layer['frozen_by']!r})"
            )
        same_live = sorted(other for other in common if other != path and live[other]["object"] == fact["object"])
        if same_live != sorted(layer["same_as"]):
            problems.append(f"{path}: same_as: Keras says {same_live}, keras-share says {sorted(layer['same_as'])}")
        shared_live = sum(live[other]["effective_calls"] for other in [path, *same_live]) > 1
        if shared_live != layer["shared"]:
            problems.append(f"{path}: shared: Keras says {shared_live}, keras-share says {layer['shared']}")
        if generation == 3 and fact.get("input_shapes") is not None:
            live_shapes = [[list(shape) for shape in call] for call in fact["input_shapes"]]
            static_shapes = [site["input_shapes"] for site in layer["call_sites"]
                             if site["index"] not in layer["unreachable_calls"]]
            if not _shapes_agree(live_shapes, static_shapes, lenient=fact["parent_is_sequential"]):
                problems.append(f"{path}: input shapes per call: Keras says {live_shapes}, keras-share says {static_shapes}")
        if weights:
            if layer["weights_missing"]:
                problems.append(f"{path}: keras-share says its weights are missing from the file")
            if len(fact["variables"]) != len(layer["weights"]):
                problems.append(
                    f"{path}: number of variables: Keras says {len(fact['variables'])} "
                    f"{[list(shape) for _, shape, _ in fact['variables']]}, keras-share says {len(layer['weights'])} "
                    f"{[w['shape'] for w in layer['weights']]}"
                )

    if weights:
        live_sig = _identity_signatures({path: live[path]["variables"] for path in common})
        def stored_digest(location: str) -> str:
            return stored.digest(location) if stored is not None else "?"

        if stored is None:
            live_sig = _identity_signatures(
                {path: [(key, shape, "?") for key, shape, _ in live[path]["variables"]] for path in common}
            )
        static_sig = _identity_signatures(
            {
                path: [(w["location"], tuple(w["shape"]), stored_digest(w["location"])) for w in by_path[path]["weights"]]
                for path in common
            }
        )
        for signature in sorted(live_sig - static_sig, key=str):
            problems.append(f"weights: Keras has {(live_sig - static_sig)[signature]} variable(s) of {_fmt_signature(signature)}; keras-share does not")
        for signature in sorted(static_sig - live_sig, key=str):
            problems.append(f"weights: keras-share has {(static_sig - live_sig)[signature]} location(s) of {_fmt_signature(signature)}; Keras does not")
        kept = {w["location"] for path in static_paths for w in by_path[path]["weights"]}
        unloaded = {w["location"]: w for path in dropped for w in by_path[path]["weights"] if w["location"] not in kept}
        loaded_params = static["summary"]["unique_params"] - sum(_size(w["shape"]) for w in unloaded.values())
        if count_params is not None and count_params != loaded_params:
            problems.append(
                f"count_params: Keras says {count_params}, keras-share unique_params says {static['summary']['unique_params']}"
                + (f" ({loaded_params} without the layers Keras drops)" if unloaded else "")
            )
    return problems


def _size(shape: list[int]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def _dropped_by_keras3(static: dict[str, Any]) -> set[str]:
    """Paths of the layers Keras 3 leaves out of the model it loads: every call of theirs reaches no output
    (``unreachable_calls``), so its graph, mapped back from the outputs, never meets them; and what is inside them."""
    dropped: set[str] = set()
    for layer in static["layers"]:  # parents first
        parent = layer["parent"] or ""
        if parent in dropped or (layer["calls"] and len(layer["unreachable_calls"]) == layer["calls"]):
            dropped.add(layer["path"])
    return dropped


def _shapes_agree(live: list[list[list[int | None]]], static: list[list[Any]], lenient: bool) -> bool:
    """Equal per call; inside a Sequential the file records no shapes past the first layer, so a
    missing (None) static shape is accepted there, a wrong one never."""
    if not lenient:
        return live == static
    if len(live) != len(static):
        return False
    for live_call, static_call in zip(live, static):
        if len(static_call) != len(live_call):
            return False
        if any(ours is not None and ours != theirs for theirs, ours in zip(live_call, static_call)):
            return False
    return True


def assert_static_matches_live(
    path: str | os.PathLike[str], loaded_model: Any, generation: int, *, weights: bool | None = None
) -> dict[str, Any]:
    """Fail with a readable diff unless keras-share's report of ``path`` matches the loaded model.

    Weights are compared unless ``weights`` is False (every format's are read, a SavedModel's from its
    ``variables/`` bundle, whose values TensorFlow's checkpoint reader gives back by checkpoint key).
    Returns keras-share's report (JSON form) for further checks.
    """
    static = static_report(path)
    weights = True if weights is None else weights
    stored = StoredArrays(path) if weights else None
    try:
        problems = compare(
            static,
            live_facts(loaded_model, generation),
            generation,
            count_params=live_count_params(loaded_model) if weights else None,
            weights=weights,
            stored=stored,
        )
    finally:
        if stored is not None:
            stored.close()
    if problems:
        header = (
            f"keras-share disagrees with {'Keras 3' if generation == 3 else 'tf_keras'} on {path} "
            f"(format {static['format']}, keras_version {static['keras_version']}):"
        )
        raise AssertionError("\n  ".join([header, *problems]))
    return static


def load_model(path: str | os.PathLike[str], generation: int) -> Any:
    """Load a saved file with Keras 3 or tf_keras, without compiling."""
    if generation == 3:
        import keras

        return keras.models.load_model(str(path), compile=False)
    import tf_keras

    return tf_keras.models.load_model(str(path), compile=False)
