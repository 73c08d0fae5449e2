"""KS205 transferred-layer-trainable (needs ``--base``; ``transferred_from`` is set by analysis.provenance)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class TransferredLayerTrainable(Rule):
    code = "KS205"
    name = "transferred-layer-trainable"
    severity = Severity.WARNING
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
        for layer in report.layers:
            if layer.transferred_from is not None and layer.trainable:
                yield self.finding(
                    layer,
                    f"weights equal {layer.transferred_from!r} of the base model {context.base.file.path!r} and the "
                    "layer is trainable: training will overwrite them; freeze it (layer.trainable = False)",
                )
