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
    MERMAID = "mermaid"
    """The layer graph as a Mermaid flowchart (docs/pictures.md)."""
    DOT = "dot"
    """The layer graph as Graphviz DOT."""
    HTML = "html"
    """One self-contained page: the report and the layer graph as SVG."""
    SVG = "svg"
    """The layer graph drawn by Graphviz's ``dot`` program (which must be installed)."""


def formatter(output_format: OutputFormat, rules: Sequence[RuleInfo] = (), all_layers: bool = False,
              color: bool = False, width: int | None = None, expand: bool = False) -> Formatter:
    """The formatter of ``output_format``: ``rules`` (the rules that ran) are described by SARIF; ``all_layers``,
    ``color`` and ``width`` shape the terminal report; ``expand`` draws every layer of a graph (no chain
    collapsed)."""
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

        return MarkdownFormatter(expand)
    if output_format in (OutputFormat.MERMAID, OutputFormat.DOT, OutputFormat.HTML, OutputFormat.SVG):
        return _picture_formatter(output_format, expand)
    from keras_share.render.terminal import TerminalFormatter

    return TerminalFormatter(all_layers=all_layers, color=color, width=width)


def _picture_formatter(output_format: OutputFormat, expand: bool) -> Formatter:
    """The formatter of a format that draws the layer graph (its modules are imported only when asked for)."""
    if output_format is OutputFormat.MERMAID:
        from keras_share.render.mermaid import MermaidFormatter

        return MermaidFormatter(expand)
    if output_format is OutputFormat.HTML:
        from keras_share.render.html import HtmlFormatter

        return HtmlFormatter(expand)
    from keras_share.render.dot import DotFormatter, SvgFormatter

    return SvgFormatter(expand) if output_format is OutputFormat.SVG else DotFormatter(expand)
