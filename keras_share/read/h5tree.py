"""One pass over an HDF5 tree into plain Python: groups, dataset shapes and dtypes, chosen attributes.

Walking a model file object by object through h5py's high-level API costs a dozen library calls per
link. Here one ``H5Ovisit`` reaches every object with its type and attribute count, and describes it
on the way: each dataset is opened once, relative to its parent group, for its shape and dtype (and,
when small, its content digest); only groups that carry attributes are asked for them. The visit
follows hard links only: soft and external links are never followed, and an object reachable through
several hard links is seen once, at its first path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import h5py
import numpy as np

from keras_share.read import h5util
from keras_share.read.base import ArrayDigest
from keras_share.read.digest import (
    HASHED_KINDS,
    HashBudget,
    buffer_digest,
    read_cost,
    unwritten_digest,
    value_digest,
)
from keras_share.read.stored import StoredDataset, StoredGroup

EAGER_DIGEST_BYTES = 1 << 20
"""Datasets up to this size are hashed while they are open; larger ones only when a rule asks."""


_UNDESCRIBED = StoredDataset(None, "")
_DATASET = h5py.h5o.TYPE_DATASET
_GROUP = h5py.h5o.TYPE_GROUP
_ERRORS = (ValueError, OSError, TypeError, RuntimeError, KeyError)
_COMMON_TYPES = tuple(
    (h5py.h5t.py_create(np.dtype(name)), np.dtype(name), str(np.dtype(name))) for name in ("<f4", "<f8", "<f2", "<i8", "<i4")
)
"""Types that weights are stored in, matched with one ``H5Tequal`` instead of a dtype conversion each."""


def _memory_type(file_type: h5py.h5t.TypeID) -> tuple[h5py.h5t.TypeID, np.dtype, str]:
    """The HDF5 memory type to read a stored type into, its numpy dtype, and the dtype's name.

    The memory type is ``file_type`` itself when the stored bytes are already the dtype's; otherwise it is
    built from the numpy dtype, so libhdf5 converts into a buffer of exactly that dtype whatever the file
    declares.
    """
    for stored, dtype, name in _COMMON_TYPES:
        if file_type == stored:
            return file_type, dtype, name
    dtype = file_type.dtype
    return h5py.h5t.py_create(dtype), dtype, str(dtype)


RawReader = Callable[[int, int], bytes | memoryview]
"""``(offset, size)`` -> an HDF5 file's bytes there (fewer at the end of the file), read without libhdf5: the
bytes of contiguous datasets are read with it."""


def pread_reader(descriptor: int) -> RawReader:
    """``pread`` on the open file ``descriptor``, which leaves its position alone."""
    return lambda offset, size: os.pread(descriptor, size, offset)


def _descriptor_reader(file: h5py.File) -> RawReader | None:
    """For a file libhdf5 reads from disk, ``pread_reader`` on its descriptor."""
    if file.driver != "sec2":
        return None
    try:
        return pread_reader(file.id.get_vfd_handle())
    except _ERRORS:
        return None


def _small_digest(dataset: h5py.h5d.DatasetID, memory_type: h5py.h5t.TypeID, dtype: np.dtype,
                  shape: tuple[int, ...], raw_at: int | None, raw: RawReader | None,
                  budget: HashBudget) -> ArrayDigest | None:
    """The digest of a small numeric dataset; None for others, when its data cannot be read, and when ``budget``
    cannot pay for reading it.

    Storage never written is not read: its digest comes from the one value all its elements read as. When its
    bytes are the dtype's, stored contiguously at ``raw_at``, and ``raw`` can read them, it is hashed straight
    from the file's bytes, at a fraction of the cost of a library read of a small array.
    """
    size = dtype.itemsize * math.prod(shape)
    if dtype.kind not in HASHED_KINDS or size > EAGER_DIGEST_BYTES:
        return None
    stored = dataset.get_storage_size()
    if stored == 0 and math.prod(shape) > 1:
        return unwritten_digest(dataset, memory_type, dtype, shape)
    # Only storage that was allocated: in a file with a user block, libhdf5 gives unwritten data an offset too.
    if raw_at is not None and raw is not None and stored == size:
        if not budget.take(size):
            return None
        try:
            data = raw(raw_at, size)
        except (OSError, OverflowError):  # an offset past what the system can address: libhdf5 says why
            data = b""
        if len(data) == size:
            return buffer_digest(data, dtype, shape)
    cost = read_cost(dataset, dtype.itemsize, shape)
    if cost is None or not budget.take(cost):
        return None
    values = np.zeros(shape, dtype)  # as h5py reads: storage never written leaves the buffer as it was
    try:
        dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, values, mtype=memory_type)
    except _ERRORS:  # damaged or filtered data: the dataset is still described by its metadata
        return None
    return value_digest(values)


def _describe_dataset(root: h5py.h5g.GroupID, name: bytes, has_attrs: bool, raw: RawReader | None,
                      budget: HashBudget) -> StoredDataset:
    try:
        dataset = h5py.h5d.open(root, name)
        offset = dataset.get_offset()
        location = h5util.data_location(dataset, offset)
        if location == "virtual":
            return _UNDESCRIBED
        file_type = dataset.get_type()
        memory_type, dtype, dtype_name = _memory_type(file_type)
        dims = dataset.get_space().get_simple_extent_dims()
        shape = tuple(map(int, dims)) if dims is not None else ()
        declared = h5util.str_attr(dataset, "dtype") if has_attrs else None  # Keras's "bfloat16"
        raw_at = offset if memory_type is file_type else None
        digest = _small_digest(dataset, memory_type, dtype, shape, raw_at, raw, budget) if location == "file" else None
        return StoredDataset(shape, declared or dtype_name, digest)
    except _ERRORS:
        return _UNDESCRIBED


class _TreeBuilder:
    """Builds the tree below ``root`` object by object, in ``H5Ovisit`` order, describing each while libhdf5 has
    its header at hand: datasets by their metadata (and digest), groups that have attributes by the
    ``group_attrs`` among them. Every object is opened by its path from ``root`` (the path ``H5Ovisit`` reached
    it by: hard links only); the small datasets hashed on the way share one hashing budget for the file."""

    def __init__(self, root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], raw: RawReader | None) -> None:
        self._root = root
        self._group_attrs = group_attrs
        self._raw = raw
        self._budget = HashBudget.of_file(h5py.h5i.get_file_id(root))
        self.tree = StoredGroup()
        self._groups: dict[bytes, StoredGroup] = {b"": self.tree}

    def _attrs(self, name: bytes) -> dict[str, str]:
        found = {attr: h5util.str_attr(self._root, attr, name) for attr in self._group_attrs}
        return {attr: value for attr, value in found.items() if value is not None}

    def visit(self, name: bytes, info: h5py.h5o.ObjInfo) -> None:
        """Describe the object at ``name`` and place it in its parent group (when that is in the tree)."""
        kind = info.type
        if kind == _DATASET:
            member: StoredGroup | StoredDataset = _describe_dataset(self._root, name, info.num_attrs > 0, self._raw,
                                                                    self._budget)
        elif kind == _GROUP:
            member = StoredGroup(attrs=self._attrs(name) if self._group_attrs and info.num_attrs > 0 else {})
        else:
            return
        parent_name, _, own_name = name.rpartition(b"/")
        parent = self._groups.get(parent_name)
        if parent is None:
            return
        if kind == _GROUP:
            self._groups[name] = member  # type: ignore[assignment]
        parent.members[own_name.decode("utf-8", "surrogateescape")] = member


def read_tree(root: h5py.Group, group_attrs: tuple[str, ...] = (), raw: RawReader | None = None) -> StoredGroup:
    """Everything below ``root`` reachable through hard links, with the string ``group_attrs`` of groups.

    ``raw`` reads the bytes of ``root``'s file where libhdf5 does not read it from disk itself (a memory
    image, a zip member): small datasets are hashed from them. Raises what h5py raises (OSError,
    RuntimeError, ...) when the file structure itself is damaged.
    """
    builder = _TreeBuilder(root.id, group_attrs, raw or _descriptor_reader(root.file))
    h5py.h5o.visit(root.id, builder.visit, info=True)
    return builder.tree
