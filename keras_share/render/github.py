"""``--format github``: GitHub Actions workflow commands that annotate the pull request."""

from __future__ import annotations

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubFormatter(Formatter):
    """One ``::warning file=...,title=...::message`` line per finding and per unreadable input."""

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        lines = []
        for report in reports:
            for finding in report.findings:
                title = _escape_property(f"{finding.rule} {finding.name}")
                where = f"{finding.layer}: " if finding.layer else ""
                lines.append(
                    f"::{COMMANDS[finding.severity]} file={_escape_property(report.file.path)},title={title}::"
                    f"{_escape_data(where + finding.message)}"
                )
        for error in errors:
            lines.append(f"::error file={_escape_property(error.path)},title=unreadable model::{_escape_data(error.problem)}")
        return "".join(line + "\n" for line in lines)
