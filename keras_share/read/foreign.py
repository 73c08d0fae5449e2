"""Name the files that are not Keras models but are often mistaken for one: a Git LFS pointer left by a checkout
without LFS, a pickle, safetensors, TensorFlow Lite, ONNX, a PyTorch checkpoint, an Orbax checkpoint. Only the
first bytes and the names are looked at; nothing is decoded or loaded."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from keras_share.limits import MAX_ORBAX_STEP_FOLDERS

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

_ORBAX_REMEDY = "load it with keras.saving.load_model (orbax-checkpoint installed) and save it as a .keras file"
ORBAX_CHECKPOINT = (
    "Orbax checkpoint folder: not readable by keras-share (the dtypes and values of its arrays are inside a "
    f"zstd-compressed TensorStore OCDBT database); {_ORBAX_REMEDY} to inspect it"
)
"""The problem reported for an Orbax checkpoint (Keras >= 3.14 ``OrbaxCheckpoint``, ``load_model``): its model
config is plain JSON (``model_config/_strings.json``), but its arrays are not (see docs/formats.md)."""
ORBAX_MARKERS = ("orbax.checkpoint", "_CHECKPOINT_METADATA", "pytree.orbax-checkpoint", "checkpoint_metadata")
"""Files whose presence makes a folder an Orbax checkpoint step, as Keras's ``is_orbax_checkpoint`` and Orbax's
own layout check tell."""
ORBAX_TEMPORARY = ".orbax-checkpoint-tmp"
"""In the name of a step folder Orbax is still writing (an interrupted save leaves it)."""
_ORBAX_FILES = {
    "_CHECKPOINT_METADATA": "the step metadata",
    "_METADATA": "the tree metadata",
    "_sharding": "the sharding metadata",
    "manifest.ocdbt": "the OCDBT manifest",
    "orbax.checkpoint": "the marker file",
    "_strings.json": "the strings",
}
_OCDBT_MAGICS = (b"\x0c\xdb\x3a\x2a", b"\x0c\xdb\x20\xde")
"""The first bytes of an OCDBT manifest and of an OCDBT data file (``d/<hash>``)."""


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
    if name in _ORBAX_FILES:
        return f"{_ORBAX_FILES[name]} of an Orbax checkpoint folder (by its name), not readable by keras-share: " + _ORBAX_REMEDY
    if head.startswith(_OCDBT_MAGICS):
        return "an OCDBT file of an Orbax checkpoint folder, not readable by keras-share: " + _ORBAX_REMEDY
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _BY_SUFFIX.get(suffix)


def foreign_zip(member_names: list[str]) -> str | None:
    """What a zip archive without ``config.json`` is, from its member names; None when unknown."""
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in member_names):
        return "a PyTorch checkpoint (a zip holding data.pkl, never unpickled)"
    return None


def is_orbax_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` is an Orbax checkpoint: a step folder (``ORBAX_MARKERS``, or one being written), or the
    root holding numbered step folders that are. At most ``MAX_ORBAX_STEP_FOLDERS`` numbered folders are looked
    into; a numbered folder without a marker (a TF Serving ``1/saved_model.pb``) does not count."""
    if any(os.path.lexists(folder / name) for name in ORBAX_MARKERS):
        return True
    try:
        with os.scandir(folder) as listing:
            steps_seen = 0
            for entry in listing:
                if ORBAX_TEMPORARY in entry.name:
                    return True
                if not entry.name.isdigit() or not entry.is_dir(follow_symlinks=False):
                    continue
                if any(os.path.lexists(Path(entry.path) / name) for name in ORBAX_MARKERS):
                    return True
                steps_seen += 1
                if steps_seen >= MAX_ORBAX_STEP_FOLDERS:
                    return False
    except OSError:
        return False
    return False
