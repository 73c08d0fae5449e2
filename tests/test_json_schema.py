"""The ``--format json`` output against its published schema (keras_share/schema/report-v1.json).

Static path only: no TensorFlow/Keras import here.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from cli_command import keras_share_command

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real_models"
DOCS = REPO / "docs" / "json-schema.md"

SAMPLE_INPUTS = sorted(
    [path for path in SAMPLES.iterdir() if path.suffix in (".keras", ".h5")] + [SAMPLES / "k2_savedmodel"]
)


def run_json(*paths: Path | str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [*keras_share_command(), "inspect", "--fail-on", "never", "--format", "json", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    text = (files("keras_share") / "schema" / "report-v1.json").read_text(encoding="utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def published_validator(schema: dict[str, Any]) -> Any:
    """The schema as shipped: open to keys a later version 1 adds."""
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    """The schema closed (no key, no value beyond those it lists): this version's output is exactly as documented."""
    closed = copy.deepcopy(schema)
    for node in _object_schemas(closed):
        node["additionalProperties"] = False
    for node in _open_enums(closed):
        node["enum"] = node.pop("anyOf")[0]["enum"]
    return jsonschema.Draft202012Validator(closed, format_checker=jsonschema.FormatChecker())


def _errors(validator: Any, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def _object_schemas(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found.extend(_object_schemas(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_object_schemas(value))
    return found


def _open_enums(node: Any) -> list[dict[str, Any]]:
    """Schemas of strings that list known values and accept others: ``anyOf: [{enum: [...]}, {type: string}]``."""
    found = []
    if isinstance(node, dict):
        any_of = node.get("anyOf")
        if isinstance(any_of, list) and len(any_of) == 2 and "enum" in any_of[0] and any_of[1] == {"type": "string"}:
            found.append(node)
        for value in node.values():
            found.extend(_open_enums(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_open_enums(value))
    return found


# ---------------------------------------------------------------- the schema itself


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_pins_version_1(schema: dict[str, Any]) -> None:
    assert schema["properties"]["schema_version"] == {
        "description": schema["properties"]["schema_version"]["description"], "const": 1
    }


def test_every_object_is_fully_required(schema: dict[str, Any]) -> None:
    objects = _object_schemas(schema)
    assert len(objects) >= 10
    for node in objects:
        assert set(node["required"]) == set(node["properties"]), node.get("description", node)


def test_no_object_forbids_a_new_key(schema: dict[str, Any]) -> None:
    """docs/json-schema.md promises new keys in version 1: a consumer's copy of this schema must accept them."""
    for node in _object_schemas(schema):
        assert "additionalProperties" not in node, node.get("description", node)


def test_values_the_docs_call_additive_are_open(schema: dict[str, Any]) -> None:
    """docs/json-schema.md: a new ``format``, ``kind`` or ``severity`` value keeps version 1."""
    defs = schema["$defs"]
    additive = [defs["model_report"]["properties"]["format"], defs["layer"]["properties"]["kind"],
                defs["model_info"]["properties"]["kind"], defs["finding"]["properties"]["severity"],
                defs["live_mismatch"]["properties"]["severity"]]
    assert sorted(map(id, _open_enums(schema))) == sorted(map(id, additive))


def test_schema_is_in_the_package_data() -> None:
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'keras_share\s*=\s*\[[^\]]*"schema/\*\.json"', pyproject)


def test_every_schema_key_is_documented(schema: dict[str, Any]) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    keys: set[str] = set()
    for node in _object_schemas(schema):
        keys.update(node["properties"])
    missing = sorted(key for key in keys if f"`{key}`" not in docs and f".{key}`" not in docs)
    assert not missing, f"fields not documented in docs/json-schema.md: {missing}"
    for topic in ("effective_calls", "same_as", "trainable_flag", "frozen_by", "unique_params", "naive_params",
                  "unattached_weights", "notes", "location", "Versioning"):
        assert topic in docs


# ---------------------------------------------------------------- real output validates


@pytest.mark.parametrize("path", SAMPLE_INPUTS, ids=[path.name for path in SAMPLE_INPUTS])
def test_sample_model_output_validates(path: Path, validator: Any) -> None:
    code, document, stderr = run_json(path)
    assert code == 0, stderr
    assert _errors(validator, document) == []
    assert document["schema_version"] == 1
    assert len(document["models"]) == 1 and document["errors"] == []


def test_whole_sample_folder_validates(validator: Any) -> None:
    code, document, stderr = run_json(SAMPLES)
    assert code == 0, stderr
    assert _errors(validator, document) == []
    assert len(document["models"]) == len(SAMPLE_INPUTS)


def test_batch_with_an_error_validates(validator: Any, tmp_path: Path) -> None:
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a zip archive")
    code, document, _ = run_json(SAMPLES / "shared_dense.keras", bad, tmp_path / "missing.h5",
                                 SAMPLES / "nested_encoder.h5")
    assert code == 3
    assert _errors(validator, document) == []
    assert document["schema_version"] == 1
    assert [model["file"] for model in document["models"]] == [
        str(SAMPLES / "shared_dense.keras"), str(SAMPLES / "nested_encoder.h5")
    ]
    assert [error["file"] for error in document["errors"]] == [str(bad), str(tmp_path / "missing.h5")]
    assert all(error["error"] for error in document["errors"])


def test_only_errors_validates(validator: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    code, document, _ = run_json(empty)
    assert code == 3
    assert _errors(validator, document) == []
    assert document["models"] == []
    assert document["errors"][0]["file"] == str(empty)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_models is not available")
def test_real_model_output_validates(validator: Any) -> None:
    code, document, stderr = run_json(REAL)
    assert code == 0, stderr
    assert _errors(validator, document) == []
    assert len(document["models"]) >= 15


# ---------------------------------------------------------------- the schema is a real contract


@pytest.fixture(scope="module")
def good_document() -> dict[str, Any]:
    _, document, _ = run_json(SAMPLES / "nested_encoder.keras")
    return document


def _mutations() -> list[tuple[str, Any]]:
    def set_key(*path: Any, value: Any) -> Any:
        def apply(doc: dict[str, Any]) -> None:
            target: Any = doc
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
        return apply

    def delete_key(*path: Any) -> Any:
        def apply(doc: dict[str, Any]) -> None:
            target: Any = doc
            for part in path[:-1]:
                target = target[part]
            del target[path[-1]]
        return apply

    layer = ("models", 0, "layers", 5)  # encoder/enc_dense: weights and a call
    return [
        ("schema_version_2", set_key("schema_version", value=2)),
        ("extra_top_key", set_key("extra", value=True)),
        ("missing_errors", delete_key("errors")),
        ("extra_model_key", set_key("models", 0, "shared", value=[])),
        ("bad_format", set_key("models", 0, "format", value="pickle")),
        ("extra_layer_key", set_key(*layer, "color", value="red")),
        ("missing_layer_key", delete_key(*layer, "effective_calls")),
        ("calls_negative", set_key(*layer, "calls", value=-1)),
        ("calls_string", set_key(*layer, "calls", value="1")),
        ("shared_null", set_key(*layer, "shared", value=None)),
        ("bad_kind", set_key(*layer, "kind", value="model")),
        ("weight_shape_null_dim", set_key(*layer, "weights", 0, "shape", value=[None, 3])),
        ("extra_weight_key", set_key(*layer, "weights", 0, "values", value=[1.0])),
        ("call_negative", set_key(*layer, "call_sites", 0, "inputs", 0, "call", value=-1)),
        ("extra_summary_key", set_key("models", 0, "summary", "total", value=1)),
        ("unknown_names_no_count", set_key("models", 0, "summary", "unknown", value=["params"])),
        ("missing_unknown", delete_key("models", 0, "summary", "unknown")),
        ("error_without_file", set_key("errors", value=[{"error": "x"}])),
    ]


@pytest.mark.parametrize("mutate", [m for _, m in _mutations()], ids=[name for name, _ in _mutations()])
def test_schema_rejects_deviations(good_document: dict[str, Any], validator: Any, mutate: Any) -> None:
    assert _errors(validator, good_document) == []
    document = copy.deepcopy(good_document)
    mutate(document)
    assert _errors(validator, document), "the schema accepted a document that breaks the contract"


def test_published_schema_accepts_keys_a_later_version_1_adds(good_document: dict[str, Any],
                                                              published_validator: Any) -> None:
    document = copy.deepcopy(good_document)
    document["generated_at"] = "2026-01-01T00:00:00Z"
    document["models"][0]["summary"]["total_bytes"] = 1
    document["models"][0]["layers"][5]["dtype_policy"] = "float32"
    assert _errors(published_validator, document) == []


def test_published_schema_accepts_values_a_later_version_1_adds(good_document: dict[str, Any],
                                                                published_validator: Any) -> None:
    document = copy.deepcopy(good_document)
    model = document["models"][0]
    model["format"] = "orbax"
    model["model"]["kind"] = "graph-module"
    model["layers"][5]["kind"] = "lambda"
    model["findings"][0]["severity"] = "critical"
    assert _errors(published_validator, document) == []


def test_nullable_fields_accept_null(good_document: dict[str, Any], validator: Any) -> None:
    document = copy.deepcopy(good_document)
    model = document["models"][0]
    model["keras_version"] = None
    model["backend"] = None
    layer = next(layer for layer in model["layers"] if layer["call_sites"])
    layer["frozen_by"] = None
    layer["call_sites"][0]["inputs"][0]["call"] = None
    layer["call_sites"][0]["inputs"][0]["shape"] = None
    layer["call_sites"][0]["input_shapes"][0] = None
    assert _errors(validator, document) == []
