"""``.keras`` archives (zip) and their unzipped folder form: config.json, metadata.json and model.weights.h5.

The configs are read here, in the process that asked, while a reader child reads the weights' HDF5 tree
(``keras_weights``); ``complete`` then matches the tree to the config. Nothing here imports h5py.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

from keras_share.errors import ReadError, describe
from keras_share.limits import MAX_JSON_BYTES
from keras_share.read.base import CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER, ModelFile, WeightIndex
from keras_share.read.files import open_member, open_regular
from keras_share.read.json_text import JsonRefused, load_json
from keras_share.read.stored import StoredGroup
from keras_share.read.vars_layout import TooManyLayers, VarsLayoutReader

ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, IndexError, KeyError,
    struct.error, zlib.error, NotImplementedError, RuntimeError,
)
"""What the standard library's zip reader raises on damaged archives."""


class KerasConfigs(NamedTuple):
    """What a ``.keras`` archive or folder says about its model: where it was read, its form, its configs."""

    path: str
    form: str
    config: dict[str, Any]
    metadata: Any

    def model_file(self) -> ModelFile:
        """The model file these configs describe, with no weights read yet."""
        version = self.metadata.get("keras_version") if isinstance(self.metadata, dict) else None
        return ModelFile(path=self.path, format=self.form, keras_version=version if isinstance(version, str) else None,
                         config=self.config, weights=WeightIndex())


def _bounded_read(stream: IO[bytes], path: str, member: str) -> bytes:
    """Read at most MAX_JSON_BYTES, refusing anything longer whatever its header claims."""
    data = stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ReadError(path, f"{member} is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB; refusing to read it")
    return data


def _parse_json(data: bytes, path: str, member: str) -> Any:
    try:
        return load_json(data)
    except JsonRefused as error:
        raise ReadError(path, f"{member} {error}") from None
    except ValueError as error:
        raise ReadError(path, f"{member} is not valid JSON ({describe(error)})") from None


def _configs(path: str, form: str, config: Any, metadata: Any) -> KerasConfigs:
    if not isinstance(config, dict):
        raise ReadError(path, f"{CONFIG_MEMBER} does not hold a model config object")
    return KerasConfigs(path, form, config, metadata)


@contextmanager
def open_archive(path: Path) -> Iterator[zipfile.ZipFile]:
    """The ``.keras`` zip at ``path`` (a regular file, ``files.open_regular``); a ReadError when its directory
    cannot be read."""
    with open_regular(path, str(path)) as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except ZIP_ERRORS as error:
            raise ReadError(str(path), f"not a readable zip archive ({describe(error)})") from None
        with archive:
            yield archive


def stored_data_start(stream: BinaryIO, info: zipfile.ZipInfo) -> int | None:
    """Where an uncompressed, unencrypted zip member's bytes start in the archive file ``stream``; None for
    others."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    try:
        header = os.pread(stream.fileno(), 30, info.header_offset)
    except (OSError, OverflowError):  # an offset before the file or past what the system can address
        return None
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def read_archive_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of a ``.keras`` zip, read without extracting anything to disk."""
    with open_archive(path) as archive:
        names = set(archive.namelist())
        if CONFIG_MEMBER not in names:
            raise ReadError(str(path), f"zip archive without {CONFIG_MEMBER}: not a .keras model")
        try:
            with archive.open(CONFIG_MEMBER) as stream:
                config = _parse_json(_bounded_read(stream, str(path), CONFIG_MEMBER), str(path), CONFIG_MEMBER)
            metadata: Any = {}
            if METADATA_MEMBER in names:
                with archive.open(METADATA_MEMBER) as stream:
                    metadata = _parse_json(_bounded_read(stream, str(path), METADATA_MEMBER), str(path), METADATA_MEMBER)
        except ZIP_ERRORS as error:
            raise ReadError(str(path), f"corrupt zip member ({describe(error)})") from None
    return _configs(str(path), "keras", config, metadata)


def read_folder_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of an unzipped ``.keras`` folder (regular files inside it only)."""
    def load(member: str) -> Any:
        with open_member(path, member) as stream:
            try:
                data = _bounded_read(stream, str(path), member)
            except OSError as error:
                raise ReadError(str(path), f"cannot read {member} ({error.strerror or error})") from None
        return _parse_json(data, str(path), member)

    metadata = load(METADATA_MEMBER) if os.path.lexists(path / METADATA_MEMBER) else {}
    return _configs(str(path), "keras-dir", load(CONFIG_MEMBER), metadata)


def complete(configs: KerasConfigs, weights: StoredGroup | None) -> ModelFile:
    """The model file: its configs, and the weights' tree (None: the file has no weights) matched to them."""
    model = configs.model_file()
    if weights is None:
        model.notes.append(f"no {WEIGHTS_MEMBER}: the file stores an architecture without weights")
    else:
        try:
            model.weights = VarsLayoutReader(weights, WEIGHTS_MEMBER + ":", model.keras_generation).read(configs.config)
        except TooManyLayers as error:
            raise ReadError(configs.path, str(error)) from None
    return model
