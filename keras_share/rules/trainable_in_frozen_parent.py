"""KS301 trainable-in-frozen-parent."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class TrainableInFrozenParent(Rule):
    code = "KS301"
    name = "trainable-in-frozen-parent"
    severity = Severity.INFO
    summary = "A layer marked trainable sits inside a model marked frozen."
    why = (
        "Whether it trains depends on the Keras that loads the file, not on what the flags suggest. Keras 3 "
        "honours each layer's own flag, so the layer trains although its parent is frozen. tf_keras drops nested "
        "models' flags when it loads .h5 and .keras files, so the layer trains after a reload even if it did not "
        "before saving. Only a tf_keras SavedModel keeps the frozen parent in charge. The message says which "
        "case this file is in."
    )
    fix = "Set the flag you mean on the layer itself (layer.trainable = False) before saving, then re-inspect."
    example = """
encoder.trainable = False
encoder.get_layer("head").trainable = True   # KS301: trains in Keras 3 despite the frozen encoder
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        generation = report.file.keras_generation
        for layer in report.layers:
            if layer.frozen_by is None or not layer.layer.trainable_flag or layer.layer.is_model:
                continue
            if not layer.layer.weights:
                continue
            parent = layer.frozen_by or "the top model"
            if not layer.trainable and generation == 3:
                outcome = "it will not train: Keras 3 trains nothing of a frozen top model"
            elif not layer.trainable:
                outcome = f"it will not train: the frozen {parent!r} wins in a tf_keras SavedModel"
            elif generation == 3:
                outcome = f"Keras 3 honours the layer's own flag, so it trains although {parent!r} is frozen"
            else:
                outcome = f"tf_keras drops {parent!r}'s frozen flag when loading this file, so it trains after a reload"
            yield self.finding(
                layer,
                f"marked trainable inside frozen {parent!r}: {outcome}; set layer.trainable on the layer itself "
                "to the value you mean",
            )
