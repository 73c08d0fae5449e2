"""Content digests of arrays: the same digest for a stored dataset, read in chunks, and an in-memory array.

Imported where arrays are hashed (the reader child, live mode), not by the process that renders a report.
"""

from __future__ import annotations

import hashlib
from typing import Any

from keras_share.read.base import ArrayDigest

CHUNK_ELEMENTS = 1 << 20
"""Elements read at a time along the first axis: memory stays bounded whatever the array size."""


def value_digest(value: object) -> ArrayDigest:
    """The digest of an in-memory array (anything ``numpy.asarray`` accepts)."""
    import numpy as np

    array = np.asarray(value)
    return _digest(array.tobytes(), array.dtype, array.shape, array.reshape(-1))  # tobytes: C order, any layout


def buffer_digest(data: bytes | memoryview, dtype: Any, shape: tuple[int, ...]) -> ArrayDigest:
    """The digest of an array of numeric ``dtype`` and ``shape`` given as its bytes in C order: equal to
    ``value_digest`` of that array."""
    import numpy as np

    return _digest(data, dtype, shape, np.frombuffer(data, dtype))


def _digest(data: bytes | memoryview, dtype: Any, shape: tuple[int, ...], flat: Any) -> ArrayDigest:
    digest = hashlib.sha256(f"{dtype.str}{shape}".encode())
    digest.update(data)
    constant = flat.size <= 1 or bool((flat == flat[0]).all())
    return ArrayDigest(digest.hexdigest(), constant)


def dataset_digest(dataset: Any) -> ArrayDigest:
    """The digest of an ``h5py.Dataset``, read CHUNK_ELEMENTS at a time: equal to ``value_digest(dataset[...])``."""
    import numpy as np

    shape = dataset.shape
    digest = hashlib.sha256(f"{dataset.dtype.str}{shape}".encode())
    if shape is None:
        return ArrayDigest(digest.hexdigest(), True)
    if dataset.ndim == 0 or dataset.size <= CHUNK_ELEMENTS:
        return value_digest(dataset[...])  # an array in the stored dtype, even for a scalar
    first: Any = None
    constant = True
    row = max(1, int(np.prod(shape[1:])))
    step = max(1, CHUNK_ELEMENTS // row)
    for start in range(0, shape[0], step):
        block = np.ascontiguousarray(dataset[start:start + step])
        digest.update(block.tobytes())
        if constant:
            flat = block.reshape(-1)
            first = flat[0] if first is None and flat.size else first
            constant = flat.size == 0 or bool(np.all(flat == first))
    return ArrayDigest(digest.hexdigest(), constant)
