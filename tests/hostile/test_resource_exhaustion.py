"""Small files that cost much memory or time: JSON floods, keyword references, sibling models, shared object ids,
a million layers, and a deeply nested config whose verdict must not depend on the batch around it."""

from __future__ import annotations

import json
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

from harness import Attack, assert_holds, attack, run
from protobuf_bytes import length_delimited, varint

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
KERAS3_METADATA = b'{"keras_version": "3.15.1"}'
KERAS2_METADATA = b'{"keras_version": "2.15.0"}'
OLD_JSON_CAP = 64 * 1024 * 1024
"""The largest JSON member keras-share read before it bounded what a member may hold."""


def _write_keras(path: Path, config: bytes, metadata: bytes = KERAS3_METADATA) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", metadata)
        archive.writestr("config.json", config)
    return path


def _input(name: str = "x") -> dict[str, Any]:
    return {"class_name": "InputLayer", "name": name, "config": {"name": name, "batch_shape": [None, 4]},
            "inbound_nodes": []}


def _dense(name: str, **extra: Any) -> dict[str, Any]:
    return {"class_name": "Dense", "name": name, "config": {"name": name, "units": 4, "trainable": True}, **extra}


def _functional(layers: list[dict[str, Any]], name: str = "top") -> dict[str, Any]:
    return {"class_name": "Functional",
            "config": {"name": name, "trainable": True, "layers": layers,
                       "input_layers": [["x", 0, 0]], "output_layers": [[layers[-1]["name"], 0, 0]]}}


def _siblings(count: int, shared_ids: bool) -> dict[str, Any]:
    """A Functional model of ``count`` nested Sequential models that each hold a Dense named ``shared``."""
    extra = {"shared_object_id": 1} if shared_ids else {}
    models = [{"class_name": "Sequential", "name": f"s{index}",
               "config": {"name": f"s{index}", "layers": [_dense("shared", **extra)]},
               "inbound_nodes": [[["x", 0, 0, {}]]]}
              for index in range(count)]
    return _functional([_input(), *models])


@attack("json-value-flood")
def json_value_flood(folder: Path, rng: random.Random) -> Attack:
    """JSON members of tiny objects or arrays up to the old 64 MiB cap: a few hundred KB deflated."""
    item = rng.choice([b"{},", b"[],", b'{"a":0},', b"[[]],"])
    member = rng.choice(["config.json", "metadata.json"])
    size = rng.choice([OLD_JSON_CAP, OLD_JSON_CAP // 5])
    body = b'{"class_name":"Functional","config":{"name":"m","layers":[],"x":[' + item * ((size - 200) // len(item)) + b"0]}}"
    config = body if member == "config.json" else json.dumps(_functional([_input(), _dense("d")])).encode()
    metadata = body if member == "metadata.json" else KERAS3_METADATA
    path = _write_keras(folder / "flood.keras", config, metadata)
    return Attack(["inspect", str(path)], folder, exit_codes=(3,), stderr_mentions="large")


@attack("keras2-keyword-references")
def keras2_keyword_references(folder: Path, rng: random.Random) -> Attack:
    """A Keras 2 call whose keyword arguments hold 20,000 distinct tensor references."""
    count = rng.choice([20_000, 25_000])
    kwargs = {f"k{index}": ["x", 0, 0] for index in range(count)}
    layers = [_input(), _dense("d", inbound_nodes=[[["x", 0, 0, kwargs]]])]
    path = _write_keras(folder / "kwargs.keras", json.dumps(_functional(layers)).encode(), KERAS2_METADATA)
    return Attack(["inspect", str(path)], folder)


@attack("sibling-models")
def sibling_models(folder: Path, rng: random.Random) -> Attack:
    """Thousands of sibling nested models that each hold a nested model of the same name (one group of
    placements, each member of it a model)."""
    count = rng.choice([6_000, 20_000])
    models = [{"class_name": "Sequential", "name": f"s{index}",
               "config": {"name": f"s{index}",
                          "layers": [{"class_name": "Sequential", "name": "inner",
                                      "config": {"name": "inner", "layers": [_dense("d")]}}]},
               "inbound_nodes": [[["x", 0, 0, {}]]]}
              for index in range(count)]
    config = _functional([_input(), *models])
    path = _write_keras(folder / "siblings.keras", json.dumps(config).encode(), rng.choice([KERAS2_METADATA, KERAS3_METADATA]))
    return Attack(["inspect", str(path)], folder)


def keras_metadata_pb(root_metadata: dict[str, Any]) -> bytes:
    """A ``keras_metadata.pb`` holding one SavedObject, the root model, with this metadata."""
    node = varint(2 << 3) + varint(0) + length_delimited(3, b"root") + length_delimited(4, b"_tf_keras_network")
    node += length_delimited(5, json.dumps(root_metadata).encode())
    return length_delimited(1, node)


@attack("savedmodel-shared-object-ids")
def savedmodel_shared_object_ids(folder: Path, rng: random.Random) -> Attack:
    """A SavedModel whose config repeats one ``shared_object_id`` layer in 8,000 nested models."""
    count = rng.choice([8_000, 12_000])
    config = _siblings(count, shared_ids=True)
    model = folder / "saved"
    model.mkdir()
    (model / "keras_metadata.pb").write_bytes(keras_metadata_pb({**config, "keras_version": "2.15.0", "name": "top"}))
    (model / "saved_model.pb").write_bytes(b"")
    return Attack(["inspect", str(model)], folder)


@attack("million-layers")
def million_layers(folder: Path, rng: random.Random) -> Attack:
    """A Sequential config of up to a million small layer entries (a few MB deflated)."""
    count = rng.choice([1_000_000, 150_000])
    named = rng.random() < 0.5
    entries = ",".join('{"class_name":"ReLU","name":"r%d"}' % index if named else '{"class_name":"ReLU"}'
                       for index in range(count))
    config = ('{"class_name":"Sequential","config":{"name":"s","layers":[%s]}}' % entries).encode()
    path = _write_keras(folder / "million.keras", config)
    return Attack(["inspect", str(path)], folder, exit_codes=(3,), stderr_mentions="large")


def _nested_sequentials(depth: int) -> bytes:
    """``depth`` Sequential models nested in each other around one Dense, written as text (3 JSON levels each)."""
    head = '{"class_name": "Sequential", "config": {"name": "s", "layers": ['
    return (head * depth + '{"class_name": "Dense", "config": {"name": "leaf", "units": 1}}' + "]}}" * depth).encode()


DEEP_MODELS = 400
"""Nested models whose JSON (about 1,200 levels) lies between Python's default recursion limit and the one
the readers once raised: the verdict on it used to depend on what was read before it."""


@attack("deep-nesting-in-a-batch")
def deep_nesting_in_a_batch(folder: Path, rng: random.Random) -> Attack:
    """A deeply nested config read after an ordinary model, serially or by workers."""
    good = folder / "good.keras"
    shutil.copyfile(SAMPLES / "shared_dense.keras", good)
    deep = _write_keras(folder / "deep.keras", _nested_sequentials(rng.choice([DEEP_MODELS, 200, 1_000])))
    jobs = rng.choice([[], ["--jobs", "1"], ["--jobs", "2"]])
    return Attack(["inspect", *jobs, str(good), str(deep)], folder)


def test_a_flood_of_small_json_values_is_refused_before_parsing(tmp_path: Path) -> None:
    assert_holds(json_value_flood, tmp_path)


def test_keras2_keyword_references_are_read_in_linear_time(tmp_path: Path) -> None:
    assert_holds(keras2_keyword_references, tmp_path)


def test_sibling_models_sharing_a_layer_name_are_read_in_linear_time(tmp_path: Path) -> None:
    assert_holds(sibling_models, tmp_path)


def test_a_savedmodel_repeating_a_shared_object_id_stays_within_bounds(tmp_path: Path) -> None:
    assert_holds(savedmodel_shared_object_ids, tmp_path)


def test_a_million_layers_are_refused_before_the_graph_is_built(tmp_path: Path) -> None:
    assert_holds(million_layers, tmp_path)


def test_a_deeply_nested_config_in_a_batch_stays_within_bounds(tmp_path: Path) -> None:
    assert_holds(deep_nesting_in_a_batch, tmp_path)


def _deep_file_verdict(args: list[str], folder: Path, deep: Path) -> str:
    """``refused`` or ``reported`` for ``deep`` in a JSON run of ``keras-share inspect ARGS``."""
    outcome = run(["inspect", "--format", "json", *args], folder)
    document = json.loads(outcome.stdout)
    if any(error["file"] == str(deep) for error in document["errors"]):
        return "refused"
    assert [model["file"] for model in document["models"]][-1] == str(deep), outcome.stderr
    return "reported"


def test_a_deeply_nested_file_gets_the_same_verdict_alone_after_another_file_and_with_any_jobs(tmp_path: Path) -> None:
    good = tmp_path / "good.keras"
    shutil.copyfile(SAMPLES / "shared_dense.keras", good)
    deep = _write_keras(tmp_path / "deep.keras", _nested_sequentials(DEEP_MODELS))
    runs = {
        "alone": [str(deep)],
        "after another file": [str(good), str(deep)],
        "--jobs 1": ["--jobs", "1", str(good), str(deep)],
        "--jobs 2": ["--jobs", "2", str(good), str(deep)],
    }
    verdicts = {name: _deep_file_verdict(args, tmp_path, deep) for name, args in runs.items()}
    assert len(set(verdicts.values())) == 1, verdicts
