"""What every rule is: a code, a name, a severity, its docs, and a check over one model report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.read.arrays import array_digests
from keras_share.read.base import ArrayDigest, WeightArray
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS

SEVERITIES = ("info", "warning", "error")
"""In increasing order."""


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for error."""
    return SEVERITIES.index(severity)


@dataclass
class RuleContext:
    """What a rule may use besides the report: the ``--base`` model and cached array digests.

    Arrays are hashed in a reader child given ``timeout`` seconds, as every file read is (None: in this process).
    """

    base: ModelReport | None = None
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    _digests: dict[str, dict[str, ArrayDigest]] = field(default_factory=dict)

    def digests(self, report: ModelReport, arrays: Iterable[WeightArray]) -> dict[str, ArrayDigest]:
        """Content digests of some arrays of ``report``'s file, read once per array."""
        cache = self._digests.get(report.file.path)
        if cache is None:
            cache = self._digests[report.file.path] = dict(report.file.weights.digests)
        wanted = [array for array in arrays if array.location not in cache]
        if wanted:
            cache.update(array_digests(report.file, wanted, self.timeout))
        return cache


class Rule:
    """One kind of finding. Subclasses set the class attributes and implement ``check``."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str]
    summary: ClassVar[str]
    """One line: what the rule flags."""
    why: ClassVar[str]
    """Why it is a problem."""
    fix: ClassVar[str]
    """How to fix it."""
    example: ClassVar[str]
    """Code that triggers the rule (and, after a comment, the fix)."""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        """The findings of this rule on one model."""
        raise NotImplementedError

    def finding(self, layer: LayerReport | str, message: str, layers: Iterable[str] = ()) -> Finding:
        """A finding of this rule on ``layer`` (a report or a path; ``""`` for the whole model); ``layers``: the
        paths of the several layers one finding covers."""
        path = layer if isinstance(layer, str) else layer.layer.path
        return Finding(rule=self.code, name=self.name, severity=self.severity, layer=path, message=message,
                       layers=tuple(layers))

    def docs(self, level: int = 1) -> str:
        """The rule's documentation as Markdown, its title a heading of ``level``."""
        title, section = "#" * level, "#" * (level + 1)
        return (
            f"{title} {self.code} {self.name} ({self.severity})\n\n{self.summary}\n\n"
            f"{section} Why is this bad?\n\n{self.why}\n\n{section} How to fix it\n\n{self.fix}\n\n"
            f"{section} Example\n\n```python\n{self.example.strip()}\n```\n"
        )
