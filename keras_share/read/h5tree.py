"""One pass over an HDF5 tree into plain Python: groups, dataset shapes and dtypes, chosen attributes.

Walking a model file object by object through h5py's high-level API costs a dozen library calls per
link. Here one ``H5Ovisit`` reaches every object with its type and attribute count, and describes it
on the way: each dataset is opened once, relative to its parent group, for its shape and dtype (and,
when small, its content digest); only groups that carry attributes are asked for them. The visit
follows hard links only: soft and external links are never followed, and an object reachable through
several hard links is seen once, at its first path.

In a reader child with a spare CPU, a forked helper walks the tree too: the objects are described in
runs, each run by whichever process reaches it first, and the helper's runs are merged into this one's.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import h5py
import numpy as np

from keras_share.read import h5util
from keras_share.read.base import WeightArray, WeightIndex
from keras_share.read.deadline import helper_available, in_two_processes
from keras_share.read.digest import ArrayDigest, buffer_digest, value_digest

EAGER_DIGEST_BYTES = 1 << 20
"""Datasets up to this size are hashed while they are open; larger ones only when a rule asks."""
_HASHED_KINDS = frozenset("biufc")


@dataclass(frozen=True)
class StoredDataset:
    """A dataset's metadata, and its digest when it was small enough to hash on the way.

    ``shape`` is None for a dataset that cannot be described without reading outside the file (a
    virtual dataset) or whose metadata is damaged.
    """

    shape: tuple[int, ...] | None
    dtype: str
    digest: ArrayDigest | None = None

    def weight(self, name: str, location: str, index: WeightIndex) -> WeightArray | None:
        """This dataset as the weight array ``name`` at ``location``, its digest kept in ``index``'s digests;
        None when it could not be described."""
        if self.shape is None:
            return None
        if self.digest is not None:
            index.digests[location] = self.digest
        return WeightArray(name, self.shape, self.dtype, location)


@dataclass
class StoredGroup:
    """A group: its members in the order HDF5 lists them, and the string attributes asked for."""

    members: dict[str, StoredGroup | StoredDataset] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)

    def groups(self) -> list[tuple[str, StoredGroup]]:
        """Member groups, in order."""
        return [(name, member) for name, member in self.members.items() if isinstance(member, StoredGroup)]

    def datasets(self) -> list[tuple[str, StoredDataset]]:
        """Member datasets, in order."""
        return [(name, member) for name, member in self.members.items() if isinstance(member, StoredDataset)]

    def group(self, path: str) -> StoredGroup | None:
        """The group at ``a/b/c`` below this one, or None."""
        current: StoredGroup | StoredDataset | None = self
        for part in path.split("/"):
            if part and isinstance(current, StoredGroup):
                current = current.members.get(part)
            elif part:
                return None
        return current if isinstance(current, StoredGroup) else None


_UNDESCRIBED = StoredDataset(None, "")
_FORK_SAFE_DRIVERS = frozenset({"sec2", "core"})
"""libhdf5 drivers that read with ``pread`` or from memory, so a forked helper can read the same open file."""
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


def _descriptor_reader(file: h5py.File) -> RawReader | None:
    """For a file libhdf5 reads from disk, ``pread`` on its descriptor (which leaves its position alone)."""
    if file.driver != "sec2":
        return None
    try:
        descriptor = file.id.get_vfd_handle()
    except _ERRORS:
        return None
    return lambda offset, size: os.pread(descriptor, size, offset)


def _small_digest(dataset: h5py.h5d.DatasetID, memory_type: h5py.h5t.TypeID, dtype: np.dtype,
                  shape: tuple[int, ...], raw_at: int | None, raw: RawReader | None) -> ArrayDigest | None:
    """The digest of a small numeric dataset; None for others, and when its data cannot be read.

    When its bytes are the dtype's, stored contiguously at ``raw_at``, and ``raw`` can read them, it is
    hashed straight from the file's bytes, at a fraction of the cost of a library read of a small array.
    """
    size = dtype.itemsize * math.prod(shape)
    if dtype.kind not in _HASHED_KINDS or size > EAGER_DIGEST_BYTES:
        return None
    # Only storage that was allocated: in a file with a user block, libhdf5 gives unwritten data an offset too.
    if raw_at is not None and raw is not None and dataset.get_storage_size() == size:
        try:
            data = raw(raw_at, size)
        except (OSError, OverflowError):  # an offset past what the system can address: libhdf5 says why
            data = b""
        if len(data) == size:
            return buffer_digest(data, dtype, shape)
    values = np.zeros(shape, dtype)  # as h5py reads: storage never written leaves the buffer as it was
    try:
        dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, values, mtype=memory_type)
    except _ERRORS:  # damaged or filtered data: the dataset is still described by its metadata
        return None
    return value_digest(values)


def _describe_dataset(parent: h5py.h5g.GroupID, name: bytes, has_attrs: bool, raw: RawReader | None) -> StoredDataset:
    try:
        dataset = h5py.h5d.open(parent, name)
        offset = dataset.get_offset()
        location = h5util.data_location(dataset, offset)
        if location == "virtual":
            return _UNDESCRIBED
        file_type = dataset.get_type()
        memory_type, dtype, dtype_name = _memory_type(file_type)
        dims = dataset.get_space().get_simple_extent_dims()
        shape = tuple(int(dim) for dim in dims) if dims is not None else ()
        declared = h5util.str_attr(dataset, "dtype") if has_attrs else None  # Keras's "bfloat16"
        raw_at = offset if memory_type is file_type else None
        digest = _small_digest(dataset, memory_type, dtype, shape, raw_at, raw) if location == "file" else None
        return StoredDataset(shape, declared or dtype_name, digest)
    except _ERRORS:
        return _UNDESCRIBED


Description = StoredDataset | dict[str, str] | None
"""What the walk learns of one object: a dataset's StoredDataset, the asked attributes of a group that has
attributes, None for anything else (or for an object the other process describes)."""
CLAIM_RUN = 16
"""The visit's objects are described in runs this long, each by the first of the two processes to reach it."""
MAX_CLAIMED_RUNS = 1 << 20
"""Runs of one walk shared between the processes (16 million objects): the shared memory stays at 1 MiB at most."""


class _Claims:
    """Which runs of the visit are taken: a byte per run, in memory the reader child shares with its helper.

    Both processes visit the same objects in the same order and each describes the runs it reaches first, so
    the one that happens to run faster describes more and they finish together. Taking a run is not atomic:
    two processes reaching one at the same moment may both describe it, which costs a little time, nothing else.
    """

    def __init__(self, file_size: int) -> None:
        # A run per CLAIM_RUN bytes is more than a file can hold (each object has a header of its own).
        self._taken = mmap.mmap(-1, min(file_size // CLAIM_RUN + 1, MAX_CLAIMED_RUNS))

    def take(self, run: int) -> bool:
        """Whether this process is to describe ``run``: yes unless the other process took it first (runs past
        MAX_CLAIMED_RUNS are described by both)."""
        if run >= len(self._taken):
            return True
        if self._taken[run]:
            return False
        self._taken[run] = 1
        return True


def _walk(root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], claims: _Claims | None,
          raw: RawReader | None) -> list[tuple[bytes, int, bool, Description]]:
    """Every object below ``root`` in ``H5Ovisit`` order as ``(path, type, described here, description)``.

    Objects are described during the visit, while libhdf5 has their headers at hand: all of them without
    ``claims``, else the runs this process takes (the others get False and None).
    """
    entries: list[tuple[bytes, int, bool, Description]] = []
    taking = [True]
    open_group: list[tuple[bytes, h5py.h5g.GroupID]] = [(b"", root)]

    def group_at(name: bytes) -> h5py.h5g.GroupID:
        if open_group[0][0] != name:
            open_group[0] = (name, h5py.h5g.open(root, name) if name else root)
        return open_group[0][1]

    def describe(name: bytes, info: h5py.h5o.ObjInfo) -> Description:
        if info.type == h5py.h5o.TYPE_DATASET:
            parent_name, _, own_name = name.rpartition(b"/")
            try:
                return _describe_dataset(group_at(parent_name), own_name, info.num_attrs > 0, raw)
            except _ERRORS:
                return _UNDESCRIBED
        if info.type == h5py.h5o.TYPE_GROUP and group_attrs and info.num_attrs:
            try:
                group = group_at(name)
                found = {attr: h5util.str_attr(group, attr) for attr in group_attrs}
                return {attr: value for attr, value in found.items() if value is not None}
            except _ERRORS:
                return {}
        return None

    def visit(name: bytes, info: h5py.h5o.ObjInfo) -> None:
        index = len(entries)
        if claims is not None and index % CLAIM_RUN == 0:
            taking[0] = claims.take(index // CLAIM_RUN)
        mine = taking[0]
        entries.append((name, info.type, mine, describe(name, info) if mine else None))

    h5py.h5o.visit(root, visit, info=True)
    return entries


def _helper_part(root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], claims: _Claims,
                 raw: RawReader | None) -> list[tuple[int, bytes, Description]]:
    """What the helper sends back: the position, path and description of each object it described."""
    entries = _walk(root, group_attrs, claims, raw)
    return [(index, name, described) for index, (name, _, mine, described) in enumerate(entries) if mine]


def merge_walks(mine: list[tuple[bytes, int, bool, Description]],
                theirs: list[tuple[int, bytes, Description]]) -> list[tuple[bytes, int, Description]] | None:
    """This process's walk completed with the objects the helper described; None when one left to the helper
    is missing from its answer or has another path there (the two walks did not list the same objects)."""
    given = {index: (name, described) for index, name, described in theirs}
    merged: list[tuple[bytes, int, Description]] = []
    for index, (name, kind, described_here, described) in enumerate(mine):
        if not described_here:
            other = given.get(index)
            if other is None or other[0] != name:
                return None
            described = other[1]
        merged.append((name, kind, described))
    return merged


def _walk_all(root: h5py.Group, group_attrs: tuple[str, ...],
              raw: RawReader | None) -> list[tuple[bytes, int, Description]]:
    """Every object with its description: where a helper may run, part of them described by it (when libhdf5
    reads the file itself, a path or a memory image; a Python file object's position would be shared with
    the helper). When the helper failed, the whole walk is done here."""
    file = root.file
    raw = raw or _descriptor_reader(file)
    if file.driver in _FORK_SAFE_DRIVERS and helper_available():
        claims = _Claims(file.id.get_filesize())
        mine, theirs = in_two_processes(partial(_walk, root.id, group_attrs, claims, raw),
                                        partial(_helper_part, root.id, group_attrs, claims, raw))
        merged = merge_walks(mine, theirs) if theirs is not None else None
        if merged is not None:
            return merged
    return [(name, kind, described) for name, kind, _, described in _walk(root.id, group_attrs, None, raw)]


def read_tree(root: h5py.Group, group_attrs: tuple[str, ...] = (), raw: RawReader | None = None) -> StoredGroup:
    """Everything below ``root`` reachable through hard links, with the string ``group_attrs`` of groups.

    ``raw`` reads the bytes of ``root``'s file where libhdf5 does not read it from disk itself (a memory
    image, a zip member): small datasets are hashed from them. Raises what h5py raises (OSError,
    RuntimeError, ...) when the file structure itself is damaged.
    """
    tree = StoredGroup()
    groups: dict[bytes, StoredGroup] = {b"": tree}
    for name, kind, described in _walk_all(root, group_attrs, raw):
        parent_name, _, own_name = name.rpartition(b"/")
        parent = groups.get(parent_name)
        member: StoredGroup | StoredDataset
        if parent is None:
            continue
        if kind == h5py.h5o.TYPE_GROUP:
            member = groups[name] = StoredGroup()
            member.attrs = described if isinstance(described, dict) else {}
        elif kind == h5py.h5o.TYPE_DATASET:
            member = described if isinstance(described, StoredDataset) else _UNDESCRIBED
        else:
            continue
        parent.members[own_name.decode("utf-8", "surrogateescape")] = member
    return tree
