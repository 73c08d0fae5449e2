"""One pass over an HDF5 tree into plain Python: groups, dataset shapes and dtypes, chosen attributes.

Walking a model file object by object through h5py's high-level API costs a dozen library calls per
link. Here one ``H5Ovisit`` reaches every object with its type and attribute count, and describes it
on the way: each dataset is opened once, relative to its parent group, for its shape and dtype (and,
when small, its content digest); only groups that carry attributes are asked for them. The visit
follows hard links only: soft and external links are never followed, and an object reachable through
several hard links is seen once, at its first path.

In a reader child with a spare CPU, a forked helper describes part of the objects: the child visits the tree
and hands runs of objects to the helper whenever it has few left to describe, describing the others itself;
the helper's descriptions are merged into the child's walk.
"""

from __future__ import annotations

import math
import mmap
import os
import pickle
import struct
from collections.abc import Callable, Iterator
from functools import partial

import h5py
import numpy as np

from keras_share.read import h5util
from keras_share.read.base import ArrayDigest
from keras_share.read.deadline import helper_available, in_two_processes, write_all
from keras_share.read.digest import HashBudget, buffer_digest, read_cost, unwritten_digest, value_digest
from keras_share.read.stored import StoredDataset, StoredGroup

EAGER_DIGEST_BYTES = 1 << 20
"""Datasets up to this size are hashed while they are open; larger ones only when a rule asks."""
_HASHED_KINDS = frozenset("biufc")


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
                  shape: tuple[int, ...], raw_at: int | None, raw: RawReader | None,
                  budget: HashBudget) -> ArrayDigest | None:
    """The digest of a small numeric dataset; None for others, when its data cannot be read, and when ``budget``
    cannot pay for reading it.

    Storage never written is not read: its digest comes from the one value all its elements read as. When its
    bytes are the dtype's, stored contiguously at ``raw_at``, and ``raw`` can read them, it is hashed straight
    from the file's bytes, at a fraction of the cost of a library read of a small array.
    """
    size = dtype.itemsize * math.prod(shape)
    if dtype.kind not in _HASHED_KINDS or size > EAGER_DIGEST_BYTES:
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


def _describe_dataset(parent: h5py.h5g.GroupID, name: bytes, has_attrs: bool, raw: RawReader | None,
                      budget: HashBudget) -> StoredDataset:
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
        digest = _small_digest(dataset, memory_type, dtype, shape, raw_at, raw, budget) if location == "file" else None
        return StoredDataset(shape, declared or dtype_name, digest)
    except _ERRORS:
        return _UNDESCRIBED


Description = StoredDataset | dict[str, str] | None
"""What the walk learns of one object: a dataset's StoredDataset, the asked attributes of a group that has
attributes, None for anything else (or for an object the helper describes)."""
HandedObject = tuple[int, bytes, int, bool]
"""An object handed to the helper: its position in the visit, its path, its type, whether it has attributes."""
HANDOFF_RUN = 16
"""The visit's objects are handed to the helper in runs this long."""
HANDOFF_AHEAD = 4
"""Runs the helper may have been handed and not yet described: while it has that many, the reader child
describes the runs it visits itself, so the helper never waits for work and both finish together."""


class _Describer:
    """Describes objects below ``root`` by their paths: datasets by their metadata (and digest), groups that have
    attributes by the ``group_attrs`` among them. Consecutive objects of one group share its opened id; the
    small datasets hashed on the way share one hashing budget for the file."""

    def __init__(self, root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], raw: RawReader | None) -> None:
        self._root = root
        self._group_attrs = group_attrs
        self._raw = raw
        self._budget = HashBudget.of_file(h5py.h5i.get_file_id(root))
        self._open_group: tuple[bytes, h5py.h5g.GroupID] = (b"", root)

    def _group_at(self, name: bytes) -> h5py.h5g.GroupID:
        if self._open_group[0] != name:
            self._open_group = (name, h5py.h5g.open(self._root, name) if name else self._root)
        return self._open_group[1]

    def __call__(self, name: bytes, kind: int, has_attrs: bool) -> Description:
        if kind == h5py.h5o.TYPE_DATASET:
            parent_name, _, own_name = name.rpartition(b"/")
            try:
                return _describe_dataset(self._group_at(parent_name), own_name, has_attrs, self._raw, self._budget)
            except _ERRORS:
                return _UNDESCRIBED
        if kind == h5py.h5o.TYPE_GROUP and self._group_attrs and has_attrs:
            try:
                group = self._group_at(name)
                found = {attr: h5util.str_attr(group, attr) for attr in self._group_attrs}
                return {attr: value for attr, value in found.items() if value is not None}
            except _ERRORS:
                return {}
        return None


class _Handoff:
    """Runs of objects the reader child hands to its helper while it visits the tree (the helper visits nothing).

    A pipe carries the runs; a counter in shared memory tells the child how many the helper has described.
    Made before the helper is forked: the child then only writes (``hand``, ``stop_handing``), the helper only
    reads (``runs``). A helper that is gone leaves the child describing everything itself.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._described = mmap.mmap(-1, 8)
        self._handed = 0
        self._open = True

    def wants_more(self) -> bool:
        """Whether the helper should get the next run: it is there and has fewer than HANDOFF_AHEAD to do."""
        return self._open and self._handed - struct.unpack_from("q", self._described)[0] < HANDOFF_AHEAD

    def start_handing(self) -> None:
        """In the reader child, once the helper is forked: the helper then holds the only read end, so writes
        fail once it is gone."""
        os.close(self._read_fd)

    def hand(self, run: list[HandedObject]) -> None:
        """Send ``run`` to the helper (in the reader child)."""
        try:
            write_all(self._write_fd, pickle.dumps(run))
            self._handed += 1
        except OSError:  # the helper is gone: what it was handed is missing from its answer, and noticed there
            self._open = False

    def stop_handing(self) -> None:
        """End of the runs (in the reader child): the helper answers once it has described what it was handed."""
        os.close(self._write_fd)

    def runs(self) -> Iterator[list[HandedObject]]:
        """The runs handed over, each counted as described when the next is asked for (in the helper)."""
        os.close(self._write_fd)
        described = 0
        with os.fdopen(self._read_fd, "rb") as stream:
            while True:
                try:
                    run = pickle.load(stream)  # the reader child's own bytes, never the file's
                except EOFError:
                    return
                yield run
                described += 1
                struct.pack_into("q", self._described, 0, described)


def _walk(root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], raw: RawReader | None,
          handoff: _Handoff | None = None) -> list[tuple[bytes, int, bool, Description]]:
    """Every object below ``root`` in ``H5Ovisit`` order as ``(path, type, described here, description)``.

    Objects are described during the visit, while libhdf5 has their headers at hand: all of them without
    ``handoff``, else all but the runs handed to the helper (those get False and None).
    """
    describe = _Describer(root, group_attrs, raw)
    entries: list[tuple[bytes, int, bool, Description]] = []
    run: list[HandedObject] = []
    handing = [False]

    def visit(name: bytes, info: h5py.h5o.ObjInfo) -> None:
        index = len(entries)
        if handoff is not None and index % HANDOFF_RUN == 0:
            if run:
                handoff.hand(run[:])
                run.clear()
            handing[0] = handoff.wants_more()
        if handing[0]:
            run.append((index, name, info.type, info.num_attrs > 0))
            entries.append((name, info.type, False, None))
        else:
            entries.append((name, info.type, True, describe(name, info.type, info.num_attrs > 0)))

    h5py.h5o.visit(root, visit, info=True)
    if run and handoff is not None:
        handoff.hand(run)
    return entries


def _reader_part(root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], raw: RawReader | None,
                 handoff: _Handoff) -> list[tuple[bytes, int, bool, Description]]:
    """The reader child's part: the visit, handing runs to the helper while it has few to do."""
    handoff.start_handing()
    try:
        return _walk(root, group_attrs, raw, handoff)
    finally:
        handoff.stop_handing()


def _helper_part(root: h5py.h5g.GroupID, group_attrs: tuple[str, ...], raw: RawReader | None,
                 handoff: _Handoff) -> list[tuple[int, bytes, Description]]:
    """The helper's part: the position, path and description of each object it was handed."""
    describe = _Describer(root, group_attrs, raw)
    return [(index, name, describe(name, kind, has_attrs))
            for run in handoff.runs() for index, name, kind, has_attrs in run]


def merge_walks(mine: list[tuple[bytes, int, bool, Description]],
                theirs: list[tuple[int, bytes, Description]]) -> list[tuple[bytes, int, Description]] | None:
    """This process's walk completed with the objects the helper described; None when one handed to the helper
    is missing from its answer or has another path there (the helper failed, or answered for other runs)."""
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


def _keep_metadata_cache_small(file: h5py.h5f.FileID) -> None:
    """Keep libhdf5's metadata cache at its initial size (2 MiB): left adaptive, it grows to 28 MiB of entries
    (140 MB of memory at 10,000 layers) while the helper opens the objects it was handed by their paths, at
    the same hit rate (0.78)."""
    try:
        config = file.get_mdc_config()
        config.incr_mode = config.flash_incr_mode = 0  # H5C_incr__off, H5C_flash_incr__off
        file.set_mdc_config(config)
    except _ERRORS:  # a cache that grows costs memory, nothing else
        pass


def _walk_all(root: h5py.Group, group_attrs: tuple[str, ...],
              raw: RawReader | None) -> list[tuple[bytes, int, Description]]:
    """Every object with its description: where a helper may run, part of them described by it (when libhdf5
    reads the file itself, a path or a memory image; a Python file object's position would be shared with
    the helper). When the helper failed, the whole walk is done here."""
    file = root.file
    raw = raw or _descriptor_reader(file)
    if file.driver in _FORK_SAFE_DRIVERS and helper_available():
        _keep_metadata_cache_small(file.id)
        handoff = _Handoff()
        mine, theirs = in_two_processes(partial(_reader_part, root.id, group_attrs, raw, handoff),
                                        partial(_helper_part, root.id, group_attrs, raw, handoff))
        merged = merge_walks(mine, theirs or [])
        if merged is not None:
            return merged
    return [(name, kind, described) for name, kind, _, described in _walk(root.id, group_attrs, raw)]


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
