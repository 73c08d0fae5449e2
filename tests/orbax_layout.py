"""A builder of the Orbax checkpoint folders Keras >= 3.14 writes (``keras.callbacks.OrbaxCheckpoint``) and loads
(``keras.saving.load_model``, ``Model.load_weights``).

orbax-checkpoint is not installed here, so the folder is reproduced in its structure from the public source of
google/orbax (``checkpoint/orbax/checkpoint/experimental/v1``: ``layout/orbax_layout.py``, ``handlers/pytree_handler``,
``serialization/string_leaf_handler.py``) and its stored test checkpoints (``testing/compatibility/checkpoints/
v1_checkpoints``). ``OrbaxCheckpoint._save_checkpoint`` saves the checkpointables ``pytree`` (the live model's
``get_state_tree``) and ``model_config`` (``{"config": <the model's JSON>}``) under a step folder:

    <root>/<step>/orbax.checkpoint              empty indicator file
    <root>/<step>/_CHECKPOINT_METADATA          JSON: item_handlers per checkpointable, timestamps
    <root>/<step>/pytree/_METADATA              JSON: tree keys, value types, write shapes (no dtypes)
    <root>/<step>/pytree/_sharding              JSON
    <root>/<step>/pytree/array_metadatas/process_0
    <root>/<step>/pytree/manifest.ocdbt         OCDBT manifest (zstd frames): dtypes and values live in the database
    <root>/<step>/pytree/ocdbt.process_0/...    the database's data files
    <root>/<step>/model_config/_METADATA
    <root>/<step>/model_config/_strings.json    JSON: {"config": "<the model's JSON text>"}

The tree keys, shapes and the config come from the live model; the OCDBT files hold their magic number and a
zstd frame header only (their content is what keras-share cannot read, and never reads).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PYTREE_HANDLER = "orbax.checkpoint.experimental.v1._src.handlers.pytree_handler.PyTreeHandler"
OCDBT_MANIFEST_MAGIC = b"\x0c\xdb\x3a\x2a"
OCDBT_DATA_MAGIC = b"\x0c\xdb\x20\xde"
ZSTD_FRAME = b"\x28\xb5\x2f\xfd"


def _leaves(tree: dict[str, Any], keys: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found: list[tuple[tuple[str, ...], Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            found.extend(_leaves(value, keys + (key,)))
        else:
            found.append((keys + (key,), value))
    return found


def _tree_metadata(tree: dict[str, Any]) -> dict[str, Any]:
    entries = {}
    for keys, value in _leaves(tree):
        shape = list(getattr(value, "shape", ()))
        value_type = "string" if isinstance(value, str) else ("np.ndarray" if shape else "scalar")
        value_metadata: dict[str, Any] = {"value_type": value_type, "skip_deserialize": False}
        if value_type == "np.ndarray":
            value_metadata["write_shape"] = shape
        entries[repr(keys)] = {"key_metadata": [{"key": key, "key_type": 2} for key in keys],
                               "value_metadata": value_metadata}
    return {"tree_metadata": entries, "use_ocdbt": True, "use_zarr3": True,
            "store_array_data_equal_to_fill_value": True, "custom_metadata": None}


def _write_pytree(folder: Path, tree: dict[str, Any]) -> None:
    """A PyTreeHandler checkpointable: string leaves in ``_strings.json``, arrays in an OCDBT database."""
    folder.mkdir(parents=True)
    (folder / "_METADATA").write_text(json.dumps(_tree_metadata(tree)))
    strings = {".".join(keys): value for keys, value in _leaves(tree) if isinstance(value, str)}
    if strings:
        (folder / "_strings.json").write_text(json.dumps(strings))
    arrays = [(keys, value) for keys, value in _leaves(tree) if getattr(value, "shape", ())]
    if not arrays:
        return
    device = json.dumps({"sharding_type": "SingleDeviceSharding", "device_str": "cpu:0"})
    (folder / "_sharding").write_text(json.dumps({".".join(keys): device for keys, _ in arrays}))
    (folder / "array_metadatas").mkdir()
    (folder / "array_metadatas" / "process_0").write_text(json.dumps({"array_metadatas": [
        {"array_metadata": {"param_name": ".".join(keys), "write_shape": list(value.shape),
                            "chunk_shape": list(value.shape), "ext_metadata": None}} for keys, value in arrays]}))
    (folder / "manifest.ocdbt").write_bytes(OCDBT_MANIFEST_MAGIC + b"\0" * 10 + ZSTD_FRAME)
    (folder / "ocdbt.process_0" / "d").mkdir(parents=True)
    (folder / "ocdbt.process_0" / "manifest.ocdbt").write_bytes(OCDBT_MANIFEST_MAGIC + b"\0" * 10 + ZSTD_FRAME)
    (folder / "ocdbt.process_0" / "d" / "4e434e36df87c69b3fafb7f68fba7166").write_bytes(
        OCDBT_DATA_MAGIC + b"\0" * 10 + ZSTD_FRAME)


def write_orbax_checkpoint(root: Path, model: Any, step: int = 0, weights_only: bool = False) -> Path:
    """Write the folder ``OrbaxCheckpoint(directory=root, save_weights_only=weights_only)`` leaves after saving
    ``model`` (a built Keras 3 model) at ``step``; return the step folder."""
    from keras.src.saving import saving_lib

    state = model.get_state_tree(value_format="numpy_array")
    if weights_only:
        state = {key: state[key] for key in ("trainable_variables", "non_trainable_variables")}
    step_folder = root / str(step)
    _write_pytree(step_folder / "pytree", state)
    handlers = {"pytree": PYTREE_HANDLER}
    if not weights_only:
        config_json, _ = saving_lib._serialize_model_as_json(model)
        _write_pytree(step_folder / "model_config", {"config": config_json})
        handlers["model_config"] = PYTREE_HANDLER
    (step_folder / "orbax.checkpoint").write_bytes(b"")
    (step_folder / "_CHECKPOINT_METADATA").write_text(json.dumps({
        "item_handlers": handlers, "metrics": {}, "performance_metrics": {},
        "init_timestamp_nsecs": 1778718401651849216, "commit_timestamp_nsecs": 1778718403065544708,
        "custom_metadata": {}}))
    return step_folder
