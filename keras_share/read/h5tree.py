"""One pass over an HDF5 tree into plain Python: groups, dataset shapes and dtypes, chosen attributes.

Walking a model file object by object through h5py's high-level API costs a dozen library calls per
link. Here one ``H5Ovisit`` reaches every object with its type and attribute count, and describes it
on the way: each dataset is opened once, by its path from the root, for its shape and dtype (and, when
small, its bytes, hashed outside the visit's calls); only groups that carry attributes are asked for them,
after the visit. The visit follows hard links only: soft and external links are never followed, and an object
reachable through several hard links is seen once, at its first path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import NamedTuple

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
"""Datasets up to this size are hashed while the tree is read; larger ones only when a rule asks."""
UNHASHED_BYTES = 1 << 20
"""Bytes of small arrays read and not hashed yet that the walk may hold: past them, it hashes what it holds."""


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


class _Unhashed(NamedTuple):
    """A small dataset described, with its bytes in C order read from the file: its digest is still to be made."""

    shape: tuple[int, ...]
    dtype_name: str
    dtype: np.dtype
    data: bytes | memoryview

    def hashed(self) -> StoredDataset:
        """The dataset described with its digest."""
        return StoredDataset(self.shape, self.dtype_name, buffer_digest(self.data, self.dtype, self.shape))


def _small_digest(dataset: h5py.h5d.DatasetID, memory_type: h5py.h5t.TypeID, dtype: np.dtype,
                  shape: tuple[int, ...], raw_at: int | None, raw: RawReader | None,
                  budget: HashBudget) -> ArrayDigest | bytes | memoryview | None:
    """The digest of a small numeric dataset, or its bytes to hash later; None for other datasets, when its data
    cannot be read, and when ``budget`` cannot pay for reading it.

    Storage never written is not read: its digest comes from the one value all its elements read as. When its
    bytes are the dtype's, stored contiguously at ``raw_at``, and ``raw`` can read them, they are read straight
    from the file, at a fraction of the cost of a library read of a small array, and returned unhashed.
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
            return data
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
                      budget: HashBudget) -> StoredDataset | _Unhashed:
    """The dataset at ``name``; with its bytes instead of its digest when that is still to be made from them."""
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
        if isinstance(digest, (bytes, memoryview)):
            return _Unhashed(shape, declared or dtype_name, dtype, digest)
        return StoredDataset(shape, declared or dtype_name, digest)
    except _ERRORS:
        return _UNDESCRIBED


class _TreeBuilder:
    """Builds the tree below ``root`` object by object, in ``H5Ovisit`` order: each dataset is described while
    libhdf5 has its header at hand (metadata, and the bytes of a small one), each group is placed. Every object
    is opened by its path from ``root`` (the path ``H5Ovisit`` reached it by: hard links only); the small datasets
    read on the way share one hashing budget for the file.

    Two kinds of work wait for ``finish`` instead of running between the visit's calls, where they measured
    slower (docs/performance.md): hashing the bytes read (up to ``UNHASHED_BYTES`` wait; past that they are
    hashed at once), and reading the ``group_attrs`` of the groups that have attributes.
    """

    def __init__(self, root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], raw: RawReader | None) -> None:
        self._root = root
        self._group_attrs = group_attrs
        self._raw = raw
        self._budget = HashBudget.of_file(h5py.h5i.get_file_id(root))
        self.tree = StoredGroup()
        self._groups: dict[bytes, StoredGroup] = {b"": self.tree}
        self._unhashed: list[tuple[StoredGroup, str, _Unhashed]] = []
        self._unhashed_bytes = 0
        self._with_attrs: list[tuple[bytes, StoredGroup]] = []

    def visit(self, name: bytes, info: h5py.h5o.ObjInfo) -> None:
        """Place the object at ``name`` in its parent group (when that is in the tree), a dataset described."""
        kind = info.type
        if kind != _DATASET and kind != _GROUP:
            return
        parent_name, _, own_name = name.rpartition(b"/")
        parent = self._groups.get(parent_name)
        if parent is None:
            return
        key = own_name.decode("utf-8", "surrogateescape")
        if kind == _GROUP:
            group = self._groups[name] = parent.members[key] = StoredGroup()
            if self._group_attrs and info.num_attrs > 0:
                self._with_attrs.append((name, group))
            return
        described = _describe_dataset(self._root, name, info.num_attrs > 0, self._raw, self._budget)
        if isinstance(described, StoredDataset):
            parent.members[key] = described
            return
        parent.members[key] = _UNDESCRIBED  # holds the member's place until its digest is made
        self._unhashed.append((parent, key, described))
        self._unhashed_bytes += len(described.data)
        if self._unhashed_bytes > UNHASHED_BYTES:
            self._hash_unhashed()

    def finish(self) -> StoredGroup:
        """The tree, once the visit is over: every digest made, every group's attributes read."""
        self._hash_unhashed()
        for name, group in self._with_attrs:
            for attr in self._group_attrs:
                value = h5util.str_attr(self._root, attr, name)
                if value is not None:
                    group.attrs[attr] = value
        self._with_attrs.clear()
        return self.tree

    def _hash_unhashed(self) -> None:
        """Give the datasets whose bytes wait here their digests (in place: members keep their order)."""
        for parent, key, unhashed in self._unhashed:
            parent.members[key] = unhashed.hashed()
        self._unhashed.clear()
        self._unhashed_bytes = 0


def read_tree(root: h5py.Group, group_attrs: tuple[str, ...] = (), raw: RawReader | None = None) -> StoredGroup:
    """Everything below ``root`` reachable through hard links, with the string ``group_attrs`` of groups.

    ``raw`` reads the bytes of ``root``'s file where libhdf5 does not read it from disk itself (a memory
    image, a zip member): small datasets are hashed from them. Raises what h5py raises (OSError,
    RuntimeError, ...) when the file structure itself is damaged.
    """
    builder = _TreeBuilder(root.id, group_attrs, raw or _descriptor_reader(root.file))
    h5py.h5o.visit(root.id, builder.visit, info=True)
    return builder.finish()
