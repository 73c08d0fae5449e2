"""A minimal protobuf wire-format decoder for tf_keras ``keras_metadata.pb``.

Pure Python: no ``protobuf`` package and no TensorFlow import. The schema is
tf_keras ``protobuf/saved_metadata.proto``::

    SavedMetadata { repeated SavedObject nodes = 1; }
    SavedObject   { int32 node_id = 2; string node_path = 3;
                    string identifier = 4; string metadata = 5;
                    VersionDef version = 6; }

The decoder is iterative (no recursion) and every loop step consumes input,
so hostile bytes end in a ``ProtobufError`` rather than a hang.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from keras_share.read.json_text import JsonRefused, load_json

__all__ = [
    "ProtobufError",
    "SavedObjectRecord",
    "decode_metadata_json",
    "iter_fields",
    "read_keras_metadata",
    "root_model_metadata",
]

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_LEN = 2
WIRE_FIXED32 = 5

_MAX_VARINT_BYTES = 10
_MAX_FIELD_NUMBER = (1 << 29) - 1
_UINT64_MASK = (1 << 64) - 1

# SavedMetadata / SavedObject field numbers.
_NODES = 1
_NODE_ID = 2
_NODE_PATH = 3
_IDENTIFIER = 4
_METADATA = 5


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True)
class SavedObjectRecord:
    """One ``SavedObject`` of ``keras_metadata.pb``; ``metadata`` is raw JSON text."""

    node_id: int
    node_path: str
    identifier: str
    metadata: str


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return (value as uint64, next position)."""
    start = pos
    result = 0
    for shift in range(0, 7 * _MAX_VARINT_BYTES, 7):
        if pos >= len(data):
            raise ProtobufError(f"truncated varint at offset {start}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _UINT64_MASK, pos
    raise ProtobufError(f"varint longer than {_MAX_VARINT_BYTES} bytes at offset {start}")


def _read_fixed(data: bytes, pos: int, size: int) -> tuple[int, int]:
    """Decode a little-endian unsigned integer of ``size`` bytes at ``pos``."""
    end = pos + size
    if end > len(data):
        raise ProtobufError(f"truncated {size * 8}-bit field at offset {pos}")
    return int.from_bytes(data[pos:end], "little"), end


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of one message.

    ``value`` is an unsigned int for wire types 0, 1 and 5 and the raw payload
    bytes for wire type 2. Raises ``ProtobufError`` on malformed input.
    """
    pos = 0
    end = len(data)
    while pos < end:
        tag_offset = pos
        tag, pos = read_varint(data, pos)
        field_number, wire_type = tag >> 3, tag & 0x7
        if not 1 <= field_number <= _MAX_FIELD_NUMBER:
            raise ProtobufError(f"invalid field number {field_number} at offset {tag_offset}")
        value: int | bytes
        if wire_type == WIRE_VARINT:
            value, pos = read_varint(data, pos)
        elif wire_type == WIRE_FIXED64:
            value, pos = _read_fixed(data, pos, 8)
        elif wire_type == WIRE_FIXED32:
            value, pos = _read_fixed(data, pos, 4)
        elif wire_type == WIRE_LEN:
            length, pos = read_varint(data, pos)
            if length > end - pos:
                raise ProtobufError(
                    f"field {field_number}: length {length} runs past the end "
                    f"of the data at offset {pos}"
                )
            value = data[pos : pos + length]
            pos += length
        else:
            raise ProtobufError(
                f"unsupported wire type {wire_type} (field {field_number}) "
                f"at offset {tag_offset}"
            )
        yield field_number, wire_type, value


def _as_int32(value: int) -> int:
    """Truncate a uint64 varint to a signed int32, as protobuf does."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _as_str(value: bytes, field: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"SavedObject.{field} is not valid UTF-8") from None


def _read_saved_object(payload: bytes) -> SavedObjectRecord:
    """Decode one ``SavedObject``; unknown and mismatched fields are skipped."""
    node_id = 0
    strings = {_NODE_PATH: b"", _IDENTIFIER: b"", _METADATA: b""}
    for field_number, wire_type, value in iter_fields(payload):
        if field_number == _NODE_ID and wire_type == WIRE_VARINT:
            node_id = _as_int32(cast(int, value))
        elif field_number in strings and isinstance(value, bytes):
            strings[field_number] = value
    return SavedObjectRecord(
        node_id=node_id,
        node_path=_as_str(strings[_NODE_PATH], "node_path"),
        identifier=_as_str(strings[_IDENTIFIER], "identifier"),
        metadata=_as_str(strings[_METADATA], "metadata"),
    )


def read_keras_metadata(data: bytes) -> list[SavedObjectRecord]:
    """Decode the bytes of ``keras_metadata.pb`` into its SavedObject records.

    Follows proto3 semantics: missing fields take their defaults, a scalar
    field that occurs twice keeps its last value, and unknown fields (including
    the ``version`` sub-message, which is not needed) are skipped.
    """
    records = []
    for field_number, _, value in iter_fields(data):
        if field_number == _NODES and isinstance(value, bytes):
            records.append(_read_saved_object(value))
    return records


def _undo_json_utils_wrapper(obj: dict[str, Any]) -> Any:
    """``object_hook`` that unwraps the markers written by tf_keras ``json_utils``.

    Only dicts with exactly the keys the encoder writes are unwrapped, so an
    ordinary config dict is never mistaken for a marker.
    """
    kind = obj.get("class_name")
    keys = obj.keys()
    if kind == "__tuple__" and keys == {"class_name", "items"}:
        if isinstance(obj["items"], list):
            return obj["items"]
    elif kind == "TensorShape" and keys == {"class_name", "items"}:
        if obj["items"] is None or isinstance(obj["items"], list):
            return obj["items"]
    elif kind == "__ellipsis__" and keys == {"class_name"}:
        return "..."
    elif kind == "__bytes__" and keys == {"class_name", "value"} and isinstance(obj["value"], str):
        return obj["value"]
    return obj


def decode_metadata_json(text: str) -> dict[str, Any]:
    """Parse a SavedObject ``metadata`` JSON string into a plain dict.

    tf_keras wrappers become plain values: ``__tuple__`` -> list,
    ``TensorShape`` -> list (``None`` for unknown rank), ``__ellipsis__`` ->
    ``"..."``, ``__bytes__`` -> its string. ``TypeSpec`` and ``CompositeTensor``
    dicts are left as they are. Raises ``ValueError`` on bad JSON.
    """
    try:
        value = load_json(text, object_hook=_undo_json_utils_wrapper)
    except JsonRefused as exc:
        raise ValueError(f"metadata JSON {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"metadata is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"metadata JSON is a {type(value).__name__}, expected an object")
    return value


def root_model_metadata(records: Iterable[SavedObjectRecord]) -> dict[str, Any]:
    """Return the decoded metadata of the record whose ``node_path`` is ``"root"``."""
    for record in records:
        if record.node_path == "root":
            return decode_metadata_json(record.metadata)
    raise ValueError("keras_metadata.pb has no SavedObject with node_path 'root'")
