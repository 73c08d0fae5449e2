"""Assertions for test suites: fail a test when keras-share finds a weight-sharing pitfall.

    from keras_share.testing import assert_no_findings

    def test_model_has_no_sharing_pitfalls():
        assert_no_findings(build_model())                  # a live model (Keras 3 or tf_keras)
        assert_no_findings("exported/model.keras")         # or a saved file
        assert_no_findings([base, fine_tuned], ignore=["layer-shared-with-other-model"])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from keras_share.vocabulary import Severity

__all__ = ["SeverityName", "assert_no_findings"]

SeverityName = Literal["error", "warning", "info"]
"""A finding severity by name, as ``fail_on`` takes it (a ``Severity`` member is one too)."""


def assert_no_findings(
    model_or_path: object,
    fail_on: SeverityName | Severity = "warning",
    ignore: Iterable[str] | str = (),
) -> None:
    """Raise ``AssertionError`` listing every finding at or above ``fail_on`` (``error``, ``warning``, ``info``).

    ``model_or_path`` is anything ``keras_share.inspect`` takes: a path, a live model, or a list/dict of
    models inspected together. ``ignore`` skips rules by code, code prefix or name.
    """
    __tracebackhide__ = True  # pytest: show the assertion, not this frame
    if fail_on not in {severity.value for severity in Severity}:
        raise ValueError(f"fail_on must be one of {', '.join(Severity)}, not {fail_on!r}")
    from keras_share.api import inspect

    ignored = [ignore] if isinstance(ignore, str) else list(ignore)
    result = inspect(model_or_path, ignore=ignored)
    reports = result if isinstance(result, list) else [result]
    threshold = Severity(fail_on)
    lines: list[str] = []
    codes: list[str] = []
    for report in reports:
        for finding in report.findings:
            if finding.severity.rank < threshold.rank:
                continue
            where = f"{report.file.path}: {finding.layer or '(model)'}"
            lines.append(f"  {finding.severity:<7} {finding.rule} {finding.name}  {where}\n"
                         f"          {finding.message}")
            if finding.rule not in codes:
                codes.append(finding.rule)
    if lines:
        count = len(lines)
        raise AssertionError(
            f"keras-share found {count} finding{'s' if count != 1 else ''} at or above {threshold.value!r}:\n"
            + "\n".join(lines)
            + f"\n`keras-share rule CODE` explains a rule; to accept one, pass ignore={codes!r}"
        )
