"""Output formats, one module each behind the ``Formatter`` interface, and the words that name them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keras_share.vocabulary import _Word

if TYPE_CHECKING:
    from keras_share.analysis.report import RuleInfo
    from keras_share.render.base import Formatter


class OutputFormat(_Word):
    """The report formats ``inspect --format`` writes."""

    RICH = "rich"
    """Tables and a nesting tree for a terminal."""
    JSON = "json"
    """The whole report as JSON (``keras_share/schema/report-v1.json``)."""
    SARIF = "sarif"
    """SARIF 2.1.0 for code scanning."""
    GITHUB = "github"
    """GitHub Actions workflow commands (annotations)."""
    MARKDOWN = "markdown"
    """A report to paste into a pull request or a job summary."""


def formatter(output_format: OutputFormat, rules: Sequence[RuleInfo] = (), all_layers: bool = False,
              color: bool = False, width: int | None = None) -> Formatter:
    """The formatter of ``output_format``: ``rules`` (the rules that ran) are described by SARIF; ``all_layers``,
    ``color`` and ``width`` shape the terminal report."""
    if output_format is OutputFormat.JSON:
        from keras_share.render.json_format import JsonFormatter

        return JsonFormatter()
    if output_format is OutputFormat.SARIF:
        from keras_share.render.sarif import SarifFormatter

        return SarifFormatter(rules)
    if output_format is OutputFormat.GITHUB:
        from keras_share.render.github import GithubFormatter

        return GithubFormatter()
    if output_format is OutputFormat.MARKDOWN:
        from keras_share.render.markdown import MarkdownFormatter

        return MarkdownFormatter()
    from keras_share.render.terminal import TerminalFormatter

    return TerminalFormatter(all_layers=all_layers, color=color, width=width)
