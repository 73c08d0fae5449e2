"""The output of ``keras-share diff``: a terminal report, JSON (``keras_share/schema/diff-v1.json``, documented in
docs/diff.md) and Markdown for a pull-request comment. Every name from a file goes through ``render/escape.py``."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from keras_share.analysis.diff import Change, ModelDiff
from keras_share.analysis.report import ModelReport
from keras_share.render import OutputFormat
from keras_share.render.base import counted
from keras_share.render.escape import markdown_code, markdown_text, visible
from keras_share.render.json_format import dumps_outlined
from keras_share.version import __version__
from keras_share.vocabulary import ChangeKind

DIFF_SCHEMA_VERSION = 1
DIFF_FORMATS = (OutputFormat.RICH, OutputFormat.JSON, OutputFormat.MARKDOWN)
"""The output formats ``keras-share diff --format`` writes."""
SHOWN_CALLS = 5
"""Calls a wiring change lists in the human formats; the JSON lists every one."""
SHOWN_CHANGES = 200
"""Changes the human formats list (a pull-request comment holds 65,536 characters); the JSON lists every one."""

Quote = Callable[[str], str]
"""How a format writes a name from a file (escaped for it)."""


def _tensor(ref: dict[str, Any], quote: Quote) -> str:
    """``name=producer[call][tensor]`` as Keras summaries write an input (the call left out for an input layer)."""
    keyword = f"{quote(ref['keyword'])}=" if ref["keyword"] else ""
    where = f"[{ref['call']}][{ref['tensor']}]" if ref["call"] is not None else ""
    return keyword + quote(ref["layer"]) + where


def _calls(calls: list[list[dict[str, Any]]], quote: Quote) -> str:
    shown = "; ".join(f"#{number}: " + ", ".join(_tensor(ref, quote) for ref in inputs)
                      for number, inputs in enumerate(calls[:SHOWN_CALLS]))
    more = f"; {len(calls) - SHOWN_CALLS} more" if len(calls) > SHOWN_CALLS else ""
    return (shown or "no calls") + more


def _sharing(value: dict[str, Any], quote: Quote) -> str:
    places = f", also at {', '.join(map(quote, value['same_as']))}" if value["same_as"] else ""
    return f"{'shared' if value['shared'] else 'not shared'} ({counted(value['object_calls'], 'call')}{places})"


def describe(change: Change, quote: Quote) -> str:
    """What changed, in a line: names from the file written by ``quote``."""
    before, after, kind = change.before, change.after, change.kind
    detail = f" ({change.detail})" if change.detail else ""
    if kind in (ChangeKind.LAYER_ADDED, ChangeKind.LAYER_REMOVED):
        value = after if kind is ChangeKind.LAYER_ADDED else before
        what = quote(value["class_name"]) if value["class_name"] is not None else "weight group"
        return f"{'added' if kind is ChangeKind.LAYER_ADDED else 'removed'}: {what}, {counted(value['params'], 'param')}"
    if kind is ChangeKind.LAYER_RENAMED:
        return f"renamed from {quote(before)} (same class and weights)"
    if kind is ChangeKind.CLASS_CHANGED:
        return f"class {quote(before or '?')} -> {quote(after or '?')}"
    if kind is ChangeKind.CALLS_CHANGED:
        return (f"calls {before['calls']} -> {after['calls']}, per forward pass "
                f"{before['effective_calls']} -> {after['effective_calls']}")
    if kind is ChangeKind.WIRING_CHANGED:
        return f"call inputs {_calls(before, quote)} -> {_calls(after, quote)}{detail}"
    if kind in (ChangeKind.SHARING_LOST, ChangeKind.SHARING_GAINED):
        what = "sharing lost" if kind is ChangeKind.SHARING_LOST else "sharing gained"
        return f"{what}: {_sharing(before, quote)} -> {_sharing(after, quote)}"
    if kind is ChangeKind.TRAINABILITY_CHANGED:
        return f"{'trains' if before else 'frozen'} -> {'trains' if after else 'frozen'} as loaded"
    if kind is ChangeKind.WEIGHTS_CHANGED:
        return f"weights changed{detail}"
    if kind is ChangeKind.FROZEN_WEIGHTS_CHANGED:
        return f"frozen as NEW loads, yet its weights changed{detail}"
    if kind is ChangeKind.WEIGHTS_NOT_COMPARED:
        return f"weights not compared{detail}"
    return f"{before:,} -> {after:,} unique params{detail}"


def _side(report: ModelReport) -> dict[str, Any]:
    return {"file": report.file.path, "format": report.file.format, "keras_version": report.file.keras_version,
            "params": report.summary.unique_params}


def diff_to_dict(diff: ModelDiff) -> dict[str, Any]:
    """The JSON document of a diff (schema ``keras_share/schema/diff-v1.json``)."""
    return {
        "schema_version": DIFF_SCHEMA_VERSION,
        "tool": {"name": "keras-share", "version": __version__},
        "old": _side(diff.old),
        "new": _side(diff.new),
        "changed": diff.changed,
        "params_delta": diff.params_delta,
        "changes": [{"kind": change.kind, "path": change.path, "matters": change.matters, "before": change.before,
                     "after": change.after, "detail": change.detail} for change in diff.changes],
        "unchanged_weights": list(diff.unchanged_weights),
        "notes": list(diff.notes),
    }


def diff_to_json(diff: ModelDiff) -> str:
    """``diff_to_dict`` as JSON text: indented to the change level, one line per change."""
    return dumps_outlined(diff_to_dict(diff), depth=2) + "\n"


def _verdict(diff: ModelDiff) -> str:
    mattering = sum(change.matters for change in diff.changes)
    if not mattering:
        return "nothing that matters changed"
    return f"changed: {counted(mattering, 'change')} that {'matters' if mattering == 1 else 'matter'}"


def _weights_line(diff: ModelDiff) -> str:
    changed = sum(change.kind in (ChangeKind.WEIGHTS_CHANGED, ChangeKind.FROZEN_WEIGHTS_CHANGED)
                  for change in diff.changes)
    unknown = sum(change.kind is ChangeKind.WEIGHTS_NOT_COMPARED for change in diff.changes)
    return (f"weights: {counted(len(diff.unchanged_weights), 'layer')} unchanged, {changed} changed"
            + (f", {unknown} not compared" if unknown else "")
            + f"; params {diff.old.summary.unique_params:,} -> {diff.new.summary.unique_params:,} "
              f"({diff.params_delta:+,})")


def _more(diff: ModelDiff) -> list[str]:
    """The line saying how many changes a human format left out, if it left any."""
    left = len(diff.changes) - SHOWN_CHANGES
    return [f"and {counted(left, 'more change')} (--format json lists them all)"] if left > 0 else []


class DiffFormatter(ABC):
    """Turns a diff into text."""

    @abstractmethod
    def format(self, diff: ModelDiff) -> str:
        """The whole output."""


class JsonDiffFormatter(DiffFormatter):
    """``diff_to_json``."""

    def format(self, diff: ModelDiff) -> str:
        return diff_to_json(diff)


class MarkdownDiffFormatter(DiffFormatter):
    """A heading, a table of changes and the weights line: for a pull-request comment."""

    def format(self, diff: ModelDiff) -> str:
        def side(report: ModelReport) -> str:
            version = f", Keras {markdown_text(report.file.keras_version)}" if report.file.keras_version else ""
            return f"{markdown_code(report.file.path)} ({report.file.format}{version})"

        out = ["# keras-share diff", "", f"{side(diff.old)} → {side(diff.new)}", "",
               f"**{_verdict(diff)}**", ""]
        if diff.changes:
            out += ["| change | layer | what | matters |", "|---|---|---|---|"]
            cell: Quote = lambda text: markdown_code(text, in_table=True)  # noqa: E731
            for change in diff.changes[:SHOWN_CHANGES]:
                layer = cell(change.path) if change.path else "(model)"
                out.append(f"| {change.kind} | {layer} | {describe(change, cell)} | {'yes' if change.matters else 'no'} |")
            out += ["", *(line for more in _more(diff) for line in (more, ""))]
        out += [_weights_line(diff), ""]
        if diff.notes:
            out += ["**Notes** (what could not be read or compared)", ""]
            out += [f"- {markdown_text(note)}" for note in diff.notes] + [""]
        return "\n".join(out)


_STYLES = {ChangeKind.LAYER_ADDED: "green", ChangeKind.LAYER_REMOVED: "red", ChangeKind.SHARING_LOST: "bold red",
           ChangeKind.FROZEN_WEIGHTS_CHANGED: "bold red", ChangeKind.WEIGHTS_NOT_COMPARED: "dim"}


class TerminalDiffFormatter(DiffFormatter):
    """A table of changes for a terminal: colour only when asked for."""

    def __init__(self, color: bool = False, width: int | None = None) -> None:
        self.color = color
        self.width = width

    def format(self, diff: ModelDiff) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=self.color, no_color=not self.color,
                          width=self.width or 80, highlight=False, emoji=False)
        for label, report in (("OLD", diff.old), ("NEW", diff.new)):
            version = f", Keras {visible(report.file.keras_version)}" if report.file.keras_version else ""
            console.print(Text(f"{label} {visible(report.file.path)} ({report.file.format}{version})", style="bold"))
        if diff.changes:
            table = Table(title="Changes", title_justify="left")
            table.add_column("change", no_wrap=True)
            table.add_column("layer", overflow="fold")
            table.add_column("what", overflow="fold")
            for change in diff.changes[:SHOWN_CHANGES]:
                table.add_row(Text(str(change.kind), style=_STYLES.get(change.kind, "yellow")),
                              Text(visible(change.path) or "(model)"), Text(describe(change, visible)))
            console.print(table)
            for line in _more(diff):
                console.print(Text(line, style="dim"))
        console.print(Text(_weights_line(diff)))
        console.print(Text(_verdict(diff), style="bold red" if diff.changed else "green"))
        for note in diff.notes:
            console.print(Text(f"note: {visible(note)}", style="dim"))
        return buffer.getvalue()


def diff_formatter(output_format: OutputFormat, color: bool = False, width: int | None = None) -> DiffFormatter:
    """The formatter of one of ``DIFF_FORMATS``."""
    if output_format is OutputFormat.JSON:
        return JsonDiffFormatter()
    if output_format is OutputFormat.MARKDOWN:
        return MarkdownDiffFormatter()
    return TerminalDiffFormatter(color, width)
