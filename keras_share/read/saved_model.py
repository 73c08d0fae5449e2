"""tf_keras SavedModel directories: the Keras config inside ``keras_metadata.pb``.

The weights live in a TF checkpoint (``variables/``) whose keys follow the object graph, not the
layer config; keras-share reports the graph and says that weights were not read.
"""

from __future__ import annotations

from pathlib import Path

from keras_share.errors import ReadError, describe
from keras_share.read.base import ModelFile, WeightIndex
from keras_share.read.protobuf_wire import ProtobufError, read_keras_metadata, root_model_metadata

METADATA_FILE = "keras_metadata.pb"
MAX_METADATA_BYTES = 256 * 1024 * 1024


def read_saved_model(directory: Path) -> ModelFile:
    """Read the model config of a SavedModel directory from its ``keras_metadata.pb``."""
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file():
        raise ReadError(str(directory), f"SavedModel without {METADATA_FILE} (TF < 2.5 or a plain tf.saved_model export): no Keras config")
    if metadata_path.stat().st_size > MAX_METADATA_BYTES:
        raise ReadError(str(directory), f"{METADATA_FILE} is larger than 256 MiB; refusing to read it")
    try:
        metadata = root_model_metadata(read_keras_metadata(metadata_path.read_bytes()))
    except (ProtobufError, ValueError, RecursionError) as error:
        raise ReadError(str(directory), f"{METADATA_FILE} cannot be decoded ({describe(error)})") from None
    if not isinstance(metadata, dict):
        raise ReadError(str(directory), f"{METADATA_FILE} holds no model metadata object")
    config = {"class_name": metadata.get("class_name"), "config": metadata.get("config")}
    version = metadata.get("keras_version")
    model = ModelFile(str(directory), "savedmodel", version if isinstance(version, str) else "2", config, WeightIndex())
    model.notes.append("SavedModel weights live in a TF checkpoint (variables/) that keras-share does not read: no weight arrays")
    return model
