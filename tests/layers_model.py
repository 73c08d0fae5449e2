"""The benchmark's many-layer model (benchmarks/bench_inspect.py ``build_layers_model``), written without Keras.

Keras takes minutes to build and save 10,000 layers; the graph formats only need the config. This writes the
same graph as a Keras 3 ``.keras`` archive in a second: a nested model ``block`` called on the input and on the
merge, branches of ``Dense`` chains, a ``shared`` Dense called after every tenth layer of every branch, and an
``Add`` merge. Its layers are saved unbuilt (no ``build_config``), so no weights are expected and none stored.
Read by keras-share, it draws the same picture as the Keras-built benchmark model of the same size.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

BRANCH_DEPTH = 100
WIDTH = 8


def _tensor(layer: str, call: int) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, WIDTH], "dtype": "float32", "keras_history": [layer, call, 0]}}


def _layer(class_name: str, name: str, calls: list[list[tuple[str, int]]]) -> dict[str, Any]:
    config: dict[str, Any] = {"name": name, "trainable": True}
    if class_name == "InputLayer":
        config.update(batch_shape=[None, WIDTH], dtype="float32")
    elif class_name == "Dense":
        config["units"] = WIDTH
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None,
            "name": name, "inbound_nodes": [{"args": [[_tensor(*ref) for ref in refs]] if len(refs) > 1
                                             else [_tensor(*refs[0])], "kwargs": {}} for refs in calls]}


def _functional(name: str, layers: list[dict[str, Any]], calls: list[list[tuple[str, int]]], inputs: str,
                output: tuple[str, int]) -> dict[str, Any]:
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "name": name, "config": {"name": name, "trainable": True, "layers": layers,
                                     "input_layers": [inputs, 0, 0], "output_layers": [output[0], output[1], 0]},
            "inbound_nodes": [{"args": [_tensor(*refs[0])], "kwargs": {}} for refs in calls]}


def write_layers_model(layers: int, path: Path) -> Path:
    """A ``.keras`` file of about ``layers`` layers shaped like the benchmark's, at ``path``."""
    chain = max(1, layers - 5)
    depth = min(BRANCH_DEPTH, chain)
    branches = max(1, round(chain / depth))
    block_layers = [_layer("InputLayer", "block_in", []), _layer("Dense", "block_hidden", [[("block_in", 0)]]),
                    _layer("Dense", "block_out", [[("block_hidden", 0)]])]
    top: list[dict[str, Any]] = [_layer("InputLayer", "x", [])]
    shared_calls: list[list[tuple[str, int]]] = []
    ends: list[tuple[str, int]] = []
    for branch in range(branches):
        tensor = ("block", 0)
        for step in range(depth):
            name = f"b{branch}_d{step}"
            top.append(_layer("Dense", name, [[tensor]]))
            tensor = (name, 0)
            if step % 10 == 9:
                shared_calls.append([tensor])
                tensor = ("shared", len(shared_calls) - 1)
        ends.append(tensor)
    merged = ("merge", 0) if len(ends) > 1 else ends[0]
    block = _functional("block", block_layers, [[("x", 0)], [merged]], "block_in", ("block_out", 0))
    top[1:1] = [block]
    if shared_calls:  # where Keras lists it: after the layer that first calls it
        top.insert(next(index for index, layer in enumerate(top) if layer["name"] == shared_calls[0][0][0]) + 1,
                   _layer("Dense", "shared", shared_calls))
    if len(ends) > 1:
        top.append(_layer("Add", "merge", [ends]))
    config = {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
              "config": {"name": f"bench_{layers}", "trainable": True, "layers": top, "input_layers": ["x", 0, 0],
                         "output_layers": ["block", 2, 0]}}  # as Keras writes it
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("model.weights.h5", _empty_h5())
    return path


def _empty_h5() -> bytes:
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_group("layers")
    return buffer.getvalue()
