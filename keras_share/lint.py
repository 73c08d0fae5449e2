"""Run the selected rules on a report and decide whether a run fails."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from keras_share.analysis.report import ModelReport
from keras_share.rules import RuleContext, run_rules, select_rules, severity_rank
from keras_share.settings import LintSettings


@lru_cache(maxsize=4)
def base_report(path: str) -> ModelReport:
    """The ``--base`` model's report, read once per process."""
    from keras_share.api import inspect_file

    return inspect_file(path)


def lint_report(report: ModelReport, settings: LintSettings, context: RuleContext | None = None) -> None:
    """Fill ``report.findings`` with the selected rules' findings, minus suppressed ones.

    ``context`` defaults to one holding the ``--base`` report named by the settings.
    """
    if context is None:
        context = RuleContext(base=base_report(settings.base) if settings.base else None)
    findings = run_rules(report, select_rules(settings.select, settings.ignore), context)
    report.findings = [
        finding for finding in findings
        if not settings.is_suppressed(report.file.path, finding.rule, finding.name, finding.layer)
    ]


def fails(reports: Iterable[ModelReport], fail_on: str) -> bool:
    """True when any finding is at or above the ``fail_on`` severity (never with ``never``)."""
    if fail_on == "never":
        return False
    threshold = severity_rank(fail_on)
    return any(severity_rank(finding.severity) >= threshold for report in reports for finding in report.findings)
