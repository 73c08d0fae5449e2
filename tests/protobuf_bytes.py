"""Hand-written protobuf wire bytes, for building SavedModel metadata in tests."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field ``number`` holding ``payload`` (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload
