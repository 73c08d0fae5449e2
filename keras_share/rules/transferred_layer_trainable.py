"""KS205 transferred-layer-trainable (needs ``--base``)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.rules.weight_copy import content_key


def mark_transferred(report: ModelReport, base: ModelReport, context: RuleContext) -> None:
    """Set ``transferred_from`` on each layer whose arrays all equal a base layer's arrays."""
    shapes = {(array.shape, array.dtype) for layer in base.layers for array in layer.layer.weights}
    mine = [layer for layer in report.layers if layer.layer.weights]
    wanted = [array for layer in mine for array in layer.layer.weights if (array.shape, array.dtype) in shapes]
    if not wanted:
        return
    own = context.digests(report, wanted)
    wanted_keys = {(array.shape, array.dtype) for array in wanted}
    base_arrays = [array for layer in base.layers for array in layer.layer.weights
                   if (array.shape, array.dtype) in wanted_keys]
    theirs = context.digests(base, base_arrays)
    by_key = {}
    for layer in base.layers:
        key = content_key(layer, theirs) if layer.layer.weights else None
        if key is not None:
            by_key.setdefault(key, layer.layer.path)
    for layer in mine:
        key = content_key(layer, own)
        if key is not None and key in by_key:
            layer.transferred_from = by_key[key]


class TransferredLayerTrainable(Rule):
    code = "KS205"
    name = "transferred-layer-trainable"
    severity = "warning"
    summary = "A layer whose weights came from the --base model is left trainable."
    why = (
        "Transfer learning reuses trained layers; left trainable, the first epochs of the new task (with a fresh, "
        "random head and large gradients) overwrite what the base model learned. In a live session the layer is "
        "also still part of the base model, so training the new model changes the base too."
    )
    fix = (
        "Freeze the transferred layers (layer.trainable = False) for the first phase; unfreeze deliberately, "
        "with a low learning rate, to fine-tune. A frozen transferred layer is reported, not flagged."
    )
    example = """
feature = base.get_layer("feature")
new = keras.Model(x, keras.layers.Dense(2)(feature(x)))   # KS205 with --base base.keras
# fix: feature.trainable = False
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if context.base is None:
            return
        mark_transferred(report, context.base, context)
        for layer in report.layers:
            if layer.transferred_from is not None and layer.trainable:
                yield self.finding(
                    layer,
                    f"weights equal {layer.transferred_from!r} of the base model {context.base.file.path!r} and the "
                    "layer is trainable: training will overwrite them; freeze it (layer.trainable = False)",
                )
