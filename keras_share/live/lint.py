"""Run the rules on live reports: the weight-comparing rules read values from the variables, not a file."""

from __future__ import annotations

from collections.abc import Iterable

from keras_share.analysis.report import ModelReport
from keras_share.lint import base_report, lint_report
from keras_share.read.base import ArrayDigest
from keras_share.rules import RuleContext, run_rules, select_rules
from keras_share.settings import LintSettings


class LiveDigests(dict):  # type: ignore[type-arg]
    """Digests of a live report's variables, by location, each computed the first time it is asked for.

    ``RuleContext.digests`` asks ``location in cache`` before reading a file: for a live variable that
    question computes its digest here, so no file read (and no forked reader) ever happens.
    """

    def __init__(self, variables: dict[str, object]) -> None:
        super().__init__()
        self._variables = variables

    def _fill(self, location: object) -> None:
        if not dict.__contains__(self, location) and location in self._variables:
            from keras_share.live.flavors import Flavor
            from keras_share.read.digest import value_digest

            self[location] = value_digest(Flavor.variable_value(self._variables[location]))  # type: ignore[index]

    def __contains__(self, location: object) -> bool:
        self._fill(location)
        return dict.__contains__(self, location)

    def __getitem__(self, location: object) -> ArrayDigest:
        self._fill(location)
        return dict.__getitem__(self, location)

    def get(self, location: object, default: object = None) -> object:  # type: ignore[override]
        self._fill(location)
        return dict.get(self, location, default)


def live_digests(report: ModelReport) -> dict[str, ArrayDigest]:
    """Digests of every variable of a live report, by location, computed lazily (empty for files)."""
    if report.live is None or report.live.source != "object":
        return {}
    return LiveDigests(report.live.values)


def rule_context(report: ModelReport, base: ModelReport | None = None) -> RuleContext:
    """A RuleContext whose digest cache reads live reports' values from their variables."""
    cache = {}
    for item in (report, base):
        if item is not None and item.live is not None and item.live.source == "object":
            cache[item.file.path] = live_digests(item)
    return RuleContext(base=base, _digests=cache)


def lint(report: ModelReport, select: Iterable[str] = (), ignore: Iterable[str] = (),
         base: ModelReport | None = None) -> None:
    """Fill ``report.findings`` with the selected rules' findings (files and live reports alike)."""
    report.findings = run_rules(report, select_rules(select, ignore), rule_context(report, base))


def lint_live_report(report: ModelReport, settings: LintSettings, base: ModelReport | None = None) -> None:
    """``keras_share.lint.lint_report`` for live reports: same settings, suppressions and rules.

    The weight-comparing rules (weight-copy, transferred-layer-trainable with ``--base``) hash the live
    variables instead of reading a file. ``base`` is the already-read ``--base`` report; when None and
    ``settings.base`` is set, that file is read here.
    """
    if base is None and settings.base:
        base = base_report(settings.base)
    lint_report(report, settings, rule_context(report, base))
