"""Read stored array contents, in bounded blocks, for rules that compare weights by value.

h5py is imported by the reader child that reads them, never by the process that asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from keras_share.read.base import WEIGHTS_MEMBER, ArrayDigest, ModelFile, WeightArray
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, call_with_deadline


def _digests(model_file: ModelFile, locations: list[str]) -> dict[str, ArrayDigest]:
    import h5py

    from keras_share.read import h5util
    from keras_share.read.digest import HASHED_KINDS, HashBudget, dataset_digest
    from keras_share.read.files import name_of_open_file, open_member, open_regular
    from keras_share.read.keras_archive import open_archive
    from keras_share.read.keras_weights import open_weights_h5

    path = Path(model_file.path)
    results: dict[str, ArrayDigest] = {}

    def collect(h5: h5py.File, prefix: str) -> None:
        budget = HashBudget.of_file(h5.id)
        for location in locations:
            inner = location[len(prefix):] if prefix and location.startswith(prefix) else location
            dataset = h5util.child(h5, inner)
            if (isinstance(dataset, h5py.Dataset) and dataset.dtype.kind in HASHED_KINDS
                    and h5util.data_location(dataset.id, dataset.id.get_offset()) == "file"):
                digest = dataset_digest(dataset, budget)
                if digest is not None:
                    results[location] = digest

    prefix = WEIGHTS_MEMBER + ":"
    if model_file.format == "keras":
        with open_archive(path) as archive, open_weights_h5(archive) as (h5, _):
            collect(h5, prefix)
    elif model_file.format == "keras-dir":
        with open_member(path, WEIGHTS_MEMBER) as stream, \
                h5py.File(name_of_open_file(stream, path / WEIGHTS_MEMBER), "r") as h5:
            collect(h5, prefix)
    elif model_file.format == "savedmodel":
        from keras_share.read.saved_model_variables import bundle_digests

        results.update(bundle_digests(path, locations))
    elif model_file.format in ("h5", "h5-weights", "weights-h5"):
        with open_regular(path, str(path)) as stream, h5py.File(name_of_open_file(stream, path), "r") as h5:
            collect(h5, "")
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
