"""The layer graph rebuilt from a config: layers, their call sites, and nesting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keras_share.read.base import LayerKey, WeightArray
from keras_share.vocabulary import LayerKind, ModelKind

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class TensorRef:
    """A tensor fed to a call: output ``tensor`` of call ``call`` of the layer at ``layer``.

    ``call`` is None when the file's node index points at no call of that layer.
    """

    layer: str
    call: int | None
    tensor: int
    keyword: str | None = None
    shape: Shape | None = None
    dtype: str | None = None
    """The tensor's dtype when the file determines it (Keras 3 tensor references, an InputLayer's output)."""


@dataclass
class CallSite:
    """One application of a layer inside its model's graph."""

    index: int
    inputs: list[TensorRef] = field(default_factory=list)
    training: bool | None = None
    """The ``training`` argument the call was made with, where the file records one (``base(x, training=False)``);
    None when the call passed none (a Sequential never passes one to its layers)."""

    @property
    def input_shapes(self) -> list[Shape | None]:
        """The shape of each input tensor, None where the file does not determine it."""
        return [ref.shape for ref in self.inputs]

    @property
    def signature(self) -> tuple[tuple[Shape, str], ...] | None:
        """The shape and dtype of each input, or None when the file does not determine every one."""
        if not self.inputs or any(ref.shape is None or ref.dtype is None for ref in self.inputs):
            return None
        return tuple((ref.shape, ref.dtype) for ref in self.inputs if ref.shape is not None and ref.dtype is not None)


@dataclass
class Layer:
    """One layer entry of a model config (a nested model is a Layer with children)."""

    path: str
    name: str
    class_name: str
    kind: LayerKind | ModelKind
    """``layer``, ``input``, ``op``, ``functional`` or ``sequential``."""
    parent: str | None
    """Path of the enclosing model; ``""`` is the top model, None for the top model itself."""
    config: dict[str, Any]
    trainable_flag: bool
    module: str | None = None
    call_sites: list[CallSite] = field(default_factory=list)
    weights: list[WeightArray] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    shared_object_id: int | None = None
    weights_missing: bool = False
    built: bool = True
    """False for a layer a Keras 3 ``.keras`` config saved unbuilt (its entry has no ``build_config``): it had
    no variables, so none are stored, and Keras loads it so."""
    numbered_from: int = 0
    """The node index its model's config gives this layer's first call: 1 for a nested model that a Keras 2 writer
    gave a node 0 of its own, else 0."""
    outputs: list[TensorRef] | None = None
    """A Functional model's outputs (its ``output_layers``), None for other layers and when the file lists none."""

    @property
    def calls(self) -> int:
        """Call sites in its own model's graph."""
        return len(self.call_sites)

    @property
    def runs_on_tensors(self) -> bool:
        """False for an InputLayer and a bare op entry, which are not layers applied to tensors."""
        return self.kind not in (LayerKind.INPUT, LayerKind.OP)

    @property
    def is_model(self) -> bool:
        """True for nested Functional and Sequential models."""
        return self.kind in (LayerKind.FUNCTIONAL, LayerKind.SEQUENTIAL)


@dataclass(frozen=True)
class UnresolvedRef:
    """A tensor reference of the config that names no call: the call (or model output) it feeds, and what it
    names."""

    consumer: str
    """Path of the layer whose call takes the tensor, or of the model (``""``: the top model) it is an output of."""
    producer: str
    node_index: int
    """The node index as the file writes it."""
    output: bool = False
    """True for an entry of the model's ``output_layers``."""


@dataclass
class Graph:
    """The whole model: the top model as ``root`` and every layer below it, parents first."""

    root: Layer
    layers: dict[str, Layer]
    has_graph: bool
    notes: list[str] = field(default_factory=list)
    keys: dict[LayerKey, str] = field(default_factory=dict)
    """The path of the layer each config position made (the weight index is keyed by positions)."""
    unresolved: list[UnresolvedRef] = field(default_factory=list)
    """References that name no call (each also a note): Keras cannot rebuild such a graph."""
    from_class_table: bool = False
    """True when the layers and their calls come from what a known class's code builds (a KerasHub preset's
    backbone, ``keras_share.analysis.keras_hub``), not from a layer graph in the file."""
