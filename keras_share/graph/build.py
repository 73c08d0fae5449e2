"""Rebuild the layer graph of a model file: nested models, call sites, normalised node indices."""

from __future__ import annotations

from typing import Any

from keras_share import configs
from keras_share.errors import ReadError
from keras_share.graph.model import (
    CallSite,
    Graph,
    Layer,
    Shape,
    TensorRef,
    UnresolvedRef,
)
from keras_share.graph.nodes import RawRef, as_dtype, as_shape, io_refs, node_refs, node_training
from keras_share.limits import (
    MAX_CALLS,
    MAX_LAYERS,
    MAX_PATH_CHARACTERS,
    MAX_SHAPE_DIMENSIONS,
    MAX_TENSOR_REFERENCES,
)
from keras_share.read.base import LayerKey, ModelFile, WeightIndex
from keras_share.vocabulary import LayerKind, ModelKind

_GRAPH_CLASSES = ("Functional", "Sequential", "Model")


def _kind(entry: dict[str, Any]) -> LayerKind:
    if configs.is_input_layer(entry):
        return LayerKind.INPUT
    if configs.is_op(entry):
        return LayerKind.OP
    return configs.model_kind(entry) or LayerKind.LAYER


def _input_shape(layer: Layer) -> Shape | None:
    """The batch shape an InputLayer (or a first layer given ``batch_input_shape``) declares."""
    for key in ("batch_shape", "batch_input_shape"):
        shape = as_shape(layer.config.get(key))
        if shape is not None:
            return shape
    return None


def _input_dtype(layer: Layer) -> str | None:
    """The dtype an InputLayer (or a first layer given ``batch_input_shape``) declares."""
    return as_dtype(layer.config.get("dtype"))


def _too_large(model_file: ModelFile, count: int, what: str, limit: int) -> ReadError:
    return ReadError(model_file.path, f"config too large: {count:,} {what} (limit {limit:,})")


def check_size(model_file: ModelFile) -> None:
    """Refuse a config with more layer entries or calls than ``MAX_LAYERS`` and ``MAX_CALLS``, before any layer
    is made (a ReadError: ``config too large: N layers (limit M)``)."""
    layers = calls = 0
    pending: list[Any] = [model_file.config]
    while pending:
        entries = configs.layer_entries(pending.pop())
        if entries is None:
            continue
        layers += len(entries)
        for child in entries:
            nodes = child.get("inbound_nodes")
            calls += len(nodes) if isinstance(nodes, list) else 1  # a Sequential calls each of its layers once
            if isinstance(child.get("config"), (dict, list)):
                pending.append(child)
    if layers > MAX_LAYERS:
        raise _too_large(model_file, layers, "layers", MAX_LAYERS)
    if calls > MAX_CALLS:
        raise _too_large(model_file, calls, "calls", MAX_CALLS)


class _Builder:
    def __init__(self, model_file: ModelFile) -> None:
        self.model_file = model_file
        self.generation = model_file.keras_generation
        self.records_build = self.generation == 3 and model_file.format.keras_archive
        """Whether the config gives every built layer a ``build_config`` (Keras 3 ``.keras``; not its ``.h5``)."""
        self.layers: dict[str, Layer] = {}
        self.keys: dict[LayerKey, str] = {}
        self.notes: list[str] = []
        self.unresolved: list[UnresolvedRef] = []
        self.path_characters = 0
        self.references = 0
        self.shape_dimensions = 0

    def count_path(self, path: str) -> None:
        """Count a path the graph holds against ``MAX_PATH_CHARACTERS``."""
        self.path_characters += len(path) + 1
        if self.path_characters > MAX_PATH_CHARACTERS:
            raise ReadError(self.model_file.path, f"config too large: over {MAX_PATH_CHARACTERS:,} characters of "
                            f"layer paths (limit {MAX_PATH_CHARACTERS:,}); nesting and long names multiply them")

    def count_reference(self, ref: TensorRef) -> TensorRef:
        """Count a tensor reference the graph holds against ``MAX_TENSOR_REFERENCES``, its path and its shape."""
        self.references += 1
        if self.references > MAX_TENSOR_REFERENCES:
            raise ReadError(self.model_file.path, f"config too large: over {MAX_TENSOR_REFERENCES:,} tensor "
                            f"references (limit {MAX_TENSOR_REFERENCES:,})")
        self.count_path(ref.layer)
        self.shape_dimensions += len(ref.shape or ())
        if self.shape_dimensions > MAX_SHAPE_DIMENSIONS:
            raise ReadError(self.model_file.path, f"config too large: over {MAX_SHAPE_DIMENSIONS:,} dimensions in "
                            f"the shapes of tensor references (limit {MAX_SHAPE_DIMENSIONS:,})")
        return ref

    def new_layer(self, entry: dict[str, Any], key: LayerKey, parent: str) -> Layer:
        path = "/".join(key)
        self.count_path(path)
        shared_id = entry.get("shared_object_id")
        module = entry.get("module")
        layer = Layer(
            path=path,
            name=key[-1],
            class_name=configs.class_name(entry),
            kind=_kind(entry),
            parent=parent,
            config=configs.entry_config(entry),
            trainable_flag=configs.trainable_flag(entry),
            module=module if isinstance(module, str) else None,
            shared_object_id=shared_id if isinstance(shared_id, int) and not isinstance(shared_id, bool) else None,
            built=not self.records_build or "build_config" in entry,
        )
        if path in self.layers:
            self.notes.append(f"duplicate layer name {path!r}: only the first entry is used")
            return self.layers[path]
        self.layers[path] = layer
        self.keys[key] = path
        return layer

    def build_model(self, entry: dict[str, Any], model: Layer, key: LayerKey) -> list[tuple[dict[str, Any], Layer, LayerKey]]:
        """Create the layers of one model and their call sites; return its nested models."""
        entries = configs.layer_entries(entry) or []
        made: list[tuple[dict[str, Any], Layer, LayerKey]] = []
        listed = set(model.children)
        for child in entries:
            child_key = key + (configs.entry_name(child),)
            layer = self.new_layer(child, child_key, model.path)
            if layer.path not in listed:
                listed.add(layer.path)
                model.children.append(layer.path)
            made.append((child, layer, child_key))
        if model.kind == LayerKind.SEQUENTIAL:
            self._chain(model, [layer for _, layer, _ in made])
        else:
            self._connect(model, made)
        return [item for item in made if item[1].is_model]

    def _chain(self, model: Layer, layers: list[Layer]) -> None:
        """A Sequential model applies each layer once, to the previous layer's output."""
        previous: Layer | None = None
        declared = as_shape(model.config.get("build_input_shape"))
        for layer in layers:
            if layer.kind == LayerKind.INPUT and previous is None:
                previous = layer
                continue
            if previous is None:
                shape = _input_shape(layer) or declared
                dtype = _input_dtype(layer) if _input_shape(layer) else None
                refs = [self.count_reference(TensorRef(model.path, None, 0, shape=shape, dtype=dtype))] if shape else []
                layer.call_sites.append(CallSite(0, refs))
            else:
                is_input = previous.kind == LayerKind.INPUT
                ref = TensorRef(previous.path, 0, 0, shape=_input_shape(previous) if is_input else None,
                                dtype=_input_dtype(previous) if is_input else None)
                layer.call_sites.append(CallSite(0, [self.count_reference(ref)]))
            previous = layer

    def _connect(self, model: Layer, made: list[tuple[dict[str, Any], Layer, LayerKey]]) -> None:
        by_name = {layer.name: layer for _, layer, _ in made}
        call_counts = {
            layer.name: len(entry["inbound_nodes"]) if isinstance(entry.get("inbound_nodes"), list) else 0
            for entry, layer, _ in made
        }
        offsets = {layer.name: self._node_offset(entry) for entry, layer, _ in made}
        for _, layer, _ in made:
            layer.numbered_from = offsets[layer.name]
        for entry, layer, _ in made:
            nodes = entry.get("inbound_nodes")
            if not isinstance(nodes, list):
                continue
            for index, node in enumerate(nodes):
                refs = [self.count_reference(self._resolve(raw, by_name, call_counts, offsets.get(raw.layer, 0), model,
                                                           layer.path)) for raw in node_refs(node)]
                layer.call_sites.append(CallSite(index, refs, node_training(node)))
        outputs = model.config.get("output_layers")
        if outputs is not None:
            model.outputs = [
                self.count_reference(self._resolve(raw, by_name, call_counts, self._output_offset(raw, by_name, offsets),
                                                   model, model.path, is_output=True))
                for raw in io_refs(outputs)
            ]
            if not model.outputs or any(ref.call is None for ref in model.outputs):
                model.outputs = None
                self.notes.append(f"{model.path or 'the top model'}: its output_layers do not all name a call, so "
                                  "which calls reach an output is unknown: every call of its layers is counted")
        cycle = _find_cycle([layer for _, layer, _ in made])
        if cycle:
            self.notes.append(
                f"{model.path or 'the top model'} has a cycle ({' -> '.join(cycle)}): Keras cannot load this graph"
            )

    def _node_offset(self, entry: dict[str, Any]) -> int:
        """How much a Keras 2 file adds to the index of each call of this layer: 1 for a nested model that had a
        node before its first call (see ``keras2_construction_node``), else 0; always 0 in Keras 3 files."""
        return int(self.generation == 2 and keras2_construction_node(entry, self.model_file.keras_version))

    def _output_offset(self, raw: RawRef, by_name: dict[str, Layer], offsets: dict[str, int]) -> int:
        """The offset of a node index in ``output_layers``: Keras 2 uses its inbound-node rule; Keras 3 adds 1
        for a Functional (``Functional.get_config`` and ``functional_from_config``), not for a Sequential."""
        if self.generation == 2:
            return offsets.get(raw.layer, 0)
        producer = by_name.get(raw.layer)
        return int(producer is not None and producer.kind == LayerKind.FUNCTIONAL)

    def _resolve(
        self,
        raw: RawRef,
        by_name: dict[str, Layer],
        call_counts: dict[str, int],
        offset: int,
        model: Layer,
        consumer: str,
        is_output: bool = False,
    ) -> TensorRef:
        """Point a raw reference that ``consumer`` takes at a call of a layer of the same model (see
        docs/formats.md): the file's node index minus ``offset``. A reference that names no call keeps ``call``
        None, adds a note and an ``UnresolvedRef``; it is never moved to another call."""
        where_text = f"{model.path or 'the top model'}{' output' if is_output else ''}"
        producer = by_name.get(raw.layer)
        if producer is None:
            self.notes.append(f"{where_text} references unknown layer {raw.layer!r}")
            self.unresolved.append(UnresolvedRef(consumer, raw.layer, raw.node_index, is_output))
            return TensorRef(raw.layer, None, raw.tensor_index, raw.keyword, raw.shape, raw.dtype)
        calls = call_counts[producer.name]
        index: int | None
        if producer.kind == LayerKind.INPUT:
            index = 0 if raw.node_index == 0 else None
        else:
            index = raw.node_index - offset
            if not 0 <= index < calls:
                index = None
        if index is None:
            expected = "0" if producer.kind == LayerKind.INPUT else (
                f"{offset} to {calls - 1 + offset}" if calls else "none: it has no calls")
            self.notes.append(
                f"{where_text}: node index {raw.node_index} of {raw.layer!r} points at no call "
                f"(this file's indices for it: {expected}); the reference is left unresolved"
            )
            self.unresolved.append(UnresolvedRef(consumer, producer.path, raw.node_index, is_output))
        shape, dtype = raw.shape, raw.dtype
        if producer.kind == LayerKind.INPUT:
            shape = _input_shape(producer) if shape is None else shape
            dtype = _input_dtype(producer) if dtype is None else dtype
        return TensorRef(producer.path, index, raw.tensor_index, raw.keyword, shape, dtype)


def _standalone_keras_before_tf(keras_version: str | None) -> bool:
    """True for versions the standalone ``keras`` package wrote before it became tf.keras (2.0 to 2.3.x, without
    the ``-tf`` suffix tf.keras 1.x-2.3 added)."""
    if not keras_version or keras_version.endswith("-tf"):
        return False
    parts = keras_version.split(".")
    return len(parts) >= 2 and parts[0] == "2" and parts[1].isdigit() and int(parts[1]) < 4


def keras2_construction_node(entry: dict[str, Any], keras_version: str | None) -> bool:
    """Whether a Keras 2 writer numbered this layer's calls from 1: its node 0 existed before any call and is not
    written (``_should_skip_first_node`` in tf_keras ``functional.py``, ``kept_nodes = 1`` in Keras 2.0-2.3's
    ``Network.get_config``).

    * A Functional: always.
    * A Sequential that starts with an InputLayer, or whose first layer declares ``batch_input_shape``: built as a
      graph network at construction (``Sequential.add`` makes the Input), and rebuilt the same way on load.
    * Any other Sequential: only in files of the standalone Keras 2.0-2.3, where every model had that node.
    * Any other layer, subclassed models included: never.
    """
    kind = configs.model_kind(entry)
    if kind == LayerKind.FUNCTIONAL:
        return True
    if kind != LayerKind.SEQUENTIAL:
        return False
    entries = configs.layer_entries(entry) or []
    if entries and (configs.is_input_layer(entries[0]) or any(
            as_shape(configs.entry_config(entries[0]).get(key)) is not None
            for key in ("batch_input_shape", "batch_shape"))):
        return True
    return _standalone_keras_before_tf(keras_version)


def _find_cycle(layers: list[Layer]) -> list[str]:
    """Calls along one cycle of the call-to-consumer edges, or [] for an acyclic graph.

    The graph Keras rebuilds is one of calls, not of layers: a layer applied to its own output (``d(d(x))``) is two
    calls, the second taking the first's output, and no cycle."""
    paths = {layer.path: layer for layer in layers}
    consumers: dict[tuple[str, int], set[tuple[str, int]]] = {
        (layer.path, call.index): set() for layer in layers for call in layer.call_sites
    }
    for layer in layers:
        for call in layer.call_sites:
            for ref in call.inputs:
                producer = (ref.layer, ref.call) if ref.call is not None else None
                if producer in consumers:
                    consumers[producer].add((layer.path, call.index))

    def label(node: tuple[str, int]) -> str:
        layer = paths[node[0]]
        return f"{layer.name}#{node[1]}" if layer.calls > 1 else layer.name

    state: dict[tuple[str, int], int] = {}
    for start in consumers:
        if start in state:
            continue
        trail = [start]
        stack: list[tuple[tuple[str, int], list[tuple[str, int]]]] = [(start, sorted(consumers[start]))]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                trail.pop()
                state[node] = 2
                continue
            following = pending.pop()
            if state.get(following) == 1:
                loop = trail[trail.index(following):] + [following]
                return [label(call) for call in loop]
            if following not in state:
                state[following] = 1
                trail.append(following)
                stack.append((following, sorted(consumers[following])))
    return []


def build_graph(model_file: ModelFile) -> Graph:
    """The layer graph of a model file, each layer holding its stored arrays (``graph_of_config`` and
    ``attach_weights``)."""
    graph = graph_of_config(model_file)
    attach_weights(graph, model_file.weights)
    return graph


def attach_weights(graph: Graph, weights: WeightIndex) -> None:
    """Give each layer of ``graph`` its arrays from ``weights``, and mark those whose group the file lacks."""
    missing = set(weights.missing)
    for key, path in graph.keys.items():
        layer = graph.layers.get(path)
        if layer is not None:
            layer.weights = list(weights.by_layer.get(key, []))
            layer.weights_missing = key in missing


def graph_of_config(model_file: ModelFile) -> Graph:
    """The layer graph of a model file's config, its layers without their arrays yet; a file without a graph
    gives a root with no layers."""
    config = model_file.config or {}
    kind = configs.model_kind(config)
    root = Layer(
        path="",
        name=configs.entry_name(config) or "",
        class_name=configs.class_name(config),
        kind=kind or (ModelKind.SUBCLASSED if model_file.config is not None else ModelKind.WEIGHTS),
        parent=None,
        config=configs.entry_config(config),
        trainable_flag=configs.trainable_flag(config),
        module=config["module"] if isinstance(config.get("module"), str) else None,
    )
    check_size(model_file)
    builder = _Builder(model_file)
    if kind is None and root.class_name in _GRAPH_CLASSES:
        builder.notes.append(f"the {root.class_name} config has no readable layers list: no graph to rebuild")
    elif kind is None and model_file.config is not None:
        builder.notes.append(
            f"{root.class_name or 'this model'} is a subclassed model: its architecture lives in Python code, "
            "not in the file, so calls and sharing cannot be read; its weight groups are listed by attribute name"
        )
    if kind is not None:
        pending: list[tuple[dict[str, Any], Layer, LayerKey]] = [(config, root, ())]
        while pending:
            entry, model, key = pending.pop()
            pending.extend(reversed(builder.build_model(entry, model, key)))
    ordered: dict[str, Layer] = {}
    stack = list(reversed(root.children))
    while stack:
        layer = builder.layers[stack.pop()]
        ordered[layer.path] = layer
        stack.extend(reversed(layer.children))
    return Graph(root=root, layers=ordered, has_graph=kind is not None, notes=builder.notes, keys=builder.keys,
                 unresolved=builder.unresolved)
