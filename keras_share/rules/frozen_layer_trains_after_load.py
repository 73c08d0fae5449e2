"""KS302 frozen-layer-trains-after-load."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class FrozenLayerTrainsAfterLoad(Rule):
    code = "KS302"
    name = "frozen-layer-trains-after-load"
    severity = Severity.WARNING
    summary = "A layer saved as frozen comes back trainable when Keras loads the file."
    why = (
        "Keras 3 restores trainable=False on a MultiHeadAttention before it builds the query, key, value and "
        "output projections, and those new sublayers start trainable: after load_model the 'frozen' attention "
        "layer trains again, and a fine-tuning run silently updates it."
    )
    fix = (
        "Set the flag again after loading (model.get_layer(name).trainable = False, which reaches the built "
        "sublayers), then compile; check model.trainable_weights."
    )
    example = """
mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)
mha.trainable = False
model.save("m.keras")
keras.models.load_model("m.keras").get_layer(mha.name).trainable_weights   # not empty: KS302
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for layer in report.layers:
            if layer.layer.weights and not layer.layer.trainable_flag and layer.trainable:
                yield self.finding(
                    layer,
                    f"{layer.layer.class_name} was saved with trainable=False but Keras "
                    f"{report.file.keras_version or ''} loads it trainable; set the flag again after loading",
                )
