"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keras_share.analysis.report import ModelReport, RuleInfo
from keras_share.errors import ReadError
from keras_share.render.base import Formatter
from keras_share.render.escape import sarif_text, visible
from keras_share.render.fingerprints import FINGERPRINT, Fingerprints
from keras_share.render.paths import relative_to_root, source_root
from keras_share.version import __version__
from keras_share.vocabulary import Severity

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
READ_ERROR_RULE = "KS001"
BASELINE_JUSTIFICATION = "in the --baseline report of an earlier run: not new, not counted for --fail-on"
SOURCE_ROOT = "%SRCROOT%"
"""The ``uriBaseId`` of every input inside the source root (``GITHUB_WORKSPACE``, else the working directory)."""


class _Places:
    """Where each input is, as SARIF locations relative to one source root, and each result's fingerprint."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.prints = Fingerprints(root)

    def physical(self, path: str) -> dict[str, Any]:
        """The file (relative to ``%SRCROOT%``, else an absolute ``file:`` URI) at line 1, as code scanning
        requires a line even for a binary file."""
        relative = relative_to_root(path, self.root)
        if relative is None:
            artifact = {"uri": Path(os.path.abspath(path)).as_uri()}
        else:
            artifact = {"uri": quote(relative, errors="surrogateescape"), "uriBaseId": SOURCE_ROOT}
        return {"artifactLocation": artifact, "region": {"startLine": 1}}

    def fingerprints(self, rule: str, path: str, layer: str = "") -> dict[str, str]:
        """``partialFingerprints`` of a result: stable across runs and checkouts (the path is relative to the
        root), distinct per rule, file and layer (a repeat of all three is told apart by its rank)."""
        digest = self.prints.of(rule, path, layer)
        return {FINGERPRINT: digest, "primaryLocationLineHash": f"{digest[:16]}:1"}

    def base_ids(self) -> dict[str, Any]:
        """``originalUriBaseIds``: where ``%SRCROOT%`` is."""
        uri = Path(self.root).as_uri()
        return {SOURCE_ROOT: {"uri": uri if uri.endswith("/") else uri + "/"}}


def _security_properties(rule: RuleInfo) -> dict[str, Any]:
    """The ``properties`` code scanning reads to rank a security rule's alerts; none for other rules."""
    if rule.security_severity is None:
        return {}
    return {"properties": {"tags": ["security"], "security-severity": f"{rule.security_severity:.1f}"}}


def _notifications(reports: list[ModelReport], places: _Places) -> list[dict[str, Any]]:
    """Each model's notes (what could not be read or checked), as ``toolExecutionNotifications``."""
    return [
        {"level": "warning", "message": {"text": sarif_text(note)},
         "locations": [{"physicalLocation": places.physical(report.file.path)}]}
        for report in reports for note in report.notes
    ]


def _descriptors(rules: Sequence[RuleInfo]) -> list[dict[str, Any]]:
    described = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.why},
            "help": {"text": f"{rule.why}\n\nHow to fix: {rule.fix}", "markdown": rule.docs()},
            "helpUri": rule.help_uri,
            "defaultConfiguration": {"level": LEVELS[rule.severity]},
            **_security_properties(rule),
        }
        for rule in rules
    ]
    described.append({
        "id": READ_ERROR_RULE,
        "name": "unreadable-model",
        "shortDescription": {"text": "The input could not be read as a Keras model."},
        "help": {"text": "keras-share could not read this file: it is corrupt, truncated or not a Keras model."},
        "defaultConfiguration": {"level": "error"},
    })
    return described


class SarifFormatter(Formatter):
    """One SARIF run; each finding's location names the model file and, as a logical location, the layer.

    The run's rule descriptors are ``rules`` (the rules that ran, as the command line hands them), then the rule
    of any finding not among them, then the rule of unreadable inputs.
    """

    def __init__(self, rules: Sequence[RuleInfo] = (), root: str | None = None) -> None:
        self.rules = list(rules)
        self.root = root
        """Where paths are relative to; None: ``GITHUB_WORKSPACE``, else the working directory at format time."""

    def _baseline_state(self, known: bool) -> dict[str, Any]:
        """With a ``--baseline``: a result the baseline holds is ``unchanged`` and suppressed externally (by the
        baseline file), a new one ``new`` and not suppressed; without one, neither property."""
        if not self.compared_to_baseline:
            return {}
        if not known:
            return {"baselineState": "new", "suppressions": []}
        return {"baselineState": "unchanged",
                "suppressions": [{"kind": "external", "status": "accepted", "justification": BASELINE_JUSTIFICATION}]}

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        rules = {rule.code: rule for rule in self.rules}
        for report in reports:
            for finding in report.in_baseline + report.findings:
                rules.setdefault(finding.rule, finding.rule_info)
        codes = [*rules, READ_ERROR_RULE]
        places = _Places(self.root or source_root())
        results: list[dict[str, Any]] = []
        for report in reports:
            # in_baseline first: a repeat of a rule on a layer keeps the rank the baseline matched it by
            for finding, known in [*((each, True) for each in report.in_baseline),
                                   *((each, False) for each in report.findings)]:
                location: dict[str, Any] = {"physicalLocation": places.physical(report.file.path)}
                if finding.layer:
                    location["logicalLocations"] = [{"fullyQualifiedName": visible(finding.layer), "kind": "member"}]
                results.append({
                    "ruleId": finding.rule,
                    "ruleIndex": codes.index(finding.rule),
                    "level": LEVELS[finding.severity],
                    "message": {"text": sarif_text(f"{finding.layer + ': ' if finding.layer else ''}{finding.message}")},
                    "locations": [location],
                    "partialFingerprints": places.fingerprints(finding.rule, report.file.path, finding.layer),
                    **self._baseline_state(known),
                })
        for error in errors:
            results.append({
                "ruleId": READ_ERROR_RULE,
                "ruleIndex": codes.index(READ_ERROR_RULE),
                "level": "error",
                "message": {"text": sarif_text(error.problem)},
                "locations": [{"physicalLocation": places.physical(error.path)}],
                "partialFingerprints": places.fingerprints(READ_ERROR_RULE, error.path),
                **self._baseline_state(False),
            })
        document = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "keras-share", "version": __version__, "semanticVersion": __version__,
                                    "informationUri": "https://pypi.org/project/keras-share/", "rules": _descriptors(list(rules.values()))}},
                "originalUriBaseIds": places.base_ids(),
                "invocations": [{"executionSuccessful": True,
                                 "toolExecutionNotifications": _notifications(reports, places)}],
                "results": results,
            }],
        }
        return json.dumps(document, indent=2) + "\n"
