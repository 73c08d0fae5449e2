"""Tell the formats apart as Keras does (by name and content), and find model files inside folders.

The format readers (and with them h5py and numpy) are imported only where files are read: in the
reader child process, never in the process that renders the report.
"""

from __future__ import annotations

import importlib
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from keras_share.errors import ReadError
from keras_share.read.base import CONFIG_MEMBER, SAVEDMODEL_METADATA_FILE, SHARD_MAP_SUFFIX, ModelFile
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, Pending, start_with_deadline
from keras_share.read.files import open_regular, resolves_inside
from keras_share.read.foreign import (
    HEAD_BYTES,
    ORBAX_CHECKPOINT,
    foreign_format,
    is_orbax_checkpoint,
)
from keras_share.read.truncation import (
    HDF5_MAGIC,
    ZIP_MAGIC,
    hdf5_signature_at,
    signature_prefix,
)
from keras_share.vocabulary import Format

if TYPE_CHECKING:
    from keras_share.read.preset import KerasTrees

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVED_MODEL_FILE = "saved_model.pb"
FOLDER_MODEL_FILES = (CONFIG_MEMBER, SAVEDMODEL_METADATA_FILE, SAVED_MODEL_FILE)
"""Files whose presence makes a folder a saved model (a ``.keras`` folder, a SavedModel)."""
SHARD_NAME = re.compile(r"(.+)_\d{5,}\.weights\.h5")
"""How Keras names the shards of ``<base>.weights.json``: ``<base>_00000.weights.h5``, ``<base>_00001...``."""
OUTSIDE_LINK = "a symbolic link leading outside the folder given; not followed"

ZIP_ALSO_HDF5 = (
    "ambiguous file: it is both a .keras zip and an HDF5 file. Keras loads the zip (the name ends in .keras), "
    "and this report describes it; renamed to .h5, the same file loads as the HDF5 model"
)
HDF5_ALSO_ZIP = (
    "ambiguous file: it is both an HDF5 file and a .keras zip. Keras loads the HDF5 file (the name does not end "
    "in .keras), and this report describes it; renamed to .keras, the same file loads as the zip's model"
)
KERAS_DIR_ALSO_SAVEDMODEL = (
    "ambiguous folder: it is both an unzipped .keras folder (config.json) and a SavedModel. Keras 3 loads the "
    ".keras folder, and this report describes it; tf_keras's load_model loads the SavedModel instead"
)


WEIGHTS_MAP = "weights-map"
"""The form of a sharded weights map given directly (``x.weights.json``): reported as ``Format.WEIGHTS_H5``."""


class Form(NamedTuple):
    """How an input is read, as Keras would load it: a ``Format`` (``keras``, ``keras-dir``, ``h5``,
    ``savedmodel``) or ``WEIGHTS_MAP``; and, for an input that another loader would read as another model, what
    that is (a note). For ``h5`` the ambiguity is only possible (the file ends like a zip) until the reader child
    finds a .keras zip there."""

    name: str
    ambiguity: str | None = None


def _is_model_directory(path: Path) -> bool:
    """Whether the folder holds a saved model's files (whatever they are: reading them says what is wrong), or is
    a checkpoint that Keras loads as a model but keras-share cannot read (said when it is read)."""
    return any(os.path.lexists(path / name) for name in FOLDER_MODEL_FILES) or is_orbax_checkpoint(path)


class ModelRead:
    """A model file whose reading has begun (``start_read``): its reader child is at work; ``finish`` completes it."""

    def __init__(self, path: str, form: Form, target: Path, child: Pending[Any]) -> None:
        self.path = path
        """The path as given."""
        self._form, self._target, self._child = form, target, child

    def finish(self, while_reading: Callable[[ModelFile], object] | None = None) -> ModelFile:
        """The model file, or a ReadError with a one-line reason. A ``.keras`` archive's or folder's configs are
        read here meanwhile, then given to ``while_reading`` (as a model file without weights yet) while the child
        goes on, and the child's tree is matched to them here."""
        if self._form.name in (Format.KERAS, Format.KERAS_DIR):
            model = self._finish_keras(while_reading)
            model.ambiguity = self._form.ambiguity
        else:
            model = self._child.wait()
        if model.ambiguity is not None:
            model.notes.append(model.ambiguity)
        return model

    def cancel(self) -> None:
        """End the reader child: the file is not needed after all."""
        self._child.cancel()

    def _finish_keras(self, while_reading: Callable[[ModelFile], object] | None) -> ModelFile:
        from keras_share.read import keras_archive

        try:
            configs = (keras_archive.read_archive_configs(self._target) if self._form.name == Format.KERAS
                       else keras_archive.read_folder_configs(self._target))
            if while_reading is not None:
                while_reading(configs.model_file())
        except BaseException:
            self._child.cancel()
            raise
        trees: KerasTrees = self._child.wait()
        return keras_archive.complete(configs, trees.weights, trees.extras)


def start_read(path: str | os.PathLike[str], timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelRead:
    """Begin reading any supported model file or folder: tell its format and fork its reader child (killed after
    ``timeout`` seconds; None: the read runs here, now). A ReadError with a one-line reason when it is neither.

    What needs libhdf5 is read in the child: a ``.keras`` archive's or folder's weights (its configs are read
    by ``ModelRead.finish``), any other format whole. An ambiguous input (``Form.ambiguity``) is read as Keras
    loads it and carries a note saying so.
    """
    target = _model_path(Path(path))
    form = input_form(target, str(path))
    job: Callable[[], KerasTrees | ModelFile] = (
        partial(_read_keras_weights, form.name, target) if form.name in (Format.KERAS, Format.KERAS_DIR)
        else partial(_read_model, path, form))
    return ModelRead(str(path), form, target, start_with_deadline(job, str(path), timeout))


def read_model(path: str | os.PathLike[str], timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
               while_reading: Callable[[ModelFile], object] | None = None) -> ModelFile:
    """Read any supported model file or folder (``start_read``, then ``ModelRead.finish``); raise ReadError with a
    one-line reason otherwise."""
    return start_read(path, timeout).finish(while_reading)


def _model_path(target: Path) -> Path:
    """The path to read: a SavedModel's folder for its ``keras_metadata.pb``."""
    return target.parent if target.name == SAVEDMODEL_METADATA_FILE and os.path.isfile(target) else target


def input_form(target: Path, label: str) -> Form:
    """How Keras would load ``target``: by its name and signatures, as ``keras.saving.load_model`` dispatches.

    Only a folder or a regular file is looked into (``files.open_regular``); anything else, or a file in
    neither format, is a ReadError naming ``label``.
    """
    try:
        is_folder = stat.S_ISDIR(os.stat(target).st_mode)
    except FileNotFoundError:
        raise ReadError(label, "no such file or folder") from None
    except OSError as error:
        raise ReadError(label, f"cannot read ({error.strerror or error})") from None
    if is_folder:
        has_config = os.path.lexists(target / CONFIG_MEMBER)
        is_saved_model = any(os.path.lexists(target / name) for name in (SAVEDMODEL_METADATA_FILE, SAVED_MODEL_FILE))
        if has_config:
            return Form(Format.KERAS_DIR, KERAS_DIR_ALSO_SAVEDMODEL if is_saved_model else None)
        if is_saved_model:
            return Form(Format.SAVEDMODEL)
        if is_orbax_checkpoint(target):
            raise ReadError(label, ORBAX_CHECKPOINT)
        raise ReadError(label, "folder without config.json or keras_metadata.pb: not a saved model")
    with open_regular(target, label) as stream:
        return _file_form(stream, target.name, label)


def _file_form(stream: BinaryIO, name: str, label: str) -> Form:
    """Keras 3 and tf_keras load a file as a ``.keras`` zip when its name ends in ``.keras`` and
    ``zipfile.is_zipfile`` says yes, else as HDF5 (Keras 3 only by a ``.h5``/``.hdf5`` name). A file in one
    format only is read in that format, whatever its name. A file in neither whose name ends in
    ``weights.json`` is a sharded weights map, as Keras 3's ``load_weights`` tells it."""
    head = stream.read(len(HDF5_MAGIC))
    if not head:
        raise ReadError(label, "empty file")
    hdf5_at = hdf5_signature_at(stream)
    is_zip = zipfile.is_zipfile(stream)
    if hdf5_at is not None:
        if name.endswith(".keras") and is_zip:
            return Form(Format.KERAS, ZIP_ALSO_HDF5 if _hdf5_outside_members(stream, hdf5_at, label) else None)
        return Form(Format.H5, HDF5_ALSO_ZIP if is_zip else None)
    if is_zip or head.startswith(ZIP_MAGIC):
        return Form(Format.KERAS)
    if name.endswith(SHARD_MAP_SUFFIX):
        return Form(WEIGHTS_MAP)
    if (cut := signature_prefix(head)) is not None:
        raise ReadError(label, cut)
    stream.seek(0)
    known = foreign_format(stream.read(HEAD_BYTES), name, os.fstat(stream.fileno()).st_size)
    raise ReadError(label, f"{known}; not a Keras model" if known else
                    "not a Keras model (neither a .keras zip nor an HDF5 file)")


def _holds_keras_zip(target: Path) -> bool:
    """Whether the file is also a zip archive holding a ``config.json`` (its directory read whole: in the reader
    child)."""
    from keras_share.read.keras_archive import ZIP_ERRORS, open_archive

    try:
        with open_archive(target) as archive:
            return CONFIG_MEMBER in archive.namelist()
    except (ReadError, *ZIP_ERRORS):
        return False


def _hdf5_outside_members(stream: BinaryIO, hdf5_at: int, label: str) -> bool:
    """Whether the HDF5 superblock at ``hdf5_at`` of a zip is not simply the start of a member stored
    uncompressed there (a ``model.weights.h5`` that happens to start at 512, 1024, ...). The zip's directory is
    read within the same bounds as the archive's own reading (``keras_archive.zip_in``): a ReadError past them."""
    from keras_share.read.keras_archive import stored_data_start, zip_in

    with zip_in(stream, label) as archive:
        return not any(stored_data_start(stream, info) == hdf5_at for info in archive.infolist())


def _read_keras_weights(form: str, target: Path) -> KerasTrees:
    from keras_share.read.keras_weights import read_archive_trees, read_folder_trees

    return read_archive_trees(target) if form == Format.KERAS else read_folder_trees(target)


def import_readers() -> None:
    """Import every format reader (h5py and numpy with them)."""
    for reader in ("keras_weights", "legacy_h5", "saved_model", "sharded_weights"):
        importlib.import_module(f"keras_share.read.{reader}")


def _read_model(path: str | os.PathLike[str], form: Form) -> ModelFile:
    """Read an ``h5``, ``weights-json`` or ``savedmodel`` input (``input_form``), in the reader child."""
    from keras_share.read.legacy_h5 import read_h5, read_sharded_weights_only
    from keras_share.read.saved_model import read_saved_model

    target = _model_path(Path(path))
    if form.name == Format.SAVEDMODEL:
        return read_saved_model(target)
    if form.name == WEIGHTS_MAP:
        return read_sharded_weights_only(target)
    model = read_h5(target)
    if form.ambiguity is not None and _holds_keras_zip(target):
        model.ambiguity = form.ambiguity
    return model


def _entry_kind(entry: os.DirEntry[str]) -> str:
    """``link``, ``folder`` or ``file`` (anything else, or what cannot be told: reading it says what is wrong)
    for a listed entry, its links not followed."""
    try:
        if entry.is_symlink():
            return "link"
        return "folder" if entry.is_dir(follow_symlinks=False) else "file"
    except OSError:
        return "file"


def _is_shard_of_a_map(name: str, names: set[str]) -> bool:
    """Whether ``name`` is named as Keras names the shards of a sharded weights map in the same folder
    (``x_00000.weights.h5`` beside ``x.weights.json``): it is read through the map, not on its own."""
    match = SHARD_NAME.fullmatch(name)
    return match is not None and f"{match.group(1)}.{SHARD_MAP_SUFFIX}" in names


def discover(path: str | os.PathLike[str]) -> Iterator[tuple[Path, ReadError | None]]:
    """The model inputs a path names: itself, or for a plain folder every model found inside it; with each,
    the ReadError that is reported instead of reading it (None: read it).

    Folders that are themselves saved models (config.json, keras_metadata.pb) or Orbax checkpoints count as one
    input, and so does a sharded weights map with its shards (``x.weights.json``: the shards beside it are not
    listed). Inside a
    folder, symbolic links to folders are never followed, and a link named like a model file is read only
    when it resolves inside the folder given; a folder that cannot be listed is an error, the walk goes on.
    """
    target = Path(path)
    try:
        is_folder = stat.S_ISDIR(os.stat(target).st_mode)
    except OSError:  # reading it says why
        is_folder = False
    if not is_folder or _is_model_directory(target):
        yield target, None
        return
    pending = [target]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            yield folder, ReadError(str(folder), f"cannot list folder ({error.strerror or error})")
            continue
        found: list[tuple[Path, ReadError | None]] = []
        subfolders: list[Path] = []
        names = {entry.name for entry in entries}
        for entry in entries:
            here, kind = Path(entry.path), _entry_kind(entry)
            if _is_shard_of_a_map(entry.name, names):
                continue
            is_model_name = entry.name.lower().endswith(MODEL_SUFFIXES) or entry.name.endswith(SHARD_MAP_SUFFIX)
            if kind == "link":
                if is_model_name:
                    found.append((here, None if resolves_inside(here, target) else ReadError(str(here), OUTSIDE_LINK)))
            elif kind == "folder":
                if _is_model_directory(here):
                    found.append((here, None))
                else:
                    subfolders.append(here)
            elif is_model_name:
                found.append((here, None))
        yield from sorted(found, key=lambda item: item[0].name)
        pending.extend(reversed(subfolders))
