"""``--format github``: GitHub Actions workflow commands that annotate the pull request.

GitHub attaches an annotation to a file only by its path relative to the checkout, and shows 10 annotations of
each type (error, warning, notice) per step, dropping the rest silently. So the findings of one rule on one file
are folded into one annotation that names their layers, a total line comes first and says how many findings were
folded, and each file's notes (what could not be read or checked) are notices too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from keras_share.analysis.report import Finding, ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter, counted, severity_counts
from keras_share.render.escape import workflow_data, workflow_property
from keras_share.render.paths import relative_to_root, source_root
from keras_share.vocabulary import Severity

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
SHOWN_PER_TYPE = 10
"""Annotations of one type GitHub shows per step; it drops the others without a word."""
NAMED_LAYERS = 8
"""Layers a folded annotation names; it counts the others."""
MESSAGE_CHARS = 1000
"""Longest message of an annotation, before escaping (a longer one is cut and ends with ``…``)."""
NOTES_PER_FILE = 3
"""Notes of one file shown as notices; one more notice counts the others."""


@dataclass
class _Annotation:
    command: str
    title: str
    message: str
    path: str

    def line(self, root: str) -> str:
        """The workflow command: ``file=`` relative to ``root``; a file outside it is named in the message."""
        relative = relative_to_root(self.path, root) if self.path else None
        where = f"file={workflow_property(relative)}," if relative is not None else ""
        message = self.message if relative is not None or not self.path else f"{self.path}: {self.message}"
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 1] + "…"
        return f"::{self.command} {where}title={workflow_property(self.title)}::{workflow_data(message)}"


def _folded(findings: list[Finding]) -> str:
    """One message for the findings of one rule on one file: the first in full, then the other layers named."""
    first = findings[0]
    text = f"{first.layer}: {first.message}" if first.layer else first.message
    if len(findings) == 1:
        return text
    others = [finding.layer or "(model)" for finding in findings[1:]]
    named = ", ".join(others[:NAMED_LAYERS])
    rest = f" and {len(others) - NAMED_LAYERS:,} more" if len(others) > NAMED_LAYERS else ""
    return f"{len(findings):,} findings. {text}. Also on: {named}{rest}"


def _model_annotations(report: ModelReport) -> Iterator[_Annotation]:
    by_rule: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    for findings in by_rule.values():
        severity = max((finding.severity for finding in findings), key=lambda severity: severity.rank)
        yield _Annotation(COMMANDS[severity], f"{findings[0].rule} {findings[0].name}", _folded(findings),
                          report.file.path)
    notes = report.notes
    for note in notes[:NOTES_PER_FILE]:
        yield _Annotation("notice", "keras-share note", note, report.file.path)
    if len(notes) > NOTES_PER_FILE:
        yield _Annotation("notice", "keras-share note",
                          f"{counted(len(notes) - NOTES_PER_FILE, 'more note')} (--format json lists them all)",
                          report.file.path)


def _total(reports: list[ModelReport], errors: list[ReadError], annotations: list[_Annotation]) -> str:
    """``3 files, 2 with findings: 1 error, 9 warnings (8 folded), 1 unreadable, 1 note``."""
    findings = [finding for report in reports for finding in report.findings]
    counts = severity_counts(findings)
    text = f"{counted(len(reports) + len(errors), 'file')}, "
    text += f"{sum(1 for report in reports if report.findings):,} with findings: {', '.join(counts)}" if counts \
        else "no findings"
    folded = len(findings) - sum(len({finding.rule for finding in report.findings}) for report in reports)
    if folded:
        text += f" ({folded:,} folded into the annotation of their file and rule)"
    if errors:
        text += f", {len(errors):,} unreadable"
    notes = sum(len(report.notes) for report in reports)
    if notes:
        text += f", {counted(notes, 'note')} (what could not be checked)"
    crowded = [command for command in COMMANDS.values()
               if sum(1 for annotation in annotations if annotation.command == command) + (command == "notice")
               > SHOWN_PER_TYPE]
    if crowded:
        text += (f". GitHub shows {SHOWN_PER_TYPE} annotations of each type per step, and there are more "
                 f"{'/'.join(crowded)} annotations: the log lists them all")
    return text


class GithubFormatter(Formatter):
    """A total line, then one ``::warning file=...,title=...::message`` per rule and file, per note and per
    unreadable input; nothing when there is nothing to say."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root
        """Where ``file=`` is relative to; None: ``GITHUB_WORKSPACE``, else the working directory."""

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        root = self.root or source_root()
        annotations = [annotation for report in reports for annotation in _model_annotations(report)]
        annotations += [_Annotation("error", "unreadable model", error.problem, error.path) for error in errors]
        if not annotations:
            return ""
        total = _Annotation("notice", "keras-share", _total(reports, errors, annotations), "")
        return "".join(annotation.line(root) + "\n" for annotation in [total, *annotations])
