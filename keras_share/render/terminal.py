"""``--format rich``: a readable terminal report (tables and a nesting tree) built with rich."""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from keras_share.analysis.report import LayerReport, ModelReport
from keras_share.errors import ReadError
from keras_share.graph.model import Shape
from keras_share.read.base import WeightArray
from keras_share.render.base import Formatter, summary_line
from keras_share.render.escape import visible
from keras_share.vocabulary import LayerKind, Severity

_SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def format_shape(shape: Shape | None) -> str:
    """``(None, 8)`` style, ``?`` when the file does not say."""
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + (",)" if len(shape) == 1 else ")")


SHOWN_PER_CELL = 20
"""Calls, inputs of a call, or weight arrays a table cell lists; the JSON report lists every one."""
SHOWN_PLACES = 5
"""Other paths of a layer object a table cell lists."""
SHOWN_CALL_INDICES = 3
"""Indices of the calls that reach no output a line lists; the JSON report lists every one."""
SHOWN_ROWS = 200
"""Shared layers the table lists (a terminal shows no more; a table takes time per row)."""


def _weights(arrays: list[WeightArray]) -> Text:
    lines = [f"{visible(array.name)} {'x'.join(map(str, array.shape)) or 'scalar'}" for array in arrays[:SHOWN_PER_CELL]]
    if len(arrays) > SHOWN_PER_CELL:
        lines.append(f"and {len(arrays) - SHOWN_PER_CELL:,} more arrays")
    return Text("\n".join(lines) or "-")


def _calls(report: LayerReport) -> Text:
    text = f"{report.layer.calls}"
    if report.effective_calls != report.layer.calls:
        text += f" (x{report.effective_calls})"
    if report.unreachable_calls:
        text += f"\n{_unreachable(report)}"
    if report.same_as:
        shown = ", ".join(map(visible, report.same_as[:SHOWN_PLACES]))
        hidden = len(report.same_as) - SHOWN_PLACES
        text += f"\n+ {shown}" + (f" and {hidden:,} more" if hidden > 0 else "")
    return Text(text)


def _unreachable(report: LayerReport) -> str:
    """``#1 reaches no output`` (the calls Keras leaves out of the model it rebuilds)."""
    indices = report.unreachable_calls
    shown = ", ".join(f"#{index}" for index in indices[:SHOWN_CALL_INDICES])
    more = f" and {len(indices) - SHOWN_CALL_INDICES:,} more" if len(indices) > SHOWN_CALL_INDICES else ""
    return f"{shown}{more} reach{'es' if len(indices) == 1 else ''} no output"


def _trainable(report: LayerReport) -> Text:
    if report.trainable:
        return Text("yes", style="green")
    return Text("frozen", style="blue")


def _shapes(report: LayerReport) -> str:
    lines = []
    for call in report.layer.call_sites[:SHOWN_PER_CELL]:
        shapes = ", ".join(format_shape(shape) for shape in call.input_shapes[:SHOWN_PER_CELL]) or "?"
        more = len(call.inputs) - SHOWN_PER_CELL
        lines.append(f"#{call.index}: {shapes}" + (f" and {more:,} more inputs" if more > 0 else ""))
    hidden = len(report.layer.call_sites) - SHOWN_PER_CELL
    if hidden > 0:
        lines.append(f"and {hidden:,} more calls (--format json lists them all)")
    return "\n".join(lines) or "-"


def _header(report: ModelReport) -> Text:
    file = report.file
    summary = report.summary
    root = report.graph.root
    text = Text()
    text.append(visible(file.path), style="bold")
    text.append(f"  {file.format}")
    if file.keras_version:
        text.append(f", saved by Keras {visible(file.keras_version)}")
    text.append("\n")
    if root.name or root.class_name:
        text.append(f"model {visible(root.name or '?')} ({visible(root.class_name or 'unknown class')})")
        if not report.graph.has_graph:
            text.append(" - no layer graph in this file", style="yellow")
        text.append("\n")
    text.append(summary_line(summary))
    if summary.optimizer_arrays:
        text.append(f", {summary.optimizer_arrays} optimizer arrays")
    return text


def _shared_table(report: ModelReport) -> Table:
    table = Table(title="Shared layers", title_justify="left", expand=False, show_lines=True)
    table.add_column("layer", overflow="fold", ratio=3)
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column("trains", no_wrap=True)
    table.add_column("input shapes per call", overflow="fold", ratio=3)
    table.add_column("weights", overflow="fold", ratio=2)
    shared = report.shared_layers
    for layer in shared[:SHOWN_ROWS]:
        name = Text(visible(layer.layer.path) + "\n")
        name.append(visible(layer.layer.class_name), style="dim")
        table.add_row(name, _calls(layer), _trainable(layer), _shapes(layer), _weights(layer.layer.weights))
    if len(shared) > SHOWN_ROWS:
        table.caption = f"and {len(shared) - SHOWN_ROWS:,} more shared layers (--format json lists them all)"
    return table


def _tree(report: ModelReport) -> Tree:
    root = report.graph.root
    tree = Tree(Text(f"{visible(root.name)} ({visible(root.class_name)})", style="bold"))
    branches = {"": tree}
    for layer in report.layers:
        label = Text(f"{visible(layer.layer.name)} ", style="bold" if layer.layer.is_model else "")
        label.append(visible(layer.layer.class_name), style="dim")
        if layer.layer.kind != LayerKind.INPUT:
            label.append(f"  calls {layer.layer.calls}")
            if layer.effective_calls != layer.layer.calls:
                label.append(f" (x{layer.effective_calls})")
            if layer.unreachable_calls:
                label.append(f", {_unreachable(layer)}")
        if layer.shared:
            label.append("  shared", style="magenta")
        if layer.layer.weights or layer.layer.is_model:
            label.append("  trains" if layer.trainable else "  frozen", style="green" if layer.trainable else "blue")
        params = layer.param_count
        if params:
            label.append(f"  {params:,} params", style="dim")
        parent = branches.get(layer.layer.parent or "", tree)
        branches[layer.layer.path] = parent.add(label)
    return tree


def _unattached(report: ModelReport) -> Table | None:
    groups = report.file.weights.unattached
    if not groups:
        return None
    table = Table(title="Weight groups not tied to a config layer", title_justify="left")
    table.add_column("group", overflow="fold")
    table.add_column("arrays", overflow="fold")
    table.add_column("params", justify="right")
    for group, arrays in groups.items():
        table.add_row(Text(visible(group)), _weights(arrays), f"{sum(array.size for array in arrays):,}")
    return table


def _transferred(report: ModelReport) -> Table | None:
    layers = [layer for layer in report.layers if layer.transferred_from is not None]
    if not layers:
        return None
    table = Table(title="Layers transferred from the base model", title_justify="left")
    table.add_column("layer", overflow="fold")
    table.add_column("base layer", overflow="fold")
    table.add_column("trains", no_wrap=True)
    for layer in layers:
        table.add_row(Text(visible(layer.layer.path)), Text(visible(layer.transferred_from or "")), _trainable(layer))
    return table


def render_model(report: ModelReport, all_layers: bool) -> Group:
    """The renderables for one model."""
    parts: list[RenderableType] = [_header(report)]
    if report.graph.has_graph:
        if report.shared_layers:
            parts.append(_shared_table(report))
        else:
            parts.append(Text("No layer is applied more than once.", style="green"))
        if all_layers:
            parts.append(_tree(report))
    for table in (_transferred(report), _unattached(report)):
        if table is not None:
            parts.append(table)
    for finding in report.findings:
        line = Text(f"{finding.severity} ", style=_SEVERITY_STYLE[finding.severity])
        line.append(f"{finding.rule} {finding.name}", style="bold")
        line.append(f" {visible(finding.layer) or '(model)'}: {visible(finding.message)}")
        parts.append(line)
    for note in report.notes:
        parts.append(Text(f"note: {visible(note)}", style="dim"))
    return Group(*parts)


class TerminalFormatter(Formatter):
    """The human report: colour only when asked for (a TTY without ``NO_COLOR``)."""

    for_people = True

    def __init__(self, all_layers: bool = False, color: bool = False, width: int | None = None) -> None:
        self.all_layers = all_layers
        self.color = color
        self.width = width

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=self.color, no_color=not self.color,
                          width=self.width or 80, highlight=False, emoji=False)
        for number, report in enumerate(reports):
            if number:
                console.rule(style="dim")
            console.print(render_model(report, self.all_layers))
        if errors:
            console.print(Text(f"{len(errors)} input(s) could not be read (see stderr)", style="red"))
        return buffer.getvalue()
