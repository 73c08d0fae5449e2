"""KS203 weight-copy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from keras_share.analysis.provenance import content_key
from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.rules.cross_model_sharing import placements
from keras_share.vocabulary import Severity


def twin_arrays(layers: list[LayerReport]) -> list:
    """Arrays whose (shape, dtype) occurs at least twice: only these can be copies."""
    unique = {array.location: array for layer in layers for array in layer.layer.weights}
    counts = Counter((array.shape, array.dtype) for array in unique.values())
    return [array for array in unique.values() if counts[(array.shape, array.dtype)] > 1]


class WeightCopy(Rule):
    code = "KS203"
    name = "weight-copy"
    severity = Severity.WARNING
    summary = "Two distinct layers hold byte-identical weights: a copy, not a share."
    why = (
        "Identical arrays in two layers usually mean weights were copied (set_weights, a clone, a reload) "
        "where sharing was intended, e.g. a siamese tower rebuilt instead of reused. The copies start equal and "
        "diverge as soon as training updates them. Constant arrays (zeros, ones) and optimizer state are ignored."
    )
    fix = "To share, call the same layer object in both places; if the copy is intended, ignore the rule for it."
    example = """
a = keras.layers.Dense(4)
b = keras.layers.Dense(4)
b.build((None, 8)); b.set_weights(a.get_weights())   # KS203: b is a copy of a
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        layers = [layer for layer in report.layers if layer.layer.weights]
        candidates = twin_arrays(layers)
        if not candidates:
            return
        digests = context.digests.digests(candidates)
        placed = {member.layer.path for group in placements(report) for member in group[1:]}
        seen: dict[tuple[object, ...], LayerReport] = {}
        reported: set[str] = set()
        for layer in layers:
            key = content_key(layer, digests)
            if key is None or layer.layer.path in placed:
                continue
            original = seen.setdefault(key, layer)
            if original is layer or layer.layer.weights[0].location == original.layer.weights[0].location:
                continue
            if layer.layer.path not in reported:
                reported.add(layer.layer.path)
                yield self.finding(
                    layer,
                    f"weights are byte-identical to {original.layer.path!r}: two variables that will diverge in "
                    "training; call one layer object in both places to share it",
                )
