"""``--baseline`` and ``--write-baseline``: an earlier run's findings are not new and do not fail the run.

Findings are matched by the fingerprints SARIF writes (rule, path relative to the source root, layer, rank).
"""

from __future__ import annotations

import copy
import json
import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from cli_command import assert_usage_error
from click.testing import CliRunner

from keras_share.cli import app
from keras_share.render.json_format import SCHEMA_VERSION

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
FROZEN = "frozen_encoder.keras"
"""Four findings: KS201 and KS210 (info) on ``encoder``, KS301 (info) on ``encoder/enc_out``, KS211 (warning) on
the model."""
MHA = "mha_keywords.keras"
"""Two info findings: KS202 on ``shared_mha`` and on ``proj``."""


def _inspect(*args: Any) -> Any:
    return CliRunner().invoke(app, ["inspect", "--jobs", "1", "--fail-on", "info", *map(str, args)])


def _findings(result: Any) -> list[tuple[str, str]]:
    document = json.loads(result.stdout)
    return [(finding["rule"], finding["layer"]) for model in document["models"] for finding in model["findings"]]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding copies of the samples (paths are fingerprinted relative to it)."""
    for name in (FROZEN, MHA):
        shutil.copy(SAMPLES / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    return tmp_path


def test_write_baseline_writes_the_json_report_of_the_run(workdir: Path) -> None:
    result = _inspect(FROZEN, "--write-baseline", "base.json", "--quiet")
    assert result.exit_code == 1
    document = json.loads((workdir / "base.json").read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    assert [finding["rule"] for finding in document["models"][0]["findings"]] == ["KS201", "KS301", "KS210", "KS211"]


def test_baseline_silences_the_findings_it_holds(workdir: Path) -> None:
    _inspect(FROZEN, "--write-baseline", "base.json", "--quiet")
    result = _inspect(FROZEN, "--baseline", "base.json", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert _findings(result) == []


def test_baseline_keeps_findings_it_does_not_hold(workdir: Path) -> None:
    _inspect(FROZEN, "--ignore", "KS301", "--write-baseline", "base.json", "--quiet")
    result = _inspect(FROZEN, "--baseline", "base.json", "--format", "json")
    assert result.exit_code == 1
    assert _findings(result) == [("KS301", "encoder/enc_out")]


def test_baseline_counts_the_findings_it_silenced_in_the_run_total(workdir: Path) -> None:
    _inspect(FROZEN, "--ignore", "KS301", "--write-baseline", "base.json", "--quiet")
    result = _inspect(FROZEN, "--baseline", "base.json")
    assert result.stderr.strip().splitlines()[-1] == (
        "1 file, 1 with new findings: 1 info (3 in baseline, not counted)")


def test_baseline_of_a_batch_silences_old_files_and_keeps_a_new_one(workdir: Path) -> None:
    (workdir / "models").mkdir()
    shutil.move(workdir / FROZEN, workdir / "models" / FROZEN)
    _inspect("models", "--write-baseline", "base.json", "--quiet")
    shutil.move(workdir / MHA, workdir / "models" / MHA)
    result = _inspect("models", "--baseline", "base.json", "--format", "json")
    assert result.exit_code == 1
    assert _findings(result) == [("KS202", "shared_mha"), ("KS202", "proj")]


def test_baseline_matches_a_finding_by_its_file(workdir: Path) -> None:
    _inspect(FROZEN, "--write-baseline", "base.json", "--quiet")
    shutil.copy(workdir / FROZEN, workdir / "copy.keras")
    result = _inspect("copy.keras", "--baseline", "base.json", "--format", "json")
    assert _findings(result) == [("KS201", "encoder"), ("KS301", "encoder/enc_out"), ("KS210", "encoder"),
                                 ("KS211", "")]


def test_written_baseline_keeps_the_findings_already_in_the_baseline(workdir: Path) -> None:
    _inspect(FROZEN, "--write-baseline", "base.json", "--quiet")
    _inspect(FROZEN, "--baseline", "base.json", "--write-baseline", "again.json", "--quiet")
    again = json.loads((workdir / "again.json").read_text())
    assert len(again["models"][0]["findings"]) == 4


@pytest.mark.parametrize(("content", "problem"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[]", "not a keras-share JSON report"),
    (json.dumps({"schema_version": 99, "tool": {"name": "keras-share"}, "models": []}).encode(),
     "another schema version"),
    (json.dumps({"schema_version": SCHEMA_VERSION, "tool": {"name": "keras-share"},
                 "models": [{"file": "x", "findings": [{"rule": 1}]}]}).encode(), "a finding without a rule"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_unusable_baseline_is_one_usage_error_line(workdir: Path, content: bytes, problem: str) -> None:
    (workdir / "bad.json").write_bytes(content)
    assert_usage_error(_inspect(FROZEN, "--baseline", "bad.json"), "--baseline bad.json", problem)


def test_missing_baseline_is_one_usage_error_line(workdir: Path) -> None:
    assert_usage_error(_inspect(FROZEN, "--baseline", "nowhere.json"), "--baseline nowhere.json", "no such file")


HOSTILE = "\n::error file=x::pwned\x1b[2J\u202e"


def test_hostile_strings_in_a_baseline_reach_no_output(workdir: Path) -> None:
    (workdir / "base.json").write_text(json.dumps({
        "schema_version": SCHEMA_VERSION, "tool": {"name": "keras-share", "version": HOSTILE},
        "models": [{"file": HOSTILE, "findings": [{"rule": HOSTILE, "layer": HOSTILE, "message": HOSTILE}]}]}))
    for output in ("rich", "github", "sarif", "markdown"):
        result = _inspect(FROZEN, "--baseline", "base.json", "--format", output)
        assert "pwned" not in result.stdout + result.stderr


def test_hostile_values_of_a_malformed_baseline_are_not_echoed(workdir: Path) -> None:
    (workdir / "base.json").write_text(json.dumps({"schema_version": HOSTILE, "tool": {"name": "keras-share"}}))
    result = _inspect(FROZEN, "--baseline", "base.json")
    assert_usage_error(result, "another schema version")
    assert "pwned" not in result.stderr


# ---------------------------------------------------------------- findings in the baseline stay visible


def _closed_report_validator() -> Any:
    """The JSON report schema with no key beyond those it lists (the output is exactly as documented)."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((files("keras_share") / "schema" / "report-v1.json").read_text(encoding="utf-8"))
    closed = copy.deepcopy(schema)
    for node in closed["$defs"].values():
        if node.get("type") == "object":
            node["additionalProperties"] = False
    return jsonschema.Draft202012Validator(closed)


def test_json_report_lists_the_findings_in_the_baseline_and_counts_them(workdir: Path) -> None:
    _inspect(FROZEN, "--ignore", "KS301", "--write-baseline", "base.json", "--quiet")
    document = json.loads(_inspect(FROZEN, "--baseline", "base.json", "--format", "json").stdout)
    [model] = document["models"]
    assert [(finding["rule"], finding["layer"]) for finding in model["in_baseline"]] == [("KS201", "encoder"),
                                                                                         ("KS210", "encoder"),
                                                                                         ("KS211", "")]
    assert model["summary"]["in_baseline"] == 3
    _closed_report_validator().validate(document)


def test_json_report_without_a_baseline_has_none_in_it(workdir: Path) -> None:
    document = json.loads(_inspect(FROZEN, "--format", "json").stdout)
    [model] = document["models"]
    assert (model["in_baseline"], model["summary"]["in_baseline"]) == ([], 0)
    _closed_report_validator().validate(document)


def test_json_report_of_a_baseline_run_used_as_baseline_still_silences_what_it_held(workdir: Path) -> None:
    _inspect(FROZEN, "--ignore", "KS301", "--write-baseline", "base.json", "--quiet")
    (workdir / "report.json").write_text(_inspect(FROZEN, "--baseline", "base.json", "--format", "json").stdout)
    result = _inspect(FROZEN, "--baseline", "report.json", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert _findings(result) == []


def test_a_baseline_whose_in_baseline_is_not_a_list_is_a_usage_error(workdir: Path) -> None:
    (workdir / "bad.json").write_text(json.dumps({
        "schema_version": SCHEMA_VERSION, "tool": {"name": "keras-share"},
        "models": [{"file": "x", "findings": [], "in_baseline": {}}]}))
    assert_usage_error(_inspect(FROZEN, "--baseline", "bad.json"), "--baseline bad.json", "in_baseline is not a list")


@pytest.mark.parametrize("output", ["rich", "markdown"])
def test_report_for_people_says_how_many_findings_are_in_the_baseline(workdir: Path, output: str) -> None:
    _inspect(FROZEN, "--write-baseline", "base.json", "--quiet")
    result = _inspect(FROZEN, "--baseline", "base.json", "--format", output)
    assert "4 findings in baseline (not counted)" in result.stdout.splitlines()


# ---------------------------------------------------------------- the Python API and the config file


def test_api_baseline_moves_the_findings_it_holds_to_in_baseline(workdir: Path) -> None:
    import keras_share

    _inspect(FROZEN, "--ignore", "KS301", "--write-baseline", "base.json", "--quiet")
    report = keras_share.inspect(FROZEN, baseline="base.json")
    assert [finding.rule for finding in report.findings] == ["KS301"]
    assert [finding.rule for finding in report.in_baseline] == ["KS201", "KS210", "KS211"]
    assert keras_share.to_dict(report)["summary"]["in_baseline"] == 3


def test_api_baseline_that_is_not_a_report_raises_a_value_error(workdir: Path) -> None:
    import keras_share

    (workdir / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="not a keras-share JSON report"):
        keras_share.inspect(FROZEN, baseline=Path("bad.json"))


def _config(folder: Path, table: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(f"[tool.keras-share]\n{table}\n")
    return path


def test_config_baseline_is_read_relative_to_the_config_file(workdir: Path) -> None:
    config = _config(workdir / "ci", 'baseline = "base.json"')
    _inspect(FROZEN, "--write-baseline", "ci/base.json", "--quiet")
    result = _inspect(FROZEN, "--config", config, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert _findings(result) == []


def test_baseline_option_replaces_the_config_baseline(workdir: Path) -> None:
    config = _config(workdir / "ci", 'baseline = "base.json"')
    _inspect(FROZEN, "--write-baseline", "ci/base.json", "--quiet")
    _inspect(FROZEN, "--ignore", "KS301", "--write-baseline", "other.json", "--quiet")
    result = _inspect(FROZEN, "--config", config, "--baseline", "other.json", "--format", "json")
    assert _findings(result) == [("KS301", "encoder/enc_out")]


def test_config_baseline_that_is_missing_is_a_usage_error_naming_the_config(workdir: Path) -> None:
    config = _config(workdir / "ci", 'baseline = "nowhere.json"')
    assert_usage_error(_inspect(FROZEN, "--config", config), "[tool.keras-share] baseline", "nowhere.json")


def test_config_baseline_must_be_a_string(workdir: Path) -> None:
    config = _config(workdir / "ci", "baseline = 1")
    assert_usage_error(_inspect(FROZEN, "--config", config), "baseline must be a string")


def test_show_settings_names_the_config_baseline(workdir: Path) -> None:
    config = _config(workdir / "ci", 'baseline = "base.json"')
    result = _inspect("--config", config, "--show-settings")
    assert f"baseline: {workdir / 'ci' / 'base.json'}" in result.stdout.splitlines()
