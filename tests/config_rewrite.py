"""Edit the model config inside a file Keras saved, leaving everything else byte for byte.

The tests use these to reproduce layouts that today's writers no longer produce but that files in the wild have
(an older Keras's Sequential config, a call another layer's node does not record), then load the edited file with
the real Keras and compare keras-share's report with it. Each edit names the layout it reproduces.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Config = dict[str, Any]


def rewrite_h5(path: Path, edit: Callable[[Config], None]) -> None:
    """Edit the ``model_config`` attribute of a legacy ``.h5`` file in place."""
    import h5py

    with h5py.File(path, "r+") as h5:
        raw = h5.attrs["model_config"]
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        edit(config)
        h5.attrs["model_config"] = json.dumps(config)


def rewrite_keras(path: Path, edit: Callable[[Config], None]) -> None:
    """Edit ``config.json`` of a ``.keras`` archive in place (the other members are copied unchanged)."""
    members: list[tuple[zipfile.ZipInfo, bytes]] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode("utf-8")
            members.append((info, data))
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            archive.writestr(info, data)


def rewrite_savedmodel(folder: Path, edit: Callable[[str, Config], None]) -> None:
    """Edit every node's metadata in a tf_keras SavedModel's ``keras_metadata.pb``: ``edit(node_path, metadata)``,
    where the root's metadata (node path ``root``) holds the model config under ``config``."""
    from tf_keras.protobuf import saved_metadata_pb2

    metadata_file = folder / "keras_metadata.pb"
    saved = saved_metadata_pb2.SavedMetadata()
    saved.ParseFromString(metadata_file.read_bytes())
    for node in saved.nodes:
        metadata = json.loads(node.metadata)
        edit(node.node_path, metadata)
        node.metadata = json.dumps(metadata)
    metadata_file.write_bytes(saved.SerializeToString())


def layer_entry(config: Config, name: str) -> Config:
    """The entry named ``name`` in a model config's ``layers``."""
    return next(entry for entry in config["config"]["layers"] if entry["name"] == name)


def as_keras_2_2_sequential(entry: Config) -> None:
    """A tf_keras Sequential entry as Keras 2.2-2.3 and tf.keras up to 2.1 wrote it: no InputLayer entry, the first
    layer carrying the input's ``batch_input_shape`` (``Sequential.get_config`` listed ``self.layers``, which leaves
    the InputLayer out)."""
    layers = entry["config"]["layers"]
    assert layers[0]["class_name"] == "InputLayer"
    shape = layers[0]["config"]["batch_input_shape"]
    del layers[0]
    layers[0]["config"]["batch_input_shape"] = shape
