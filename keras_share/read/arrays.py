"""Read stored array contents, in bounded blocks, for rules that compare weights by value.

h5py is imported by the reader child that reads them, never by the process that asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path

from keras_share.read.base import (
    SHARD_MAP_SUFFIX,
    WEIGHTS_MEMBER,
    ArrayDigest,
    ModelFile,
    WeightArray,
)
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, call_with_deadline
from keras_share.vocabulary import Format


def _digests(model_file: ModelFile, locations: list[str]) -> dict[str, ArrayDigest]:
    import h5py

    from keras_share.read import h5util
    from keras_share.read.digest import HASHED_KINDS, HashBudget, dataset_digest
    from keras_share.read.files import name_of_open_file, open_member, open_regular
    from keras_share.read.keras_archive import open_archive
    from keras_share.read.keras_weights import open_weights_h5

    path = Path(model_file.path)
    results: dict[str, ArrayDigest] = {}

    def collect(h5: h5py.File, prefix: str, wanted: list[str]) -> None:
        budget = HashBudget.of_file(h5.id)
        for location in wanted:
            inner = location[len(prefix):] if prefix and location.startswith(prefix) else location
            dataset = h5util.child(h5, inner)
            if (isinstance(dataset, h5py.Dataset) and dataset.dtype.kind in HASHED_KINDS
                    and h5util.data_location(dataset.id, dataset.id.get_offset()) == "file"):
                digest = dataset_digest(dataset, budget)
                if digest is not None:
                    results[location] = digest

    def collect_in_folder(folder: Path, wanted: list[str]) -> None:
        """Hash the locations ``<file>:/<path>`` of the files (model.weights.h5, shards) of ``folder``."""
        by_file: dict[str, list[str]] = {}
        for location in wanted:
            member, separator, _ = location.partition(":/")
            if separator and "/" not in member:
                by_file.setdefault(member, []).append(location)
        for member, its_locations in by_file.items():
            with open_member(folder, member) as stream, \
                    h5py.File(name_of_open_file(stream, folder / member), "r") as h5:
                collect(h5, member + ":", its_locations)

    if model_file.format == Format.KERAS:
        with open_archive(path) as archive, open_weights_h5(archive) as (h5, _):
            collect(h5, WEIGHTS_MEMBER + ":", locations)
    elif model_file.format == Format.KERAS_DIR:
        collect_in_folder(path, locations)
    elif model_file.format == Format.WEIGHTS_H5 and path.name.endswith(SHARD_MAP_SUFFIX):
        collect_in_folder(path.parent, locations)
    elif model_file.format == Format.SAVEDMODEL:
        from keras_share.read.saved_model_variables import bundle_digests

        results.update(bundle_digests(path, locations))
    elif model_file.format in (Format.H5, Format.H5_WEIGHTS, Format.WEIGHTS_H5):
        with open_regular(path, str(path)) as stream, h5py.File(name_of_open_file(stream, path), "r") as h5:
            collect(h5, "", locations)
    return results


def array_digests(
    model_file: ModelFile, arrays: Iterable[WeightArray], timeout: float | None = DEFAULT_TIMEOUT_SECONDS
) -> dict[str, ArrayDigest]:
    """Content digests of ``arrays`` by location, read in a reader child given ``timeout`` seconds (None: in this
    process); arrays the file cannot give, or not within its hashing budget, are left out."""
    locations = sorted({array.location for array in arrays})
    if not locations:
        return {}
    return call_with_deadline(partial(_digests, model_file, locations), model_file.path, timeout)


class FileDigests:
    """The digest source of one read file (``keras_share.analysis.digests.DigestSource``): the digests the
    reader already took, and the others read by ``array_digests`` in a reader child, each array asked once."""

    def __init__(self, model_file: ModelFile, timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._file = model_file
        self._timeout = timeout
        self._known: dict[str, ArrayDigest] = dict(model_file.weights.digests)
        self._asked: set[str] = set(self._known)

    def digests(self, arrays: Sequence[WeightArray]) -> Mapping[str, ArrayDigest]:
        """Digests by location, including those of ``arrays`` the file can give."""
        wanted = [array for array in arrays if array.location not in self._asked]
        if wanted:
            self._asked.update(array.location for array in wanted)
            self._known.update(array_digests(self._file, wanted, self._timeout))
        return self._known
