"""KS201 shared-batchnorm."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.rules.base import Rule, RuleContext, first_names
from keras_share.vocabulary import Severity

MOVING_STATISTICS_CLASSES = frozenset({"BatchNormalization", "SyncBatchNormalization", "BatchNormalizationV1",
                                       "BatchNormalizationV2"})
NAMED_IN_MESSAGE = 5
"""BatchNormalization layers of a shared sub-model its finding's message names (``layers`` lists every one)."""


class SharedBatchNorm(Rule):
    code = "KS201"
    name = "shared-batchnorm"
    severity = Severity.WARNING
    summary = "A BatchNormalization layer (moving mean and variance) is applied at several call sites."
    why = (
        "A shared BatchNormalization keeps one moving mean and one moving variance. During training each call "
        "updates them with its own batch, so the statistics mix every branch; at inference every branch is "
        "normalised with that mixture. When branches see differently distributed inputs (anchor and negative "
        "images, two modalities), inference no longer matches training.\n\n"
        "A BatchNormalization shared directly is a warning. One inside a shared sub-model gives one finding for "
        "the sub-model, naming its BatchNormalization layers: a warning when the sub-model's calls take inputs "
        "of different shapes or dtypes (or the file does not say), and info when every call takes the same "
        "input signature. That is the textbook siamese or triplet encoder, whose branches see one distribution. "
        "Measured on the 18 public model files of the test corpus (tests/test_shared_batchnorm.py): one file "
        "shares BatchNormalization layers (a triplet network sharing a 20-layer encoder with 9 of them, on "
        "three inputs of one shape and dtype). Before this grading, the rule gave 9 warnings there, all false "
        "positives (9 of 9). Now it gives one info finding (0 false-positive warnings)."
    )
    fix = (
        "Give each branch its own BatchNormalization, or use a normalisation without moving statistics "
        "(LayerNormalization, GroupNormalization). If the branches really share one distribution (a siamese "
        "encoder on identically distributed inputs), suppress the finding for that layer or sub-model "
        "(--suppress KS201:encoder)."
    )
    example = """
bn = keras.layers.BatchNormalization()
a = bn(dense(x1))
b = bn(dense(x2))   # KS201: bn's statistics mix both branches
# fix: bn_a, bn_b = BatchNormalization(), BatchNormalization()
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        by_path = {layer.layer.path: layer for layer in report.layers}
        inside: dict[str, list[LayerReport]] = {}
        for layer in report.layers:
            if layer.layer.class_name not in MOVING_STATISTICS_CLASSES or not layer.shared:
                continue
            if layer.shared_via is not None:
                inside.setdefault(layer.shared_via, []).append(layer)
                continue
            yield self.finding(
                layer,
                f"{layer.layer.class_name} runs {layer.object_calls} times with one moving mean and variance: "
                "the statistics mix every branch; give each branch its own layer or use LayerNormalization",
            )
        for path, norms in inside.items():
            yield self._submodel_finding(by_path[path], norms, by_path)

    def _submodel_finding(self, model: LayerReport, norms: list[LayerReport],
                          by_path: dict[str, LayerReport]) -> Finding:
        """One finding for a shared sub-model: info when every call takes one input signature, else a warning."""
        prefix = model.layer.path + "/"
        names = [norm.layer.path.removeprefix(prefix) for norm in norms]
        named = first_names(names, NAMED_IN_MESSAGE)
        several = len(norms) > 1
        layers = f"{len(norms)} BatchNormalization layer{'s' if several else ''} ({named}) keep{'' if several else 's'}"
        start = f"the shared sub-model runs {model.object_calls} times"
        if _one_input_signature(model, by_path):
            return self.finding(
                model, f"{start}, every call on inputs of one shape and dtype (a siamese or triplet encoder): its "
                f"{layers} one moving mean and variance over every branch, fine when the branches share one "
                "distribution", severity=Severity.INFO, layers=[norm.layer.path for norm in norms])
        return self.finding(
            model, f"{start} on inputs of different or unknown shapes or dtypes: its {layers} one moving mean and "
            "variance that mix every branch; give each branch its own layer or use LayerNormalization",
            layers=[norm.layer.path for norm in norms])


def _one_input_signature(model: LayerReport, by_path: dict[str, LayerReport]) -> bool:
    """True when every call of the model object (at every path it sits) that reaches an output takes inputs of the
    same shapes and dtypes, all known from the file."""
    signatures = set()
    for path in (model.layer.path, *model.same_as):
        placed = by_path[path]
        for call in placed.layer.call_sites:
            if call.index not in placed.unreachable_calls:
                signatures.add(call.signature)
    return len(signatures) == 1 and None not in signatures
