"""The weights of a tf_keras SavedModel: its ``variables/`` bundle matched to the layers of its config.

Runs in the reader child (``detect._read_model``). See ``saved_model`` for how variables reach layers, and
``tf_bundle`` for the files' layout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO, cast

from keras_share import configs
from keras_share.errors import ReadError
from keras_share.limits import (
    MAX_CHECKPOINT_INDEX_BYTES,
    MAX_LAYER_ARRAYS,
    MAX_OBJECT_GRAPH_BYTES,
    MAX_SAVED_MODEL_BYTES,
)
from keras_share.read.base import ArrayDigest, LayerKey, WeightArray, WeightIndex
from keras_share.read.files import open_member
from keras_share.read.protobuf_wire import (
    WIRE_LEN,
    WIRE_VARINT,
    ProtobufError,
    SavedObjectRecord,
    iter_fields,
)
from keras_share.read.tf_bundle import (
    DT_STRING,
    OBJECT_GRAPH_KEY,
    Bundle,
    BundleEntry,
    BundleError,
    TrackableNode,
    read_index,
    read_object_graph,
    shard_name,
    string_scalar,
)

VARIABLES_FOLDER = "variables"
SAVED_MODEL_FILE = "saved_model.pb"
INDEX_MEMBER = f"{VARIABLES_FOLDER}/variables.index"
EAGER_DIGEST_BYTES = 1 << 20
"""Arrays up to this size are hashed while the bundle is read (as ``h5tree`` does); larger ones when a rule asks."""
_LAYER_CHILD = re.compile(r"layer-\d+")
_OPTIMIZER_KEY = re.compile(r"^optimizer/|/\.OPTIMIZER_SLOT/")
_BLOCK_BYTES = 4 << 20
"""Bytes hashed at a time (a multiple of every element size)."""


class _Shards:
    """The data shards of a bundle, opened inside the model folder on first use."""

    def __init__(self, directory: Path, bundle: Bundle, stack: ExitStack) -> None:
        self.directory, self.bundle, self.stack = directory, bundle, stack
        self.open: dict[int, tuple[BinaryIO, int]] = {}

    def _shard(self, shard: int) -> tuple[BinaryIO, int]:
        if shard not in self.open:
            stream = self.stack.enter_context(
                open_member(self.directory, f"{VARIABLES_FOLDER}/{shard_name(shard, self.bundle.shards)}"))
            self.open[shard] = (stream, os.fstat(stream.fileno()).st_size)
        return self.open[shard]

    def check(self, key: str, entry: BundleEntry) -> None:
        """A ReadError unless the entry's bytes lie inside its shard."""
        _, size = self._shard(entry.shard)
        if entry.offset + entry.size > size:
            raise ReadError(str(self.directory), f"{VARIABLES_FOLDER}/{shard_name(entry.shard, self.bundle.shards)} "
                            f"is {size:,} bytes, but {key!r} lies at {entry.offset:,}..{entry.offset + entry.size:,}: "
                            "truncated")

    def read(self, entry: BundleEntry, start: int = 0, count: int | None = None) -> bytes:
        """``count`` bytes (default: all) of an entry from ``start``, checked to lie inside its shard."""
        stream, _ = self._shard(entry.shard)
        count = entry.size - start if count is None else count
        data = os.pread(stream.fileno(), count, entry.offset + start)
        if len(data) != count:
            raise ReadError(str(self.directory), f"{shard_name(entry.shard, self.bundle.shards)} ended while it was read")
        return data

    def blocks(self, entry: BundleEntry) -> Iterator[bytes]:
        """An entry's bytes, ``_BLOCK_BYTES`` at a time."""
        for start in range(0, entry.size, _BLOCK_BYTES):
            yield self.read(entry, start, min(_BLOCK_BYTES, entry.size - start))


def _numpy_dtype(entry: BundleEntry) -> Any:
    """The numpy dtype of a fixed-size entry numpy knows (little-endian), else None."""
    import numpy as np

    try:
        return np.dtype(entry.dtype_name).newbyteorder("<")
    except TypeError:
        return None


def _digest(shards: _Shards, entry: BundleEntry) -> ArrayDigest | None:
    from keras_share.read.digest import HASHED_KINDS, blocks_digest

    dtype = _numpy_dtype(entry)
    if dtype is None or dtype.kind not in HASHED_KINDS or entry.sliced:
        return None
    return blocks_digest(shards.blocks(entry), dtype, entry.shape)


def _read_bundle(directory: Path) -> Bundle:
    if not os.path.lexists(directory / INDEX_MEMBER):
        raise ReadError(str(directory), f"SavedModel without {INDEX_MEMBER}: its weights are not in the folder "
                        "(tf_keras cannot load it)")
    with open_member(directory, INDEX_MEMBER) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > MAX_CHECKPOINT_INDEX_BYTES:
            raise ReadError(str(directory), f"{INDEX_MEMBER} too large: {size:,} bytes "
                            f"(limit {MAX_CHECKPOINT_INDEX_BYTES:,})")
        data = stream.read(MAX_CHECKPOINT_INDEX_BYTES + 1)
    try:
        return read_index(data)
    except BundleError as error:
        raise ReadError(str(directory), f"{INDEX_MEMBER}: {error}") from None


def _object_graph(directory: Path, bundle: Bundle, shards: _Shards) -> list[TrackableNode]:
    entry = bundle.entries.get(OBJECT_GRAPH_KEY)
    if entry is None or entry.dtype != DT_STRING or entry.shape:
        raise ReadError(str(directory), f"{INDEX_MEMBER} has no {OBJECT_GRAPH_KEY} string: not a TF2 checkpoint")
    if entry.size > MAX_OBJECT_GRAPH_BYTES:
        raise ReadError(str(directory), f"object graph too large: {entry.size:,} bytes "
                        f"(limit {MAX_OBJECT_GRAPH_BYTES:,})")
    shards.check(OBJECT_GRAPH_KEY, entry)
    try:
        return read_object_graph(string_scalar(shards.read(entry)))
    except BundleError as error:
        raise ReadError(str(directory), f"{VARIABLES_FOLDER}/ {error}") from None


def _fields(data: memoryview, number: int) -> Iterator[memoryview]:
    """The payloads of the length-delimited fields ``number`` of one message, as views (no copies)."""
    for found, wire, value in iter_fields(cast(bytes, data)):  # slices of a memoryview stay views
        if found == number and wire == WIRE_LEN:
            yield cast(memoryview, value)


def _trainable_flags(directory: Path) -> tuple[dict[int, bool], str | None]:
    """Each variable's own ``trainable`` by object graph node, from ``saved_model.pb``
    (``SavedModel.meta_graphs[0].object_graph_def.nodes[i].variable.trainable``: fields 2, 7, 1, 7, 3); with a
    note when the file cannot give them."""
    if not os.path.lexists(directory / SAVED_MODEL_FILE):
        return {}, f"no {SAVED_MODEL_FILE}: the variables' own trainable flags were not read"
    with open_member(directory, SAVED_MODEL_FILE) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size > MAX_SAVED_MODEL_BYTES:
            return {}, (f"{SAVED_MODEL_FILE} is larger than {MAX_SAVED_MODEL_BYTES >> 20} MiB: the variables' own "
                        "trainable flags were not read")
        data = memoryview(stream.read(MAX_SAVED_MODEL_BYTES + 1))
    flags: dict[int, bool] = {}
    try:
        meta_graph = next(_fields(data, 2), None)
        graph = next(_fields(meta_graph, 7), None) if meta_graph is not None else None
        for node, saved_object in enumerate(_fields(graph, 1) if graph is not None else ()):
            for variable in _fields(saved_object, 7):
                flags[node] = False  # proto3 leaves a false bool out
                for number, wire, value in iter_fields(cast(bytes, variable)):
                    if number == 3 and wire == WIRE_VARINT:
                        flags[node] = bool(value)
    except ProtobufError as error:
        return {}, f"{SAVED_MODEL_FILE} cannot be decoded ({error}): the variables' own trainable flags were not read"
    return flags, None


class _Attacher:
    """Builds the weight index: every config layer's variables, counted against MAX_LAYER_ARRAYS."""

    def __init__(self, directory: Path, bundle: Bundle, graph: list[TrackableNode], shards: _Shards,
                 trainable: dict[int, bool]) -> None:
        self.directory, self.bundle, self.graph, self.shards = directory, bundle, graph, shards
        self.trainable = trainable
        self.index = WeightIndex()
        self.arrays: dict[int, WeightArray] = {}
        self.attached = 0
        self._named: dict[int, dict[str, int]] = {}
        self._variables: dict[int, list[int]] = {}
        self._layers: dict[int, dict[str, int]] = {}

    def child(self, node: int, name: str) -> int | None:
        """The child of ``node`` with the local name ``name`` (the first, if the name repeats)."""
        named = self._named.get(node)
        if named is None:
            named = self._named[node] = {}
            for local, child in self.graph[node].children:
                named.setdefault(local, child)
        return named.get(name)

    def node_names(self, nodes: list[tuple[SavedObjectRecord, dict[str, Any]]]) -> dict[int, str]:
        """Layer name by object graph node, from the metadata nodes whose ``node_path`` the object graph follows.

        A path whose steps the graph has must end at the node's own id: else the two graphs are not numbered
        alike, and nothing can be attached. A path through a name the graph lacks (a dotted name) is left out."""
        names: dict[int, str] = {}
        for record, metadata in nodes:
            parts = record.node_path.split(".")
            if parts[0] != "root":
                continue
            node: int | None = 0
            for part in parts[1:]:
                node = self.child(node, part) if node is not None else None
            if node is None:
                continue
            if node != record.node_id:
                raise ReadError(str(self.directory), f"keras_metadata.pb node {record.node_path!a} is object "
                                f"{record.node_id}, but that path leads to object {node} in the checkpoint's object graph")
            name = metadata.get("name")
            if isinstance(name, str):
                names[node] = name
        return names

    def variables(self, node: int) -> list[int]:
        """The variable nodes a layer node lists (``variables``), or its direct variable children."""
        found = self._variables.get(node)
        if found is None:
            listed = self.child(node, "variables")
            children = self.graph[node if listed is None else listed].children
            found = self._variables[node] = list(dict.fromkeys(
                child for _, child in children if self.graph[child].checkpoint_key is not None))
        self.attached += len(found)
        if self.attached > MAX_LAYER_ARRAYS:
            raise ReadError(str(self.directory), f"too large: more than {MAX_LAYER_ARRAYS:,} arrays attached to layers")
        return found

    def layers(self, node: int, names: dict[int, str]) -> dict[str, int]:
        """The layers of a model node (its ``layer-N`` children) by name."""
        found = self._layers.get(node)
        if found is None:
            found = self._layers[node] = {}
            for local, child in self.graph[node].children:
                if _LAYER_CHILD.fullmatch(local) and child in names:
                    found.setdefault(names[child], child)
        return found

    def array(self, node: int, layer_name: str) -> WeightArray:
        """The array of a variable node, named relative to its layer, its digest kept when small."""
        if node in self.arrays:
            return self.arrays[node]
        trackable = self.graph[node]
        key, full_name = trackable.checkpoint_key or "", trackable.full_name or ""
        entry = self.bundle.entries.get(key)
        if entry is None:
            raise ReadError(str(self.directory), f"{INDEX_MEMBER} has no entry {key!r} (the variable "
                            f"{full_name!r}): tf_keras cannot load it")
        self.shards.check(key, entry)
        name = full_name[len(layer_name) + 1:] if full_name.startswith(layer_name + "/") else full_name
        array = self.arrays[node] = WeightArray(name or key, entry.shape, entry.dtype_name, key,
                                                self.trainable.get(node))
        if entry.size <= EAGER_DIGEST_BYTES:
            digest = _digest(self.shards, entry)
            if digest is not None:
                self.index.digests[key] = digest
        return array

    def attach(self, config: dict[str, Any], names: dict[int, str]) -> int:
        """Give every config layer matched to an object its arrays; the number of layers left unmatched (each
        marked ``missing``)."""
        unmatched = 0
        pending: list[tuple[dict[str, Any], int, LayerKey]] = [(config, 0, ())]
        while pending:
            entry, node, key = pending.pop()
            entries = configs.layer_entries(entry) or []
            layer_nodes = self.layers(node, names)
            inner: set[int] = set()
            for child_entry in entries:
                name = configs.entry_name(child_entry)
                child = layer_nodes.get(name)
                child_key = key + (name,)
                if child is None:
                    if not configs.is_input_layer(child_entry):
                        unmatched += 1
                        self.index.missing.append(child_key)
                    continue
                variables = self.variables(child)
                inner.update(variables)
                if configs.layer_entries(child_entry) is not None:
                    pending.append((child_entry, child, child_key))
                    continue
                self.index.by_layer[child_key] = [self.array(variable, name) for variable in variables]
            if key:
                own = [variable for variable in self.variables(node) if variable not in inner]
                self.index.by_layer[key] = [self.array(variable, key[-1]) for variable in own]
        return unmatched

    def rest(self) -> None:
        """The model's variables no layer took (``unattached``, by their layer's name) and optimizer state."""
        for variable in self.variables(0):
            if variable not in self.arrays:
                full_name = self.graph[variable].full_name or ""
                group = full_name.rpartition("/")[0] or VARIABLES_FOLDER
                self.index.unattached.setdefault(group, []).append(self.array(variable, group))
        for key, entry in self.bundle.entries.items():
            if _OPTIMIZER_KEY.search(key):
                self.index.optimizer.append(WeightArray(key, entry.shape, entry.dtype_name, key))


def read_variables(directory: Path, config: dict[str, Any],
                   nodes: list[tuple[SavedObjectRecord, dict[str, Any]]]) -> tuple[WeightIndex, list[str]]:
    """The arrays of a SavedModel's layers, with notes on what could not be matched; a ReadError when the
    bundle is missing, truncated or malformed."""
    bundle = _read_bundle(directory)
    trainable, note = _trainable_flags(directory)
    notes = [note] if note else []
    with ExitStack() as stack:
        shards = _Shards(directory, bundle, stack)
        graph = _object_graph(directory, bundle, shards)
        attacher = _Attacher(directory, bundle, graph, shards, trainable)
        unmatched = attacher.attach(config, attacher.node_names(nodes))
        attacher.rest()
    if unmatched:
        notes.append(f"{unmatched} layer(s) of the config have no object in the SavedModel's object graph: "
                     "no weights attached to them")
    return attacher.index, notes


def bundle_digests(directory: Path, locations: list[str]) -> dict[str, ArrayDigest]:
    """Content digests of the bundle entries named by ``locations`` (checkpoint keys) that it holds."""
    bundle = _read_bundle(directory)
    results: dict[str, ArrayDigest] = {}
    with ExitStack() as stack:
        shards = _Shards(directory, bundle, stack)
        for location in locations:
            entry = bundle.entries.get(location)
            if entry is not None:
                shards.check(location, entry)
                digest = _digest(shards, entry)
                if digest is not None:
                    results[location] = digest
    return results
