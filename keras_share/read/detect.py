"""Tell the formats apart by content and find model files inside folders.

The format readers (and with them h5py and numpy) are imported only where files are read: in the
reader child process, never in the process that renders the report.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from keras_share.errors import ReadError
from keras_share.read.base import CONFIG_MEMBER, ModelFile
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, call_with_deadline, start_with_deadline
from keras_share.read.saved_model import METADATA_FILE
from keras_share.read.stored import StoredGroup

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def _is_model_directory(path: Path) -> bool:
    return (path / CONFIG_MEMBER).is_file() or (path / METADATA_FILE).is_file() or (path / "saved_model.pb").is_file()


def _has_hdf5_signature(path: Path) -> bool:
    """HDF5 puts its superblock at byte 0, 512, 1024, 2048, ... (a user block may precede it)."""
    with open(path, "rb") as stream:
        offset = 0
        while offset <= 1 << 20:
            stream.seek(offset)
            if stream.read(8) == HDF5_MAGIC:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def read_model(path: str | os.PathLike[str], timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
               while_reading: Callable[[ModelFile], object] | None = None) -> ModelFile:
    """Read any supported model file or folder; raise ReadError with a one-line reason otherwise.

    What needs libhdf5 is read in a child process killed after ``timeout`` seconds (None: in this process).
    A ``.keras`` archive's or folder's configs are read here meanwhile, then given to ``while_reading`` (as a
    model file without weights yet) while the child goes on, and the child's tree is matched to them here.
    """
    target = _model_path(Path(path))
    form = _keras_form(target)
    if form is None:
        return call_with_deadline(partial(_read_model, path), str(path), timeout)
    from keras_share.read import keras_archive

    weights = start_with_deadline(partial(_read_keras_weights, form, target), str(path), timeout)
    try:
        configs = keras_archive.read_archive_configs(target) if form == "keras" else keras_archive.read_folder_configs(target)
        if while_reading is not None:
            while_reading(configs.model_file())
    except BaseException:
        weights.cancel()
        raise
    return keras_archive.complete(configs, weights.wait())


def _model_path(target: Path) -> Path:
    """The path to read: a SavedModel's folder for its ``keras_metadata.pb``."""
    return target.parent if target.name == METADATA_FILE and target.is_file() else target


def _keras_form(target: Path) -> str | None:
    """``keras`` for a zip archive, ``keras-dir`` for a folder holding config.json, None for anything else."""
    if target.is_dir():
        return "keras-dir" if (target / CONFIG_MEMBER).is_file() else None
    try:
        with open(target, "rb") as stream:
            return "keras" if stream.read(len(ZIP_MAGIC)) == ZIP_MAGIC else None
    except OSError:  # the reader child says why
        return None


def _read_keras_weights(form: str, target: Path) -> StoredGroup | None:
    from keras_share.read.keras_weights import read_archive_weights, read_folder_weights

    return read_archive_weights(target) if form == "keras" else read_folder_weights(target)


def import_readers() -> None:
    """Import every format reader (h5py and numpy with them)."""
    for reader in ("keras_weights", "legacy_h5", "saved_model"):
        importlib.import_module(f"keras_share.read.{reader}")


def _read_model(path: str | os.PathLike[str]) -> ModelFile:
    from keras_share.read.legacy_h5 import read_h5
    from keras_share.read.saved_model import read_saved_model

    target = _model_path(Path(path))
    if target.is_dir():
        if (target / METADATA_FILE).is_file() or (target / "saved_model.pb").is_file():
            return read_saved_model(target)
        raise ReadError(str(path), "folder without config.json or keras_metadata.pb: not a saved model")
    if not target.exists():
        raise ReadError(str(path), "no such file or folder")
    try:
        with open(target, "rb") as stream:
            head = stream.read(8)
        if not head:
            raise ReadError(str(path), "empty file")
        if _has_hdf5_signature(target):
            return read_h5(target)
    except OSError as error:
        raise ReadError(str(path), f"cannot read ({error.strerror or error})") from None
    raise ReadError(str(path), "not a Keras model (neither a .keras zip nor an HDF5 file)")


def discover(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The model inputs a path names: itself, or for a plain folder every model found inside it.

    Folders that are themselves saved models (config.json, keras_metadata.pb) count as one input.
    """
    target = Path(path)
    if not target.is_dir() or _is_model_directory(target):
        yield target
        return
    for root, dirs, files in os.walk(target):
        here = Path(root)
        models = [name for name in dirs if _is_model_directory(here / name)]
        dirs[:] = sorted(name for name in dirs if name not in models)
        found = models + [name for name in files if name.lower().endswith(MODEL_SUFFIXES)]
        for name in sorted(found):
            yield here / name
