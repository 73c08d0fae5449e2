"""Hand-written TF tensor bundles (a SavedModel's ``variables/``), for tests that need one without TensorFlow.

The layout is what TF's ``BundleWriter`` writes (see keras_share/read/tf_bundle.py): one uncompressed data block
of the sorted entries, an index block naming it, an empty metaindex block and the 48-byte footer. Checksums are
left zero: keras-share does not check them (TensorFlow does).
"""

from __future__ import annotations

from pathlib import Path

from protobuf_bytes import length_delimited, varint

TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")


def field_varint(number: int, value: int) -> bytes:
    """Field ``number`` holding the varint ``value``."""
    return varint(number << 3) + varint(value)


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block: the entries without shared prefixes, one restart point."""
    body = b"".join(varint(0) + varint(len(key)) + varint(len(value)) + key + value for key, value in entries)
    return body + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")


def table(entries: list[tuple[bytes, bytes]], compression: int = 0) -> bytes:
    """A LevelDB-style table of ``entries`` (sorted here), its blocks marked with ``compression``."""
    trailer = bytes([compression]) + b"\0" * 4
    data_block = block(sorted(entries))
    data_handle = varint(0) + varint(len(data_block))
    meta_at = len(data_block) + len(trailer)
    meta_block = block([])
    index_at = meta_at + len(meta_block) + len(trailer)
    last_key = max((key for key, _ in entries), default=b"")
    index_block = block([(last_key, data_handle)])
    handles = varint(meta_at) + varint(len(meta_block)) + varint(index_at) + varint(len(index_block))
    footer = handles.ljust(40, b"\0") + TABLE_MAGIC
    return data_block + trailer + meta_block + trailer + index_block + trailer + footer


def entry(dtype: int, shape: tuple[int, ...], offset: int, size: int, shard: int = 0) -> bytes:
    """A ``BundleEntryProto``."""
    dims = b"".join(length_delimited(2, field_varint(1, dim)) for dim in shape)
    return (field_varint(1, dtype) + length_delimited(2, dims) + field_varint(3, shard) + field_varint(4, offset)
            + field_varint(5, size))


def header(shards: int = 1) -> bytes:
    """A ``BundleHeaderProto``."""
    return field_varint(1, shards)


def string_tensor(value: bytes) -> bytes:
    """A scalar string tensor as a bundle stores it: its length, a (zero) checksum of the lengths, the bytes."""
    return varint(len(value)) + b"\0" * 4 + value


def object_graph(nodes: list[tuple[list[tuple[str, int]], tuple[str, str] | None]]) -> bytes:
    """A ``TrackableObjectGraph``: per node its children (local name, node id) and, for a variable, its
    (full name, checkpoint key)."""
    out = b""
    for children, variable in nodes:
        node = b"".join(length_delimited(1, field_varint(1, child) + length_delimited(2, name.encode()))
                        for name, child in children)
        if variable is not None:
            full_name, key = variable
            node += length_delimited(2, length_delimited(1, b"VARIABLE_VALUE") + length_delimited(2, full_name.encode())
                                     + length_delimited(3, key.encode()))
        out += length_delimited(1, node)
    return out


def write_bundle(folder: Path, nodes: list[tuple[list[tuple[str, int]], tuple[str, str] | None]] | None = None,
                 tensors: dict[str, tuple[int, tuple[int, ...], bytes]] | None = None) -> Path:
    """Write ``folder/variables/`` with the object graph of ``nodes`` (default: a root alone) and ``tensors``
    (key -> (TF dtype number, shape, bytes)), in one shard; returns the variables folder."""
    graph = string_tensor(object_graph(nodes if nodes is not None else [([], None)]))
    data = graph
    entries = [(b"", header()), (b"_CHECKPOINTABLE_OBJECT_GRAPH", entry(7, (), 0, len(graph)))]
    for key, (dtype, shape, raw) in (tensors or {}).items():
        entries.append((key.encode(), entry(dtype, shape, len(data), len(raw))))
        data += raw
    variables = folder / "variables"
    variables.mkdir(parents=True, exist_ok=True)
    (variables / "variables.index").write_bytes(table(entries))
    (variables / "variables.data-00000-of-00001").write_bytes(data)
    return variables
