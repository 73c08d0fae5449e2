"""What the analysis concludes about one model file: the object every rule and renderer reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_share.analysis.shapes import CallShapes
from keras_share.graph.model import Graph, Layer
from keras_share.read.base import BytecodeSite, ModelFile, Preset
from keras_share.vocabulary import Severity

RULE_DOCS_URL = "https://github.com/keras-share/keras-share/blob/main/docs/rules.md"
"""docs/rules.md as the project's repository shows it: each rule's ``help_uri`` is an anchor in it."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _class_name(text: str) -> str:
    """A class name from a file, for a repr: as is when it is an identifier, else quoted with its escapes."""
    return text if text.isidentifier() else repr(text)


@dataclass(frozen=True)
class RuleInfo:
    """What a rule is, as data: travels with each of its findings, so renderers need no rule registry."""

    code: str
    name: str
    severity: Severity
    """The rule's default severity (a finding may carry a lower one)."""
    summary: str
    """One line: what the rule flags."""
    why: str
    """Why it is a problem."""
    fix: str
    """How to fix it."""
    example: str
    """Code that triggers the rule (and, after a comment, the fix)."""
    security_severity: float | None = None
    """For a rule about what loading the file could do (a security rule): its CVSS-like score, 0.1 to 10.0,
    for code-scanning dashboards; None for a rule about the model's correctness."""

    @property
    def is_security(self) -> bool:
        """True for a rule about what loading the file could do to the machine that loads it."""
        return self.security_severity is not None

    @property
    def anchor(self) -> str:
        """The rule's anchor in docs/rules.md (its code in lower case: stable when its name or severity change)."""
        return self.code.lower()

    @property
    def help_uri(self) -> str:
        """The address of the rule's documentation."""
        return f"{RULE_DOCS_URL}#{self.anchor}"

    def docs(self, level: int = 1) -> str:
        """The rule's documentation as Markdown, its title a heading of ``level``."""
        title, section = "#" * level, "#" * (level + 1)
        return (
            f"{title} {self.code} {self.name} ({self.severity})\n\n{self.summary}\n\n"
            f"{section} Why is this bad?\n\n{self.why}\n\n{section} How to fix it\n\n{self.fix}\n\n"
            f"{section} Example\n\n```python\n{self.example.strip()}\n```\n"
        )


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one layer (or on the whole model when ``layer`` is empty)."""

    rule: str
    name: str
    severity: Severity
    layer: str
    message: str
    rule_info: RuleInfo = field(repr=False)
    """The rule that found it (its docs, default severity), for renderers that describe rules."""
    layers: tuple[str, ...] = ()
    """The layers a finding about several at once covers (one finding instead of one per layer); else empty."""

    def __repr__(self) -> str:
        where = repr(self.layer) if self.layer else "the model"
        covers = f" (covers {_plural(len(self.layers), 'layer')})" if self.layers else ""
        return f"<Finding {self.rule} {self.name} {self.severity} on {where}{covers}>"


@dataclass
class LiveVariable:
    """One variable of a live layer (live mode only): identity is the Python object."""

    name: str
    location: str
    """``live:<id>``, the same string as the matching ``WeightArray.location``."""
    trainable: bool
    """Whether fitting the inspected model updates it (it is in the top model's ``trainable_weights``)."""
    tied_with: list[str] = field(default_factory=list)
    """``path/name`` of the same variable object reached through other layer objects."""


@dataclass
class LiveLayer:
    """What only the live Python objects can say about a layer (None on reports read from files)."""

    external_calls: int = 0
    """Calls of this layer object in the graph of another live model (not this one)."""
    other_models: list[str] = field(default_factory=list)
    """Names of the other live models whose graphs use this layer object."""
    origin_model: str | None = None
    """The other model that called this layer first: the layer was taken from it (transferred)."""
    origin_path: str | None = None
    """The layer's path inside ``origin_model``."""
    variables: list[LiveVariable] = field(default_factory=list)


@dataclass
class LiveMismatch:
    """A disagreement between a file's static reading and the model Keras loads from it."""

    layer: str
    message: str
    severity: Severity = Severity.ERROR


@dataclass
class LiveModel:
    """Live-mode facts about the whole model (None on plain static reports).

    ``source`` is ``object`` for a model inspected in memory, ``file`` for a file loaded with Keras
    to cross-check its static reading (``--live``).
    """

    source: str
    keras: str | None = None
    """The Keras that holds (or loaded) the objects: ``keras 3.15.1``, ``tf_keras 2.21.0``."""
    inspected_with: list[str] = field(default_factory=list)
    """Names of the other models inspected together with this one."""
    tie_groups: list[list[str]] = field(default_factory=list)
    """Each group: ``path/name`` of one variable object reached from several layer objects."""
    load_error: str | None = None
    mismatches: list[LiveMismatch] = field(default_factory=list)
    values: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    """Variable objects by location, to hash their values for the rules that compare weights."""


@dataclass(frozen=True)
class ModuleReference:
    """A config's reference to a Python object by its module, outside Keras's own (``configs.module_references``)."""

    layer: str
    """Path of the layer whose entry or config holds it (``""``: the top model or the rest of the file)."""
    location: str
    """The keys from that layer's entry down to the reference, e.g. ``config.activation.module``."""
    module: str
    name: str
    """The object named in the module (a class or function name), or ``""``."""
    unsafe: bool
    """True for a module that can run code on import or call (``os``, ``subprocess``, ``builtins.eval``...);
    False for a custom object (a user's package, ``__main__``)."""


@dataclass
class LayerReport:
    """A layer with the facts the analysis adds: effective calls, sharing, trainability."""

    layer: Layer
    effective_calls: int
    """Runs per forward pass of the top model: its calls that reach an output of its model, times the enclosing
    model's effective calls."""
    trainable: bool
    frozen_by: str | None
    """Path of the nearest enclosing model whose own flag is ``trainable: false`` (``""`` = top)."""
    same_as: list[str] = field(default_factory=list)
    """Other paths of the same layer object (one layer placed in several nested models)."""
    object_calls: int = 0
    """Effective calls summed over every path of the same layer object."""
    transferred_from: str | None = None
    """Path of the ``--base`` model layer whose arrays this layer's arrays equal."""
    live: LiveLayer | None = None
    """Live-mode facts (external calls, other models, variables by identity); None for files."""
    shared_via: str | None = None
    """Path of the shared nested model this layer is shared through: the outermost enclosing model that is shared
    and whose object runs as often as this layer's. None for a layer not shared, or shared more than that."""
    unreachable_calls: list[int] = field(default_factory=list)
    """Indices of the layer's calls (its ``call_sites``) whose result reaches no output of its own model: Keras
    leaves them out of the graph it rebuilds, so they count in neither ``effective_calls`` nor ``shared``."""
    call_shapes: list[CallShapes | None] = field(default_factory=list)
    """Per call (as ``layer.call_sites``): its input and output shapes, stored or inferred
    (``analysis/shapes.py``); None for a call the inference did not reach."""
    trainable_params: int = 0
    """Scalars of its own arrays that fitting the loaded model updates (``analysis/params.py``)."""
    non_trainable_params: int = 0
    """Scalars of its own arrays that it does not update (frozen, or a moving statistic)."""
    unique_params: int = 0
    """Scalars of its own arrays and, for a nested model, of every array inside it, each array counted once."""

    @property
    def reaching_calls(self) -> int:
        """Calls in its own model's graph whose result an output of that model uses."""
        return self.layer.calls - len(self.unreachable_calls)

    @property
    def shared(self) -> bool:
        """True when the layer's weights are applied more than once."""
        return self.object_calls > 1

    @property
    def param_count(self) -> int:
        """Scalars in this layer's own stored arrays."""
        return sum(array.size for array in self.layer.weights)

    def __repr__(self) -> str:
        facts = [_plural(self.effective_calls, "effective call"), "shared" if self.shared else "not shared",
                 "trainable" if self.trainable else "frozen"]
        return f"<LayerReport {self.layer.path!r} {_class_name(self.layer.class_name)}: {', '.join(facts)}>"


@dataclass
class Summary:
    """Counts over the whole model; None for a count the file does not give (unknown, never 0)."""

    layers: int | None
    """Layers but inputs and ops; None without a layer graph (a subclassed model, a weights-only file)."""
    shared_layers: int | None
    """Layers applied more than once; None without a layer graph."""
    unique_params: int
    naive_params: int | None
    """Scalars if every call had its own weights; None without a layer graph (calls unknown)."""
    optimizer_arrays: int
    tied_embeddings: bool | None = None
    """Whether the token embedding doubles as the output projection, read from the stored arrays (a KerasHub
    ReversibleEmbedding); None when the model has no such layer."""
    trainable_params: int | None = None
    """Unique scalars of the layers' arrays that fitting the loaded model updates (Keras' "Trainable params");
    None without a layer graph. Arrays tied to no config layer count in neither this nor the next."""
    non_trainable_params: int | None = None
    """Unique scalars of the layers' arrays that it does not update; None without a layer graph."""


@dataclass(frozen=True)
class TieGroup:
    """One stored array used as several weights: a tied token embedding, also the output projection."""

    layer: str
    location: str
    uses: list[str]


@dataclass
class PresetReport:
    """What the analysis says about a KerasHub preset (``keras_share.analysis.keras_hub``)."""

    backbone_class: str
    keras_hub_version: str | None
    parameter_count: int | None
    """``metadata.json``'s count, to compare with the unique parameters stored."""
    sharded: bool
    known_class: bool
    """Whether the class is a backbone of the keras-hub release the tables were read from."""
    tied_embeddings: bool | None
    embedding_layers: list[str]
    reload_tied: bool | None
    """Whether loading the preset builds a tied embedding (None: unknown, or no embedding)."""
    reload_reason: str
    dropped_key: str | None
    """The config key the class's ``get_config`` drops, when its absence decides ``reload_tied``."""
    tie_groups: list[TieGroup]
    task_class: str | None
    task_params: int
    facts: Preset
    lora_notes: list[str] = field(default_factory=list)


@dataclass
class ModelReport:
    """Everything keras-share says about one file."""

    file: ModelFile
    graph: Graph
    layers: list[LayerReport]
    summary: Summary
    findings: list[Finding] = field(default_factory=list)
    live: LiveModel | None = None
    """Live-mode facts; None for a report read from a file without ``--live``."""
    bytecode: list[BytecodeSite] = field(default_factory=list)
    """Every serialized Python function in the file's configs, at any depth, by layer path: what loading
    the file with Keras could run (``unsafe-lambda``; ``--live`` refuses such a file without ``--unsafe``)."""
    in_baseline: list[Finding] = field(default_factory=list)
    """Findings the ``--baseline`` report already holds: not in ``findings`` (they are not new), counted apart."""
    preset: PresetReport | None = None
    """For a KerasHub preset: its backbone's tie, task head and other files; None for other models."""
    module_references: list[ModuleReference] = field(default_factory=list)
    """Every reference by module to a Python object outside Keras's own in the file's configs, at any depth:
    unsafe ones (``unsafe-module-reference``) and custom objects."""
    calls_feeding_outputs: dict[str, set[int]] = field(default_factory=dict)
    """For every layer path: the indices of its calls whose result an output of its own model uses (the data flow,
    ``analysis.analyze.calls_feeding_outputs``; ``unreachable-call``'s dead calls are the others)."""

    def __repr__(self) -> str:
        layers, shared = self.summary.layers, self.summary.shared_layers
        counts = [_plural(layers, "layer") if layers is not None else "layers unknown",
                  f"{shared} shared" if shared is not None else "sharing unknown", _plural(len(self.findings), "finding")]
        return f"<ModelReport {self.file.path!r} ({self.file.format}): {', '.join(counts)}>"

    @property
    def shared_layers(self) -> list[LayerReport]:
        """Layers applied more than once, nested models included."""
        return [report for report in self.layers if report.shared]

    @property
    def shared_rows(self) -> list[LayerReport]:
        """Shared layers that are not shared only through an enclosing shared model: the shared sub-models and the
        other shared layers (what a table of shared layers lists)."""
        return [report for report in self.layers if report.shared and report.shared_via is None]

    def shared_through(self, model: str) -> list[LayerReport]:
        """The layers shared only through the shared nested model at path ``model`` (``shared_via`` is ``model``)."""
        return [report for report in self.layers if report.shared_via == model]

    @property
    def notes(self) -> list[str]:
        """What the reader and the graph builder noticed along the way."""
        return self.file.notes + self.graph.notes
