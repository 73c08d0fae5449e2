"""KS102 missing-weights."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.configs import WEIGHTED_CLASSES
from keras_share.rules.base import Rule, RuleContext


class MissingWeights(Rule):
    code = "KS102"
    name = "missing-weights"
    severity = "error"
    summary = "A layer that must have weights has none stored, so the file will not load."
    why = (
        "Keras matches stored arrays to layers when it loads a file; a built Dense, Conv or BatchNormalization "
        "without its arrays makes load_model fail ('expected 2 variables, but received 0'). It happens when one "
        "layer object is placed in two nested models (the .keras format stores it once), when a save was "
        "interrupted, or when the weights were never written (an optimizer with slots but no layer variables)."
    )
    fix = (
        "Re-save the model from the Python objects that trained it; if a layer is shared across nested models, "
        "restructure so it lives in one of them (see cross-model-sharing)."
    )
    example = """
shared = keras.layers.Dense(4)
sub_a = keras.Model(xa, shared(xa))
sub_b = keras.Model(xb, keras.layers.Dense(4)(shared(xb)))
top = keras.Model([i1, i2], [sub_a(i1), sub_b(i2)])
top.save("m.keras")   # KS102 on sub_b's copy of the layer: its group is never written
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if report.file.format == "savedmodel" or not (report.file.weights.by_layer or report.file.weights.unattached):
            if report.summary.optimizer_arrays > 1 and report.summary.unique_params == 0:
                yield self.finding(
                    "",
                    f"the optimizer holds {report.summary.optimizer_arrays} arrays but no layer weights were stored: "
                    "the model's variables were never written; re-save the model from the trained Python objects",
                )
            return
        for layer in report.layers:
            if layer.layer.weights or layer.effective_calls == 0 or layer.same_as:
                continue
            if layer.layer.class_name in WEIGHTED_CLASSES:
                yield self.finding(
                    layer,
                    f"{layer.layer.class_name} has no stored weights: Keras will fail to load this file; re-save the "
                    "model from the trained Python objects",
                )
