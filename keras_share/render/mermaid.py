"""``--format mermaid``: the layer graph as a Mermaid flowchart (GitHub renders it in Markdown)."""

from __future__ import annotations

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter
from keras_share.render.escape import mermaid_text
from keras_share.render.picture import Picture, cluster_title, node_lines, pictures
from keras_share.vocabulary import LayerKind, Severity

MAX_EDGES = 500
"""Mermaid's default ``maxEdges``: a bigger flowchart is refused by the renderer (GitHub's included)."""
MAX_TEXT = 50_000
"""Mermaid's default ``maxTextSize`` in characters."""

_CLASSES = (
    "classDef shared fill:#fde68a,stroke:#b45309,stroke-width:2px",
    "classDef frozen fill:#e5e7eb,stroke:#6b7280,stroke-dasharray:4 3",
    "classDef input fill:#f0f9ff,stroke:#0369a1",
    "classDef finding_info stroke:#0891b2,stroke-width:3px",
    "classDef finding_warning stroke:#d97706,stroke-width:3px",
    "classDef finding_error stroke:#dc2626,stroke-width:4px",
)


def _label(lines: list[str]) -> str:
    return '["' + "<br/>".join(mermaid_text(line) for line in lines) + '"]'


def _classes(element_id: str, shared: bool, frozen: bool, severity: Severity | None, is_input: bool = False) -> list[str]:
    names = [name for name, wanted in (("input", is_input), ("frozen", frozen), ("shared", shared)) if wanted]
    if severity is not None:
        names.append(f"finding_{severity}")
    return [f"  class {element_id} {name}" for name in names]


def _model_lines(drawn: Picture, indent: str) -> list[str]:
    out: list[str] = []
    styles: list[str] = []
    if drawn.note is not None:
        out.append(f"{indent}{drawn.prefix}note{_label([drawn.note])}")
        return out

    def place(cluster: str | None, depth: str) -> None:
        for node in drawn.members_of(cluster):
            out.append(f"{depth}{node.id}{_label(node_lines(node))}")
            styles.extend(_classes(node.id, node.shared, node.frozen, node.severity, node.kind is LayerKind.INPUT))
        for inner in drawn.clusters_in(cluster):
            out.append(f"{depth}subgraph {inner.id}{_label([cluster_title(inner)])}")
            place(inner.id, depth + "  ")
            out.append(f"{depth}end")
            styles.extend(_classes(inner.id, inner.shared, inner.frozen, inner.severity))

    place(None, indent)
    for edge in drawn.edges:
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        out.append(f"{indent}{edge.source} -->{label} {edge.target}")
    for tie in drawn.ties:
        out.append(f'{indent}{tie.first} -.-|"{mermaid_text(tie.label)}"| {tie.second}')
    return out + styles


def mermaid(drawings: list[Picture]) -> str:
    """One flowchart of every picture: each model in a subgraph titled with its file when there are several."""
    out = ["flowchart TB"]
    if len(drawings) == 1:
        out += _model_lines(drawings[0], "  ")
    for drawn in drawings if len(drawings) > 1 else []:
        out.append(f"  subgraph {drawn.prefix}{_label([drawn.title])}")
        out += _model_lines(drawn, "    ")
        out.append("  end")
    out += [f"  {line}" for line in _CLASSES]
    return "\n".join(out) + "\n"


def too_big(drawings: list[Picture], text: str) -> str | None:
    """Why Mermaid's renderer would refuse ``text`` (too many edges or characters), None when it would not."""
    edges = sum(len(drawn.edges) + len(drawn.ties) for drawn in drawings)
    if edges > MAX_EDGES:
        return f"{edges:,} edges, more than the {MAX_EDGES} Mermaid draws by default"
    if len(text) > MAX_TEXT:
        return f"{len(text):,} characters, more than the {MAX_TEXT:,} Mermaid reads by default"
    return None


class MermaidFormatter(Formatter):
    """The layer graph of every model as one Mermaid flowchart."""

    def __init__(self, expand: bool = False) -> None:
        self.expand = expand

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        return mermaid(pictures(reports, self.expand))
