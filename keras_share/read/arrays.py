"""Read stored array contents, in bounded chunks, for rules that compare weights by value."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from keras_share.read import h5util
from keras_share.read.base import ModelFile, WeightArray
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, call_with_deadline
from keras_share.read.keras_archive import WEIGHTS_MEMBER, open_weights_member

CHUNK_ELEMENTS = 1 << 20
"""Elements read at a time along the first axis: memory stays bounded whatever the array size."""


@dataclass(frozen=True)
class ArrayDigest:
    """A content hash of one stored array, and whether every element has the same value."""

    sha256: str
    constant: bool


def _digest(dataset: h5py.Dataset) -> ArrayDigest:
    digest = hashlib.sha256(f"{dataset.dtype.str}{dataset.shape}".encode())
    first: np.ndarray | None = None
    constant = True
    if dataset.shape is None or dataset.size == 0:
        return ArrayDigest(digest.hexdigest(), True)
    if dataset.ndim == 0:
        digest.update(np.asarray(dataset[()]).tobytes())
        return ArrayDigest(digest.hexdigest(), True)
    row = max(1, int(np.prod(dataset.shape[1:])))
    step = max(1, CHUNK_ELEMENTS // row)
    for start in range(0, dataset.shape[0], step):
        block = np.ascontiguousarray(dataset[start:start + step])
        digest.update(block.tobytes())
        if constant:
            flat = block.reshape(-1)
            first = flat[:1] if first is None else first
            constant = bool(np.all(flat == first[0]))
    return ArrayDigest(digest.hexdigest(), constant)


def _digests(model_file: ModelFile, locations: list[str]) -> dict[str, ArrayDigest]:
    path = Path(model_file.path)
    results: dict[str, ArrayDigest] = {}

    def collect(h5: h5py.File, prefix: str) -> None:
        for location in locations:
            inner = location[len(prefix):] if prefix and location.startswith(prefix) else location
            parent, _, name = inner.strip("/").rpartition("/")
            group = h5util.subgroup(h5, parent) if parent else h5
            dataset = h5util.child(group, name) if group is not None else None
            if isinstance(dataset, h5py.Dataset) and not dataset.is_virtual:
                results[location] = _digest(dataset)

    prefix = WEIGHTS_MEMBER + ":"
    if model_file.format == "keras":
        with zipfile.ZipFile(path) as archive, open_weights_member(archive, path) as member, h5py.File(member, "r") as h5:
            collect(h5, prefix)
    elif model_file.format == "keras-dir":
        with h5py.File(path / WEIGHTS_MEMBER, "r") as h5:
            collect(h5, prefix)
    elif model_file.format in ("h5", "h5-weights", "weights-h5"):
        with h5py.File(path, "r") as h5:
            collect(h5, "")
    return results


def array_digests(
    model_file: ModelFile, arrays: Iterable[WeightArray], timeout: float | None = DEFAULT_TIMEOUT_SECONDS
) -> dict[str, ArrayDigest]:
    """Content digests of ``arrays`` by location; arrays the file cannot give are left out."""
    locations = sorted({array.location for array in arrays})
    if not locations:
        return {}
    return call_with_deadline(lambda: _digests(model_file, locations), model_file.path, timeout)
