"""Legacy HDF5 files: full models (``model_config`` + ``model_weights``) and weights-only files.

Layout (docs/formats.md, legacy `.h5` rows): one group per top-level layer, its arrays listed by the chunked
``weight_names`` attribute; a nested model's group holds all of its sub-layers' arrays, named by
their build scope. Keras 3 weights-only ``.weights.h5`` files use the ``vars`` layout instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h5py

from keras_share import configs
from keras_share.errors import ReadError, describe
from keras_share.limits import MAX_JSON_BYTES
from keras_share.read import h5util
from keras_share.read.base import LayerKey, ModelFile, WeightArray, WeightIndex
from keras_share.read.files import name_of_open_file, open_regular
from keras_share.read.h5tree import read_tree
from keras_share.read.json_text import parse_json
from keras_share.read.sharded_weights import read_weights_map_file
from keras_share.read.stored import StoredDataset, StoredGroup
from keras_share.read.truncation import truncated_hdf5
from keras_share.read.vars_layout import (
    CHECKPOINT_DEPENDENCIES,
    GROUP_ATTRS,
    VarsLayoutReader,
)
from keras_share.vocabulary import Format


def _decode_config(text: str | None, path: str, attribute: str = "model_config") -> dict[str, Any]:
    if text is None:
        raise ReadError(path, f"the {attribute} attribute is not text")
    if len(text) > MAX_JSON_BYTES:
        raise ReadError(path, f"the {attribute} attribute is larger than {MAX_JSON_BYTES >> 20} MiB; refusing to parse it")
    config = parse_json(text, path, attribute)
    if not isinstance(config, dict):
        raise ReadError(path, f"{attribute} is not a JSON object")
    return config


def _strip_suffix(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _layer_arrays(
    group: h5py.Group, stored: StoredGroup, group_path: str, path: str, index: WeightIndex
) -> list[tuple[str, WeightArray]]:
    """(stored weight name, array) for every name of the group's ``weight_names``."""
    try:
        names = h5util.str_list_attr(group, "weight_names") or []
    except ValueError as error:
        raise ReadError(path, f"{group_path}: {error}") from None
    found: list[tuple[str, WeightArray]] = []
    for name in names:
        normalised = re.sub("/+", "/", name).strip("/")
        parent, _, leaf = normalised.rpartition("/")
        holder = stored.group(parent) if parent else stored
        dataset = holder.members.get(leaf) if holder is not None else None
        if isinstance(dataset, StoredDataset):
            array = dataset.weight(_strip_suffix(normalised), f"{group_path}/{normalised}", index)
            if array is not None:
                found.append((normalised, array))
    return found


def _descendants(entry: dict[str, Any], key: LayerKey) -> dict[str, tuple[LayerKey, bool]]:
    """Layers below a model entry by name (first occurrence wins): (key, is it a model)."""
    found: dict[str, tuple[LayerKey, bool]] = {}
    stack = [(entry, key)]
    while stack:
        model, model_key = stack.pop()
        for child in configs.layer_entries(model) or []:
            child_key = model_key + (configs.entry_name(child),)
            is_model = configs.layer_entries(child) is not None
            found.setdefault(configs.entry_name(child), (child_key, is_model))
            if is_model:
                stack.append((child, child_key))
    return found


def _split_nested(
    entry: dict[str, Any], key: LayerKey, arrays: list[tuple[str, WeightArray]], index: WeightIndex
) -> None:
    """Give each array of a flattened nested-model group to the sub-layer its scope names.

    The scopes of ``outer/inner/kernel`` are read left to right; the last one naming a layer below
    the nested model owns the array, stopping at the first leaf layer (its own sub-scopes, such
    as ``lstm_cell`` or ``query``, stay in the weight name).
    """
    below = _descendants(entry, key)
    for stored_name, array in arrays:
        parts = stored_name.split("/")
        owner, rest = key, parts
        for position, part in enumerate(parts[:-1]):
            if part in below:
                owner, is_model = below[part]
                rest = parts[position + 1:]
                if not is_model:
                    break
        renamed = WeightArray(_strip_suffix("/".join(rest)), array.shape, array.dtype, array.location)
        index.by_layer.setdefault(owner, []).append(renamed)


def _read_model_weights(root: h5py.Group, config: dict[str, Any] | None, path: str, prefix: str) -> WeightIndex:
    index = WeightIndex()
    try:
        layer_names = h5util.str_list_attr(root, "layer_names") or []
    except ValueError as error:
        raise ReadError(path, f"{prefix or '/'}: {error}") from None
    entries = {configs.entry_name(child): child for child in (configs.layer_entries(config) or [])} if config else {}
    tree = read_tree(root)
    for name in layer_names:
        group = h5util.child(root, name) if name else None
        stored = tree.members.get(name) if name else None
        group_path = f"{prefix}/{name}" if prefix else name
        if not isinstance(group, h5py.Group) or not isinstance(stored, StoredGroup):
            if name in entries or config is None:  # Keras reads the group of every layer the list names
                index.missing.append((name,))
            continue
        arrays = _layer_arrays(group, stored, group_path, path, index)
        entry = entries.get(name)
        if entry is None:
            if arrays:
                index.unattached[group_path] = [array for _, array in arrays]
        elif configs.layer_entries(entry) is not None:
            index.by_layer[(name,)] = []
            index.stored_order[(name,)] = [array.location for _, array in arrays]
            _split_nested(entry, (name,), arrays, index)
        else:
            index.by_layer[(name,)] = [
                WeightArray(_strip_suffix(_own_name(stored, name)), a.shape, a.dtype, a.location) for stored, a in arrays
            ]
    listed = set(layer_names)
    for name, entry in entries.items():
        if name not in listed and not configs.is_input_layer(entry) and not configs.is_op(entry):
            index.missing.append((name,))
    return index


def _own_name(stored: str, layer_name: str) -> str:
    """``dense/kernel:0`` -> ``kernel:0`` for a layer named ``dense``; other scopes are kept."""
    parts = stored.split("/")
    if layer_name in parts[:-1]:
        return "/".join(parts[parts.index(layer_name) + 1:])
    return parts[-1] if len(parts) > 1 else stored


def _optimizer_arrays(root: h5py.File, index: WeightIndex) -> list[WeightArray]:
    group = h5util.child(root, "optimizer_weights")
    if not isinstance(group, h5py.Group):
        return []
    arrays: list[WeightArray] = []
    stack: list[tuple[StoredGroup, str]] = [(read_tree(group), "optimizer_weights")]
    while stack:
        current, current_path = stack.pop()
        for name, member in current.members.items():
            location = f"{current_path}/{name}"
            if isinstance(member, StoredGroup):
                stack.append((member, location))
            elif (array := member.weight(name, location, index)) is not None:
                arrays.append(array)
    return arrays


def _open_h5(path: Path) -> h5py.File:
    """The HDF5 file at ``path``, opened read-only through a regular file's descriptor (``files.open_regular``);
    ReadError when it is not one (cut short, or not HDF5)."""
    with open_regular(path, str(path)) as stream:
        try:
            return h5py.File(name_of_open_file(stream, path), "r")
        except (OSError, ValueError) as error:
            raise ReadError(str(path), truncated_hdf5(stream) or f"not a readable HDF5 file ({describe(error)})") from None


def read_h5(path: Path) -> ModelFile:
    """Read any Keras HDF5 file: a full model, a Keras 2 weights-only file or a ``.weights.h5`` (a regular
    file, ``files.open_regular``)."""
    with _open_h5(path) as h5:
        try:
            return _read_open_h5(h5, str(path))
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as error:
            raise ReadError(str(path), f"damaged HDF5 content ({describe(error)})") from None


def read_h5_as_weights(path: Path) -> ModelFile:
    """A legacy HDF5 file as ``load_weights`` reads it: a full model's ``model_weights`` group (``layer_names``
    under it) read as the weights-only file it holds, any other file as ``read_h5`` reads it."""
    with _open_h5(path) as h5:
        weights_root = h5util.child(h5, "model_weights")
        if "layer_names" in h5.attrs or not isinstance(weights_root, h5py.Group):
            return read_h5(path)
        try:
            index = _read_model_weights(weights_root, None, str(path), "")
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as error:
            raise ReadError(str(path), f"damaged HDF5 content ({describe(error)})") from None
        version = h5util.str_attr(weights_root, "keras_version") or h5util.str_attr(h5, "keras_version")
        return ModelFile(str(path), Format.H5_WEIGHTS, version, None, index)


def read_sharded_weights_only(path: Path) -> ModelFile:
    """Read a Keras 3 sharded weights map (``x.weights.json``) and its shards: the weights-only ``vars`` layout of a
    ``.weights.h5`` file, spread over several files."""
    tree = read_weights_map_file(path)
    model = ModelFile(str(path), Format.WEIGHTS_H5, None, None, VarsLayoutReader(tree, "", 3).read(None))
    model.notes.append(f"Keras 3 sharded weights-only file ({len(tree.origins()):,} shard file(s) hold its weights): "
                      "it has no architecture, so no graph and no sharing")
    return model


def _training_config(h5: h5py.File, model: ModelFile) -> Any:
    """The ``training_config`` attribute parsed, when its text may name a module (else None); one that is not a
    JSON object within the bounds is a note, not a read error (Keras loads such a file with compile=False)."""
    text = h5util.str_attr(h5, "training_config")
    if not text or not configs.text_may_name_module(text):
        return None
    try:
        return _decode_config(text, model.path, "training_config")
    except ReadError as error:
        model.notes.append(f"{error.problem}: it was not checked for module references")
        return None


def _read_open_h5(h5: h5py.File, path: str) -> ModelFile:
    version = h5util.str_attr(h5, "keras_version")
    backend = h5util.str_attr(h5, "backend")
    if "model_config" in h5.attrs:
        text = h5util.str_attr(h5, "model_config")
        config = _decode_config(text, path)
        weights_root = h5util.child(h5, "model_weights")
        model = ModelFile(path, Format.H5, version, config, WeightIndex(), backend=backend,
                          config_bytecode_free=not configs.text_may_hold_bytecode(text or ""),
                          config_module_free=not configs.text_may_name_module(text or ""))
        if isinstance(weights_root, h5py.Group):
            model.keras_version = h5util.str_attr(weights_root, "keras_version") or version
            model.weights = _read_model_weights(weights_root, config, path, "model_weights")
        else:
            model.notes.append("no model_weights group: the file stores an architecture without weights")
        model.weights.optimizer = _optimizer_arrays(h5, model.weights)
        model.training_config = _training_config(h5, model)
        return model
    if "layer_names" in h5.attrs or "layer_names0" in h5.attrs:
        model = ModelFile(path, Format.H5_WEIGHTS, version, None, _read_model_weights(h5, None, path, ""), backend=backend)
        model.notes.append("weights-only file (save_weights): it has no architecture, so no graph and no sharing")
        return model
    if h5util.child(h5, "vars") is not None or h5util.child(h5, "layers") is not None:
        model = ModelFile(path, Format.WEIGHTS_H5, version, None, VarsLayoutReader(read_tree(h5, GROUP_ATTRS), "", 3).read(None))
        writer = "tf.keras 2.12-2.14" if h5util.child(h5, CHECKPOINT_DEPENDENCIES) is not None else "Keras 3"
        model.notes.append(f"{writer} weights-only file: it has no architecture, so no graph and no sharing")
        return model
    raise ReadError(path, "HDF5 file without model_config, layer_names or vars groups: not a Keras model")
