"""The pipeline (keras_share.pipeline): the --base model is read once, provenance does not depend on the rules
selected, rules get their digests from the source they are handed, and findings carry their rule's metadata.

Static only (no TensorFlow): committed samples.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keras_share.analysis.report import Finding
from keras_share.cli import app
from keras_share.pipeline import Pipeline, inspect_file, read_base
from keras_share.read.base import ArrayDigest, WeightArray
from keras_share.render.sarif import SarifFormatter
from keras_share.rules import ALL_RULES, RuleContext, run_rules
from keras_share.settings import LintSettings

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
BASE = SAMPLES / "transfer_base.keras"
TRANSFER = SAMPLES / "transfer_unfrozen.keras"


def _inspect(*args: object) -> Any:
    return CliRunner().invoke(app, ["inspect", *map(str, args)])


def _count_reads(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Every call of ``read.detect.start_read`` (where every read begins), from any module that bound it and from any
    forked worker, appends the path it reads to ``log``."""
    from keras_share.read import detect

    original = detect.start_read

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{Path(path).name}\n")
        return original(path, *args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "start_read", None) is original:
            monkeypatch.setattr(module, "start_read", counted)


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["serial", "pool of two workers"])
def test_the_base_model_is_read_once_per_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jobs: str) -> None:
    import keras_share.pipeline  # noqa: F401 - bind start_read where the run will look it up

    log = tmp_path / "reads.txt"
    _count_reads(monkeypatch, log)
    result = _inspect("--format", "json", "--jobs", jobs, "--base", BASE, TRANSFER, SAMPLES / "transfer_frozen.keras")
    assert result.exit_code == 0, result.output
    reads = log.read_text(encoding="utf-8").split()
    assert reads.count(BASE.name) == 1
    assert sorted(reads) == sorted([BASE.name, TRANSFER.name, "transfer_frozen.keras"])


def test_a_run_of_one_file_reads_it_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import keras_share.pipeline  # noqa: F401 - bind start_read where the run will look it up

    log = tmp_path / "reads.txt"
    _count_reads(monkeypatch, log)
    result = _inspect("--format", "json", TRANSFER)
    assert result.exit_code == 0, result.output
    assert log.read_text(encoding="utf-8").split() == [TRANSFER.name]


def _record_reader_children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process ids of the reader children forked from now on."""
    from keras_share.read import deadline

    forked: list[int] = []
    original = deadline._fork_reader

    def recorded() -> tuple[int, int]:
        pid, pipe = original()
        if pid:
            forked.append(pid)
        return pid, pipe

    monkeypatch.setattr(deadline, "_fork_reader", recorded)
    return forked


def _reaped(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("options", [["--select", "KS999"], ["--format", "nonsense"], ["--exclude", "*.keras"]],
                         ids=["unknown rule", "unknown format", "the file excluded"])
def test_a_read_begun_ahead_is_ended_when_the_run_does_not_take_it(
        monkeypatch: pytest.MonkeyPatch, options: list[str]) -> None:
    forked = _record_reader_children(monkeypatch)
    result = _inspect(*options, TRANSFER)
    assert result.exit_code in (0, 2), result.output
    assert forked and all(map(_reaped, forked))
    assert result.stdout.count("transfer_unfrozen") == 0


@pytest.mark.parametrize("content", [b"not a model", b"PK\x03\x04 cut short"], ids=["neither format", "a broken zip"])
def test_an_unreadable_single_file_is_one_error_line(tmp_path: Path, content: bytes) -> None:
    broken = tmp_path / "broken.keras"
    broken.write_bytes(content)
    result = _inspect("--format", "json", broken)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"keras-share: error: {broken}: ") and result.stderr.count("\n") == 1


def test_an_unreadable_base_is_one_error_line_and_exit_3(tmp_path: Path) -> None:
    broken = tmp_path / "base.keras"
    broken.write_bytes(b"not a model")
    result = CliRunner().invoke(app, ["inspect", "--format", "json", "--base", str(broken), str(TRANSFER)])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"keras-share: error: --base {broken}: ") and result.stderr.count("\n") == 1


def test_transferred_from_is_filled_whatever_rules_are_selected() -> None:
    result = _inspect("--format", "json", "--select", "KS201", "--base", BASE, TRANSFER)
    assert result.exit_code == 0, result.output
    [model] = json.loads(result.stdout)["models"]
    assert model["findings"] == []
    assert {layer["path"]: layer["transferred_from"] for layer in model["layers"]
            if layer["transferred_from"] is not None} == {"feature": "feature"}


class RecordingDigests:
    """A digest source that records what it is asked and gives one made-up digest per (shape, dtype)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def digests(self, arrays: Sequence[WeightArray]) -> Mapping[str, ArrayDigest]:
        self.asked.extend(array.location for array in arrays)
        return {array.location: ArrayDigest(f"{array.shape}{array.dtype}", constant=False) for array in arrays}


def test_the_rules_get_digests_from_the_source_they_are_handed_and_start_no_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = inspect_file(SAMPLES / "independent_dense.keras")

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a rule started a process")

    for name in ("fork", "posix_spawn", "posix_spawnp"):
        monkeypatch.setattr(os, name, no_process)
    monkeypatch.setattr("subprocess.Popen", no_process)
    source = RecordingDigests()
    findings = run_rules(report, ALL_RULES, RuleContext(digests=source))
    assert source.asked
    assert [(finding.rule, finding.layer) for finding in findings if finding.rule == "KS203"] == [
        ("KS203", "right_dense")]


def test_a_pipeline_hands_each_report_the_digests_of_its_own_file() -> None:
    """Read by a reader child for files: the weight-copy rule finds nothing where the arrays differ in value."""
    report = Pipeline(LintSettings(select=["KS203"])).finish(inspect_file(SAMPLES / "independent_dense.keras"))
    assert report.findings == []


def test_a_base_given_to_the_pipeline_marks_the_layers_taken_from_it() -> None:
    pipeline = Pipeline(LintSettings(select=["KS205"]), base=read_base(BASE))
    report = pipeline.finish(inspect_file(TRANSFER))
    assert [(layer.layer.path, layer.transferred_from) for layer in report.layers if layer.transferred_from] == [
        ("feature", "feature")]
    assert [(finding.rule, finding.layer) for finding in report.findings] == [("KS205", "feature")]


def test_each_finding_carries_its_rules_metadata() -> None:
    report = Pipeline(LintSettings(select=["KS205"]), base=read_base(BASE)).finish(inspect_file(TRANSFER))
    [finding] = report.findings
    [rule] = [rule for rule in ALL_RULES if rule.code == "KS205"]
    assert isinstance(finding, Finding)
    assert finding.rule_info == rule.info
    assert (finding.rule_info.code, finding.rule_info.name) == (finding.rule, finding.name)


def test_sarif_describes_the_rules_of_the_findings_when_handed_none() -> None:
    report = Pipeline(LintSettings(select=["KS205"]), base=read_base(BASE)).finish(inspect_file(TRANSFER))
    driver = json.loads(SarifFormatter().format([report], []))["runs"][0]["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == ["KS205", "KS001"]
    assert driver["rules"][0]["help"]["markdown"] == report.findings[0].rule_info.docs()


def test_sarif_describes_the_rules_it_is_handed() -> None:
    report = inspect_file(SAMPLES / "independent_dense.keras")
    selected = [rule.info for rule in ALL_RULES if rule.code in ("KS201", "KS203")]
    driver = json.loads(SarifFormatter(selected).format([report], []))["runs"][0]["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == ["KS201", "KS203", "KS001"]
