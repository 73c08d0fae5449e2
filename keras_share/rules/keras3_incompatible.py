"""KS209 keras3-incompatible."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from keras_share.analysis.report import Finding, ModelReport
from keras_share.configs import entry_config
from keras_share.graph.model import Graph, Layer, TensorRef
from keras_share.read.base import DOUBLE_COUNTED_NOTE
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Format, LayerKind, Severity

_RNN = ("RNN", "SimpleRNN", "GRU", "LSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
_GROUPED = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D")
_STATEFUL_RANDOM = ("RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation")
REJECTED_ARGUMENTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_RNN, ("time_major",)),
    **dict.fromkeys(_GROUPED, ("groups",)),
    **dict.fromkeys(_SEPARABLE, ("groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint")),
    "MultiHeadAttention": ("query_shape", "key_shape", "value_shape", "softmax_robust_masking"),
    **dict.fromkeys(_STATEFUL_RANDOM, ("rng_type",)),
    **dict.fromkeys(("Discretization", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"), ("trainable",)),
}
"""Keys of a Keras 2 layer config that Keras 3.15's constructor of that class refuses ("Unrecognized keyword
arguments", "unexpected keyword argument"): found by giving Keras 3's legacy loader the config tf_keras 2.21
writes for each layer class both libraries have (tests/test_keras3_incompatible.py checks a sample)."""
REMOVED_CLASSES = frozenset({"LocallyConnected1D", "LocallyConnected2D", "DenseFeatures", "RandomHeight",
                             "RandomWidth", "ThresholdedReLU", "CuDNNLSTM", "CuDNNGRU"})
"""Built-in layer classes of Keras 2 that Keras 3.15 no longer has ("Unknown layer")."""
FIXED_RANK_CLASS = re.compile(
    r"^(Conv|Convolution|DepthwiseConv|SeparableConv|ConvLSTM)[123]D(Transpose)?$"
    r"|^(Global)?(Max|Average|Avg)Pool(ing)?[123]D$|^(ZeroPadding|Cropping|UpSampling)[123]D$"
    r"|^(SimpleRNN|GRU|LSTM)$")
"""Layers that accept inputs of one rank only: given Keras 2's ``batch_input_shape`` as an input shape (with the
batch axis counted twice), Keras 3 fails to build them."""
KERAS2_ENGINE_MODULE = re.compile(r"^(keras\.(src\.)?engine|tf_keras)(\.|$)")
"""Modules of tf.keras 2.13-2.15 and tf_keras classes (``keras.src.engine.functional``): Keras 3 has none of them."""
WRAPPER_KEYS = ("layer", "backward_layer", "cell")


class Keras3Incompatible(Rule):
    code = "KS209"
    name = "keras3-incompatible"
    severity = Severity.WARNING
    summary = "Keras 3's load_model cannot load this file, for a reason the file shows (named in the message)."
    why = (
        "Keras 3 reads Keras 2 files (legacy .h5) with a compatibility loader that misses several things Keras 2 "
        "wrote, and fails with an error that seldom names the cause: a nested model that Keras 2 numbered from "
        "node 1 ('the graph either has loops or disconnected nodes'), a Sequential whose first layer carries "
        "batch_input_shape (Keras 3 counts the batch axis twice, and a convolution, pooling or recurrent layer "
        "then refuses its input), layer arguments Keras 3 dropped (time_major on recurrent layers, groups on "
        "transposed and depthwise convolutions, the shape arguments of MultiHeadAttention), layer classes it "
        "removed. A .keras file written by tf.keras or tf_keras names classes under keras.src.engine or "
        "tf_keras modules that Keras 3 cannot import, and tf.keras 2.12-2.13 named its weight groups in a way "
        "Keras 3's fallback for that layout does not match. Keras 3 does not load SavedModel folders at all. Each reason was checked "
        "against Keras 3.15's load_model on a file made to show it. A file Keras 3 fails to load for another "
        "reason (a custom class it is not given, a Lambda in safe mode) is not flagged here."
    )
    fix = (
        "Load the file with the Keras that wrote it (tf_keras for Keras 2: pip install tf_keras, "
        "TF_USE_LEGACY_KERAS=1) and re-save it in a form Keras 3 reads, or rebuild the model in Keras 3 code and "
        "load only its weights. A SavedModel can be wrapped for inference with keras.layers.TFSMLayer."
    )
    example = """
import tf_keras as keras                      # Keras 2
encoder = keras.Model(i, keras.layers.Dense(3)(i))
model = keras.Model([a, b], keras.layers.Concatenate()([encoder(a), encoder(b)]))
model.save("siamese.h5")                      # KS209: Keras 3 cannot rebuild the graph
# fix: rebuild the model with Keras 3 and load_weights, or keep loading it with tf_keras
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        model = report.file
        if model.keras_generation == 3 or model.format in (Format.LIVE, Format.H5_WEIGHTS, Format.WEIGHTS_H5):
            return
        start = f"Keras 3 cannot load this file (written by Keras {model.keras_version or '2, version not recorded'})"
        if model.format == Format.SAVEDMODEL:
            yield self.finding("", f"{start}: its load_model reads only .keras and .h5 files, not SavedModel "
                               "folders (keras.layers.TFSMLayer wraps one for inference)")
            return
        if model.format.keras_archive:
            yield from self._archive_reasons(report, start)
            return
        for layer in _every_layer(report.graph):
            for problem in _layer_problems(layer, report.graph):
                yield self.finding(layer.path, f"{start}: {problem}")

    def _archive_reasons(self, report: ModelReport, start: str) -> Iterator[Finding]:
        """A ``.keras`` file written by tf.keras or tf_keras."""
        if DOUBLE_COUNTED_NOTE in report.file.notes:
            yield self.finding("", f"{start}: tf.keras 2.12-2.13 stored its weights under "
                               "_layer_checkpoint_dependencies/ with a layer with weights counted twice in the group "
                               "names, and Keras 3 looks there only for its own names (one count per layer), so it "
                               "finds no weights for some layers")
        engine = [layer for layer in _every_layer(report.graph) if layer.module and KERAS2_ENGINE_MODULE.match(layer.module)]
        if engine:
            first, more = engine[0], len(engine) - 1
            others = f" (and {more} more model{'s' if more > 1 else ''} of this file)" if more else ""
            yield self.finding(first.path, f"{start}: {first.class_name} is recorded in module {first.module}{others}, "
                               "which Keras 3 does not have (it cannot locate the class)")
        for layer in _every_layer(report.graph):
            if layer.kind != LayerKind.INPUT and "batch_input_shape" in layer.config:
                yield self.finding(layer.path, f"{start}: {layer.class_name} is saved with batch_input_shape, "
                                   "which Keras 3 accepts only on an InputLayer in a .keras file")
            for problem in _argument_problems(layer):
                yield self.finding(layer.path, f"{start}: {problem}")


def _layer_problems(layer: Layer, graph: Graph) -> Iterator[str]:
    """Why Keras 3's legacy loader fails on this layer of a Keras 2 ``.h5`` config."""
    yield from _argument_problems(layer)
    if layer.kind == LayerKind.SEQUENTIAL:
        first = next((graph.layers[path] for path in layer.children), None)
        if (first is not None and first.kind != LayerKind.INPUT and "batch_input_shape" in first.config
                and FIXED_RANK_CLASS.match(first.class_name)):
            yield (f"its first layer {first.name!r} ({first.class_name}) carries batch_input_shape, which Keras 3 "
                   f"takes as an input shape with the batch axis counted twice, and {first.class_name} then "
                   "refuses an input of one more dimension")
    if layer.is_model and layer.numbered_from == 1:
        yield from _last_call_references(layer, graph)


def _argument_problems(layer: Layer) -> Iterator[str]:
    """The layer's (or its wrapped layers') class or arguments that Keras 3 does not have."""
    for class_name, config, where in _constructed(layer):
        if class_name in REMOVED_CLASSES:
            yield f"{where}{class_name} is a Keras 2 layer class that Keras 3 no longer has"
            continue
        rejected = [key for key in REJECTED_ARGUMENTS.get(class_name, ()) if key in config]
        if rejected:
            yield (f"{where}{class_name} is saved with argument{'s' if len(rejected) > 1 else ''} "
                   f"{', '.join(rejected)}, which Keras 3's {class_name} does not accept")


def _every_layer(graph: Graph) -> list[Layer]:
    """The top model and every layer below it."""
    return [graph.root, *graph.layers.values()]


def _constructed(layer: Layer) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(class name, config, how to name it) of the layer and of the layers its wrapper config holds."""
    yield layer.class_name, layer.config, ""
    pending: list[tuple[dict[str, Any], str]] = [(layer.config, "")]
    while pending:
        config, where = pending.pop()
        for key in WRAPPER_KEYS:
            inner = config.get(key)
            if isinstance(inner, dict) and isinstance(inner.get("class_name"), str):
                label = f"{where}its {key} "
                yield inner["class_name"], entry_config(inner), label
                pending.append((entry_config(inner), label))


def _last_call_references(model: Layer, graph: Graph) -> Iterator[str]:
    """The consumers that take the last call of a nested model that Keras 2 numbered from node 1: that node
    index is past the calls Keras 3 makes (it numbers from 0), so it never resolves."""
    last = model.calls - 1
    consumers = sorted({layer.name for layer in graph.layers.values() if layer.parent == model.parent
                        for site in layer.call_sites for ref in site.inputs if _names(ref, model, last)})
    parent = graph.root if model.parent == "" else graph.layers.get(model.parent or "")
    as_output = model.kind == LayerKind.SEQUENTIAL and parent is not None and any(
        _names(ref, model, last) for ref in parent.outputs or ())
    if consumers or as_output:
        takers = ", ".join(repr(name) for name in consumers[:3]) + (" and more" if len(consumers) > 3 else "")
        taken = f"{takers} take{'s' if len(consumers) == 1 else ''}" if consumers else "its model's output takes"
        yield (f"{taken} node {model.calls} of this nested model, numbered from 1 as Keras 2 did; Keras 3 "
               "numbers calls from 0, so that node never exists and it reports that the graph has loops or "
               "disconnected nodes")


def _names(ref: TensorRef, model: Layer, call: int) -> bool:
    return ref.layer == model.path and ref.call == call
