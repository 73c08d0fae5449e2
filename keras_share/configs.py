"""Small, format-independent facts about Keras config entries (plain JSON dicts)."""

from __future__ import annotations

import functools
import re
from typing import Any

_OPS_MODULE_PREFIXES = ("keras.src.ops", "keras.ops")

WEIGHTED_CLASSES = frozenset({
    "Dense", "EinsumDense", "Embedding", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "BatchNormalization", "LayerNormalization", "MultiHeadAttention", "LSTM", "GRU", "SimpleRNN",
    "Bidirectional", "PReLU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
})
"""Classes that always create variables once built."""


def entry_config(entry: Any) -> dict[str, Any]:
    """The inner ``config`` dict of a serialized object, or an empty dict."""
    if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
        return entry["config"]
    return {}


def entry_name(entry: Any) -> str:
    """A layer entry's name: the graph-level ``name`` key, else the config's ``name``."""
    if isinstance(entry, dict):
        name = entry.get("name")
        if isinstance(name, str):
            return name
    name = entry_config(entry).get("name")
    return name if isinstance(name, str) else ""


def class_name(entry: Any) -> str:
    """The entry's ``class_name`` (empty when absent or not a string)."""
    name = entry.get("class_name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) else ""


def layer_entries(entry: Any) -> list[dict[str, Any]] | None:
    """The ``layers`` list of a Functional or Sequential config, or None for any other entry.

    Keras before 2.2 wrote a Sequential config as the bare list of its layers.
    """
    raw = entry.get("config") if isinstance(entry, dict) else None
    layers = raw if isinstance(raw, list) else entry_config(entry).get("layers")
    if isinstance(layers, list) and all(isinstance(item, dict) and "class_name" in item for item in layers):
        return layers
    return None


def model_kind(entry: Any) -> str | None:
    """``"functional"`` or ``"sequential"`` when the entry holds a layer graph, else None."""
    if layer_entries(entry) is None:
        return None
    config = entry_config(entry)
    if "input_layers" in config or "output_layers" in config:
        return "functional"
    return "sequential"


def is_op(entry: Any) -> bool:
    """True for raw ops (``x + y``, ``keras.ops.*``) that Keras 3 puts in a graph: no weights."""
    module = entry.get("module") if isinstance(entry, dict) else None
    return isinstance(module, str) and module.startswith(_OPS_MODULE_PREFIXES)


def is_input_layer(entry: Any) -> bool:
    """True for ``InputLayer`` entries."""
    return class_name(entry) == "InputLayer"


def trainable_flag(entry: Any) -> bool:
    """The entry's own recorded ``trainable`` flag (True when absent)."""
    flag = entry_config(entry).get("trainable", True)
    return flag if isinstance(flag, bool) else True


@functools.lru_cache(maxsize=1024)
def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: the group name ``.keras`` derives from a class name (cached: a model
    names a few classes many times)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name
