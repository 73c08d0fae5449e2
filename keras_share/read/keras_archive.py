"""``.keras`` archives (zip) and their unzipped folder form: config.json, metadata.json and model.weights.h5.

The configs are read here, in the process that asked, while a reader child reads the weights' HDF5 tree
(``keras_weights``); ``complete`` then matches the tree to the config. Nothing here imports h5py.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, NamedTuple

from keras_share import configs as config_facts
from keras_share.errors import ReadError, describe
from keras_share.read.base import CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER, ModelFile, WeightIndex
from keras_share.read.stored import StoredGroup
from keras_share.read.vars_layout import VarsLayoutReader

ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, IndexError, KeyError,
    struct.error, zlib.error, NotImplementedError, RuntimeError,
)
"""What the standard library's zip reader raises on damaged archives."""
MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest config.json / metadata.json accepted (uncompressed); real configs are far smaller."""


class KerasConfigs(NamedTuple):
    """What a ``.keras`` archive or folder says about its model: where it was read, its form, its configs."""

    path: str
    form: str
    config: dict[str, Any]
    metadata: Any
    bytecode_free: bool = False
    """config.json's text cannot hold a serialized function (``configs.text_may_hold_bytecode``)."""

    def model_file(self) -> ModelFile:
        """The model file these configs describe, with no weights read yet."""
        version = self.metadata.get("keras_version") if isinstance(self.metadata, dict) else None
        return ModelFile(path=self.path, format=self.form, keras_version=version if isinstance(version, str) else None,
                         config=self.config, weights=WeightIndex(), config_bytecode_free=self.bytecode_free)


def _bounded_read(stream: IO[bytes], path: str, member: str) -> bytes:
    """Read at most MAX_JSON_BYTES, refusing anything longer whatever its header claims."""
    data = stream.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ReadError(path, f"{member} is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB; refusing to read it")
    return data


def _parse_json(data: bytes, path: str, member: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ReadError(path, f"{member} is not valid JSON ({describe(error)})") from None


def _model_config(text: bytes, path: str) -> tuple[dict[str, Any], bool]:
    """config.json's model config, and whether its text cannot hold a serialized function."""
    config = _parse_json(text, path, CONFIG_MEMBER)
    if not isinstance(config, dict):
        raise ReadError(path, f"{CONFIG_MEMBER} does not hold a model config object")
    return config, not config_facts.text_may_hold_bytecode(text)


def open_archive(path: Path) -> zipfile.ZipFile:
    """The ``.keras`` zip at ``path``; a ReadError when its directory cannot be read."""
    try:
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as error:
        raise ReadError(str(path), f"not a readable zip archive ({describe(error)})") from None


def read_archive_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of a ``.keras`` zip, read without extracting anything to disk."""
    with open_archive(path) as archive:
        names = set(archive.namelist())
        if CONFIG_MEMBER not in names:
            raise ReadError(str(path), f"zip archive without {CONFIG_MEMBER}: not a .keras model")
        try:
            with archive.open(CONFIG_MEMBER) as stream:
                config, bytecode_free = _model_config(_bounded_read(stream, str(path), CONFIG_MEMBER), str(path))
            metadata: Any = {}
            if METADATA_MEMBER in names:
                with archive.open(METADATA_MEMBER) as stream:
                    metadata = _parse_json(_bounded_read(stream, str(path), METADATA_MEMBER), str(path), METADATA_MEMBER)
        except ZIP_ERRORS as error:
            raise ReadError(str(path), f"corrupt zip member ({describe(error)})") from None
    return KerasConfigs(str(path), "keras", config, metadata, bytecode_free)


def read_folder_configs(path: Path) -> KerasConfigs:
    """config.json and metadata.json of an unzipped ``.keras`` folder."""
    def load(member: str) -> bytes:
        try:
            with open(path / member, "rb") as stream:
                return _bounded_read(stream, str(path), member)
        except OSError as error:
            raise ReadError(str(path), f"cannot read {member} ({error.strerror or error})") from None

    metadata = _parse_json(load(METADATA_MEMBER), str(path), METADATA_MEMBER) if (path / METADATA_MEMBER).is_file() else {}
    config, bytecode_free = _model_config(load(CONFIG_MEMBER), str(path))
    return KerasConfigs(str(path), "keras-dir", config, metadata, bytecode_free)


def complete(configs: KerasConfigs, weights: StoredGroup | None) -> ModelFile:
    """The model file: its configs, and the weights' tree (None: the file has no weights) matched to them."""
    model = configs.model_file()
    if weights is None:
        model.notes.append(f"no {WEIGHTS_MEMBER}: the file stores an architecture without weights")
    else:
        model.weights = VarsLayoutReader(weights, WEIGHTS_MEMBER + ":", model.keras_generation).read(configs.config)
    return model
