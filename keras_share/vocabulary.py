"""The words every stage shares, defined once: file formats, finding severities, layer and model kinds.

Each is a ``StrEnum``: a member is its string value (``Format.KERAS == "keras"``), which is also what the JSON
report writes (``keras_share/schema/report-v1.json`` lists the same values).
"""

from __future__ import annotations

from enum import Enum


class _Word(str, Enum):
    """A word whose member compares and formats as its value."""

    def __str__(self) -> str:
        return str(self.value)


class Format(_Word):
    """How a model was read (docs/formats.md has a row per layout)."""

    KERAS = "keras"
    """A ``.keras`` zip archive."""
    KERAS_DIR = "keras-dir"
    """An unzipped ``.keras`` folder (``config.json`` beside its weights)."""
    H5 = "h5"
    """A legacy HDF5 model file (``model_config`` + ``model_weights``), written by Keras 2 or Keras 3."""
    H5_WEIGHTS = "h5-weights"
    """A legacy HDF5 weights-only file (``layer_names`` at the root): Keras 2 ``save_weights``."""
    WEIGHTS_H5 = "weights-h5"
    """A Keras 3 weights-only ``.weights.h5`` file (``vars`` groups), or a sharded weights map."""
    SAVEDMODEL = "savedmodel"
    """A tf_keras SavedModel folder (``keras_metadata.pb``, ``saved_model.pb``, ``variables/``)."""
    LIVE = "live"
    """Live Keras objects, not a file."""

    @property
    def weights_only(self) -> bool:
        """Whether the format holds weights without a model config."""
        return self in (Format.H5_WEIGHTS, Format.WEIGHTS_H5)

    @property
    def keras_archive(self) -> bool:
        """Whether the format is the ``.keras`` format, zipped or not."""
        return self in (Format.KERAS, Format.KERAS_DIR)


class Severity(_Word):
    """How bad a finding is, in increasing order."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return list(Severity).index(self)


class FailOn(_Word):
    """The lowest finding severity that fails a run (exit 1), or never."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    NEVER = "never"

    @property
    def threshold(self) -> Severity | None:
        """The severity a finding needs to fail the run; None for ``never``."""
        return None if self is FailOn.NEVER else Severity(self.value)


class LayerKind(_Word):
    """What a config entry is in the graph."""

    LAYER = "layer"
    INPUT = "input"
    """An InputLayer: no calls, no weights."""
    OP = "op"
    """A Keras 3 operation layer standing for a tensor op (``TFOpLambda``, ``SlicingOpLambda``...)."""
    FUNCTIONAL = "functional"
    SEQUENTIAL = "sequential"

    @property
    def is_model(self) -> bool:
        """Whether the entry holds a layer graph of its own."""
        return self in (LayerKind.FUNCTIONAL, LayerKind.SEQUENTIAL)

    @property
    def callable_layer(self) -> bool:
        """Whether the entry is a layer that runs on tensors (not an input, not a bare op)."""
        return self not in (LayerKind.INPUT, LayerKind.OP)


class ModelKind(_Word):
    """What the top of a report is."""

    FUNCTIONAL = "functional"
    SEQUENTIAL = "sequential"
    SUBCLASSED = "subclassed"
    """A config without a layer graph (a subclassed model): weights are reported by group."""
    WEIGHTS = "weights"
    """No config at all: a weights-only file."""


class ChangeKind(_Word):
    """What ``keras-share diff`` found changed between two saved models (docs/diff.md has a section per kind)."""

    LAYER_ADDED = "layer-added"
    """A layer path of NEW that matches no layer of OLD, by path or by class and weights."""
    LAYER_REMOVED = "layer-removed"
    """A layer path of OLD that matches no layer of NEW."""
    LAYER_RENAMED = "layer-renamed"
    """A layer whose path changed: the same class and the same weights (shapes and contents) under a new path."""
    CLASS_CHANGED = "class-changed"
    """The same path holds a layer of another class."""
    CALLS_CHANGED = "calls-changed"
    """A layer is called a different number of times (in its model's graph, or per forward pass)."""
    WIRING_CHANGED = "wiring-changed"
    """A layer's calls take other tensors, or the same ones in another order (permuted calls, TF#50322)."""
    SHARING_GAINED = "sharing-gained"
    """A layer is one object applied more than once, or at more places, than before."""
    SHARING_LOST = "sharing-lost"
    """A layer that was shared (applied more than once, or one object at several paths) no longer is."""
    TRAINABILITY_CHANGED = "trainability-changed"
    """A layer with weights trains where it was frozen, or the reverse, as Keras loads each file."""
    WEIGHTS_CHANGED = "weights-changed"
    """A layer's stored arrays differ in shape, dtype or content."""
    FROZEN_WEIGHTS_CHANGED = "frozen-weights-changed"
    """A layer that NEW loads frozen holds other weights than in OLD."""
    WEIGHTS_NOT_COMPARED = "weights-not-compared"
    """A layer's arrays have the same shapes, but some could not be hashed (beyond the hashing budget)."""
    PARAMS_CHANGED = "params-changed"
    """The model's count of unique parameters changed."""

    @property
    def matters(self) -> bool:
        """Whether the change fails ``keras-share diff`` (exit 1): all but what could not be compared."""
        return self is not ChangeKind.WEIGHTS_NOT_COMPARED
