"""The plain result every format reader produces: a model config and a weight index."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from keras_share.vocabulary import Format

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
"""The members of a ``.keras`` archive (and files of its unzipped folder form)."""
SHARDED_WEIGHTS_MEMBER = "model.weights.json"
"""The sharded weights map a model folder may hold instead of ``model.weights.h5`` (KerasHub presets)."""
SHARD_MAP_SUFFIX = "weights.json"
"""What the name of a sharded weights map ends with (Keras 3's ``load_weights`` tells one by it)."""
SAVEDMODEL_METADATA_FILE = "keras_metadata.pb"
"""The file of a TF SavedModel folder that holds the Keras config (tf.keras 2.5+)."""
DOUBLE_COUNTED_NOTE = ("layers are numbered as tf.keras 2.12-2.13 did (a layer with weights counted twice): "
                       "tf.keras 2.14 looks for other group names and fails to load these weights")
"""The note of a ``.keras`` file whose ``_layer_checkpoint_dependencies`` group names are not those tf.keras 2.14 (and
Keras 3's fallback for that layout, which looks there for its own names) gives its layers."""


@dataclass(frozen=True)
class ArrayDigest:
    """A content hash of one array (dtype, shape and bytes), and whether every element has the same value."""

    sha256: str
    constant: bool


LayerKey = tuple[str, ...]
"""A layer's position in the config: names from the top model down (the top model left out)."""


@dataclass(frozen=True)
class WeightArray:
    """One stored array: its name, shape and dtype, and where in the file it lives."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    location: str
    trainable: bool | None = None
    """The variable's own flag (False for BatchNormalization's moving statistics), where the file records it
    (a SavedModel); its layer's flags still decide whether it trains."""

    @property
    def size(self) -> int:
        """Number of scalars in the array."""
        return math.prod(self.shape)


@dataclass
class WeightIndex:
    """Stored arrays, attached to config layers where the format allows it.

    ``by_layer`` maps a layer key to its arrays; the same array (same ``location``) may appear
    under several keys when one layer object sits at several places. ``unattached`` holds groups
    the config does not name (subclassed models, attribute-named sublayers of a weights-only
    file), keyed by their group path. ``optimizer`` is optimizer state, never a layer weight.
    """

    by_layer: dict[LayerKey, list[WeightArray]] = field(default_factory=dict)
    unattached: dict[str, list[WeightArray]] = field(default_factory=dict)
    optimizer: list[WeightArray] = field(default_factory=list)
    missing: list[LayerKey] = field(default_factory=list)
    """Layers whose weights group the naming rules predict but the file lacks."""
    digests: dict[str, ArrayDigest] = field(default_factory=dict)
    """Content digests by location, of the arrays small enough to hash while reading."""
    stored_order: dict[LayerKey, list[str]] = field(default_factory=dict)
    """For a nested model's group of a legacy ``.h5`` file: its arrays' locations in the order ``weight_names`` lists
    them (the order Keras assigns them back by position)."""


@dataclass(frozen=True)
class BytecodeSite:
    """A serialized Python function in a config: Keras unmarshals its bytecode, and may run it, when loading."""

    layer: str
    """Path of the layer whose config holds it (``""``: the top model). Where a reader found it outside the
    model config, the path of layer names the file gives for that place (which may go below the graph's
    layers, into a wrapper's inner layer)."""
    location: str
    """The keys from that layer's config down to the serialized function, e.g. ``layer.config.function``."""
    source: str = ""
    """Empty for the model config; else the part of the file outside it (``keras_metadata.pb node root.layer-1``)."""


@dataclass(frozen=True)
class LoraTarget:
    """One layer a LoRA weights file adapts: its index among the model's layers with weights (as KerasHub's
    ``save_lora_weights`` numbers them), and the shapes of its two factors."""

    index: str
    kernel_a: tuple[int, ...] | None
    kernel_b: tuple[int, ...] | None


@dataclass
class LoraFile:
    """A KerasHub LoRA weights file (``*.lora.h5``): its rank (the ``lora/vars/rank`` scalar) and its targets."""

    name: str
    rank: int | None
    targets: list[LoraTarget] = field(default_factory=list)


@dataclass
class PresetTask:
    """A KerasHub task saved beside its backbone: ``task.json`` (its class and config) and ``task.weights.h5``
    (the weights the task holds outside its backbone: its head)."""

    class_name: str
    config: dict[str, Any] | None
    weights: WeightIndex | None
    """None when the preset has no ``task.weights.h5`` (a task with no weights of its own, a tied LM head)."""
    group_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Preset:
    """What a KerasHub preset folder (or a ``.keras`` archive of the same layout) holds beside the backbone's
    config and weights: plain facts, read with bounds; what they mean is for the analysis."""

    keras_hub_version: str | None
    parameter_count: int | None
    """``metadata.json``'s ``parameter_count``: what ``backbone.count_params()`` said when it was saved."""
    group_names: dict[str, str]
    """Each weight group of the backbone (its path) to the layer name Keras stored on its ``vars`` group."""
    sharded: bool
    task: PresetTask | None = None
    files: list[str] = field(default_factory=list)
    """The other files listed (tokenizer and preprocessor JSON, assets), never read."""
    lora: list[LoraFile] = field(default_factory=list)


@dataclass
class ModelFile:
    """What a reader found in one file, in a form that no longer depends on the format."""

    path: str
    format: Format
    keras_version: str | None
    config: dict[str, Any] | None
    weights: WeightIndex
    backend: str | None = None
    notes: list[str] = field(default_factory=list)
    ambiguity: str | None = None
    """For an input that is also another model to another loader (a polyglot file), what that is; else None."""
    bytecode: list[BytecodeSite] = field(default_factory=list)
    """Serialized functions the reader found outside ``config`` (in a SavedModel's other metadata nodes)."""
    config_bytecode_free: bool = False
    """True when the reader saw the config's JSON text and it cannot hold a serialized function
    (``configs.text_may_hold_bytecode``): nothing to walk for one."""
    preset: Preset | None = None
    """For a KerasHub preset (or a ``.keras`` file of its layout), what it holds beside the backbone; else None."""
    config_module_free: bool = False
    """True when the reader saw the config's JSON text and it names no module outside Keras's own
    (``configs.text_may_name_module``): nothing to walk for one."""
    training_config: Any = None
    """The compile settings a legacy ``.h5`` (its ``training_config`` attribute) or a SavedModel's root metadata
    carries beside the model config, parsed only when its text may name a module (``configs.text_may_name_module``);
    None otherwise. A ``.keras`` file keeps them in its config (``compile_config``)."""

    def __post_init__(self) -> None:
        self.format = Format(self.format)  # a format given by its name (``"keras"``) becomes its member

    @property
    def keras_generation(self) -> int:
        """3 for files written by Keras 3, 2 for Keras 2 / tf.keras / tf_keras."""
        return 3 if (self.keras_version or "").startswith("3") else 2
