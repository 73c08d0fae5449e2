"""Careful HDF5 access shared by the readers: hard links only, metadata only, typed attributes."""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np


def _hard_member(group: h5py.Group, name: str) -> h5py.Group | h5py.Dataset | None:
    """The object linked as ``name`` (one path component) in ``group`` if that link is a hard link."""
    try:
        link = group.get(name, getlink=True)
    except (KeyError, ValueError, OSError, TypeError):
        return None
    if not isinstance(link, h5py.HardLink):
        return None
    try:
        return group[name]
    except (KeyError, ValueError, OSError):
        return None


def child(group: h5py.Group, path: str) -> h5py.Group | h5py.Dataset | None:
    """The object at ``path`` (``name`` or ``a/b/c``, taken relative to ``group``) if every link on the way
    is a hard link inside this file; None otherwise.

    Each component is looked up on its own: libhdf5 follows soft and external links in the middle of a path
    it is given whole, and a crafted file could point anywhere.
    """
    current: Any = group
    for part in path.split("/"):
        if not part or part == ".":
            continue
        if not isinstance(current, h5py.Group):
            return None
        current = _hard_member(current, part)
    return current


def subgroup(group: h5py.Group, path: str) -> h5py.Group | None:
    """The group at ``a/b/c`` through hard links only; None when any step is missing or not a group."""
    found = child(group, path)
    return found if isinstance(found, h5py.Group) else None


def data_location(dataset: h5py.h5d.DatasetID, offset: int | None) -> str:
    """Where reading the dataset's values would go: ``file``, or another file (``virtual``, ``external`` raw storage).

    ``offset`` is the dataset's ``get_offset()``: a dataset stored contiguously inside the file has one and is
    ``file``; only for the others is the creation list read.
    """
    if offset is not None:
        return "file"
    plist = dataset.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        return "virtual"
    return "external" if plist.get_external_count() > 0 else "file"


def to_str(value: Any) -> str | None:
    """An attribute value as text (h5py returns str or bytes depending on how it was written)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "SUO":
        return to_str(value.item())
    return None


_VARIABLE_TEXT = {
    cset: (dtype, h5py.h5t.py_create(dtype))
    for cset, dtype in ((h5py.h5t.CSET_ASCII, h5py.string_dtype("ascii")), (h5py.h5t.CSET_UTF8, h5py.string_dtype()))
}
"""The dtype h5py reads a variable-length string of each character set into, with its memory type made once."""


def str_attr(obj: h5py.HLObject | h5py.h5o.ObjectID, name: str, path: bytes = b".") -> str | None:
    """A scalar string attribute of ``obj``, or of the object at ``path`` below it (a path of hard links, as
    ``H5Ovisit`` gives: libhdf5 opens only the attribute), or None when absent or of another type.

    Read through the low-level API (it runs once per layer group), so ``obj`` may be a low-level id.
    """
    object_id = obj.id if isinstance(obj, h5py.HLObject) else obj
    try:
        attr = h5py.h5a.open(object_id, name.encode(), obj_name=path)  # KeyError when absent
        stored = attr.get_type()
        if attr.get_space().get_simple_extent_type() != h5py.h5s.SCALAR or stored.get_class() != h5py.h5t.STRING:
            return None
        if stored.is_variable_str():
            dtype, memory_type = _VARIABLE_TEXT[stored.get_cset()]
            value = np.empty((), dtype)
            attr.read(value, mtype=memory_type)
        else:
            value = np.empty((), attr.dtype)
            attr.read(value)
        return to_str(value[()])
    except (OSError, ValueError, TypeError, KeyError, RuntimeError):
        return None


def str_list_attr(obj: h5py.HLObject, name: str) -> list[str] | None:
    """A list-of-strings attribute, joining Keras's chunks ``name0``, ``name1``, ...

    Returns None when neither ``name`` nor ``name0`` exists, and raises ValueError on a value
    that is not a list of strings.
    """
    try:
        if name in obj.attrs:
            chunks = [obj.attrs[name]]
        elif f"{name}0" in obj.attrs:
            chunks = []
            while f"{name}{len(chunks)}" in obj.attrs:
                chunks.append(obj.attrs[f"{name}{len(chunks)}"])
        else:
            return None
    except (OSError, TypeError, KeyError) as error:
        raise ValueError(f"attribute {name!r} cannot be read ({error})") from error
    values: list[str] = []
    for chunk in chunks:
        items = np.atleast_1d(np.asarray(chunk))
        if items.size == 0:
            continue
        for item in items.tolist():
            text = to_str(item)
            if text is None:
                raise ValueError(f"attribute {name!r} holds {type(item).__name__}, not text")
            values.append(text)
    return values
