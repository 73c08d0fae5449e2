"""``--format html``: one self-contained page per run: the header, the shared layers, the findings with their
rules' docs, and the layer graph as inline SVG (laid out by ``render/layout.py``).

Nothing on the page loads from anywhere: CSS, script and SVG are inline, and a Content-Security-Policy forbids
every fetch, so the page opens the same offline. Every string from a file goes through ``html_text``; the ids
in the SVG and the script are generated (``m0n3``), never names.
"""

from __future__ import annotations

from collections import defaultdict

from keras_share.analysis.report import Finding, ModelReport, RuleInfo
from keras_share.errors import ReadError
from keras_share.render.base import Formatter, inner_layers, summary_line
from keras_share.render.escape import html_text
from keras_share.render.layout import GAP_Y, LINE_HEIGHT, NODE_PADDING, Box, layout, shown
from keras_share.render.picture import Picture, cluster_lines, cluster_title, node_lines, picture
from keras_share.render.terminal import format_shape, known_input_shapes
from keras_share.vocabulary import LayerKind

SHOWN_CALL_SHAPES = 20
"""Calls whose input shapes a table cell lists."""

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#111}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;word-break:break-all}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
tr.hl td{background:#fde68a}code{background:#f3f4f6;padding:0 3px;word-break:break-all}
.sev-error{color:#dc2626;font-weight:bold}.sev-warning{color:#d97706;font-weight:bold}.sev-info{color:#0891b2}
.graph{border:1px solid #ddd;overflow:auto;max-height:85vh;background:#fff}
.tools button{margin-right:4px}
svg text{font:12px monospace;fill:#111}
.node rect{fill:#fff;stroke:#555}.node.input rect{fill:#f0f9ff;stroke:#0369a1}
.node.frozen rect{fill:#e5e7eb;stroke-dasharray:4 3}.node.shared rect{fill:#fde68a;stroke:#b45309;stroke-width:2}
.f-info>rect{stroke:#0891b2!important;stroke-width:3!important}
.f-warning>rect{stroke:#d97706!important;stroke-width:3!important}
.f-error>rect{stroke:#dc2626!important;stroke-width:4!important}
.cluster>rect{fill:#f9fafb;stroke:#9ca3af;rx:8}.cluster.shared>rect{fill:#fef3c7;stroke:#b45309}
.cluster.frozen>rect{fill:#f3f4f6;stroke-dasharray:5 3}
.ctitle{cursor:pointer;font-weight:bold}.ctitle rect{fill:transparent;stroke:none}.cluster.collapsed>.inside{display:none}
.cluster.collapsed>rect{fill:#e5e7eb}
.edge{fill:none;stroke:#6b7280;stroke-width:1.2}.edge.call{stroke:#b45309}
.tie{fill:none;stroke:#7c3aed;stroke-dasharray:6 4}
.el{font-size:10px!important;fill:#92400e!important}
.hl>rect{stroke:#dc2626!important;stroke-width:4!important}
path.hl{stroke:#dc2626!important;stroke-width:3!important}text.hl{fill:#dc2626!important;font-weight:bold}
"""

_SCRIPT = """
(function () {
  var groups = {};
  document.querySelectorAll('[data-g]').forEach(function (element) {
    element.getAttribute('data-g').split(' ').forEach(function (group) {
      (groups[group] = groups[group] || []).push(element);
    });
  });
  function mark(element, on) {
    element.getAttribute('data-g').split(' ').forEach(function (group) {
      (groups[group] || []).forEach(function (other) { other.classList.toggle('hl', on); });
    });
  }
  document.addEventListener('mouseover', function (event) {
    var element = event.target.closest && event.target.closest('[data-g]');
    if (element) { mark(element, true); }
  });
  document.addEventListener('mouseout', function (event) {
    var element = event.target.closest && event.target.closest('[data-g]');
    if (element) { mark(element, false); }
  });
  document.querySelectorAll('.ctitle').forEach(function (title) {
    title.addEventListener('click', function () { title.parentNode.classList.toggle('collapsed'); });
  });
  document.querySelectorAll('.tools').forEach(function (tools) {
    var svg = tools.nextElementSibling.querySelector('svg');
    var width = +svg.getAttribute('width'), height = +svg.getAttribute('height'), scale = 1;
    function zoom(factor) {
      scale = factor ? scale * factor : Math.min(1, tools.nextElementSibling.clientWidth / width);
      svg.setAttribute('width', width * scale); svg.setAttribute('height', height * scale);
    }
    tools.querySelectorAll('button').forEach(function (button) {
      button.addEventListener('click', function () { zoom(+button.getAttribute('data-zoom')); });
    });
  });
})();
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _text_lines(box: Box, lines: list[str]) -> str:
    return "".join(
        f'<text x="{box.x + NODE_PADDING:.0f}" y="{box.y + NODE_PADDING / 2 + LINE_HEIGHT * (number + 1) - 3:.0f}">'
        f"{html_text(shown(line))}</text>"
        for number, line in enumerate(lines))


class _Svg:
    """The SVG of one picture: clusters nest as groups (collapsing one hides its inside), each edge drawn in the
    innermost cluster holding both its ends."""

    def __init__(self, drawn: Picture) -> None:
        self.drawn = drawn
        self.layout = layout(drawn)
        self.called = {group for edge in drawn.edges for group in edge.groups}
        self.parent: dict[str, str | None] = {node.id: node.cluster for node in drawn.nodes.values()}
        self.parent.update({cluster.id: cluster.parent for cluster in drawn.clusters.values()})
        self.edges_in: dict[str | None, list[str]] = defaultdict(list)
        self._draw_edges()

    def _ancestors(self, element: str) -> list[str | None]:
        chain: list[str | None] = []
        current: str | None = self.parent.get(element)
        while current is not None and len(chain) <= len(self.parent):
            chain.append(current)
            current = self.parent.get(current)
        return [*chain, None]

    def _common(self, first: str, second: str) -> str | None:
        theirs = set(self._ancestors(second))
        return next((cluster for cluster in self._ancestors(first) if cluster in theirs), None)

    def _draw_edges(self) -> None:
        boxes = self.layout.boxes
        parallel: dict[tuple[str, str], int] = defaultdict(int)
        for edge in self.drawn.edges:
            parallel[edge.source, edge.target] += 1
        seen: dict[tuple[str, str], int] = defaultdict(int)
        sides = 0
        for edge in self.drawn.edges:
            source, target = boxes[edge.source], boxes[edge.target]
            pair = (edge.source, edge.target)
            spread = (seen[pair] - (parallel[pair] - 1) / 2)
            offset = spread * 20
            stagger = (seen[pair] + 1) / (parallel[pair] + 1)
            seen[pair] += 1
            if source.y + source.height <= target.y <= source.y + source.height + 2 * GAP_Y:  # the next row down
                x1, y1, x2, y2 = source.center, source.y + source.height, target.center, target.y
                bend = max((y2 - y1) / 2, 20)
                path = f"M{x1:.0f},{y1:.0f} C{x1 + offset:.0f},{y1 + bend:.0f} {x2 + offset:.0f},{y2 - bend:.0f} {x2:.0f},{y2:.0f}"
                label_x, label_y = (x1 + x2) / 2 + offset + 4, y1 + 12 + (y2 - y1 - 12) * stagger / 2
            else:  # past other rows, or back up: an arc out to the right, wider the farther it goes
                x1, y1 = source.x + source.width, source.y + source.height / 2
                x2, y2 = target.x + target.width, target.y + target.height / 2
                sides += 1
                reach = max(x1, x2) + 30 + min(abs(y2 - y1) * 0.15, 300) + (sides % 8) * 7
                path = f"M{x1:.0f},{y1:.0f} C{reach:.0f},{y1:.0f} {reach:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
                label_x, label_y = (x1 + reach) / 2, y1 - 4 + offset
            groups = f' data-g="{" ".join(edge.groups)}"' if edge.groups else ""
            css = "edge call" if edge.groups else "edge"
            drawn = f'<path class="{css}" d="{path}" marker-end="url(#{self.drawn.prefix}arrow)"{groups}/>'
            if edge.label:
                drawn += (f'<text class="el" x="{label_x:.0f}" y="{label_y:.0f}"{groups}>'
                          f"{html_text(edge.label)}</text>")
            self.edges_in[self._common(edge.source, edge.target)].append(drawn)
        for tie in self.drawn.ties:
            first, second = boxes[tie.first], boxes[tie.second]
            path = f"M{first.center:.0f},{first.y:.0f} L{second.center:.0f},{second.y:.0f}"
            self.edges_in[self._common(tie.first, tie.second)].append(
                f'<path class="tie" d="{path}"><title>{html_text(tie.label)}</title></path>')

    def _inside(self, cluster: str | None) -> str:
        out = []
        for node in self.drawn.members_of(cluster):
            box = self.layout.boxes[node.id]
            classes = ["node", "shared" if node.shared else "", "frozen" if node.frozen else "",
                       "input" if node.kind is LayerKind.INPUT else "",
                       f"f-{node.severity}" if node.severity is not None else ""]
            groups = f' data-g="{node.id}"' if node.shared or node.id in self.called else ""
            tooltip = "\n".join([*node.members[:12], *([f"and {len(node.members) - 12} more"]
                                                      if len(node.members) > 12 else [])])
            out.append(
                f'<g id="{node.id}" class="{" ".join(filter(None, classes))}"{groups}>'
                f"<title>{html_text(tooltip)}</title>"
                f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.width:.0f}" height="{box.height:.0f}" rx="4"/>'
                f"{_text_lines(box, node_lines(node))}</g>")
        for inner in self.drawn.clusters_in(cluster):
            box = self.layout.boxes[inner.id]
            classes = ["cluster", "shared" if inner.shared else "", "frozen" if inner.frozen else "",
                       f"f-{inner.severity}" if inner.severity is not None else ""]
            groups = f' data-g="{inner.id}"' if inner.shared or inner.id in self.called else ""
            title = Box(box.x, box.y + 2, box.width, LINE_HEIGHT)
            out.append(
                f'<g id="{inner.id}" class="{" ".join(filter(None, classes))}"{groups}>'
                f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.width:.0f}" height="{box.height:.0f}"/>'
                f"<g class='ctitle'><title>{html_text(cluster_title(inner))} (click to fold)</title>"
                f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.width:.0f}" '
                f'height="{LINE_HEIGHT * len(cluster_lines(inner)) + 6:.0f}"/>'
                f"{_text_lines(title, cluster_lines(inner))}</g>"
                f'<g class="inside">{self._inside(inner.id)}</g></g>')
        return "".join(out + self.edges_in.get(cluster, []))

    def svg(self) -> str:
        width, height = self.layout.width + 80, self.layout.height + 20
        arrow = (f'<defs><marker id="{self.drawn.prefix}arrow" viewBox="0 0 10 10" refX="10" refY="5" '
                 'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
                 'fill="#6b7280"/></marker></defs>')
        return (f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="-10 -10 {width:.0f} {height:.0f}" '
                f'role="img">{arrow}{self._inside(None)}</svg>')


def _shared_table(report: ModelReport, ids: dict[str, str]) -> list[str]:
    if not report.shared_rows:
        return ["<p>No layer is applied more than once.</p>"]
    out = [("<table class='shared'><tr><th>layer</th><th>class</th><th>calls</th><th>effective</th>"
            "<th>trains</th><th>input shapes per call</th></tr>")]
    for row in report.shared_rows:
        layer = row.layer
        name = f"<code>{html_text(layer.path)}</code>"
        if layer.is_model:
            count = len(inner_layers(report, row))
            name += f" ({count} layer{'s' if count != 1 else ''})"
        shapes = "; ".join(f"#{call.index}: " + ", ".join(format_shape(shape) for shape in known_input_shapes(row, call))
                           for call in layer.call_sites[:SHOWN_CALL_SHAPES])
        if layer.calls > SHOWN_CALL_SHAPES:
            shapes += f"; and {layer.calls - SHOWN_CALL_SHAPES:,} more calls"
        group = ids.get(layer.path)
        data = f' data-g="{group}"' if group else ""
        out.append(f"<tr class='shared-row'{data}><td>{name}</td><td>{html_text(layer.class_name)}</td>"
                   f"<td>{layer.calls}</td><td>{row.effective_calls}</td>"
                   f"<td>{'yes' if row.trainable else 'frozen'}</td><td>{html_text(shapes) or '-'}</td></tr>")
    return [*out, "</table>"]


def _findings(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["<p>No findings.</p>"]
    out = ["<ul class='findings'>"]
    for finding in findings:
        where = f"<code>{html_text(finding.layer)}</code>: " if finding.layer else ""
        out.append(f"<li><span class='sev-{finding.severity}'>{finding.severity}</span> "
                   f"<a href='#rule-{finding.rule_info.anchor}'>{html_text(finding.rule)} {html_text(finding.name)}</a> "
                   f"{where}{html_text(finding.message)}</li>")
    return [*out, "</ul>"]


def _rule_docs(rules: list[RuleInfo]) -> list[str]:
    out = []
    for rule in rules:
        out.append(
            f"<details id='rule-{rule.anchor}'><summary><b>{html_text(rule.code)} {html_text(rule.name)}</b> "
            f"({rule.severity}): {html_text(rule.summary)}</summary>"
            f"<h4>Why is this bad?</h4><p>{html_text(rule.why)}</p><h4>How to fix it</h4><p>{html_text(rule.fix)}</p>"
            f"<h4>Example</h4><pre>{_pre_text(rule.example.strip())}</pre></details>")
    return out


def _pre_text(text: str) -> str:
    """Several lines for a ``<pre>``: each line escaped as ``html_text``, the line breaks kept."""
    return "\n".join(html_text(line) for line in text.split("\n"))


def _model_section(report: ModelReport, number: int, expand: bool) -> list[str]:
    drawn = picture(report, f"m{number}", expand)
    version = f", saved by Keras {html_text(report.file.keras_version)}" if report.file.keras_version else ""
    out = [f"<section id='model-{number}'><h2>{html_text(report.file.path)}</h2>",
           f"<p>{report.file.format}{version}: {html_text(summary_line(report))}</p>", "<h3>Shared layers</h3>",
           *_shared_table(report, drawn.ids), "<h3>Findings</h3>", *_findings(report.findings)]
    if report.notes:
        out += ["<h3>Notes</h3><ul>", *(f"<li>{html_text(note)}</li>" for note in report.notes), "</ul>"]
    out.append("<h3>Layer graph</h3>")
    if drawn.note is not None:
        out.append(f"<p>{html_text(drawn.note)}</p>")
    else:
        out += [("<p>Each layer is drawn once; the edges of a layer that runs more than once are numbered with its "
                 "calls (hover it to see them all). Click a nested model's title to fold it.</p>"),
                ("<div class='tools'><button data-zoom='0.5'>−</button><button data-zoom='2'>+</button>"
                 "<button data-zoom='0'>fit</button></div>"),
                f"<div class='graph'>{_Svg(drawn).svg()}</div>"]
    return [*out, "</section>"]


class HtmlFormatter(Formatter):
    """One page for the whole run."""

    for_people = True

    def __init__(self, expand: bool = False) -> None:
        self.expand = expand

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        rules = {finding.rule: finding.rule_info for report in reports for finding in report.findings}
        body = ["<h1>keras-share report</h1>"]
        for number, report in enumerate(reports):
            body += _model_section(report, number, self.expand)
        if rules:
            body += ["<h2>Rules</h2>", *_rule_docs([rules[code] for code in sorted(rules)])]
        if errors:
            body += ["<h2>Unreadable inputs</h2><ul>",
                     *(f"<li><code>{html_text(error.path)}</code>: {html_text(error.problem)}</li>" for error in errors),
                     "</ul>"]
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
                "<meta name='viewport' content='width=device-width'><title>keras-share report</title>"
                f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) +
                f"\n<script>{_SCRIPT}</script></body></html>\n")
