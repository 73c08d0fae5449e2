"""``--format dot``: the layer graph as Graphviz DOT; ``--format svg`` runs Graphviz's ``dot`` on it."""

from __future__ import annotations

import shutil
import subprocess

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter, RenderError
from keras_share.render.escape import dot_text
from keras_share.render.picture import Cluster, Node, Picture, cluster_title, node_lines, pictures
from keras_share.vocabulary import LayerKind, Severity

_FINDING_COLOR = {Severity.INFO: "#0891b2", Severity.WARNING: "#d97706", Severity.ERROR: "#dc2626"}
DOT_TIMEOUT_SECONDS = 60
"""How long ``dot`` may take to lay out a graph before ``--format svg`` gives up."""
DOT_MISSING = ("--format svg needs Graphviz's dot program, which is not installed: apt-get install graphviz "
               "(Debian/Ubuntu package graphviz), or use --format html, which needs nothing")


def _quoted(*lines: str) -> str:
    """A DOT string of ``lines``, each escaped, joined by Graphviz's own line break (``\\n``)."""
    return '"' + "\\n".join(dot_text(line) for line in lines) + '"'


def _node_style(node: Node) -> str:
    fill = "#fde68a" if node.shared else "#e5e7eb" if node.frozen else "#f0f9ff" if node.kind is LayerKind.INPUT \
        else "white"
    attributes = [f"label={_quoted(*node_lines(node))}", f'fillcolor="{fill}"']
    if node.frozen:
        attributes.append('style="filled,dashed"')
    if node.severity is not None:
        attributes += [f'color="{_FINDING_COLOR[node.severity]}"', "penwidth=3"]
    return ", ".join(attributes)


def _cluster_style(cluster: Cluster) -> list[str]:
    lines = [f"label={_quoted(cluster_title(cluster))}"]
    if cluster.shared:
        lines.append('style="rounded,filled"; fillcolor="#fef3c7"')
    elif cluster.frozen:
        lines.append('style="rounded,filled,dashed"; fillcolor="#f3f4f6"')
    else:
        lines.append('style="rounded"')
    if cluster.severity is not None:
        lines.append(f'color="{_FINDING_COLOR[cluster.severity]}"; penwidth=3')
    return lines


def _model_lines(drawn: Picture, indent: str) -> list[str]:
    if drawn.note is not None:
        return [f"{indent}{drawn.prefix}note [label={_quoted(drawn.note)}, shape=note];"]
    out: list[str] = []

    def place(cluster: str | None, depth: str) -> None:
        for node in drawn.members_of(cluster):
            out.append(f"{depth}{node.id} [{_node_style(node)}];")
        for inner in drawn.clusters_in(cluster):
            out.append(f"{depth}subgraph cluster_{inner.id} {{")
            out.extend(f"{depth}  {line};" for line in _cluster_style(inner))
            place(inner.id, depth + "  ")
            out.append(f"{depth}}}")

    place(None, indent)
    for edge in drawn.edges:
        label = f" [label={_quoted(edge.label)}]" if edge.label else ""
        out.append(f"{indent}{edge.source} -> {edge.target}{label};")
    for tie in drawn.ties:
        (first, tail), (second, head) = _anchor(drawn, tie.first), _anchor(drawn, tie.second)
        ends = (f", ltail=cluster_{tail}" if tail else "") + (f", lhead=cluster_{head}" if head else "")
        out.append(f'{indent}{first} -> {second} [label={_quoted(tie.label)}, style=dashed, dir=none, '
                   f'constraint=false, color="#7c3aed"{ends}];')
    return out


def _anchor(drawn: Picture, element: str) -> tuple[str, str]:
    """The node an edge to ``element`` is drawn to, and the cluster it is clipped at when ``element`` is a
    nested model (Graphviz links nodes only: ``lhead``/``ltail`` make it end at the cluster)."""
    if element not in drawn.clusters:
        return element, ""
    clusters = [element]
    while clusters:
        inside = clusters.pop(0)
        nodes = drawn.members_of(inside)
        if nodes:
            return nodes[0].id, element
        clusters += [cluster.id for cluster in drawn.clusters_in(inside)]
    return element, ""  # a cluster always holds a node: its model has layers


def dot(drawings: list[Picture]) -> str:
    """One digraph of every picture: each model in a cluster titled with its file when there are several."""
    out = ["digraph keras_share {", "  rankdir=TB;", '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
           '  edge [fontname="Helvetica", fontsize=10];', "  compound=true;"]
    if len(drawings) == 1:
        out += _model_lines(drawings[0], "  ")
    for drawn in drawings if len(drawings) > 1 else []:
        out += [f"  subgraph cluster_{drawn.prefix} {{", f"    label={_quoted(drawn.title)};"]
        out += _model_lines(drawn, "    ")
        out.append("  }")
    return "\n".join(out + ["}"]) + "\n"


class DotFormatter(Formatter):
    """The layer graph of every model as one Graphviz digraph."""

    def __init__(self, expand: bool = False) -> None:
        self.expand = expand

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        return dot(pictures(reports, self.expand))


def dot_program() -> str | None:
    """Where Graphviz's ``dot`` is, None when it is not installed."""
    return shutil.which("dot")


class SvgFormatter(DotFormatter):
    """The DOT graph laid out and drawn by Graphviz's ``dot`` (given on stdin, never through a shell)."""

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        program = dot_program()
        if program is None:
            raise RenderError(DOT_MISSING)
        source = super().format(reports, errors)
        try:
            done = subprocess.run([program, "-Tsvg"], input=source, capture_output=True, text=True,
                                  timeout=DOT_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise RenderError(f"dot took more than {DOT_TIMEOUT_SECONDS} s to draw the graph: use --format html, "
                              "or --format dot and lay it out yourself") from None
        except OSError as error:
            raise RenderError(f"dot could not run: {error.strerror or error}") from None
        if done.returncode != 0:
            first_line = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise RenderError(f"dot failed (exit {done.returncode}): {first_line}")
        return done.stdout
