"""KerasHub presets: a folder (or a ``.keras`` zip or folder of the same layout) holding a backbone.

``Backbone.save_to_preset`` (and ``Task.save_to_preset``) write::

    config.json          the backbone's class and hyperparameters only (no layer graph: a subclassed model)
    metadata.json        keras_version, keras_hub_version, parameter_count, date_saved, tasks
    model.weights.h5     the backbone's weights, or model.weights.json + model_0000N.weights.h5 shards
    task.json            a task's class and config (its backbone's config inside)
    task.weights.h5      the task's weights outside its backbone (its head), when it has any
    tokenizer.json, preprocessor.json, assets/ ...    listed, never read
    *.lora.h5            ``save_lora_weights``: lora/vars/rank and lora/<index>/vars/lora_kernel_{a,b}

The backbone's config and weights are read as any ``.keras`` folder's (``keras_archive``, ``keras_weights``,
``sharded_weights``). Here: which inputs are presets (``is_preset``), the extra HDF5 files read in the reader
child (``read_extra_trees``), and the plain facts the parent assembles from them (``preset_facts``). What the
facts mean (which classes tie their embeddings, which layers are applied several times) is for
``keras_share.analysis.keras_hub``.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from keras_share import configs as config_facts
from keras_share.errors import ReadError, describe
from keras_share.limits import (
    MAX_PRESET_EXTRA_FILES,
    MAX_PRESET_EXTRA_IN_ZIP_BYTES,
    MAX_PRESET_LISTED_FILES,
)
from keras_share.read.base import (
    CONFIG_MEMBER,
    METADATA_MEMBER,
    SHARDED_WEIGHTS_MEMBER,
    WEIGHTS_MEMBER,
    LoraFile,
    LoraTarget,
    Preset,
    PresetTask,
)
from keras_share.read.stored import StoredDataset, StoredGroup
from keras_share.read.vars_layout import VarsLayoutReader

TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
LORA_SUFFIX = ".lora.h5"
KERAS_HUB_PREFIX = "keras_hub>"
"""How ``registered_name`` starts for a class KerasHub registered (``keras_hub>GemmaBackbone``)."""
_SHARD = re.compile(r"model_\d{5,}\.weights\.h5")
"""How ``save_to_preset`` names the shards of ``model.weights.json``."""
_TRAINING_STATE = ("optimizer", "metrics")
_HDF5_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError)


@dataclass
class ExtraTree:
    """One extra HDF5 file of a preset as read in the reader child: its tree, and a LoRA file's rank scalar."""

    tree: StoredGroup
    rank: int | None = None
    problem: str | None = None
    """Why the file could not be read (its tree then empty): a note, not an error, since loading the backbone
    does not read it."""


class KerasTrees(NamedTuple):
    """What the reader child reads of a ``.keras`` archive or folder: the model's weights tree (None: no
    weights), and the trees of a KerasHub preset's extra HDF5 files (``task.weights.h5``, ``*.lora.h5``).
    Defined here, not beside h5py: the parent unpickles it."""

    weights: StoredGroup | None
    extras: dict[str, ExtraTree]


def is_extra_file(name: str) -> bool:
    """Whether a preset file (or zip member) is one of the extra HDF5 files read: ``task.weights.h5``, LoRA."""
    return name == TASK_WEIGHTS or (name.endswith(LORA_SUFFIX) and "/" not in name and name != LORA_SUFFIX)


def is_preset(config: Any, metadata: Any) -> bool:
    """Whether a ``.keras`` archive's or folder's configs are a KerasHub preset's: a class KerasHub registered,
    or a ``keras_hub_version`` in its metadata."""
    registered = config.get("registered_name") if isinstance(config, dict) else None
    return (isinstance(registered, str) and registered.startswith(KERAS_HUB_PREFIX)) or (
        isinstance(metadata, dict) and "keras_hub_version" in metadata)


def _rank(tree: StoredGroup, h5: Any) -> int | None:
    """The ``lora/vars/rank`` scalar, when it is one integer."""
    stored = tree.group("lora/vars")
    rank = stored.members.get("rank") if stored is not None else None
    if not isinstance(rank, StoredDataset) or rank.shape != () or not rank.dtype.startswith(("int", "uint")):
        return None
    try:
        return int(h5["lora/vars/rank"][()])
    except _HDF5_ERRORS:
        return None


def _read_hdf5(h5py: Any, source: Any, name: str) -> ExtraTree:
    from keras_share.read.h5tree import read_tree
    from keras_share.read.vars_layout import GROUP_ATTRS

    try:
        with h5py.File(source, "r") as h5:
            tree = read_tree(h5, GROUP_ATTRS)
            return ExtraTree(tree, _rank(tree, h5) if name.endswith(LORA_SUFFIX) else None)
    except _HDF5_ERRORS as error:
        return ExtraTree(StoredGroup(), problem=f"{name} is not a readable HDF5 file ({describe(error)}): not read")


def zip_extra_trees(archive: zipfile.ZipFile, label: str) -> dict[str, ExtraTree]:
    """The trees of the ``task.weights.h5`` and ``*.lora.h5`` members of a ``.keras`` zip (opened by
    ``keras_archive.open_archive``), by name; empty when it has none. Runs in the reader child (h5py)."""
    import h5py

    from keras_share.read.keras_archive import ZIP_ERRORS, open_zip_member

    found: dict[str, ExtraTree] = {}
    for name in sorted(name for name in archive.namelist() if is_extra_file(name))[:MAX_PRESET_EXTRA_FILES]:
        info = archive.getinfo(name)
        if info.file_size > MAX_PRESET_EXTRA_IN_ZIP_BYTES:
            raise ReadError(label, f"{name} is over {MAX_PRESET_EXTRA_IN_ZIP_BYTES >> 20} MiB inside a zip; "
                            "refusing to read it into memory")
        try:
            with open_zip_member(archive, name) as stream:
                image = stream.read(info.file_size)
        except ZIP_ERRORS as error:
            raise ReadError(label, f"corrupt zip member {name} ({describe(error)})") from None
        found[name] = _read_hdf5(h5py, h5py.h5f.open_file_image(image), name)
    return found


def folder_extra_trees(folder: Path) -> dict[str, ExtraTree]:
    """The trees of a folder's ``task.weights.h5`` and ``*.lora.h5`` files (regular files inside it), by name;
    empty when it has none. Runs in the reader child (h5py)."""
    import h5py

    from keras_share.read.files import name_of_open_file, open_member

    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing if is_extra_file(entry.name))[:MAX_PRESET_EXTRA_FILES]
    except OSError as error:
        raise ReadError(str(folder), f"cannot list folder ({error.strerror or error})") from None
    found: dict[str, ExtraTree] = {}
    for name in names:
        with open_member(folder, name) as stream:
            found[name] = _read_hdf5(h5py, name_of_open_file(stream, folder / name), name)
    return found


def listed_files(names: list[str]) -> list[str]:
    """The files of a preset listed in its report (tokenizer, preprocessor, assets...): every name but the
    backbone's and the task's configs and weights, at most ``MAX_PRESET_LISTED_FILES``."""
    known = {CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER, SHARDED_WEIGHTS_MEMBER, TASK_CONFIG, TASK_WEIGHTS}
    return sorted(name for name in names if name not in known and not _SHARD.fullmatch(name)
                  and not is_extra_file(name))[:MAX_PRESET_LISTED_FILES]


def folder_names(folder: Path) -> list[str]:
    """The names in a preset folder, at most ``MAX_PRESET_LISTED_FILES`` past the ones a preset always has."""
    names: list[str] = []
    try:
        with os.scandir(folder) as listing:
            for entry in listing:
                names.append(entry.name)
                if len(names) > MAX_PRESET_LISTED_FILES + 16:
                    break
    except OSError:
        return []
    return names


def zip_names(archive: zipfile.ZipFile) -> list[str]:
    """The top-level member names of a ``.keras`` zip, with a folder of assets named once (``assets/``)."""
    return sorted({name if "/" not in name else name.split("/", 1)[0] + "/" for name in archive.namelist()})


def group_names(tree: StoredGroup) -> dict[str, str]:
    """Every group of a ``vars``-layout tree that has a ``vars`` group, by path, to the layer name stored on it."""
    found: dict[str, str] = {}
    pending: list[tuple[str, StoredGroup]] = [("", tree)]
    while pending:
        path, group = pending.pop()
        for name, member in group.groups():
            if not path and name in _TRAINING_STATE:
                continue
            if name == "vars":
                if path:
                    found[path] = member.attrs.get("name", "")
            else:
                pending.append((f"{path}/{name}" if path else name, member))
    return dict(sorted(found.items()))


def _lora_file(name: str, extra: ExtraTree) -> LoraFile:
    targets: list[LoraTarget] = []
    root = extra.tree.group("lora")
    for index, group in root.groups() if root is not None else []:
        if index == "vars":
            continue
        stored = group.group("vars")
        members = stored.members if stored is not None else {}
        kernel_a, kernel_b = members.get("lora_kernel_a"), members.get("lora_kernel_b")
        targets.append(LoraTarget(index, kernel_a.shape if isinstance(kernel_a, StoredDataset) else None,
                                  kernel_b.shape if isinstance(kernel_b, StoredDataset) else None))
    targets.sort(key=lambda target: (not target.index.isdigit(), int(target.index) if target.index.isdigit() else 0,
                                     target.index))
    return LoraFile(name, extra.rank, targets)


def _task(task_config: Any, extras: dict[str, ExtraTree], keras_version: str | None) -> PresetTask | None:
    extra = extras.get(TASK_WEIGHTS)
    if task_config is None and extra is None:
        return None
    index = None
    names: dict[str, str] = {}
    if extra is not None:
        reader = VarsLayoutReader(extra.tree, TASK_WEIGHTS + ":", 3, keras_version)
        index = reader.read(None)
        names = group_names(extra.tree)
    config = task_config if isinstance(task_config, dict) else None
    return PresetTask(config_facts.class_name(config) if config is not None else "", config, index, names)


def preset_facts(metadata: Any, tree: StoredGroup | None, extras: dict[str, ExtraTree], task_config: Any,
                 names: list[str], keras_version: str | None) -> Preset:
    """The preset's facts from what was read: its metadata, the backbone's weights tree (None: no weights),
    the extra HDF5 trees, ``task.json`` (None: absent) and the names of its files."""
    meta = metadata if isinstance(metadata, dict) else {}
    version, count = meta.get("keras_hub_version"), meta.get("parameter_count")
    return Preset(
        keras_hub_version=version if isinstance(version, str) else None,
        parameter_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        group_names=group_names(tree) if tree is not None else {},
        sharded=tree is not None and bool(tree.origins()),
        task=_task(task_config, extras, keras_version),
        files=listed_files(names),
        lora=[_lora_file(name, extra) for name, extra in sorted(extras.items()) if name.endswith(LORA_SUFFIX)],
    )
