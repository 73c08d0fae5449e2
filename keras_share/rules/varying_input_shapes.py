"""KS202 varying-input-shapes."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.graph.model import Shape
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


def _describe(shape: Shape) -> str:
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


class VaryingInputShapes(Rule):
    code = "KS202"
    name = "varying-input-shapes"
    severity = Severity.INFO
    summary = "A shared layer is called on inputs of different shapes or ranks."
    why = (
        "Legal for many layers (convolutions, pooling, attention, RNNs take any length), and sometimes intended; "
        "but for a siamese or triplet network it usually means the branches are not fed what you think, and "
        "for Dense it means the kernel is applied along a different axis layout. It is reported as info "
        "because keras-share cannot know the intent: read it as a question."
    )
    fix = "Check each call's input shape in the report; reshape or pad the inputs, or use separate layers."
    example = """
conv = keras.layers.Conv1D(8, 3)
conv(keras.Input((10, 4)))
conv(keras.Input((20, 4)))   # KS202: lengths 10 and 20
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for layer in report.layers:
            calls = layer.layer.call_sites
            if len(calls) < 2:
                continue
            width = min(len(call.inputs) for call in calls)
            for position in range(width):
                shapes = [call.inputs[position].shape for call in calls]
                known = [shape for shape in shapes if shape is not None]
                if len(known) >= 2 and len({shape[1:] if shape else shape for shape in known}) > 1:
                    keyword = calls[0].inputs[position].keyword
                    where = f"argument {keyword!r}" if keyword else f"input {position}"
                    listed = ", ".join(f"#{call.index} {_describe(shape)}" for call, shape in zip(calls, shapes) if shape)
                    ranks = {len(shape) for shape in known}
                    extra = " (different ranks)" if len(ranks) > 1 else ""
                    yield self.finding(
                        layer,
                        f"{where} has different shapes across calls{extra}: {listed}; check that every branch gets "
                        "the input you meant, or use separate layers",
                    )
                    break
