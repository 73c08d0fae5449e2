"""KS201 shared-batchnorm."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity

MOVING_STATISTICS_CLASSES = frozenset({"BatchNormalization", "SyncBatchNormalization", "BatchNormalizationV1",
                                       "BatchNormalizationV2"})


class SharedBatchNorm(Rule):
    code = "KS201"
    name = "shared-batchnorm"
    severity = Severity.WARNING
    summary = "A BatchNormalization layer (moving mean and variance) is applied at several call sites."
    why = (
        "A shared BatchNormalization keeps one moving mean and one moving variance. During training each call "
        "updates them with its own batch, so the statistics mix every branch; at inference every branch is "
        "normalised with that mixture. When branches see differently distributed inputs (anchor and negative "
        "images, two modalities), inference no longer matches training."
    )
    fix = (
        "Give each branch its own BatchNormalization, or use a normalisation without moving statistics "
        "(LayerNormalization, GroupNormalization). If the branches really share one distribution (a siamese "
        "encoder on identically distributed inputs), ignore the rule for that layer."
    )
    example = """
bn = keras.layers.BatchNormalization()
a = bn(dense(x1))
b = bn(dense(x2))   # KS201: bn's statistics mix both branches
# fix: bn_a, bn_b = BatchNormalization(), BatchNormalization()
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for layer in report.layers:
            if layer.layer.class_name in MOVING_STATISTICS_CLASSES and layer.shared:
                yield self.finding(
                    layer,
                    f"{layer.layer.class_name} runs {layer.object_calls} times with one moving mean and variance: "
                    "the statistics mix every branch; give each branch its own layer or use LayerNormalization",
                )
