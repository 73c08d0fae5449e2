"""tf_keras SavedModel directories: the Keras config inside ``keras_metadata.pb``, the weights in ``variables/``.

The weights are a TF tensor bundle (``tf_bundle``) whose keys follow the object graph, not the layer config.
Each ``keras_metadata.pb`` node names its object graph node (``node_id``; the checkpoint's object graph numbers
its nodes as the SavedModel's does, which is checked against each node's path); a config layer is the child
``layer-N`` of its model's node that has its name, and its weights are the variables its node lists under
``variables`` (``layer.weights``: sublayers' included; a nested model's own are those none of its layers list).
One variable node reached from two layers is one array (one ``location``, its checkpoint key) under both.
See docs/formats.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keras_share import configs
from keras_share.errors import ReadError, describe
from keras_share.limits import MAX_JSON_VALUES, MAX_METADATA_BYTES
from keras_share.read.base import SAVEDMODEL_METADATA_FILE, BytecodeSite, ModelFile, WeightIndex
from keras_share.read.files import open_member
from keras_share.read.json_text import json_tokens
from keras_share.read.protobuf_wire import (
    ProtobufError,
    SavedObjectRecord,
    decode_metadata_json,
    read_keras_metadata,
    root_model_metadata,
)
from keras_share.read.saved_model_variables import read_variables
from keras_share.vocabulary import Format


def _decoded_nodes(records: list[SavedObjectRecord], root: dict[str, Any]) -> list[tuple[SavedObjectRecord, dict[str, Any]]]:
    """Every record with its metadata decoded (``{}`` when it has none); ValueError when one does not decode.
    The first ``root`` record's is ``root``, decoded already (``root_model_metadata``): the model config, the
    largest by far, is not decoded twice."""
    nodes: list[tuple[SavedObjectRecord, dict[str, Any]]] = []
    pending_root: dict[str, Any] | None = root
    for record in records:
        if pending_root is not None and record.node_path == "root":
            nodes.append((record, pending_root))
            pending_root = None
        else:
            nodes.append((record, decode_metadata_json(record.metadata) if record.metadata else {}))
    return nodes


def _trainable_flags(nodes: list[tuple[SavedObjectRecord, dict[str, Any]]]) -> dict[tuple[str, str], bool]:
    """Each layer's ``trainable`` by (class name, name), from its own metadata node.

    tf_keras's ``Sequential.get_config`` has no ``trainable`` key; the flag (which the SavedModel loader
    restores) is only in the Sequential's own node.
    """
    flags: dict[tuple[str, str], bool] = {}
    for record, node in nodes:
        if not record.identifier.startswith("_tf_keras_") or record.identifier == "_tf_keras_metric":
            continue
        name, class_name, trainable = node.get("name"), node.get("class_name"), node.get("trainable")
        if isinstance(name, str) and isinstance(class_name, str) and isinstance(trainable, bool):
            flags.setdefault((class_name, name), trainable)
    return flags


def _node_bytecode(nodes: list[tuple[SavedObjectRecord, dict[str, Any]]]) -> list[BytecodeSite]:
    """Serialized functions in every metadata node: tf_keras rebuilds each layer from its own node's config,
    not from the root's. The root's ``config`` is the model config, walked with the graph; everything else
    is walked here. A site's ``layer`` is the path of names down to the layer config holding it: the names
    of the node's ancestors (by node path), the node's own, then those of layers nested in its config."""
    names = {record.node_path: node.get("name") for record, node in nodes}
    sites: list[BytecodeSite] = []
    root_seen = False
    for record, metadata in nodes:
        is_root = record.node_path == "root" and not root_seen  # the record root_model_metadata reads
        root_seen = root_seen or is_root
        if not configs.text_may_hold_bytecode(record.metadata):
            continue
        label = f"{SAVEDMODEL_METADATA_FILE} node {ascii(record.node_path)[1:-1]}"  # escaped: the path comes from the file
        node = {key: value for key, value in metadata.items() if key != "config"} if is_root else metadata
        if is_root:
            model_config = node.get("model_config")
            owners = _layer_owners(model_config, "") if isinstance(model_config, dict) else {}
        else:
            parts = record.node_path.split(".")
            chain = [names.get(".".join(parts[:end])) for end in range(2, len(parts) + 1)]
            owners = _layer_owners(node, "/".join(name for name in chain if isinstance(name, str) and name))
        for layer, location in configs.bytecode_sites(node, owners, limit=configs.MAX_BYTECODE_SITES - len(sites)):
            sites.append(BytecodeSite(layer, location, label))
    return sites


def _layer_owners(entry: dict[str, Any], path: str) -> dict[int, str]:
    """``id()`` of the config of ``entry`` (a layer at ``path``) and of every layer entry nested in it -> its path."""
    owners: dict[int, str] = {}
    stack: list[tuple[Any, str]] = [(entry, path)]
    while stack:
        item, here = stack.pop()
        inner = item.get("config")
        if isinstance(inner, dict):
            owners[id(inner)] = here
        for child in configs.layer_entries(item) or []:
            name = configs.entry_name(child)
            stack.append((child, f"{here}/{name}" if here else name))
    return owners


def _restore_missing_flags(config: dict[str, Any], flags: dict[tuple[str, str], bool]) -> None:
    """Write the nodes' flags into config entries that lack ``trainable``."""
    stack: list[Any] = [config]
    while stack:
        entry = stack.pop()
        inner = configs.entry_config(entry)
        key = (configs.class_name(entry), configs.entry_name(entry))
        if inner and "trainable" not in inner and key in flags:
            inner["trainable"] = flags[key]
        stack.extend(configs.layer_entries(entry) or [])


def read_saved_model(directory: Path) -> ModelFile:
    """Read the model config of a SavedModel directory from its ``keras_metadata.pb``."""
    if not os.path.lexists(directory / SAVEDMODEL_METADATA_FILE):
        raise ReadError(str(directory), f"SavedModel without {SAVEDMODEL_METADATA_FILE} (TF < 2.5 or a plain tf.saved_model export): no Keras config")
    too_large = ReadError(str(directory), f"{SAVEDMODEL_METADATA_FILE} is larger than {MAX_METADATA_BYTES >> 20} MiB; refusing to read it")
    with open_member(directory, SAVEDMODEL_METADATA_FILE) as stream:
        if os.fstat(stream.fileno()).st_size > MAX_METADATA_BYTES:
            raise too_large
        try:
            data = stream.read(MAX_METADATA_BYTES + 1)
        except OSError as error:
            raise ReadError(str(directory), f"cannot read {SAVEDMODEL_METADATA_FILE} ({error.strerror or error})") from None
    if len(data) > MAX_METADATA_BYTES:
        raise too_large
    tokens = json_tokens(data)
    if tokens > MAX_JSON_VALUES:
        raise ReadError(str(directory), f"{SAVEDMODEL_METADATA_FILE} is too large: {tokens:,} JSON values (limit {MAX_JSON_VALUES:,})")
    try:
        records = read_keras_metadata(data)
        metadata = root_model_metadata(records)
        nodes = _decoded_nodes(records, metadata)
        flags = _trainable_flags(nodes)
    except (ProtobufError, ValueError, RecursionError) as error:
        raise ReadError(str(directory), f"{SAVEDMODEL_METADATA_FILE} cannot be decoded ({describe(error)})") from None
    if not isinstance(metadata, dict):
        raise ReadError(str(directory), f"{SAVEDMODEL_METADATA_FILE} holds no model metadata object")
    config = {"class_name": metadata.get("class_name"), "config": metadata.get("config")}
    _restore_missing_flags(config, flags)
    version = metadata.get("keras_version")
    model = ModelFile(str(directory), Format.SAVEDMODEL, version if isinstance(version, str) else "2", config, WeightIndex())
    model.bytecode = _node_bytecode(nodes)
    training_config = metadata.get("training_config")
    model.training_config = training_config if isinstance(training_config, dict) else None
    model.config_bytecode_free = not any(configs.text_may_hold_bytecode(record.metadata)
                                         for record in records if record.node_path == "root")
    model.config_module_free = not any(configs.text_may_name_module(record.metadata)
                                       for record in records if record.node_path == "root")
    model.weights, notes = read_variables(directory, config, nodes)
    model.notes.extend(notes)
    return model
