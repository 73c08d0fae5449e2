"""``--format github``: GitHub Actions workflow commands that annotate the pull request."""

from __future__ import annotations

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter
from keras_share.render.escape import workflow_data, workflow_property
from keras_share.vocabulary import Severity

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


class GithubFormatter(Formatter):
    """One ``::warning file=...,title=...::message`` line per finding and per unreadable input."""

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        lines = []
        for report in reports:
            for finding in report.findings:
                title = workflow_property(f"{finding.rule} {finding.name}")
                where = f"{finding.layer}: " if finding.layer else ""
                lines.append(
                    f"::{COMMANDS[finding.severity]} file={workflow_property(report.file.path)},title={title}::"
                    f"{workflow_data(where + finding.message)}"
                )
        for error in errors:
            lines.append(f"::error file={workflow_property(error.path)},title=unreadable model::{workflow_data(error.problem)}")
        return "".join(line + "\n" for line in lines)
