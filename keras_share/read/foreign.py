"""Name the files that are not Keras models but are often mistaken for one: a Git LFS pointer left by a checkout
without LFS, a pickle, safetensors, TensorFlow Lite, ONNX, a PyTorch checkpoint. Only the first bytes and the
name are looked at; nothing is decoded or loaded."""

from __future__ import annotations

import struct

LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"
HEAD_BYTES = 64
"""How many of a file's first bytes ``foreign_format`` needs."""
_BY_SUFFIX = {
    ".onnx": "an ONNX model (by its name)",
    ".tflite": "a TensorFlow Lite model (by its name)",
    ".pb": "a TensorFlow protobuf (by its name; for a SavedModel, give its folder)",
    ".pt": "a PyTorch file (by its name)",
    ".pth": "a PyTorch file (by its name)",
    ".pkl": "a Python pickle (by its name; never unpickled)",
    ".safetensors": "a safetensors file (by its name)",
}


def foreign_format(head: bytes, name: str, size: int) -> str | None:
    """What a file that is neither a zip nor HDF5 is, from its first HEAD_BYTES bytes ``head``, its ``name`` and
    its ``size``, as a phrase ("a Git LFS pointer ..."); None when it is none of the known kinds."""
    if head.startswith(LFS_POINTER):
        return ("a Git LFS pointer, not the file itself: run `git lfs pull` (in GitHub Actions, check out with "
                "`lfs: true`)")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle (never unpickled: loading one runs code)"
    if len(head) >= 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] <= size - 8:
        return "a safetensors file"
    if head[4:8] == b"TFL3":
        return "a TensorFlow Lite model"
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _BY_SUFFIX.get(suffix)


def foreign_zip(member_names: list[str]) -> str | None:
    """What a zip archive without ``config.json`` is, from its member names; None when unknown."""
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in member_names):
        return "a PyTorch checkpoint (a zip holding data.pkl, never unpickled)"
    return None
