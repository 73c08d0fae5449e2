"""What every rule is: a code, a name, a severity, its docs, and a check over one model report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from keras_share.analysis.digests import DigestSource, NoDigests
from keras_share.analysis.report import Finding, LayerReport, ModelReport, RuleInfo
from keras_share.vocabulary import Severity

if TYPE_CHECKING:
    from keras_share.analysis.weights_match import WeightsCheck


@dataclass
class RuleContext:
    """What a rule may use besides the report: the ``--base`` model, the digest source of the report's
    arrays, and the ``--weights`` file's fit (handed by the pipeline; a rule never reads a file or starts a
    process)."""

    base: ModelReport | None = None
    digests: DigestSource = field(default_factory=NoDigests)
    weights: WeightsCheck | None = None
    """What ``load_weights`` would do with the ``--weights`` file, when one was given."""


class Rule:
    """One kind of finding. Subclasses set the class attributes and implement ``check``."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    """One line: what the rule flags."""
    why: ClassVar[str]
    """Why it is a problem."""
    fix: ClassVar[str]
    """How to fix it."""
    example: ClassVar[str]
    """Code that triggers the rule (and, after a comment, the fix)."""
    security_severity: ClassVar[float | None] = None
    """Set (0.1 to 10.0) on a rule about what loading the file could do: a security rule (``RuleInfo``)."""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        """The findings of this rule on one model."""
        raise NotImplementedError

    @cached_property
    def info(self) -> RuleInfo:
        """This rule's code, name, severity and docs as data (carried by its findings)."""
        return RuleInfo(code=self.code, name=self.name, severity=self.severity, summary=self.summary,
                        why=self.why, fix=self.fix, example=self.example,
                        security_severity=self.security_severity)

    def finding(self, layer: LayerReport | str, message: str, *, severity: Severity | None = None,
                layers: Iterable[str] = ()) -> Finding:
        """A finding of this rule on ``layer`` (a report or a path; ``""`` for the whole model), at the rule's
        severity unless ``severity`` is given; ``layers``: the paths of the several layers one finding covers."""
        path = layer if isinstance(layer, str) else layer.layer.path
        return Finding(rule=self.code, name=self.name, severity=severity or self.severity, layer=path,
                       message=message, rule_info=self.info, layers=tuple(layers))

    def docs(self, level: int = 1) -> str:
        """The rule's documentation as Markdown, its title a heading of ``level``."""
        return self.info.docs(level)


def first_names(names: list[str], limit: int) -> str:
    """``a, b, c and 4 more``: the first ``limit`` of ``names``, then how many are left out."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
