"""``--format markdown``: a report to paste into a pull request."""

from __future__ import annotations

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.render.base import Formatter, counted, inner_layers, preset_lines, summary_line
from keras_share.render.escape import markdown_code, markdown_text
from keras_share.render.mermaid import mermaid, too_big
from keras_share.render.picture import picture
from keras_share.render.terminal import format_shape, known_input_shapes
from keras_share.vocabulary import Severity

_ICONS = {Severity.ERROR: "🔴", Severity.WARNING: "🟠", Severity.INFO: "🔵"}


class MarkdownFormatter(Formatter):
    """A heading per model, a table of shared layers, a list of findings and the model's notes."""

    for_people = True

    def __init__(self, expand: bool = False) -> None:
        self.expand = expand

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        out = ["# keras-share report", ""]
        for number, report in enumerate(reports):
            version = f", Keras {markdown_text(report.file.keras_version)}" if report.file.keras_version else ""
            out += [f"## {markdown_code(report.file.path)}", "",
                    f"{report.file.format}{version}: {summary_line(report)}",
                    ""]
            if report.preset is not None:
                out += [f"- {line}" for line in preset_lines(report, markdown_text)] + [""]
            if report.shared_rows:
                out += ["| layer | class | calls | effective | trains | input shapes per call |",
                        "|---|---|---:|---:|---|---|"]
                for layer in report.shared_rows:
                    shapes = "; ".join(
                        f"#{call.index}: " + ", ".join(format_shape(shape) for shape in known_input_shapes(layer, call))
                        for call in layer.layer.call_sites
                    )
                    name, class_name = markdown_code(layer.layer.path, in_table=True), markdown_text(layer.layer.class_name)
                    if layer.layer.is_model:
                        count = len(inner_layers(report, layer))
                        name += f" ({count} layer{'s' if count != 1 else ''})"
                        class_name += " sub-model"
                    out.append(f"| {name} | {class_name} | {layer.layer.calls} | "
                               f"{layer.effective_calls} | {'yes' if layer.trainable else 'frozen'} | {shapes or '-'} |")
                out.append("")
            if report.findings:
                out += ["**Findings**", ""]
                for finding in report.findings:
                    where = f"{markdown_code(finding.layer)}: " if finding.layer else ""
                    out.append(f"- {_ICONS[finding.severity]} **{finding.rule} {finding.name}** ({finding.severity}) "
                               f"{where}{markdown_text(finding.message)}")
                out.append("")
            else:
                out += ["No findings.", ""]
            if report.in_baseline:
                out += [f"{counted(len(report.in_baseline), 'finding')} in baseline (not counted)", ""]
            if report.notes:
                out += ["**Notes** (what could not be read or checked)", ""]
                out += [f"- {markdown_text(note)}" for note in report.notes] + [""]
            out += self._graph(report, number)
        if errors:
            out += ["## Unreadable inputs", ""]
            out += [f"- {markdown_code(error.path)}: {markdown_text(error.problem)}" for error in errors] + [""]
        return "\n".join(out)

    def _graph(self, report: ModelReport, number: int) -> list[str]:
        """The layer graph as Mermaid, folded under ``<details>`` (GitHub draws it), or why it is left out."""
        drawn = picture(report, f"m{number}", self.expand)
        if drawn.note is not None:
            return []
        chart = mermaid([drawn])
        refused = too_big([drawn], chart)
        if refused is not None:
            return [f"The layer graph is left out: {refused}. `--format html` draws it.", ""]
        return ["<details><summary>Layer graph</summary>", "", "```mermaid", chart.rstrip("\n"), "```", "",
                "</details>", ""]
