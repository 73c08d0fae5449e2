"""KS304 legacy-weight-order."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.graph.model import Graph, Layer
from keras_share.rules.base import Rule, RuleContext, first_names
from keras_share.vocabulary import Format, Severity

NAMED_IN_MESSAGE = 3
"""Arrays stored out of build order that a finding's message names."""


class LegacyWeightOrder(Rule):
    code = "KS304"
    name = "legacy-weight-order"
    severity = Severity.INFO
    summary = ("A nested model's arrays in a legacy .h5 file are stored in an order that depends on trainable flags: "
               "load_weights into a model rebuilt with other flags assigns them to the wrong variables.")
    why = (
        "A legacy .h5 file lists a nested model's arrays as Keras 2 (and Keras 3's legacy writer) order them when "
        "saving: every trainable weight first, then every non-trainable one (a frozen sublayer's weights, "
        "BatchNormalization's moving statistics). load_weights assigns them back by position to the rebuilt model's "
        "weights in that same trainable-first order. When the code that rebuilds the model sets other trainable "
        "flags than the saving code had (it freezes the base for fine-tuning, or unfreezes it), the positions no "
        "longer match: arrays of equal shape land on the wrong layer silently, others fail with a shape error "
        "(TF#37541, keras#6607). load_model is safe (it rebuilds the flags from the file), so this is info. The rule "
        "fires when the stored order differs from the order the nested model builds its weights in, which is the "
        "order any other trainable setting gives."
    )
    fix = (
        "Load the file with load_model rather than into a rebuilt model; or set the same trainable flags as when it "
        "was saved before load_weights and change them after; or save in the .keras format, which stores each "
        "layer's weights under its own name."
    )
    example = """
encoder = keras.Sequential([dense_a, keras.layers.BatchNormalization(), dense_b])
model.save("model.h5")          # KS304: encoder's moving statistics are stored after dense_b's kernel
rebuilt = build_model(); rebuilt.get_layer("encoder").trainable = False
rebuilt.load_weights("model.h5")  # arrays assigned by position in another order
# fix: keras.models.load_model("model.h5"), or load_weights before changing trainable flags
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if report.file.format != Format.H5:
            return
        graph = report.graph
        for key, stored in report.file.weights.stored_order.items():
            model = graph.layers.get(graph.keys.get(key, ""))
            if model is None:
                continue
            built = _build_order(model, graph)
            if set(stored) != set(built):
                continue
            position = {location: index for index, location in enumerate(built)}
            moved = _stored_late(stored, position)
            if moved:
                names = {array.location: f"{layer.path.removeprefix(model.path + '/')}/{array.name}"
                         for layer in _below(model, graph) for array in layer.weights}
                shown = first_names([names[location] for location in moved], NAMED_IN_MESSAGE)
                yield self.finding(model.path, (
                    f"the file stores {shown} after weights of later layers (trainable weights first, then "
                    f"non-trainable ones): load_weights into this model rebuilt with other trainable flags assigns "
                    f"its {len(stored)} arrays by position to the wrong variables; use load_model, or set the same "
                    "flags before load_weights"))


def _below(model: Layer, graph: Graph) -> Iterator[Layer]:
    """The layers of a nested model, depth first in config order."""
    for path in model.children:
        layer = graph.layers[path]
        yield layer
        if layer.is_model:
            yield from _below(layer, graph)


def _build_order(model: Layer, graph: Graph) -> list[str]:
    """The locations of the nested model's arrays in the order its layers create them (each array once)."""
    order: list[str] = []
    for layer in _below(model, graph):
        order.extend(array.location for array in layer.weights if array.location not in order)
    return order


def _stored_late(stored: list[str], position: dict[str, int]) -> list[str]:
    """The stored arrays that come after an array built later than them (the ones the trainable-first order moved)."""
    moved: list[str] = []
    latest = -1
    for location in stored:
        if position[location] < latest:
            moved.append(location)
        latest = max(latest, position[location])
    return moved
