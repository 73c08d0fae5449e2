"""KS103 sequential-repeated-layer (live models only)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import LayerKind, Severity

SPELLED_OUT_CALLS = 4
"""Up to this many repeats the message writes every call out."""


class SequentialRepeatedLayer(Rule):
    code = "KS103"
    name = "sequential-repeated-layer"
    severity = Severity.ERROR
    summary = "One layer object is listed twice in a Sequential: a saved file keeps it once (live models)."
    why = (
        "Sequential([Input, d, d]) applies d twice, d(d(x)), with one set of weights. Keras writes a "
        "Sequential config with each layer object once, so the saved file reloads as a model that computes "
        "d(x): other outputs, and no error or warning anywhere. Only the live objects show the repeat, so "
        "keras-share reports it when it inspects a model in memory."
    )
    fix = (
        "If you meant two layers, create two (Dense(4), Dense(4)). If you meant one layer applied twice, "
        "write a Functional model, x = d(d(inputs)): its config records both calls and survives a save."
    )
    example = """
d = keras.layers.Dense(4)
model = keras.Sequential([keras.Input((4,)), d, d])   # KS103: the saved file computes d(x)
# fix: x = keras.Input((4,)); model = keras.Model(x, d(d(x)))
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for layer in report.layers:
            calls = layer.layer.calls
            if calls < 2 or not layer.layer.runs_on_tensors:
                continue
            parent = report.graph.layers.get(layer.layer.parent) if layer.layer.parent else report.graph.root
            if parent is None or parent.kind != LayerKind.SEQUENTIAL:
                continue
            name = parent.name or "the top model"
            own = layer.layer.name
            applied = (f"{own}(" * calls + "x" + ")" * calls if calls <= SPELLED_OUT_CALLS
                       else f"{own}({own}(...x...)) ({calls:,} times)")
            yield self.finding(
                layer,
                f"one layer object is listed {calls} times in Sequential {name!r}: it computes {applied} with one "
                f"set of weights, but a saved file keeps it once and reloads as a model that applies it once; "
                "use separate layers, or a Functional model that calls it twice",
            )
