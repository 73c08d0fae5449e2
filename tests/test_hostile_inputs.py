"""Hostile model files: never crash, never hang, never follow links out of the file."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from h5_files import virtual_layout

from keras_share.api import inspect_file
from keras_share.errors import ReadError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def _keras3_tensor(name: str, node: int = 0) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32",
                                                           "keras_history": [name, node, 0]}}


def _dense(name: str, *inputs: str) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "Dense", "name": name,
            "config": {"name": name, "units": 4, "trainable": True},
            "inbound_nodes": [{"args": [_keras3_tensor(source)], "kwargs": {}} for source in inputs]}


def _functional(layers: list[dict[str, Any]], outputs: str) -> dict[str, Any]:
    inputs = [{"module": "keras.layers", "class_name": "InputLayer", "name": "x",
               "config": {"name": "x", "batch_shape": [None, 4]}, "inbound_nodes": []}]
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": "hostile", "trainable": True, "layers": inputs + layers,
                       "input_layers": [["x", 0, 0]], "output_layers": [[outputs, 0, 0]]}}


def _write_keras(path: Path, config: Any, metadata: bytes = b'{"keras_version": "3.15.1"}') -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", json.dumps(config) if not isinstance(config, bytes) else config)
    return path


def test_a_call_taking_its_own_output_is_reported_as_a_cycle(tmp_path: Path) -> None:
    report = inspect_file(_write_keras(tmp_path / "m.keras", _functional([_dense("loop", "loop")], "loop")))
    assert any("cycle (loop -> loop)" in note for note in report.notes)


def test_a_layer_applied_to_its_own_output_is_two_calls_and_no_cycle(keras3: Any, tmp_path: Path) -> None:
    """``d(d(x))``: the second call takes the first's output, which Keras loads (so no "cycle" note)."""
    inputs = keras3.Input((4,), name="x")
    twice = keras3.layers.Dense(4, name="twice")
    keras3.Model(inputs, twice(twice(inputs))).save(tmp_path / "m.keras")
    keras3.models.load_model(tmp_path / "m.keras")
    report = inspect_file(tmp_path / "m.keras")
    assert not any("cycle" in note for note in report.notes)
    assert next(layer for layer in report.layers if layer.layer.name == "twice").effective_calls == 2


def test_two_layers_feeding_each_other_are_reported_as_a_cycle(tmp_path: Path) -> None:
    config = _functional([_dense("a", "b"), _dense("b", "a")], "b")
    report = inspect_file(_write_keras(tmp_path / "m.keras", config))
    assert any("cycle" in note and "a" in note and "b" in note for note in report.notes)


def test_a_reference_to_a_missing_layer_is_a_note(tmp_path: Path) -> None:
    report = inspect_file(_write_keras(tmp_path / "m.keras", _functional([_dense("d", "ghost")], "d")))
    assert any("unknown layer 'ghost'" in note for note in report.notes)


def test_an_out_of_range_node_index_is_a_note(tmp_path: Path) -> None:
    layer = _dense("d", "x")
    second = _dense("e")
    second["inbound_nodes"] = [{"args": [_keras3_tensor("d", 5)], "kwargs": {}}]
    report = inspect_file(_write_keras(tmp_path / "m.keras", _functional([layer, second], "e")))
    assert any("node index 5 of 'd' points at no call" in note for note in report.notes)


def test_duplicate_layer_names_are_a_note(tmp_path: Path) -> None:
    report = inspect_file(_write_keras(tmp_path / "m.keras", _functional([_dense("d", "x"), _dense("d", "x")], "d")))
    assert any("duplicate layer name 'd'" in note for note in report.notes)


def test_a_chain_of_five_thousand_layers_is_read_without_recursion(tmp_path: Path) -> None:
    layers = [_dense("d0", "x")] + [_dense(f"d{i}", f"d{i - 1}") for i in range(1, 5000)]
    report = inspect_file(_write_keras(tmp_path / "m.keras", _functional(layers, "d4999")))
    assert report.summary.layers == 5000


def test_models_nested_a_hundred_deep_are_read_without_recursion(tmp_path: Path) -> None:
    config = _functional([_dense("leaf", "x")], "leaf")
    for depth in range(100):
        inner = dict(config, name=f"m{depth}", inbound_nodes=[{"args": [_keras3_tensor("x")], "kwargs": {}}])
        inner["config"] = dict(inner["config"], name=f"m{depth}")
        config = _functional([inner], f"m{depth}")
    report = inspect_file(_write_keras(tmp_path / "m.keras", config))
    deepest = max(report.layers, key=lambda layer: layer.layer.path.count("/"))
    assert deepest.layer.path.count("/") == 100


def test_deeply_nested_json_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="nested too deeply: more than 640 levels"):
        inspect_file(_write_keras(tmp_path / "m.keras", b"[" * 200_000 + b"]" * 200_000))


@pytest.mark.parametrize(
    "edit",
    [
        {"layers": "not a list"},
        {"layers": [1, 2, 3]},
        {"layers": [{"class_name": 5, "name": 7, "config": [], "inbound_nodes": "x"}]},
        {"input_layers": 5, "output_layers": {"a": None}},
        {"trainable": "no", "name": None},
    ],
    ids=["layers-string", "layers-ints", "entry-wrong-types", "io-wrong-types", "flags-wrong-types"],
)
def test_wrong_types_in_the_config_give_a_report(tmp_path: Path, edit: dict[str, Any]) -> None:
    config = _functional([_dense("d", "x")], "d")
    config["config"].update(edit)
    inspect_file(_write_keras(tmp_path / "m.keras", config))


def test_a_config_zip_bomb_is_refused_quickly_with_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        with archive.open("config.json", "w", force_zip64=True) as stream:
            block = b" " * (1 << 20)
            for _ in range(1024):
                stream.write(block)
    assert path.stat().st_size < 5 * (1 << 20)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ReadError, match="larger than"):
        inspect_file(path)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5.0  # the per-file bound of SECURITY.md, far above what it takes
    assert peak < 200 * (1 << 20)


def test_an_external_link_in_an_h5_file_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as h5:
        h5.create_dataset("kernel:0", data=np.ones((3, 3), dtype="float32"))
    model = tmp_path / "model.h5"
    model.write_bytes((SAMPLES / "shared_dense.h5").read_bytes())
    with h5py.File(model, "r+") as h5:
        group = h5["model_weights/shared_dense"]
        for name in list(group.keys()):
            del group[name]
        group["shared_dense"] = h5py.ExternalLink(str(secret), "/")
    report = inspect_file(model)
    shared = next(layer for layer in report.layers if layer.layer.name == "shared_dense")
    assert shared.layer.weights == []


def test_a_virtual_dataset_is_not_read(tmp_path: Path) -> None:
    model = tmp_path / "model.weights.h5"
    with h5py.File(model, "w") as h5:
        h5.create_group("layers/dense/vars").create_virtual_dataset("0", virtual_layout(tmp_path))
        h5["layers/dense/vars"].create_dataset("1", data=np.zeros(2, dtype="float32"))
    report = inspect_file(model)
    arrays = report.file.weights.unattached["layers/dense"]
    assert [array.location for array in arrays] == ["/layers/dense/vars/1"]


def test_a_text_attribute_of_the_wrong_type_is_a_read_error(tmp_path: Path) -> None:
    model = tmp_path / "model.h5"
    model.write_bytes((SAMPLES / "shared_dense.h5").read_bytes())
    with h5py.File(model, "r+") as h5:
        h5["model_weights"].attrs["layer_names"] = np.arange(3)
    with pytest.raises(ReadError, match="layer_names"):
        inspect_file(model)


def test_a_garbage_savedmodel_metadata_file_is_a_read_error(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    (tmp_path / "keras_metadata.pb").write_bytes(io.BytesIO(b"\x0a\xff\xff\xff\xff\x0f").getvalue())
    with pytest.raises(ReadError, match="keras_metadata.pb"):
        inspect_file(tmp_path)


def test_a_file_that_makes_libhdf5_loop_is_abandoned_after_the_timeout() -> None:
    hang = Path(__file__).parent / "regressions" / "hdf5_attribute_read_hang.h5"
    started = time.perf_counter()
    with pytest.raises(ReadError, match="took longer than 2 s"):
        inspect_file(hang, timeout=2)
    assert time.perf_counter() - started < 30
