"""Tests for keras_share.read.protobuf_wire (pure-Python keras_metadata.pb decoder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_share.read.protobuf_wire import (
    ProtobufError,
    SavedObjectRecord,
    decode_metadata_json,
    iter_fields,
    read_keras_metadata,
    root_model_metadata,
)

# --------------------------------------------------------------------------
# Fixture: one tf_keras SavedModel, built once per module.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A functional model with a Dense shared by two inputs and a nested model.

    The nested model is called twice and contains a Reshape, whose tuple
    ``target_shape`` exercises the ``__tuple__`` wrapper.
    """
    keras = pytest.importorskip("tf_keras")
    saved_model_utils = pytest.importorskip("tf_keras.src.saving.legacy.saved_model.utils")

    a = keras.Input((4,), name="a")
    b = keras.Input((4,), name="b")
    shared = keras.layers.Dense(3, name="shared_d")
    sub_in = keras.Input((3,), name="sub_in")
    sub_out = keras.layers.Reshape((3, 1), name="rs")(keras.layers.Dense(3, name="sub_d")(sub_in))
    sub = keras.Model(sub_in, sub_out, name="sub")
    out = keras.layers.Add(name="add")([sub(shared(a)), sub(shared(b))])
    model = keras.Model([a, b], out, name="outer")

    path = tmp_path_factory.mktemp("protobuf_wire") / "sm"
    model.save(path, save_format="tf")
    # The same scope that SavedModel saving uses (see the comment in
    # test_root_config_matches_to_json).
    with saved_model_utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=True):
        legacy_json = model.to_json()
    return {
        "metadata_bytes": (Path(path) / "keras_metadata.pb").read_bytes(),
        "to_json": model.to_json(),
        "legacy_to_json": legacy_json,
    }


def _strip_keys(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_strip_keys(v, keys) for v in value]
    return value


# --------------------------------------------------------------------------
# (a) + (b): real SavedModel, compared with the official parser and to_json.
# --------------------------------------------------------------------------


@pytest.mark.keras
def test_records_match_official_parser(saved_model: dict[str, Any]) -> None:
    pb2 = pytest.importorskip("tf_keras.protobuf.saved_metadata_pb2")
    data = saved_model["metadata_bytes"]
    official = pb2.SavedMetadata.FromString(data)
    expected = [
        SavedObjectRecord(n.node_id, n.node_path, n.identifier, n.metadata) for n in official.nodes
    ]

    records = read_keras_metadata(data)

    assert records == expected
    by_path = {r.node_path: r for r in records}
    assert by_path["root"].identifier == "_tf_keras_network"
    assert [r.identifier for r in records].count("_tf_keras_network") == 2  # outer + nested
    # The shared Dense is one node, whatever the number of calls.
    assert sum('"name": "shared_d"' in r.metadata for r in records if r.node_path != "root") == 1


@pytest.mark.keras
def test_root_config_matches_to_json(saved_model: dict[str, Any]) -> None:
    root = root_model_metadata(read_keras_metadata(saved_model["metadata_bytes"]))
    to_json_config = json.loads(saved_model["to_json"])["config"]

    # `decoded == to_json()["config"]` does NOT hold in tf_keras 2.21, for a
    # principled reason: SavedModel saving runs inside
    # `keras_option_scope(in_tf_saved_model_scope=True)`, where
    # `serialization_lib.serialize_keras_object` falls back to the legacy
    # serializer. That writes `{"class_name", "config"}` only, while a plain
    # `to_json()` uses the new serializer, which adds `module`,
    # `registered_name` and `build_config` to every layer and initializer.
    # So: the metadata config equals to_json() taken in that same scope, and
    # equals the plain to_json() once those three keys are dropped.
    assert root["config"] == json.loads(saved_model["legacy_to_json"])["config"]
    assert root["config"] == _strip_keys(
        to_json_config, frozenset({"module", "registered_name", "build_config"})
    )
    assert root["class_name"] == "Functional"


@pytest.mark.keras
def test_root_metadata_needs_object_hook(saved_model: dict[str, Any]) -> None:
    """Without unwrapping, tuples in the raw JSON spoil the comparison."""
    records = read_keras_metadata(saved_model["metadata_bytes"])
    raw = json.loads(next(r for r in records if r.node_path == "root").metadata)
    legacy_config = json.loads(saved_model["legacy_to_json"])["config"]
    assert raw["config"] != legacy_config
    assert decode_metadata_json(json.dumps(raw))["config"] == legacy_config


@pytest.mark.keras
def test_edge_values_match_official_parser() -> None:
    """Negative int32, non-ASCII text, empty fields and a version sub-message."""
    pb2 = pytest.importorskip("tf_keras.protobuf.saved_metadata_pb2")
    message = pb2.SavedMetadata(
        nodes=[
            pb2.SavedObject(node_id=-7, node_path="root", identifier="ünï", metadata="{}"),
            pb2.SavedObject(),
            pb2.SavedObject(node_id=2**31 - 1, node_path="root.layer-0"),
        ]
    )
    message.nodes[0].version.producer = 2
    message.nodes[0].version.bad_consumers.extend([1, 3])

    assert read_keras_metadata(message.SerializeToString()) == [
        SavedObjectRecord(-7, "root", "ünï", "{}"),
        SavedObjectRecord(0, "", "", ""),
        SavedObjectRecord(2**31 - 1, "root.layer-0", "", ""),
    ]


# --------------------------------------------------------------------------
# iter_fields / read_keras_metadata on hand-written bytes.
# --------------------------------------------------------------------------


def test_iter_fields_decodes_every_wire_type() -> None:
    data = (
        b"\x08\x96\x01"  # field 1, varint 150
        b"\x11" + (1).to_bytes(8, "little")  # field 2, fixed64
        + b"\x1a\x03abc"  # field 3, length-delimited
        + b"\x25" + (0xDEADBEEF).to_bytes(4, "little")  # field 4, fixed32
    )
    assert list(iter_fields(data)) == [(1, 0, 150), (2, 1, 1), (3, 2, b"abc"), (4, 5, 0xDEADBEEF)]


def test_iter_fields_on_empty_data_yields_nothing() -> None:
    assert list(iter_fields(b"")) == []


def test_read_keras_metadata_skips_unknown_fields() -> None:
    saved_object = (
        b"\x08\x05"  # reserved field 1 (varint): skipped
        b"\x10\x03"  # node_id = 3
        b"\x1a\x04root"
        b"\x22\x03idn"
        b"\x2a\x02{}"
        b"\x3d\x00\x00\x00\x00"  # unknown field 7, fixed32
        b"\x41" + bytes(8)  # unknown field 8, fixed64
    )
    data = b"\x10\x01" + b"\x0a" + bytes([len(saved_object)]) + saved_object
    assert read_keras_metadata(data) == [SavedObjectRecord(3, "root", "idn", "{}")]


def test_truncated_varint_raises() -> None:
    with pytest.raises(ProtobufError, match="truncated varint"):
        list(iter_fields(b"\x08\x96"))


def test_overlong_varint_raises() -> None:
    with pytest.raises(ProtobufError, match="longer than 10 bytes"):
        list(iter_fields(b"\x08" + b"\xff" * 10 + b"\x01"))


@pytest.mark.parametrize("wire_type", [3, 4, 6, 7])
def test_bad_wire_type_raises(wire_type: int) -> None:
    with pytest.raises(ProtobufError, match=f"unsupported wire type {wire_type}"):
        list(iter_fields(bytes([(1 << 3) | wire_type, 0])))


def test_length_past_end_raises() -> None:
    with pytest.raises(ProtobufError, match="runs past the end"):
        list(iter_fields(b"\x0a\x05abc"))


def test_truncated_fixed_width_field_raises() -> None:
    with pytest.raises(ProtobufError, match="truncated 64-bit"):
        list(iter_fields(b"\x09\x00\x00\x00"))
    with pytest.raises(ProtobufError, match="truncated 32-bit"):
        list(iter_fields(b"\x0d\x00"))


def test_field_number_zero_raises() -> None:
    with pytest.raises(ProtobufError, match="invalid field number 0"):
        list(iter_fields(b"\x00\x00"))


def test_invalid_utf8_string_raises() -> None:
    with pytest.raises(ProtobufError, match="node_path is not valid UTF-8"):
        read_keras_metadata(b"\x0a\x03\x1a\x01\xff")


def test_error_inside_nested_saved_object_raises() -> None:
    with pytest.raises(ProtobufError, match="truncated varint"):
        read_keras_metadata(b"\x0a\x01\x10")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_give_records_or_protobuf_error(data: bytes) -> None:
    try:
        records = read_keras_metadata(data)
    except ProtobufError:
        return
    assert isinstance(records, list)
    assert all(isinstance(r, SavedObjectRecord) for r in records)


# --------------------------------------------------------------------------
# decode_metadata_json / root_model_metadata.
# --------------------------------------------------------------------------


def test_decode_metadata_json_unwraps_tf_keras_markers() -> None:
    text = json.dumps(
        {
            "tuple": {
                "class_name": "__tuple__",
                "items": [1, {"class_name": "__tuple__", "items": []}],
            },
            "shape": {"class_name": "TensorShape", "items": [None, 4]},
            "unknown_rank": {"class_name": "TensorShape", "items": None},
            "ellipsis": {"class_name": "__ellipsis__"},
            "bytes": {"class_name": "__bytes__", "value": "abc"},
        }
    )
    assert decode_metadata_json(text) == {
        "tuple": [1, []],
        "shape": [None, 4],
        "unknown_rank": None,
        "ellipsis": "...",
        "bytes": "abc",
    }


def test_decode_metadata_json_leaves_other_class_name_dicts() -> None:
    type_spec = {
        "class_name": "TypeSpec",
        "type_spec": "tf.TensorSpec",
        "serialized": [[None, 4], "float32", "a"],
    }
    composite = {"class_name": "CompositeTensor", "spec": type_spec, "tensors": []}
    layer = {"class_name": "Dense", "config": {"units": 3}}
    lookalike = {"class_name": "__tuple__", "items": [1], "name": "x"}
    text = json.dumps({"a": type_spec, "b": composite, "c": layer, "d": lookalike})
    expected = {"a": type_spec, "b": composite, "c": layer, "d": lookalike}
    assert decode_metadata_json(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_decode_metadata_json_rejects_bad_json(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_metadata_json(text)


def test_root_model_metadata_picks_the_root_record() -> None:
    records = [
        SavedObjectRecord(1, "root.layer-0", "_tf_keras_input_layer", '{"name": "a"}'),
        SavedObjectRecord(0, "root", "_tf_keras_network", '{"name": "m"}'),
    ]
    assert root_model_metadata(records) == {"name": "m"}


def test_root_model_metadata_without_root_raises() -> None:
    with pytest.raises(ValueError, match="no SavedObject with node_path 'root'"):
        root_model_metadata([SavedObjectRecord(1, "root.layer-0", "", "{}")])


def test_a_savedmodel_s_root_metadata_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root record holds the whole model config: reading a SavedModel decodes it once, not once for the
    config and again with every other node."""
    from keras_share.read import protobuf_wire, saved_model

    sample = Path(__file__).resolve().parents[1] / "sample_models" / "k2_savedmodel"
    decoded: list[str] = []
    real_decode = protobuf_wire.decode_metadata_json

    def counting(text: str) -> dict[str, Any]:
        decoded.append(text)
        return real_decode(text)

    monkeypatch.setattr(protobuf_wire, "decode_metadata_json", counting)
    monkeypatch.setattr(saved_model, "decode_metadata_json", counting)
    saved_model.read_saved_model(sample)
    root = next(record.metadata for record in read_keras_metadata((sample / "keras_metadata.pb").read_bytes())
                if record.node_path == "root")
    assert decoded.count(root) == 1
