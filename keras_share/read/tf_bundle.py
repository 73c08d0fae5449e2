"""A TF tensor bundle (a SavedModel's ``variables/``) read without TensorFlow.

``variables.index`` is a LevelDB-style table (footer magic ``0xdb4775248b80fb57``) whose blocks TF writes
uncompressed; its values are protobuf messages (TF ``tensor_bundle.proto``)::

    ""  -> BundleHeaderProto { int32 num_shards = 1; Endianness endianness = 2; VersionDef version = 3; }
    key -> BundleEntryProto  { DataType dtype = 1; TensorShapeProto shape = 2; int32 shard_id = 3;
                               int64 offset = 4; int64 size = 5; fixed32 crc32c = 6;
                               repeated TensorSliceProto slices = 7; }

The tensors' bytes (little-endian, C order) are in ``variables.data-SSSSS-of-NNNNN``. The bundle's
``_CHECKPOINTABLE_OBJECT_GRAPH`` entry is a scalar string tensor holding a ``TrackableObjectGraph``
(``trackable_object_graph.proto``)::

    TrackableObjectGraph { repeated TrackableObject nodes = 1; }
    TrackableObject      { repeated ObjectReference children = 1; repeated SerializedTensor attributes = 2; }
    ObjectReference      { int32 node_id = 1; string local_name = 2; }
    SerializedTensor     { string name = 1; string full_name = 2; string checkpoint_key = 3; }

Every count and size read is checked against the bytes it lies in and against ``limits``; bad bytes end in a
``BundleError`` with a one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from keras_share.limits import (
    MAX_CHECKPOINT_ENTRIES,
    MAX_CHECKPOINT_KEY_BYTES,
    MAX_CHECKPOINT_SHARDS,
    MAX_OBJECT_GRAPH_NODES,
)
from keras_share.read.protobuf_wire import (
    WIRE_FIXED32,
    WIRE_LEN,
    WIRE_VARINT,
    ProtobufError,
    iter_fields,
    read_varint,
)

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5
"""After each block: one compression byte (0: none, 1: snappy) and a masked CRC32C."""
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE = "VARIABLE_VALUE"
"""The attribute name of a variable's value in the object graph."""

DT_STRING = 7
DTYPES: dict[int, tuple[str, int]] = {
    1: ("float32", 4), 2: ("float64", 8), 3: ("int32", 4), 4: ("uint8", 1), 5: ("int16", 2), 6: ("int8", 1),
    8: ("complex64", 8), 9: ("int64", 8), 10: ("bool", 1), 14: ("bfloat16", 2), 17: ("uint16", 2),
    18: ("complex128", 16), 19: ("float16", 2), 22: ("uint32", 4), 23: ("uint64", 8),
}
"""TF ``DataType`` numbers of the fixed-size dtypes -> (name, bytes per element)."""


class BundleError(ValueError):
    """The bytes are not a well-formed tensor bundle."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor of the bundle lives and what it is."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int
    sliced: bool

    @property
    def dtype_name(self) -> str:
        """numpy's name of the dtype (``float32``), or ``DT_<number>`` for one without a fixed size."""
        return DTYPES[self.dtype][0] if self.dtype in DTYPES else f"DT_{self.dtype}"


@dataclass
class Bundle:
    """The index of a bundle: its shard count and every entry by key (the header's key left out)."""

    shards: int
    entries: dict[str, BundleEntry]


@dataclass(frozen=True)
class TrackableNode:
    """One object of the checkpoint's object graph: its children (local name, node id) and, for a variable,
    its full name and the bundle key of its value."""

    children: tuple[tuple[str, int], ...]
    full_name: str | None = None
    checkpoint_key: str | None = None


def _varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """The varint of ``what`` at ``pos`` and the position after it (``protobuf_wire.read_varint``)."""
    try:
        return read_varint(data, pos)
    except ProtobufError as error:
        raise BundleError(f"{what}: {error}") from None


def _block(data: bytes, handle: bytes, what: str) -> bytes:
    """The contents of the block a ``BlockHandle`` (varint offset, varint size) names, checked to be uncompressed."""
    offset, pos = _varint(handle, 0, f"{what} handle")
    size, _ = _varint(handle, pos, f"{what} handle")
    end = offset + size
    if end + BLOCK_TRAILER_BYTES > len(data):
        raise BundleError(f"{what} at {offset} ({size} bytes) runs past the end of the file ({len(data)} bytes): truncated")
    compression = data[end]
    if compression == 1:
        raise BundleError(f"{what} is snappy-compressed; TF writes bundles uncompressed and keras-share reads only those")
    if compression != 0:
        raise BundleError(f"{what} has unknown compression type {compression}")
    return data[offset:end]


class _KeyBudget:
    """The bytes of keys a table may still rebuild (MAX_CHECKPOINT_KEY_BYTES)."""

    def __init__(self) -> None:
        self.left = MAX_CHECKPOINT_KEY_BYTES

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise BundleError(f"too large: more than {MAX_CHECKPOINT_KEY_BYTES:,} bytes of keys")


def _block_entries(block: bytes, what: str, budget: _KeyBudget) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) pairs of one table block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise BundleError(f"{what} is shorter than its restart count")
    restarts = int.from_bytes(block[-4:], "little")
    if restarts * 4 + 4 > len(block):
        raise BundleError(f"{what} declares {restarts} restart points, more than its {len(block)} bytes hold")
    end = len(block) - 4 - 4 * restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, f"{what} entry")
        unshared, pos = _varint(block, pos, f"{what} entry")
        value_size, pos = _varint(block, pos, f"{what} entry")
        if shared > len(key) or pos + unshared + value_size > end:
            raise BundleError(f"{what} has an entry at {pos} that runs past the block")
        budget.take(shared + unshared)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_size]
        pos += value_size


def table_entries(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-style table, in order; BundleError when the bytes are not one."""
    if len(data) < FOOTER_BYTES:
        raise BundleError(f"{len(data)} bytes, shorter than a table footer: truncated")
    footer = data[-FOOTER_BYTES:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise BundleError("no table magic number at its end: truncated, or not a TF checkpoint index")
    _, pos = _varint(footer, 0, "metaindex handle")  # the metaindex block: TF writes it empty
    _, pos = _varint(footer, pos, "metaindex handle")
    index = _block(data, footer[pos:], "index block")
    budget = _KeyBudget()
    for number, (_, handle) in enumerate(_block_entries(index, "index block", budget)):
        yield from _block_entries(_block(data, handle, f"data block {number}"), f"data block {number}", budget)


def _int(value: int | bytes) -> int:
    return value if isinstance(value, int) else 0


def _shape(payload: bytes) -> tuple[int, ...]:
    """A ``TensorShapeProto`` (dim = 2 {size = 1}, unknown_rank = 3) as a tuple of sizes."""
    dims: list[int] = []
    for number, wire, value in iter_fields(payload):
        if number == 3 and wire == WIRE_VARINT and value:
            raise BundleError("a tensor of unknown rank")
        if number == 2 and isinstance(value, bytes):
            size = 0
            for inner, inner_wire, inner_value in iter_fields(value):
                if inner == 1 and inner_wire == WIRE_VARINT:
                    size = cast(int, inner_value)
            if size >= 1 << 63:
                raise BundleError("a tensor with a negative dimension")
            dims.append(size)
    return tuple(dims)


def _entry(key: str, payload: bytes) -> BundleEntry:
    fields: dict[int, int] = {}
    shape: tuple[int, ...] = ()
    sliced = False
    for number, wire, value in iter_fields(payload):
        if number == 2 and isinstance(value, bytes):
            shape = _shape(value)
        elif number == 7:
            sliced = True
        elif wire in (WIRE_VARINT, WIRE_FIXED32):
            fields[number] = _int(value)
    entry = BundleEntry(dtype=fields.get(1, 0), shape=shape, shard=fields.get(3, 0), offset=fields.get(4, 0),
                        size=fields.get(5, 0), crc32c=fields.get(6, 0), sliced=sliced)
    if entry.dtype in DTYPES and not entry.sliced and entry.size != DTYPES[entry.dtype][1] * math.prod(entry.shape):
        raise BundleError(f"entry {key!r}: {entry.size} bytes stored for a {entry.dtype_name} tensor of shape "
                          f"{list(entry.shape)}")
    return entry


def read_index(data: bytes) -> Bundle:
    """The entries of a ``variables.index`` file's bytes; BundleError when they are not a well-formed index."""
    shards: int | None = None
    entries: dict[str, BundleEntry] = {}
    try:
        for raw_key, value in table_entries(data):
            if not raw_key:
                shards = next((_int(v) for n, w, v in iter_fields(value) if n == 1 and w == WIRE_VARINT), 0)
                continue
            if len(entries) >= MAX_CHECKPOINT_ENTRIES:
                raise BundleError(f"too large: more than {MAX_CHECKPOINT_ENTRIES:,} entries")
            key = raw_key.decode("utf-8")
            entries[key] = _entry(key, value)
    except ProtobufError as error:
        raise BundleError(f"an entry cannot be decoded ({error})") from None
    except UnicodeDecodeError:
        raise BundleError("a key is not UTF-8") from None
    if shards is None:
        raise BundleError("no header entry")
    if not 1 <= shards <= MAX_CHECKPOINT_SHARDS:
        raise BundleError(f"header declares {shards:,} data shards (limit {MAX_CHECKPOINT_SHARDS:,})")
    for key, entry in entries.items():
        if entry.shard >= shards:
            raise BundleError(f"entry {key!r} is in shard {entry.shard}, beyond the header's {shards}")
    return Bundle(shards, entries)


def shard_name(shard: int, shards: int) -> str:
    """The file name of data shard ``shard`` of ``shards``: ``variables.data-00000-of-00001``."""
    return f"variables.data-{shard:05d}-of-{shards:05d}"


def string_scalar(data: bytes) -> bytes:
    """The value of a scalar string tensor from its stored bytes: a varint length, a 4-byte checksum of the
    lengths, then the string."""
    length, pos = _varint(data, 0, "string tensor length")
    if pos + 4 + length != len(data):
        raise BundleError(f"string tensor of {length} bytes stored in {len(data)} bytes")
    return data[pos + 4:]


def _text(value: int | bytes, what: str) -> str:
    if not isinstance(value, bytes):
        raise BundleError(f"object graph: {what} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"object graph: {what} is not UTF-8") from None


def read_object_graph(data: bytes) -> list[TrackableNode]:
    """The nodes of a serialized ``TrackableObjectGraph``, each child's node id checked to exist."""
    nodes: list[TrackableNode] = []
    try:
        for number, _, payload in iter_fields(data):
            if number != 1 or not isinstance(payload, bytes):
                continue
            if len(nodes) >= MAX_OBJECT_GRAPH_NODES:
                raise BundleError(f"object graph too large: more than {MAX_OBJECT_GRAPH_NODES:,} nodes")
            nodes.append(_trackable(payload))
    except ProtobufError as error:
        raise BundleError(f"object graph cannot be decoded ({error})") from None
    for node in nodes:
        for name, child in node.children:
            if not 0 <= child < len(nodes):
                raise BundleError(f"object graph: child {name!r} names node {child}, beyond its {len(nodes)} nodes")
    if not nodes:
        raise BundleError("object graph has no nodes")
    return nodes


def _trackable(payload: bytes) -> TrackableNode:
    children: list[tuple[str, int]] = []
    full_name = key = None
    for number, wire, value in iter_fields(payload):
        if number == 1 and wire == WIRE_LEN:
            node_id, local_name = 0, ""
            for inner, inner_wire, inner_value in iter_fields(cast(bytes, value)):
                if inner == 1 and inner_wire == WIRE_VARINT:
                    node_id = cast(int, inner_value)
                elif inner == 2:
                    local_name = _text(inner_value, "a child's local name")
            children.append((local_name, node_id))
        elif number == 2 and wire == WIRE_LEN:
            attribute: dict[int, str] = {}
            for inner, _, inner_value in iter_fields(cast(bytes, value)):
                if inner in (1, 2, 3):
                    attribute[inner] = _text(inner_value, "an attribute")
            if attribute.get(1) == VARIABLE_VALUE and 3 in attribute:
                full_name, key = attribute.get(2, ""), attribute[3]
    return TrackableNode(tuple(children), full_name, key)
