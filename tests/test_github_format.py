"""``--format github`` lands where GitHub shows it: ``file=`` relative to the checkout (``GITHUB_WORKSPACE``,
else the working directory) and never outside it, one annotation per file and rule naming its layers (GitHub
shows 10 per type and step and drops the rest), a total line first that says how many were folded, and each
file's notes as notices, so a file nothing could be checked in does not pass in silence.

Formatter-level: one sample model read once, its report copied under other paths, findings and notes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.pipeline import Pipeline, inspect_file
from keras_share.render.github import MESSAGE_CHARS, NAMED_LAYERS, GithubFormatter
from keras_share.settings import LintSettings
from keras_share.vocabulary import Severity

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
ROOT = "/checkout"


@pytest.fixture(scope="module")
def sample() -> ModelReport:
    """nested_encoder.keras: one KS201 finding (on its shared encoder; ``model`` moves it and makes it a warning)."""
    return Pipeline(LintSettings()).finish(inspect_file(SAMPLES / "nested_encoder.keras"))


def model(sample: ModelReport, path: str, layers: tuple[str, ...] = ("encoder/enc_bn",),
          notes: tuple[str, ...] = ()) -> ModelReport:
    """The sample's report as if read from ``path``, its finding repeated on ``layers`` as a warning, with ``notes``."""
    [finding] = sample.findings
    return dataclasses.replace(sample, file=dataclasses.replace(sample.file, path=path, notes=list(notes)),
                               findings=[dataclasses.replace(finding, layer=layer, severity=Severity.WARNING)
                                         for layer in layers])


def annotations(reports: list[ModelReport], errors: list[ReadError] | None = None) -> list[str]:
    return GithubFormatter(root=ROOT).format(reports, errors or []).splitlines()


def test_file_is_relative_to_the_root(sample: ModelReport) -> None:
    [_, line] = annotations([model(sample, f"{ROOT}/models/../models/a.keras")])
    assert line.startswith("::warning file=models/a.keras,title=KS201 shared-batchnorm::encoder/enc_bn: ")


def test_a_file_outside_the_root_has_no_file_property_and_is_named_in_the_message(sample: ModelReport) -> None:
    [_, line] = annotations([model(sample, "/elsewhere/a.keras")])
    assert line.startswith("::warning title=KS201 shared-batchnorm::/elsewhere/a.keras: encoder/enc_bn: ")


def test_an_unreadable_file_outside_the_root_has_no_file_property() -> None:
    [_, line] = annotations([], [ReadError("/checkout/../up.keras", "not a model")])
    assert line == "::error title=unreadable model::/checkout/../up.keras: not a model"


def test_the_root_is_github_workspace_when_set(sample: ModelReport, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", ROOT)
    [_, line] = GithubFormatter().format([model(sample, f"{ROOT}/a.keras")], []).splitlines()
    assert line.startswith("::warning file=a.keras,")


def test_findings_of_one_rule_on_one_file_are_one_annotation_naming_their_layers(sample: ModelReport) -> None:
    layers = tuple(f"encoder/bn{number}" for number in range(3))
    [_, line] = annotations([model(sample, f"{ROOT}/a.keras", layers)])
    assert line.startswith("::warning file=a.keras,title=KS201 shared-batchnorm::3 findings. encoder/bn0: ")
    assert line.endswith(". Also on: encoder/bn1, encoder/bn2")


def test_a_folded_annotation_names_a_few_layers_and_counts_the_others(sample: ModelReport) -> None:
    layers = tuple(f"encoder/bn{number}" for number in range(NAMED_LAYERS + 4))
    [_, line] = annotations([model(sample, f"{ROOT}/a.keras", layers)])
    assert f"encoder/bn{NAMED_LAYERS + 1}" not in line
    assert line.endswith(f"encoder/bn{NAMED_LAYERS} and 3 more")


def test_a_long_message_is_cut(sample: ModelReport) -> None:
    [_, line] = annotations([model(sample, f"{ROOT}/a.keras", ("x" * 5000,))])
    message = line.split("::", 2)[2]
    assert len(message) == MESSAGE_CHARS and message.endswith("…")


def test_the_total_line_comes_first_and_says_how_many_were_folded(sample: ModelReport) -> None:
    reports = [model(sample, f"{ROOT}/a.keras", tuple(f"bn{number}" for number in range(9))),
               model(sample, f"{ROOT}/b.keras"), model(sample, f"{ROOT}/c.keras", ())]
    lines = annotations(reports, [ReadError(f"{ROOT}/d.keras", "not a model")])
    assert lines[0] == ("::notice title=keras-share::4 files, 2 with findings: 10 warnings "
                        "(8 folded into the annotation of their file and rule), 1 unreadable")
    assert len(lines) == 1 + 2 + 1


def test_the_total_line_says_when_github_would_drop_annotations(sample: ModelReport) -> None:
    lines = annotations([model(sample, f"{ROOT}/{number}.keras") for number in range(11)])
    assert lines[0].endswith("GitHub shows 10 annotations of each type per step, and there are more warning "
                             "annotations: the log lists them all")


def test_each_note_is_a_notice_on_its_file(sample: ModelReport) -> None:
    lines = annotations([model(sample, f"{ROOT}/a.keras", (), notes=("subclassed model: no graph",))])
    assert lines == ["::notice title=keras-share::1 file, no findings, 1 note (what could not be checked)",
                     "::notice file=a.keras,title=keras-share note::subclassed model: no graph"]


def test_notes_beyond_three_are_counted_in_one_notice(sample: ModelReport) -> None:
    notes = tuple(f"note {number}" for number in range(5))
    lines = annotations([model(sample, f"{ROOT}/a.keras", (), notes=notes)])
    assert [line.split("::")[2] for line in lines[1:]] == [
        "note 0", "note 1", "note 2", "2 more notes (--format json lists them all)"]


def test_no_findings_no_notes_no_errors_print_nothing(sample: ModelReport) -> None:
    assert annotations([model(sample, f"{ROOT}/a.keras", ())]) == []
