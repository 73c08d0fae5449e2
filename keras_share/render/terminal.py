"""``--format rich``: a readable terminal report (tables and a nesting tree) built with rich."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

from rich.cells import cell_len, get_character_cell_size
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from keras_share.analysis.report import LayerReport, ModelReport
from keras_share.analysis.shapes import CallShapes
from keras_share.errors import ReadError
from keras_share.graph.model import CallSite, Shape
from keras_share.graph.nodes import as_shape
from keras_share.read.base import WeightArray
from keras_share.render.base import Formatter, counted, inner_layers, preset_lines, summary_line
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
SHOWN_WEIGHTS = 4
"""Weight arrays a table cell lists one per line; a longer list is one line: its count and total params."""

_PIECE = re.compile(r"[^/ ]+[/ ]*|[/ ]+")
"""A run of text up to and including the ``/`` or spaces after it: where a name may wrap."""


class Wrapped:
    """Lines of text (each with a style) that wrap only after a ``/`` or a space, never inside a name; a single
    name wider than the whole cell is folded, as a last resort."""

    def __init__(self, *lines: tuple[str, str]) -> None:
        self.lines = [(_PIECE.findall(text) or [""], style) for text, style in lines]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        pieces = [cell_len(piece.rstrip(" ")) for line, _ in self.lines for piece in line]
        widest = max((sum(map(cell_len, line)) for line, _ in self.lines), default=0)
        return Measurement(max(pieces, default=0), widest).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        width = max(options.max_width, 1)
        out = Text(no_wrap=True, overflow="fold")
        for number, (pieces, style) in enumerate(self.lines):
            out.append(("\n" if number else "") + "\n".join(_rows(pieces, width)), style=style)
        yield out


def _rows(pieces: list[str], width: int) -> list[str]:
    """``pieces`` packed into rows at most ``width`` cells wide (trailing spaces aside), breaking only between
    pieces; a piece wider than a row is folded. Linear in the length of the text."""
    rows: list[str] = []
    row, row_width = "", 0
    for piece in pieces:
        piece_width = cell_len(piece.rstrip(" "))
        if row and row_width + piece_width > width:
            rows.append(row.rstrip(" "))
            row, row_width = "", 0
        if piece_width <= width:
            row, row_width = row + piece, row_width + cell_len(piece)
            continue
        cut = (len(piece) - 1) // width * width if piece.isascii() else 0  # ASCII: one cell per character
        rows.extend(piece[start:start + width] for start in range(0, cut, width))
        chunk, chunk_width = "", 0
        for character in piece[cut:]:
            size = get_character_cell_size(character)
            if chunk and chunk_width + size > width:
                rows.append(chunk)
                chunk, chunk_width = "", 0
            chunk, chunk_width = chunk + character, chunk_width + size
        row, row_width = chunk, chunk_width
    rows.append(row.rstrip(" "))
    return rows


LAYER_COLUMN_SHARE = 4
WEIGHTS_COLUMN_SHARE = 5
"""The layer and weights columns are as wide as their longest line up to 1/4 and 1/5 of the width, and never
narrower than their longest name (one ``/``-separated part): a name is split only when the table cannot fit."""


def _names_width(texts: list[str], share: int) -> int:
    """The width of a column of ``texts`` that wrap at ``/`` and spaces: their longest line, at most ``share``
    unless one name (a ``/``-separated part) is wider."""
    lines = [visible(text) for text in texts]
    widest_name = max((cell_len(piece.rstrip(" ")) for line in lines for piece in _PIECE.findall(line)), default=1)
    return min(max(map(cell_len, lines), default=1), max(widest_name, share))


def _weight_lines(arrays: list[WeightArray]) -> list[str]:
    """One line per array (``kernel 8x4``), or one line for the whole list when it is longer than ``SHOWN_WEIGHTS``."""
    if len(arrays) > SHOWN_WEIGHTS:
        return [_array_total(arrays)]
    return [f"{visible(array.name)} {'x'.join(map(str, array.shape)) or 'scalar'}" for array in arrays] or ["-"]


def _array_total(arrays: list[WeightArray]) -> str:
    """``36 arrays, 152,800 params``."""
    return f"{len(arrays):,} array{'s' if len(arrays) != 1 else ''}, {sum(array.size for array in arrays):,} params"


def _calls(report: LayerReport) -> Wrapped:
    text = f"{report.layer.calls}"
    if report.effective_calls != report.layer.calls:
        text += f" (x{report.effective_calls})"
    if report.unreachable_calls:
        text += f"\n{_unreachable(report)}"
    if report.same_as:
        shown = ", ".join(map(visible, report.same_as[:SHOWN_PLACES]))
        hidden = len(report.same_as) - SHOWN_PLACES
        text += f"\n+ {shown}" + (f" and {hidden:,} more" if hidden > 0 else "")
    return Wrapped(*((line, "") for line in text.split("\n")))


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
        known = _known_shapes(report, call.index)
        inputs = known_input_shapes(report, call)
        shapes = ", ".join(format_shape(shape) for shape in inputs[:SHOWN_PER_CELL]) or "?"
        more = len(call.inputs) - SHOWN_PER_CELL
        output = f" -> {_format_outputs(known.outputs)}" if known is not None else ""
        lines.append(f"#{call.index}: {shapes}" + (f" and {more:,} more inputs" if more > 0 else "") + output)
    hidden = len(report.layer.call_sites) - SHOWN_PER_CELL
    if hidden > 0:
        lines.append(f"and {hidden:,} more calls (--format json lists them all)")
    return "\n".join(lines) or "-"


def _known_shapes(report: LayerReport, index: int) -> CallShapes | None:
    return report.call_shapes[index] if index < len(report.call_shapes) else None


def known_input_shapes(report: LayerReport, call: CallSite) -> list[Shape | None]:
    """A call's input shapes: stored in the file, else inferred, else None."""
    known = _known_shapes(report, call.index)
    return known.inputs if known is not None else call.input_shapes


def _format_outputs(outputs: list[Shape | None] | None) -> str:
    """``(None, 4)`` for one output tensor, ``[(None, 4), (None, 4)]`` for several, ``?`` when unknown."""
    if outputs is None or not outputs:
        return "?"
    if len(outputs) == 1:
        return format_shape(outputs[0])
    shown = ", ".join(format_shape(shape) for shape in outputs[:SHOWN_PER_CELL])
    return f"[{shown}{', ...' if len(outputs) > SHOWN_PER_CELL else ''}]"


def _output_shapes(report: LayerReport) -> str:
    """A layer's output shape for the tree: one when every call gives the same, else one per call."""
    if report.layer.kind == LayerKind.INPUT:
        declared = as_shape(report.layer.config.get("batch_shape", report.layer.config.get("batch_input_shape")))
        return format_shape(declared)
    texts = [_format_outputs(known.outputs if known is not None else None) for known in report.call_shapes]
    if not texts:
        return ""
    if len(set(texts)) == 1:
        return texts[0]
    shown = ", ".join(f"#{index}: {text}" for index, text in enumerate(texts[:SHOWN_CALL_INDICES]))
    return shown + (f" and {len(texts) - SHOWN_CALL_INDICES:,} more" if len(texts) > SHOWN_CALL_INDICES else "")


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
    text.append(summary_line(report))
    if summary.optimizer_arrays:
        text.append(f", {summary.optimizer_arrays} optimizer arrays")
    if summary.trainable_params is not None and summary.non_trainable_params is not None:
        text.append(f"\nas loaded: {summary.trainable_params:,} trainable, {summary.non_trainable_params:,} "
                    "non-trainable params")
    return text


def _name_and_weights(report: ModelReport, layer: LayerReport) -> tuple[list[tuple[str, str]], list[str]]:
    """The lines of a shared-layers row's layer cell (with their styles) and weights cell: a shared sub-model is
    one row, its layers counted and their arrays totalled."""
    if layer.layer.is_model:
        inner = inner_layers(report, layer)
        name = f"{visible(layer.layer.path)} ({len(inner)} layer{'s' if len(inner) != 1 else ''})"
        arrays = [array for inside in inner for array in inside.layer.weights]
        return [(name, ""), (f"{visible(layer.layer.class_name)} sub-model", "dim")], [_array_total(arrays)]
    names = [(visible(layer.layer.path), ""), (visible(layer.layer.class_name or layer.layer.name), "dim")]
    inside = [array for inner in report.shared_through(layer.layer.path) for array in inner.layer.weights]
    if inside and not layer.layer.weights:  # a layer of a KerasHub backbone whose sublayers hold its weights
        return names, [_array_total(inside)]
    return names, _weight_lines(layer.layer.weights)


def _shared_table(report: ModelReport, width: int) -> Table:
    shared = report.shared_rows
    cells = [_name_and_weights(report, layer) for layer in shared[:SHOWN_ROWS]]
    table = Table(title="Shared layers", title_justify="left", expand=False, show_lines=True)
    table.add_column("layer", width=_names_width([text for names, _ in cells for text, _ in names],
                                                 width // LAYER_COLUMN_SHARE))
    table.add_column("calls", justify="right", no_wrap=True)
    table.add_column("trains", no_wrap=True)
    table.add_column("input shapes -> output per call", overflow="fold")
    table.add_column("weights", width=_names_width([line for _, weights in cells for line in weights],
                                                   width // WEIGHTS_COLUMN_SHARE))
    for layer, (names, weights) in zip(shared, cells):
        table.add_row(Wrapped(*names), _calls(layer), _trainable(layer), _shapes(layer),
                      Wrapped(*((line, "") for line in weights)))
    if len(shared) > SHOWN_ROWS:
        table.caption = f"and {len(shared) - SHOWN_ROWS:,} more shared layers (--format json lists them all)"
    return table


def _layers_inside(report: ModelReport) -> dict[str, int]:
    """For each nested model: the layers inside it, at any depth (inputs and bare ops not counted)."""
    counts: dict[str, int] = {}
    for layer in reversed(report.layers):
        parent = layer.layer.parent or ""
        if parent:
            counts[parent] = counts.get(parent, 0) + counts.get(layer.layer.path, 0) + int(layer.layer.runs_on_tensors)
    return counts


def _tree(report: ModelReport) -> Tree:
    root = report.graph.root
    tree = Tree(Text(f"{visible(root.name)} ({visible(root.class_name)})", style="bold"))
    branches = {"": tree}
    counts = _layers_inside(report)
    for layer in report.layers:
        label = Text(f"{visible(layer.layer.name)} ", style="bold" if layer.layer.is_model else "")
        label.append(visible(layer.layer.class_name), style="dim")
        if layer.layer.is_model:
            count = counts.get(layer.layer.path, 0)
            label.append(f" ({count:,} layer{'s' if count != 1 else ''})" + (f" ×{layer.object_calls}" if layer.shared else ""))
        output = _output_shapes(layer)
        if output:
            label.append(f"  -> {output}")
        if layer.layer.kind != LayerKind.INPUT:
            label.append(f"  calls {layer.layer.calls}")
            if layer.effective_calls != layer.layer.calls:
                label.append(f" (x{layer.effective_calls})")
            if layer.unreachable_calls:
                label.append(f", {_unreachable(layer)}")
        if layer.shared:
            via = f" via {visible(layer.shared_via)}" if layer.shared_via is not None else ""
            label.append(f"  shared{via}", style="magenta")
        if layer.layer.weights or layer.layer.is_model:
            label.append("  trains" if layer.trainable else "  frozen", style="green" if layer.trainable else "blue")
        params = layer.unique_params
        if params:
            frozen = f" ({layer.non_trainable_params:,} non-trainable)" if layer.non_trainable_params and layer.trainable_params else ""
            label.append(f"  {params:,} params{frozen}", style="dim")
        parent = branches.get(layer.layer.parent or "", tree)
        branches[layer.layer.path] = parent.add(label)
    return tree


def _unattached(report: ModelReport) -> Table | None:
    groups = report.file.weights.unattached
    if not groups:
        return None
    table = Table(title="Weight groups not tied to a config layer", title_justify="left")
    table.add_column("group")
    table.add_column("arrays")
    table.add_column("params", justify="right")
    for group, arrays in groups.items():
        table.add_row(Wrapped((visible(group), "")), Wrapped(*((line, "") for line in _weight_lines(arrays))), f"{sum(array.size for array in arrays):,}")
    return table


def _transferred(report: ModelReport) -> Table | None:
    layers = [layer for layer in report.layers if layer.transferred_from is not None]
    if not layers:
        return None
    table = Table(title="Layers transferred from the base model", title_justify="left")
    table.add_column("layer")
    table.add_column("base layer")
    table.add_column("trains", no_wrap=True)
    for layer in layers:
        table.add_row(Wrapped((visible(layer.layer.path), "")), Wrapped((visible(layer.transferred_from or ""), "")),
                      _trainable(layer))
    return table


def render_model(report: ModelReport, all_layers: bool, width: int = 80) -> Group:
    """The renderables for one model, for a terminal ``width`` columns wide."""
    parts: list[RenderableType] = [_header(report)]
    parts.extend(Text(line, style="cyan") for line in preset_lines(report, visible))
    if report.graph.has_graph or report.graph.from_class_table:
        if report.shared_layers:
            parts.append(_shared_table(report, width))
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
    if report.in_baseline:
        parts.append(Text(f"{counted(len(report.in_baseline), 'finding')} in baseline (not counted)", style="dim"))
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
            console.print(render_model(report, self.all_layers, console.width))
        if errors:
            console.print(Text(f"{len(errors)} input(s) could not be read (see stderr)", style="red"))
        return buffer.getvalue()
