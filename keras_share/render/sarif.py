"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keras_share.analysis.report import ModelReport, RuleInfo
from keras_share.errors import ReadError
from keras_share.render.base import Formatter
from keras_share.render.escape import sarif_text, visible
from keras_share.version import __version__
from keras_share.vocabulary import Severity

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
READ_ERROR_RULE = "KS001"


def _artifact(path: str) -> dict[str, Any]:
    return {"artifactLocation": {"uri": quote(Path(path).as_posix(), errors="surrogateescape")}}


def _descriptors(rules: Sequence[RuleInfo]) -> list[dict[str, Any]]:
    described = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.why},
            "help": {"text": f"{rule.why}\n\nHow to fix: {rule.fix}", "markdown": rule.docs()},
            "defaultConfiguration": {"level": LEVELS[rule.severity]},
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

    def __init__(self, rules: Sequence[RuleInfo] = ()) -> None:
        self.rules = list(rules)

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        rules = {rule.code: rule for rule in self.rules}
        for report in reports:
            for finding in report.findings:
                rules.setdefault(finding.rule, finding.rule_info)
        codes = [*rules, READ_ERROR_RULE]
        results: list[dict[str, Any]] = []
        for report in reports:
            for finding in report.findings:
                location: dict[str, Any] = {"physicalLocation": _artifact(report.file.path)}
                if finding.layer:
                    location["logicalLocations"] = [{"fullyQualifiedName": visible(finding.layer), "kind": "member"}]
                results.append({
                    "ruleId": finding.rule,
                    "ruleIndex": codes.index(finding.rule),
                    "level": LEVELS[finding.severity],
                    "message": {"text": sarif_text(f"{finding.layer + ': ' if finding.layer else ''}{finding.message}")},
                    "locations": [location],
                })
        for error in errors:
            results.append({
                "ruleId": READ_ERROR_RULE,
                "ruleIndex": codes.index(READ_ERROR_RULE),
                "level": "error",
                "message": {"text": sarif_text(error.problem)},
                "locations": [{"physicalLocation": _artifact(error.path)}],
            })
        document = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "keras-share", "version": __version__, "semanticVersion": __version__,
                                    "informationUri": "https://pypi.org/project/keras-share/", "rules": _descriptors(list(rules.values()))}},
                "results": results,
            }],
        }
        return json.dumps(document, indent=2) + "\n"
