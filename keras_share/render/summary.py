"""What a run adds up to: the one-line total on stderr, and ``--statistics`` (findings counted per rule)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter, counted, severity_counts


def run_total(reports: list[ModelReport], errors: list[ReadError]) -> str:
    """``12 files, 1 unreadable, 3 with findings: 1 error, 4 warnings`` (no newline); files are counted once
    however many models they hold."""
    files = {report.file.path for report in reports} | {error.path for error in errors}
    with_findings = {report.file.path for report in reports if report.findings}
    parts = [counted(len(files), "file")]
    if errors:
        parts.append(f"{len(errors):,} unreadable")
    in_baseline = sum(len(report.in_baseline) for report in reports)
    known = f" ({in_baseline:,} in baseline, not counted)" if in_baseline else ""
    if not with_findings:
        return ", ".join([*parts, "no new findings" if in_baseline else "no findings"]) + known
    parts.append(f"{len(with_findings):,} with {'new ' if in_baseline else ''}findings")
    counts = severity_counts([finding for report in reports for finding in report.findings])
    return ", ".join(parts) + ": " + ", ".join(counts) + known


@dataclass(frozen=True)
class RuleCount:
    """How many findings one rule made in a run."""

    code: str
    name: str
    count: int


def rule_counts(reports: list[ModelReport]) -> list[RuleCount]:
    """Findings per rule, the most frequent first (then by code)."""
    counts = Counter((finding.rule, finding.name) for report in reports for finding in report.findings)
    return [RuleCount(code, name, count)
            for (code, name), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


class StatisticsFormatter(Formatter):
    """``--statistics``: a line per rule (count, code, name), or with ``as_json`` a JSON list of
    ``{"code", "name", "count"}``; unreadable inputs are left to stderr."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self.for_people = not as_json

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        counts = rule_counts(reports)
        if self.as_json:
            return json.dumps([{"code": row.code, "name": row.name, "count": row.count} for row in counts],
                              indent=2) + "\n"
        width = max((len(f"{row.count:,}") for row in counts), default=0)
        return "".join(f"{row.count:>{width},}  {row.code}  {row.name}\n" for row in counts)
