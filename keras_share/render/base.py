"""The one interface every output format implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.errors import ReadError
from keras_share.vocabulary import Severity


class RenderError(Exception):
    """A report that could not be made (an outside program it needs failed): one line saying why."""


class Formatter(ABC):
    """Turns the reports of one run (and the inputs that could not be read) into text."""

    for_people = False
    """Whether people read the output (the command line then prints the run's total on stderr)."""

    compared_to_baseline = False
    """Whether the run compared its findings with a ``--baseline`` (SARIF then gives each result its
    ``baselineState``)."""

    @abstractmethod
    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        """The whole output of a run."""


def counted(number: int, word: str, plural: str | None = None) -> str:
    """``1 file``, ``3 files`` (``plural`` when adding an s is wrong)."""
    return f"{number:,} {word if number == 1 else plural or word + 's'}"


def severity_counts(findings: list[Finding]) -> list[str]:
    """``["1 error", "4 warnings", "2 info"]``: the findings by severity, the worst first, none left out as 0."""
    by_severity = Counter(finding.severity for finding in findings)
    return [counted(by_severity[severity], str(severity), "info" if severity is Severity.INFO else None)
            for severity in reversed(Severity) if by_severity[severity]]


def summary_line(report: ModelReport) -> str:
    """``5 layers, 3 shared, 61 unique params (117 if every call had its own weights)`` (with shared sub-models:
    ``sharing_summary``), each count the file does not give shown as unknown (``layers: unknown``), never as 0."""
    summary = report.summary
    if summary.layers is None or summary.shared_layers is None:
        layers = "layers: unknown" if summary.layers is None else f"{summary.layers} layers"
        shared = "shared: unknown" if summary.shared_layers is None else f"{summary.shared_layers} shared"
        sharing = f"{layers}, {shared}"
    else:
        sharing = sharing_summary(report)
    naive = ("calls unknown" if summary.naive_params is None
             else f"{summary.naive_params:,} if every call had its own weights")
    return f"{sharing}, {summary.unique_params:,} unique params ({naive})"


def sharing_summary(report: ModelReport) -> str:
    """``22 layers, 3 shared``, or with shared sub-models ``22 layers: 1 shared sub-model (20 layers), 0 other
    shared layers``: a sub-model's layers count once, under it."""
    layers = report.summary.layers
    rows = report.shared_rows
    submodels = [row for row in rows if row.layer.is_model]
    if not submodels:
        return f"{layers} layers, {report.summary.shared_layers} shared"
    inside = sum(len(inner_layers(report, model)) for model in submodels)
    others = len(rows) - len(submodels)
    return (f"{layers} layers: {len(submodels)} shared sub-model{'s' if len(submodels) != 1 else ''} "
            f"({inside} layer{'s' if inside != 1 else ''}), {others} other shared layer{'s' if others != 1 else ''}")


def inner_layers(report: ModelReport, model: LayerReport) -> list[LayerReport]:
    """The layers a shared sub-model's row stands for (inputs and bare ops not counted)."""
    return [layer for layer in report.shared_through(model.layer.path) if layer.layer.runs_on_tensors]


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def preset_lines(report: ModelReport, quote: Callable[[str], str]) -> list[str]:
    """What a report says of a KerasHub preset beside its layers: the backbone, its tied embeddings (from the
    weights, and as reloading builds them), its task head, LoRA files and other files; every name from the file
    through ``quote``. Empty for other models."""
    preset = report.preset
    if preset is None:
        return []
    facts = preset.facts
    version = f" {quote(facts.keras_hub_version)}" if facts.keras_hub_version else ""
    stored = "sharded weights" if facts.sharded else "one weights file"
    lines = [f"KerasHub preset (keras-hub{version}) of {quote(preset.backbone_class)}, {stored}"]
    if preset.tied_embeddings is None:
        lines.append("tied embeddings: no token embedding that could be tied")
    else:
        where = ", ".join(quote(path) for path in preset.embedding_layers)
        reload = "" if preset.reload_tied is None else f"; reloading builds {'tied' if preset.reload_tied else 'untied'}"
        lines.append(f"tied embeddings: {_yes_no(preset.tied_embeddings)} ({where}){reload}")
    if facts.parameter_count is not None:
        lines.append(f"metadata parameter_count: {facts.parameter_count:,}")
    if preset.task_class is not None:
        lines.append(f"task {quote(preset.task_class) or '(unnamed)'}: {preset.task_params:,} params of its own")
    for lora in facts.lora:
        rank = "unknown" if lora.rank is None else f"{lora.rank}"
        lines.append(f"LoRA {quote(lora.name)}: rank {rank}, {counted(len(lora.targets), 'layer')}")
    lines.extend(quote(note) for note in preset.lora_notes)
    if facts.files:
        lines.append("other files: " + ", ".join(quote(name) for name in facts.files))
    return lines
