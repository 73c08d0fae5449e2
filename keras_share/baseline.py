"""``--baseline``: findings an earlier run already reported are not new, and do not fail the run.

A baseline is the ``--format json`` report of an earlier run (``--write-baseline`` writes one). Its findings are
matched by the fingerprints SARIF uses (``render.fingerprints``: the rule, the input's path relative to the source
root, the layer, and the rank of a repeat), so a baseline stays valid across checkouts. The file is untrusted: it
is read within ``limits.MAX_BASELINE_BYTES``, only its rules, paths and layers are used (hashed, never printed),
and a file that is not such a report is a ``BaselineError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from keras_share.analysis.report import Finding, ModelReport
from keras_share.errors import ReadError
from keras_share.limits import MAX_BASELINE_BYTES
from keras_share.read.files import open_regular
from keras_share.render.fingerprints import Fingerprints
from keras_share.render.json_format import SCHEMA_VERSION, JsonFormatter


class BaselineError(ValueError):
    """A ``--baseline`` file that cannot be used: the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Baseline:
    """The fingerprints of an earlier run's findings."""

    fingerprints: frozenset[str]

    def split(self, report: ModelReport) -> tuple[list[Finding], list[Finding]]:
        """``report``'s findings that are new, and those the baseline holds (each in the report's order)."""
        prints = Fingerprints()
        new: list[Finding] = []
        known: list[Finding] = []
        for finding in report.findings:
            fingerprint = prints.of(finding.rule, report.file.path, finding.layer)
            (known if fingerprint in self.fingerprints else new).append(finding)
        return new, known


def _findings_of(document: Any) -> list[tuple[str, str, str]]:
    """``(rule, file, layer)`` of every finding of a JSON report, in order; a BaselineError's problem (as a
    ValueError) when the document is not a report of this schema version."""
    tool = document.get("tool") if isinstance(document, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != "keras-share":
        raise ValueError("not a keras-share JSON report (--format json)")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"a JSON report of another schema version (this keras-share reads version {SCHEMA_VERSION}); "
                         "write the baseline again with --write-baseline")
    models = document.get("models")
    if not isinstance(models, list):
        raise ValueError("its models are not a list")
    found: list[tuple[str, str, str]] = []
    for model in models:
        findings = model.get("findings") if isinstance(model, dict) else None
        file = model.get("file") if isinstance(model, dict) else None
        if not isinstance(file, str) or not isinstance(findings, list):
            raise ValueError("a model without a file name or a findings list")
        known = model.get("in_baseline", [])  # findings its own run matched in a baseline (older reports: no key)
        if not isinstance(known, list):
            raise ValueError("its in_baseline is not a list")
        for finding in findings + known:
            rule = finding.get("rule") if isinstance(finding, dict) else None
            layer = finding.get("layer") if isinstance(finding, dict) else None
            if not isinstance(rule, str) or not isinstance(layer, str):
                raise ValueError("a finding without a rule or a layer")
            found.append((rule, file, layer))
    return found


def read_baseline(path: Path) -> Baseline:
    """The baseline in the JSON report at ``path``; a BaselineError when it cannot be read or is not a report."""
    try:
        with open_regular(path, str(path)) as stream:
            text = stream.read(MAX_BASELINE_BYTES + 1)
    except ReadError as error:
        raise BaselineError(f"{error.path}: {error.problem}") from None
    except OSError as error:
        raise BaselineError(f"{path}: cannot read ({error.strerror or error})") from None
    if len(text) > MAX_BASELINE_BYTES:
        raise BaselineError(f"{path}: larger than {MAX_BASELINE_BYTES >> 20} MiB; refusing to read it")
    try:
        document = json.loads(text.decode("utf-8"))
        findings = _findings_of(document)
    except RecursionError:
        raise BaselineError(f"{path}: nested too deeply to be a keras-share JSON report") from None
    except UnicodeDecodeError:
        raise BaselineError(f"{path}: not UTF-8 text, so not a keras-share JSON report") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not JSON (line {error.lineno}, column {error.colno}), so not a keras-share "
                            "JSON report") from None
    except ValueError as error:
        raise BaselineError(f"{path}: {error}") from None
    prints = Fingerprints()
    return Baseline(frozenset(prints.of(rule, file, layer) for rule, file, layer in findings))


def baseline_text(reports: list[ModelReport]) -> str:
    """The JSON report to write with ``--write-baseline``: every finding of the run, new or already in the
    baseline."""
    return JsonFormatter().format([replace(report, findings=report.findings + report.in_baseline, in_baseline=[])
                                   for report in reports], [])
