"""What the analysis concludes about one model file: the object every rule and renderer reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from keras_share.graph.model import Graph, Layer
from keras_share.read.base import ModelFile


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one layer (or on the whole model when ``layer`` is empty)."""

    rule: str
    name: str
    severity: str
    layer: str
    message: str


@dataclass
class LayerReport:
    """A layer with the facts the analysis adds: effective calls, sharing, trainability."""

    layer: Layer
    effective_calls: int
    trainable: bool
    frozen_by: str | None
    """Path of the nearest enclosing model whose own flag is ``trainable: false`` (``""`` = top)."""
    same_as: list[str] = field(default_factory=list)
    """Other paths of the same layer object (one layer placed in several nested models)."""
    object_calls: int = 0
    """Effective calls summed over every path of the same layer object."""

    @property
    def shared(self) -> bool:
        """True when the layer's weights are applied more than once."""
        return self.object_calls > 1

    @property
    def param_count(self) -> int:
        """Scalars in this layer's own stored arrays."""
        return sum(array.size for array in self.layer.weights)


@dataclass
class Summary:
    """Counts over the whole model."""

    layers: int
    shared_layers: int
    unique_params: int
    naive_params: int
    optimizer_arrays: int


@dataclass
class ModelReport:
    """Everything keras-share says about one file."""

    file: ModelFile
    graph: Graph
    layers: list[LayerReport]
    summary: Summary
    findings: list[Finding] = field(default_factory=list)

    @property
    def shared_layers(self) -> list[LayerReport]:
        """Layers applied more than once, nested models included."""
        return [report for report in self.layers if report.shared]

    @property
    def notes(self) -> list[str]:
        """What the reader and the graph builder noticed along the way."""
        return self.file.notes + self.graph.notes
