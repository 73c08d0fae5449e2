"""Content digests of arrays: the same digest for a stored dataset, read in blocks, and an in-memory array.

An array whose elements all have the same bytes has a digest made from one element, so a dataset whose
storage was never written (every element reads as its fill value) is hashed without reading it. Every other
array is hashed from all of its bytes in C order.

Reading a stored dataset costs work that its logical size does not bound (storage never written reads as the
fill value, chunks are decompressed, chunks are read again when reads cut across them): a ``HashBudget`` holds
the reads of one file to a multiple of the file's stored bytes, and a dataset the budget cannot pay for is not
hashed.

Imported where arrays are hashed (the reader child, live mode), not by the process that renders a report.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

from keras_share.read.base import ArrayDigest

HASHED_KINDS = frozenset("biufc")
"""The dtype kinds of arrays that are hashed: weights are numbers (booleans, integers, floats, complex)."""
BLOCK_BYTES = 4 << 20
"""Bytes read at a time: memory stays bounded whatever the array's shape."""
HASH_BUDGET_RATIO = 4
"""The bytes one file's datasets may cost to read for hashing, as a multiple of the file's size."""
CHUNK_VISIT_BYTES = 4096
"""What reading one chunk costs besides its bytes (finding it in the chunk index), counted as bytes read."""
MAX_FILTERED_CHUNK_STORED_BYTES = 64 << 10
"""Largest stored (compressed) chunk a filtered dataset may have to be hashed: libhdf5 inflates a chunk into
memory whatever its declared size, and deflate inflates a byte into at most 1,032."""
MAX_FILTERED_CHUNK_BYTES = 16 << 20
"""Largest declared chunk a filtered dataset may have to be hashed: libhdf5 allocates whole chunks."""
_LIMITED_FILTERS = frozenset({1, 32000})
"""Filters whose output is bounded by MAX_FILTERED_CHUNK_STORED_BYTES times a known ratio: deflate, LZF."""
_SAME_SIZE_FILTERS = frozenset({2, 3})
"""Filters that do not grow data: shuffle, Fletcher-32."""


class HashBudget:
    """The bytes that reading one file's datasets for their digests may still cost."""

    def __init__(self, file_bytes: int) -> None:
        self.left = HASH_BUDGET_RATIO * max(file_bytes, 0)

    @classmethod
    def of_file(cls, file_id: Any) -> HashBudget:
        """The budget of the open HDF5 file ``file_id`` (an ``h5py.h5f.FileID``), from its size."""
        try:
            return cls(file_id.get_filesize())
        except (OSError, ValueError, RuntimeError):
            return cls(0)

    def take(self, cost: int) -> bool:
        """Spend ``cost`` bytes when that many are left; whether they were."""
        if cost > self.left:
            return False
        self.left -= cost
        return True


def value_digest(value: object) -> ArrayDigest:
    """The digest of an in-memory array (anything ``numpy.asarray`` accepts)."""
    import numpy as np

    array = np.asarray(value)
    array = array if array.flags.c_contiguous else array.copy(order="C")
    flat = array.reshape(-1)
    data = array.tobytes() if array.dtype.hasobject else flat.view(np.uint8).data
    return _digest(data, array.dtype, array.shape, flat)


def buffer_digest(data: bytes | memoryview, dtype: Any, shape: tuple[int, ...]) -> ArrayDigest:
    """The digest of an array of numeric ``dtype`` and ``shape`` given as its bytes in C order: equal to
    ``value_digest`` of that array.

    It is made from the bytes alone, without numpy: its elements are all alike exactly when the bytes repeat
    the first element's bytes throughout.
    """
    data = bytes(data)
    element = data[:dtype.itemsize]
    if data == element * (len(data) // dtype.itemsize):
        return _constant_digest(dtype, shape, element)
    digest = hashlib.sha256(_header(dtype, shape))
    digest.update(data)
    return ArrayDigest(digest.hexdigest(), False)


def blocks_digest(blocks: Iterator[bytes], dtype: Any, shape: tuple[int, ...]) -> ArrayDigest:
    """The digest of an array of numeric ``dtype`` and ``shape`` given as its bytes in C order, in ``blocks``
    that each hold whole elements: equal to ``value_digest`` of that array, in memory one block at a time."""
    import numpy as np

    digest = hashlib.sha256(_header(dtype, shape))
    first: bytes | None = None
    constant = True
    for block in blocks:
        digest.update(block)
        if constant and block:
            element = _first_if_constant(np.frombuffer(block, dtype))
            first = element if first is None else first
            constant = element is not None and element == first
    if constant:
        return _constant_digest(dtype, shape, first or b"")
    return ArrayDigest(digest.hexdigest(), False)


def _header(dtype: Any, shape: tuple[int, ...] | None) -> bytes:
    return f"{dtype.str}{shape}".encode()


def _constant_digest(dtype: Any, shape: tuple[int, ...], element: bytes) -> ArrayDigest:
    """The digest of an array of ``shape`` whose every element has the bytes ``element``."""
    return ArrayDigest(hashlib.sha256(_header(dtype, shape) + b"constant" + element).hexdigest(), True)


def _first_if_constant(flat: Any) -> bytes | None:
    """The bytes of the first element of the 1-d array ``flat`` when every element has the same bytes, else None
    (``b""`` for an empty array)."""
    import numpy as np

    if flat.size == 0:
        return b""
    if flat.dtype.hasobject:
        return flat[:1].tobytes() if bool((flat == flat[0]).all()) else None
    rows = np.ascontiguousarray(flat).view(np.uint8).reshape(flat.size, flat.dtype.itemsize)
    return rows[0].tobytes() if bool((rows == rows[0]).all()) else None


def _digest(data: bytes | memoryview, dtype: Any, shape: tuple[int, ...], flat: Any) -> ArrayDigest:
    element = _first_if_constant(flat)
    if element is not None:
        return _constant_digest(dtype, shape, element)
    digest = hashlib.sha256(_header(dtype, shape))
    digest.update(data)
    return ArrayDigest(digest.hexdigest(), False)


def _block_axis(shape: tuple[int, ...], itemsize: int) -> int:
    """The axis blocks are cut along: the first whose later axes hold at most BLOCK_BYTES."""
    axis, trailing = len(shape) - 1, itemsize
    while axis > 0 and trailing * shape[axis] <= BLOCK_BYTES:
        trailing *= shape[axis]
        axis -= 1
    return axis


def _blocks(shape: tuple[int, ...], itemsize: int) -> Iterator[tuple[int | slice, ...]]:
    """Selections that cover an array of ``shape`` in C order, each of at most BLOCK_BYTES (one element at least)."""
    import numpy as np

    axis = _block_axis(shape, itemsize)
    row = itemsize * math.prod(shape[axis + 1:])
    step = max(1, BLOCK_BYTES // row)
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            yield (*(int(index) for index in outer), slice(start, min(start + step, shape[axis])))


def read_cost(dataset: Any, itemsize: int, shape: tuple[int, ...]) -> int | None:
    """What reading all of the dataset ``dataset`` (an ``h5py.h5d.DatasetID``) in ``_blocks`` costs, counted in
    bytes; None when a read could take memory that nothing bounds (filters other than deflate, LZF, shuffle and
    Fletcher-32, or chunks too large to inflate)."""
    import h5py

    size = itemsize * math.prod(shape)
    plist = dataset.get_create_plist()
    if plist.get_layout() != h5py.h5d.CHUNKED or not shape:
        return size
    chunk = tuple(min(int(extent), dim) or 1 for extent, dim in zip(plist.get_chunk(), shape))
    chunk_bytes = itemsize * math.prod(chunk)
    filters = [plist.get_filter(index)[0] for index in range(plist.get_nfilters())]
    if filters and not _filters_bounded(dataset, filters, chunk_bytes):
        return None
    axis = _block_axis(shape, itemsize)
    step = max(1, BLOCK_BYTES // (itemsize * math.prod(shape[axis + 1:])))
    touches = math.prod(chunk[:axis]) * (math.ceil(chunk[axis] / step) + 1)
    chunks = math.prod(math.ceil(dim / extent) for dim, extent in zip(shape, chunk))
    cache_bytes = dataset.get_access_plist().get_chunk_cache()[1]
    whole_chunks_read = bool(filters) or chunk_bytes <= cache_bytes  # else libhdf5 reads the selection alone
    return (touches * size if whole_chunks_read else size) + touches * chunks * CHUNK_VISIT_BYTES


def _filters_bounded(dataset: Any, filters: list[int], chunk_bytes: int) -> bool:
    """Whether inflating any stored chunk of ``dataset`` through ``filters`` takes bounded memory."""
    growing = [code for code in filters if code not in _SAME_SIZE_FILTERS]
    if len(growing) > 1 or any(code not in _LIMITED_FILTERS for code in growing) or chunk_bytes > MAX_FILTERED_CHUNK_BYTES:
        return False
    largest = [0]

    def note(info: Any) -> None:
        largest[0] = max(largest[0], info.size)

    try:
        dataset.chunk_iter(note)
    except (OSError, ValueError, RuntimeError, AttributeError):
        return False
    return largest[0] <= MAX_FILTERED_CHUNK_STORED_BYTES


def unwritten_digest(dataset: Any, memory_type: Any, dtype: Any, shape: tuple[int, ...]) -> ArrayDigest | None:
    """The digest of the dataset ``dataset`` (an ``h5py.h5d.DatasetID``) whose storage was never written, from
    one element read (what the library gives for all of them: the fill value, or zeros); None when that
    element cannot be read."""
    import h5py
    import numpy as np

    element = np.zeros((1,), dtype)  # as h5py reads: storage never written may leave the buffer as it was
    try:
        selection = dataset.get_space()
        if shape:
            selection.select_hyperslab((0,) * len(shape), (1,) * len(shape))
        dataset.read(h5py.h5s.create_simple((1,)), selection, element, mtype=memory_type)
    except (OSError, ValueError, TypeError, RuntimeError, KeyError):
        return None
    return _constant_digest(dtype, shape, element.tobytes())


def dataset_digest(dataset: Any, budget: HashBudget | None = None) -> ArrayDigest | None:
    """The digest of an ``h5py.Dataset``, equal to ``value_digest(dataset[...])``, read BLOCK_BYTES at a time
    and paid for from ``budget`` (by default, one for the dataset's file alone); None when the budget cannot
    pay for it or reading it could take unbounded memory."""
    import h5py
    import numpy as np

    shape, dtype = dataset.shape, dataset.dtype
    if shape is None:
        return ArrayDigest(hashlib.sha256(_header(dtype, shape)).hexdigest(), True)
    budget = budget if budget is not None else HashBudget.of_file(dataset.file.id)
    count = math.prod(shape)
    if count > 1 and dataset.id.get_storage_size() == 0:
        return unwritten_digest(dataset.id, h5py.h5t.py_create(dtype), dtype, shape)
    cost = read_cost(dataset.id, dtype.itemsize, shape)
    if cost is None or not budget.take(cost):
        return None
    if dataset.ndim == 0 or count * dtype.itemsize <= BLOCK_BYTES:
        return value_digest(dataset[...])  # an array in the stored dtype, even for a scalar
    digest = hashlib.sha256(_header(dtype, shape))
    first: bytes | None = None
    constant = True
    for selection in _blocks(shape, dtype.itemsize):
        block = np.ascontiguousarray(dataset[selection]).reshape(-1)
        digest.update(block.view(np.uint8).data)
        if constant:
            element = _first_if_constant(block)
            first = element if first is None else first
            constant = element is not None and element == first
    if constant and first is not None:
        return _constant_digest(dtype, shape, first)
    return ArrayDigest(digest.hexdigest(), False)
