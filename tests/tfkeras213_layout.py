"""A documented builder of ``.keras`` archives in the layout tf.keras 2.13 and 2.14 wrote (2.12: its HDF5 tree).

tf.keras 2.12-2.14 (the ``keras`` 2.12-2.14 packages) cannot be installed beside TensorFlow 2.21, so the tests
build the layout here from a model made with tf_keras (installed): the model's own objects, variables and
``_layer_checkpoint_dependencies`` property give the real shapes and values, and the file holds them where
those versions put them. ``write_archive(model, path, keras_version)`` reproduces, from keras-team/keras
``keras/saving/saving_lib.py`` at the v2.13.1 and v2.14.0 tags:

* ``save_model``: a zip (``ZIP_STORED``) of ``metadata.json`` (``{"keras_version": ..., "date_saved": ...}``),
  ``config.json`` (``json.dumps(serialize_keras_object(model))``) and ``model.weights.h5``, in that order;
* ``_walk_trackable``: ``dir(trackable)`` in its (sorted) order, before Keras 2.15 reversed it and put
  ``_layer_checkpoint_dependencies`` in ``ATTR_SKIPLIST``. A Functional or Sequential model's first attribute
  holding layers is the ``_layer_checkpoint_dependencies`` property (``keras/engine/functional.py``): an
  OrderedDict ``layer_with_weights-<k>`` then ``layer-<i>`` over ``model.layers`` (a Functional's InputLayers
  included, a Sequential's left out), so a layer with weights is in it twice. ``layers`` comes later and holds
  only layers already saved, so no ``layers`` group is written;
* ``_save_state``: every visited object gets ``<path>/vars`` (``H5IOStore.make``; the model itself ``/vars``),
  filled by ``save_own_variables`` (``_trainable_weights + _non_trainable_weights`` as ``"0"``, ``"1"``, ...),
  then its children; ``model.optimizer`` under ``optimizer/vars``;
* ``_save_container_state``: a dict's values, each named ``to_snake_case(class name)`` with a per-class count
  (``dense``, ``dense_1``). Keras 2.14 skips an already-saved layer before counting it; 2.12 and 2.13 count it
  first (``if id(trackable) in visited_trackables: continue`` came in 2.14), so a layer with weights uses two
  numbers there: ``dense``, ``dense_2``.

``config.json`` is what tf_keras writes, changed where tf.keras 2.14's differed for these models: the model
classes' module is ``keras.src.engine.functional`` (tf_keras says ``tf_keras.src...``), and InputLayer configs
have no ``optional`` key. ``tests/tfkeras213_written/`` holds what TensorFlow 2.12.1, 2.13.1 and 2.14.1 wrote for
the models of ``CASES``; the tests check that the builder writes the same members, group tree, dataset shapes and
config text (dates, object ids and values aside).
Only what these models hold is reproduced: layers whose sublayers sit in attributes (MultiHeadAttention) are not.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any

CHECKPOINT_DEPENDENCIES = "_layer_checkpoint_dependencies"


def _snake_case(name: str) -> str:
    import re

    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_graph_model(layer: Any) -> bool:
    return hasattr(layer, CHECKPOINT_DEPENDENCIES)


def _save_model_state(model: Any, group: Any, visited: set[int], counts_saved_twice: bool) -> None:
    """``_save_state`` of a Functional or Sequential model and of the layers it holds, as the docstring says."""
    visited.add(id(model))
    model.save_own_variables(group.create_group("vars"))
    used: dict[str, int] = {}
    for layer in getattr(model, CHECKPOINT_DEPENDENCIES).values():
        if id(layer) in visited and not counts_saved_twice:
            continue
        name = _snake_case(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        if id(layer) in visited:
            continue
        layer_group = group.require_group(CHECKPOINT_DEPENDENCIES).create_group(name)
        if _is_graph_model(layer):
            _save_model_state(layer, layer_group, visited, counts_saved_twice)
        else:
            visited.add(id(layer))
            layer.save_own_variables(layer_group.create_group("vars"))


def weights_file(model: Any, keras_version: str = "2.14.0") -> bytes:
    """``model.weights.h5`` of ``model`` as tf.keras ``keras_version`` wrote it (also its ``save_weights`` file)."""
    return _weights_h5(model, _counts_saved_twice(keras_version))


def _counts_saved_twice(keras_version: str) -> bool:
    if keras_version.startswith("2.13."):
        return True
    if keras_version.startswith("2.14."):
        return False
    raise ValueError(f"tf.keras {keras_version} did not write this layout, or wrote another config form (2.12)")


def _weights_h5(model: Any, counts_saved_twice: bool) -> bytes:
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _save_model_state(model, h5, set(), counts_saved_twice)
        if getattr(model, "optimizer", None) is not None:
            model.optimizer.save_own_variables(h5.create_group("optimizer").create_group("vars"))
    return buffer.getvalue()


def _tfkeras214_config(tf_keras_config: Any) -> Any:
    """tf_keras's serialized config, as tf.keras 2.14 wrote it for the same model."""
    if isinstance(tf_keras_config, list):
        return [_tfkeras214_config(item) for item in tf_keras_config]
    if not isinstance(tf_keras_config, dict):
        return tf_keras_config
    converted = {key: _tfkeras214_config(value) for key, value in tf_keras_config.items()}
    module = converted.get("module")
    if isinstance(module, str) and module.startswith("tf_keras."):
        converted["module"] = "keras." + module[len("tf_keras."):]
    if converted.get("class_name") == "InputLayer" and isinstance(converted.get("config"), dict):
        converted["config"].pop("optional", None)
    return converted


def _config_json(model: Any) -> str:
    """config.json of ``model``: tf_keras's own (saved to a scratch file and read back), converted."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "model.keras")
        model.save(path)
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    return json.dumps(_tfkeras214_config(config))


def write_archive(model: Any, path: str | os.PathLike[str], keras_version: str = "2.14.0") -> None:
    """Write ``model`` (a tf_keras model) to ``path`` as tf.keras ``keras_version`` (2.13.x or 2.14.x) saved it."""
    counts_saved_twice = _counts_saved_twice(keras_version)
    metadata = json.dumps({"keras_version": keras_version,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    config = _config_json(model)
    weights = _weights_h5(model, counts_saved_twice)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", config)
        archive.writestr("model.weights.h5", weights)


# --------------------------------------------------------------------------
# The models of the tests: each takes the tf_keras module and returns a model.
# --------------------------------------------------------------------------


def build_rescaled_sequential(K: Any) -> Any:
    """A Sequential with weightless Rescaling and Flatten before two Dense layers (one class used twice)."""
    return K.Sequential([K.Input((4, 4, 1)), K.layers.Rescaling(1 / 255), K.layers.Flatten(),
                         K.layers.Dense(8, activation="relu"), K.layers.Dense(3)], name="rescaled")


def build_shared_with_batchnorm(K: Any) -> Any:
    """A Functional whose ``shared`` Dense is called on two inputs, then Concatenate, BatchNormalization, Dense."""
    a = K.Input((5,), name="a")
    b = K.Input((5,), name="b")
    shared = K.layers.Dense(4, name="shared")
    joined = K.layers.Concatenate(name="joined")([shared(a), shared(b)])
    normalized = K.layers.BatchNormalization(name="norm")(joined)
    return K.Model([a, b], K.layers.Dense(2, name="head")(normalized), name="shared_bn")


def build_nested_called_twice(K: Any) -> Any:
    """A nested Functional encoder (Dense, Dropout, Dense) called on two inputs, then Subtract and a Dense."""
    inner_input = K.Input((6,), name="enc_in")
    hidden = K.layers.Dropout(0.1, name="enc_drop")(K.layers.Dense(5, name="enc_dense")(inner_input))
    encoder = K.Model(inner_input, K.layers.Dense(3, name="enc_out")(hidden), name="encoder")
    left = K.Input((6,), name="left")
    right = K.Input((6,), name="right")
    distance = K.layers.Subtract(name="distance")([encoder(left), encoder(right)])
    return K.Model([left, right], K.layers.Dense(1, name="score")(distance), name="siamese")


def build_frozen_nested_sequential(K: Any) -> Any:
    """A nested Sequential (Dense, frozen BatchNormalization, Dense) under two Dense layers of the outer model."""
    block = K.Sequential([K.Input((4,)), K.layers.Dense(4, name="block_in"), K.layers.BatchNormalization(name="block_bn"),
                          K.layers.Dense(4, name="block_out")], name="block")
    block.get_layer("block_bn").trainable = False
    x = K.Input((4,), name="x")
    hidden = K.layers.Dense(2, name="hidden")(block(x))
    return K.Model(x, K.layers.Dense(2, name="out")(hidden), name="outer")


def build_dense_in_two_nested_models(K: Any) -> Any:
    """One Dense object inside two nested models, the second of which has another Dense after it: tf.keras saved
    the shared one once, and how it counted it moves the other Dense's group name."""
    shared = K.layers.Dense(4, name="shared")
    first_input = K.Input((4,), name="first_in")
    first = K.Model(first_input, shared(first_input), name="first")
    second_input = K.Input((4,), name="second_in")
    second = K.Model(second_input, K.layers.Dense(3, name="after")(shared(second_input)), name="second")
    x = K.Input((4,), name="x")
    return K.Model(x, second(first(x)), name="two_nested")


CASES: dict[str, Callable[[Any], Any]] = {
    "rescaled_sequential": build_rescaled_sequential,
    "shared_with_batchnorm": build_shared_with_batchnorm,
    "nested_called_twice": build_nested_called_twice,
    "frozen_nested_sequential": build_frozen_nested_sequential,
    "dense_in_two_nested_models": build_dense_in_two_nested_models,
}
"""The models the tests write in this layout, by name."""


def build_case(K: Any, name: str, compiled: bool = True) -> Any:
    """The model ``CASES[name]`` with fixed random weights, compiled (an optimizer group) unless told not to."""
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    model = CASES[name](K)
    if compiled:
        model.compile(optimizer="adam", loss="mse")
    return model
