"""The weights of ``.keras`` archives and folders: ``model.weights.h5`` read with h5py, in the reader child.

Only the HDF5 tree is read here; the configs are read, and the tree matched to them, by ``keras_archive``
in the process that asked (which never imports h5py).
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import h5py

from keras_share.errors import ReadError, describe
from keras_share.limits import (
    MAX_COMPRESSED_WEIGHTS_BYTES,
    MAX_SLOW_COMPRESSED_WEIGHTS_BYTES,
)
from keras_share.read.base import (
    CONFIG_MEMBER,
    METADATA_MEMBER,
    SHARDED_WEIGHTS_MEMBER,
    WEIGHTS_MEMBER,
)
from keras_share.read.files import name_of_open_file, open_member
from keras_share.read.h5tree import RawReader, pread_reader, read_tree
from keras_share.read.keras_archive import (
    ZIP_ERRORS,
    open_archive,
    open_zip_member,
    stored_data_start,
)
from keras_share.read.preset import KerasTrees, folder_extra_trees, zip_extra_trees
from keras_share.read.sharded_weights import read_folder_shards
from keras_share.read.stored import StoredGroup
from keras_share.read.truncation import truncated_hdf5
from keras_share.read.vars_layout import GROUP_ATTRS

IN_MEMORY_WEIGHTS_BYTES = 32 * 1024 * 1024
"""model.weights.h5 up to this size is read into memory at once (briefly twice: libhdf5 copies it; a compressed
member's image is kept to hash small arrays from); larger ones are read in place, or from a temporary file when
compressed, keeping memory flat whatever the weights weigh."""
_INFLATE_PIECE_BYTES = 1024 * 1024
_HDF5_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError)
NPZ_WEIGHTS_MEMBER = "model.weights.npz"
"""The weights of a ``.keras`` zip or folder saved with ``saving_lib.save_model(..., weights_format="npz")``."""
NPZ_REFUSAL = (
    f"{NPZ_WEIGHTS_MEMBER} (weights_format=\"npz\"): Keras stores each layer's weights there as a pickled Python "
    "object, which keras-share does not read; Keras 3.15 and tf_keras 2.21 cannot load them (they read the file "
    "with allow_pickle=False), and earlier releases that unpickle them run any code they hold"
)
ZIP_MAGIC = b"PK\x03\x04"
ASSETS_PREFIX = "assets/"
WEIGHTS_FILE_SUFFIXES = (".h5", ".hdf5", ".keras", ".npz", ".npy", ".safetensors", ".ckpt", ".index", ".pb",
                         ".pt", ".pth", ".bin", ".msgpack", ".pkl", ".onnx", ".tflite")
"""Names of files that may hold weights, for a model folder without ``model.weights.h5``."""


class _StoredMember(io.RawIOBase):
    """A seekable view of an uncompressed zip member, read straight from the archive file.

    ``ZipFile.open`` streams rewind to the member's start on every backward seek, and h5py seeks
    backwards all the time: this makes reading a large ``model.weights.h5`` linear instead of quadratic.
    It reads the archive's open file descriptor ``fd`` with ``pread``, which leaves the file's position alone.
    """

    def __init__(self, fd: int, start: int, size: int) -> None:
        super().__init__()
        self._fd = fd
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
        view = memoryview(buffer).cast("B")
        count = max(0, min(len(view), self._size - self._position))
        if count == 0:
            return 0
        read = os.preadv(self._fd, [view[:count]], self._start + self._position)
        self._position += read
        return read

    def read_at(self, offset: int, size: int) -> bytes:
        """The member's bytes at ``offset`` (fewer at its end), without moving the stream's position."""
        size = max(0, min(size, self._size - offset))
        return os.pread(self._fd, size, self._start + offset) if size else b""


@contextmanager
def open_weights_h5(archive: zipfile.ZipFile) -> Iterator[tuple[h5py.File, RawReader | None]]:
    """``model.weights.h5`` opened with h5py, and how to read its bytes without libhdf5.

    It is opened from memory when small (libhdf5 then reads without calling back into Python), in place
    when stored uncompressed (as Keras writes it), and otherwise inflated once into a temporary file: libhdf5
    seeks back and forth, and every backward seek in a compressed stream inflates it again from its start.
    No more bytes are ever inflated than the member declares. Its bytes are read from the archive file when
    the member is stored uncompressed, else from the memory image or the temporary file.
    """
    info = archive.getinfo(WEIGHTS_MEMBER)
    archive_file = archive.fp  # the regular file open_archive opened
    assert archive_file is not None
    with ExitStack() as stack:
        start = stored_data_start(archive_file, info)
        member = stack.enter_context(_StoredMember(archive_file.fileno(), start, info.file_size)) if start is not None else None
        if info.file_size <= IN_MEMORY_WEIGHTS_BYTES:
            with open_zip_member(archive, WEIGHTS_MEMBER) as stream:
                image = stream.read(info.file_size)  # never more than the file_size just checked
            h5 = stack.enter_context(h5py.File(h5py.h5f.open_file_image(image)))  # libhdf5 keeps its own copy
            raw = member.read_at if member is not None else _image_reader(image)
            del image
        elif member is not None:
            h5, raw = stack.enter_context(h5py.File(member, "r")), member.read_at
        else:
            inflated = stack.enter_context(tempfile.TemporaryFile())
            _inflate(archive, inflated)
            h5, raw = stack.enter_context(h5py.File(inflated, "r")), pread_reader(inflated.fileno())
        yield h5, raw


def _inflate(archive: zipfile.ZipFile, target: IO[bytes]) -> None:
    """Write ``model.weights.h5`` decompressed into ``target``, a piece at a time."""
    with open_zip_member(archive, WEIGHTS_MEMBER) as stream:
        while piece := stream.read(_INFLATE_PIECE_BYTES):
            target.write(piece)
    target.seek(0)


def _image_reader(image: bytes) -> RawReader:
    view = memoryview(image)
    return lambda offset, size: view[offset:offset + size]


def _without_weights_h5(names: list[str], label: str, zipped: bool) -> None:
    """Refuse, with one line, an archive or folder (its member or file ``names``) that has no
    ``model.weights.h5`` but holds weights in another form; return when it holds none (an architecture only)."""
    if NPZ_WEIGHTS_MEMBER in names:
        raise ReadError(label, NPZ_REFUSAL)
    if SHARDED_WEIGHTS_MEMBER in names and zipped:
        raise ReadError(label, f"{SHARDED_WEIGHTS_MEMBER} (sharded weights) inside a .keras zip: Keras loads "
                        f"only {WEIGHTS_MEMBER} or {NPZ_WEIGHTS_MEMBER} from a zip, and keras-share does not "
                        "read shards from one")
    unknown = sorted(name for name in names if _may_hold_weights(name, zipped))
    if unknown:
        shown = ", ".join(repr(name) for name in unknown[:3]) + (f" and {len(unknown) - 3:,} more" if len(unknown) > 3 else "")
        raise ReadError(label, f"no {WEIGHTS_MEMBER}, {NPZ_WEIGHTS_MEMBER} or {SHARDED_WEIGHTS_MEMBER}, but "
                        f"{'members' if zipped else 'files'} keras-share does not know as weights: {shown}")


def _may_hold_weights(name: str, zipped: bool) -> bool:
    """Whether a member of a ``.keras`` zip (anything but its configs and assets: Keras writes nothing else) or a
    file of a model folder (one named like weights: presets keep tokenizers and other configs beside them)
    could hold the model's weights."""
    if name in (CONFIG_MEMBER, METADATA_MEMBER) or name.startswith(ASSETS_PREFIX) or name.endswith("/"):
        return False
    if zipped:
        return True
    lowered = name.lower()
    return "weights" in lowered or "variables" in lowered or lowered.endswith(WEIGHTS_FILE_SUFFIXES)


def read_archive_trees(path: Path) -> KerasTrees:
    """The weights tree of a ``.keras`` zip and the trees of its preset members, read from one opening."""
    with open_archive(path) as archive:
        return KerasTrees(_archive_weights(archive, path), zip_extra_trees(archive, str(path)))


def read_folder_trees(path: Path) -> KerasTrees:
    """The weights tree of a ``.keras`` folder (or KerasHub preset) and the trees of its preset files."""
    return KerasTrees(read_folder_weights(path), folder_extra_trees(path))


def _archive_weights(archive: zipfile.ZipFile, path: Path) -> StoredGroup | None:
    """The HDF5 tree of the open ``.keras`` zip's ``model.weights.h5``; None when the archive holds no weights at
    all (a ReadError when it holds them in a form keras-share does not read)."""
    try:
        if WEIGHTS_MEMBER not in archive.namelist():
            _without_weights_h5(archive.namelist(), str(path), zipped=True)
            return None
        info = archive.getinfo(WEIGHTS_MEMBER)
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_COMPRESSED_WEIGHTS_BYTES:
            raise ReadError(str(path), f"{WEIGHTS_MEMBER} is compressed and over "
                            f"{MAX_COMPRESSED_WEIGHTS_BYTES >> 20} MiB uncompressed; Keras stores it uncompressed, "
                            "and inflating a compressed member this large is refused")
        if info.compress_type in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA) and info.file_size > MAX_SLOW_COMPRESSED_WEIGHTS_BYTES:
            raise ReadError(str(path), f"{WEIGHTS_MEMBER} is compressed with bzip2 or LZMA and over "
                            f"{MAX_SLOW_COMPRESSED_WEIGHTS_BYTES >> 20} MiB uncompressed; "
                            "Keras stores it uncompressed, and decompressing a member this large is refused")
        try:
            with open_weights_h5(archive) as (h5, raw):
                return read_tree(h5, GROUP_ATTRS, raw)
        except _HDF5_ERRORS as error:
            raise ReadError(str(path), f"{WEIGHTS_MEMBER} is not a readable HDF5 file ({describe(error)})") from None
    except ZIP_ERRORS as error:
        raise ReadError(str(path), f"corrupt zip member ({describe(error)})") from None


def read_folder_weights(path: Path) -> StoredGroup | None:
    """The HDF5 tree of an unzipped ``.keras`` folder's ``model.weights.h5``, or of its ``model.weights.json`` and
    shards (a KerasHub preset); None when the folder holds no weights at all (a ReadError when it holds them in a
    form keras-share does not read)."""
    weights = path / WEIGHTS_MEMBER
    if not os.path.lexists(weights):
        if os.path.lexists(path / SHARDED_WEIGHTS_MEMBER):
            return read_folder_shards(path)
        try:
            names = os.listdir(path)
        except OSError as error:
            raise ReadError(str(path), f"cannot list folder ({error.strerror or error})") from None
        _without_weights_h5(names, str(path), zipped=False)
        return None
    with open_member(path, WEIGHTS_MEMBER) as stream:
        try:
            with h5py.File(name_of_open_file(stream, weights), "r") as h5:
                return read_tree(h5, GROUP_ATTRS)
        except _HDF5_ERRORS as error:
            if os.pread(stream.fileno(), len(ZIP_MAGIC), 0) == ZIP_MAGIC:
                raise ReadError(str(path), f"{WEIGHTS_MEMBER} is a zip (npz) archive, not HDF5: Keras 3's "
                                "save_model(..., weights_format=\"npz\", zipped=False) writes its npz weights "
                                f"under this name, and its load_model cannot read them back. {NPZ_REFUSAL}") from None
            cut = truncated_hdf5(stream)
            raise ReadError(str(path), f"{WEIGHTS_MEMBER} is a {cut}" if cut else
                            f"{WEIGHTS_MEMBER} is not a readable HDF5 file ({describe(error)})") from None
