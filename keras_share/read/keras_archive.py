"""``.keras`` archives (zip) and their unzipped directory form: config.json + model.weights.h5."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import h5py

from keras_share.errors import ReadError, describe
from keras_share.read.base import CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER, ModelFile, WeightIndex
from keras_share.read.h5tree import RawReader
from keras_share.read.vars_layout import VarsLayoutReader

_ZIP_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, IndexError, KeyError,
    struct.error, zlib.error, NotImplementedError, RuntimeError,
)
"""What the standard library's zip reader raises on damaged archives."""
MAX_JSON_BYTES = 64 * 1024 * 1024
"""Largest config.json / metadata.json accepted (uncompressed); real configs are far smaller."""
MAX_COMPRESSED_WEIGHTS_BYTES = 1024 * 1024 * 1024
"""Largest compressed model.weights.h5 accepted: h5py seeks, and each backward seek re-inflates."""
IN_MEMORY_WEIGHTS_BYTES = 32 * 1024 * 1024
"""model.weights.h5 up to this size is read into memory at once (briefly twice: libhdf5 copies it; a compressed
member's image is kept to hash small arrays from); larger ones are read in place, keeping memory flat whatever
the weights weigh."""


class _StoredMember(io.RawIOBase):
    """A seekable view of an uncompressed zip member, read straight from the archive file.

    ``ZipFile.open`` streams rewind to the member's start on every backward seek, and h5py seeks
    backwards all the time: this makes reading a large ``model.weights.h5`` linear instead of quadratic.
    """

    def __init__(self, path: Path, start: int, size: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this object
        self._start, self._size, self._position = start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, origin + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._position))
        if count == 0:
            return 0
        self._file.seek(self._start + self._position)
        read = self._file.readinto(memoryview(buffer)[:count]) or 0
        self._position += read
        return read

    def read_at(self, offset: int, size: int) -> bytes:
        """The member's bytes at ``offset`` (fewer at its end), without moving the stream's position."""
        size = max(0, min(size, self._size - offset))
        return os.pread(self._file.fileno(), size, self._start + offset) if size else b""

    def close(self) -> None:
        self._file.close()
        super().close()


@contextmanager
def open_weights_h5(archive: zipfile.ZipFile, path: Path) -> Iterator[tuple[h5py.File, RawReader | None]]:
    """``model.weights.h5`` opened with h5py, and how to read its bytes without libhdf5 (None: no way to).

    It is opened from memory when small (libhdf5 then reads without calling back into Python), in place
    when stored uncompressed (as Keras writes it), streamed otherwise. Its bytes are read from the archive
    file when the member is stored uncompressed, else from the memory image.
    """
    info = archive.getinfo(WEIGHTS_MEMBER)
    with ExitStack() as stack:
        start = _stored_member_start(path, info)
        member = stack.enter_context(_StoredMember(path, start, info.file_size)) if start is not None else None
        if info.file_size <= IN_MEMORY_WEIGHTS_BYTES:
            image = archive.read(WEIGHTS_MEMBER)  # never more than the file_size just checked
            h5 = stack.enter_context(h5py.File(h5py.h5f.open_file_image(image)))  # libhdf5 keeps its own copy
            raw = member.read_at if member is not None else _image_reader(image)
            del image
        elif member is not None:
            h5, raw = stack.enter_context(h5py.File(member, "r")), member.read_at
        else:
            h5, raw = stack.enter_context(h5py.File(stack.enter_context(archive.open(WEIGHTS_MEMBER)), "r")), None
        yield h5, raw


def _image_reader(image: bytes) -> RawReader:
    view = memoryview(image)
    return lambda offset, size: view[offset:offset + size]


def _stored_member_start(path: Path, info: zipfile.ZipInfo) -> int | None:
    """Where an uncompressed, unencrypted zip member's bytes start in the archive file; None for others."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    with open(path, "rb") as stream:
        stream.seek(info.header_offset)
        header = stream.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


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


def _model_file(
    path: str, form: str, config: Any, metadata: Any,
    open_weights: Callable[[], AbstractContextManager[tuple[h5py.File, RawReader | None]]] | None,
) -> ModelFile:
    if not isinstance(config, dict):
        raise ReadError(path, f"{CONFIG_MEMBER} does not hold a model config object")
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    model = ModelFile(path=path, format=form, keras_version=version if isinstance(version, str) else None,
                      config=config, weights=WeightIndex())
    if open_weights is None:
        model.notes.append(f"no {WEIGHTS_MEMBER}: the file stores an architecture without weights")
        return model
    try:
        with open_weights() as (h5, raw):
            model.weights = VarsLayoutReader(h5, WEIGHTS_MEMBER + ":", model.keras_generation, raw).read(config)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
        raise ReadError(path, f"{WEIGHTS_MEMBER} is not a readable HDF5 file ({describe(error)})") from None
    return model


def read_archive(path: Path) -> ModelFile:
    """Read a ``.keras`` zip without extracting anything to disk."""
    try:
        archive = zipfile.ZipFile(path)
    except _ZIP_ERRORS as error:
        raise ReadError(str(path), f"not a readable zip archive ({describe(error)})") from None
    with archive:
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
            if WEIGHTS_MEMBER not in names:
                return _model_file(str(path), "keras", config, metadata, None)
            info = archive.getinfo(WEIGHTS_MEMBER)
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSED_WEIGHTS_BYTES:
                raise ReadError(str(path), f"{WEIGHTS_MEMBER} is compressed and over 1 GiB uncompressed; Keras stores it "
                                "uncompressed, and seeking inside a compressed member this large is refused")
            return _model_file(str(path), "keras", config, metadata, lambda: open_weights_h5(archive, path))
        except _ZIP_ERRORS as error:
            raise ReadError(str(path), f"corrupt zip member ({describe(error)})") from None


def read_directory(path: Path) -> ModelFile:
    """Read the unzipped form: a folder holding config.json, metadata.json and model.weights.h5."""
    def load(member: str) -> Any:
        with open(path / member, "rb") as stream:
            return _parse_json(_bounded_read(stream, str(path), member), str(path), member)

    config = load(CONFIG_MEMBER)
    metadata = load(METADATA_MEMBER) if (path / METADATA_MEMBER).is_file() else {}
    weights = path / WEIGHTS_MEMBER
    return _model_file(str(path), "keras-dir", config, metadata,
                       (lambda: _opened_from_disk(h5py.File(weights, "r"))) if weights.is_file() else None)


@contextmanager
def _opened_from_disk(h5: h5py.File) -> Iterator[tuple[h5py.File, None]]:
    """A file libhdf5 reads from disk itself: its bytes are read through libhdf5's descriptor (``read_tree``)."""
    with h5:
        yield h5, None
