"""KS208 unreachable-call."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.graph.model import CallSite, Graph, Layer, TensorRef
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import LayerKind, Severity

NAMED_INPUTS = 3
"""Tensors a finding's message names as what a dead call takes."""


class UnreachableCall(Rule):
    code = "KS208"
    name = "unreachable-call"
    severity = Severity.WARNING
    summary = "A call of a layer, or a model input, whose result reaches no output of its model."
    why = (
        "A Functional model computes its outputs from its inputs through the calls in its config. A call whose "
        "result no output uses (directly or through other calls) does nothing for the prediction, and neither "
        "does the input that only it reads: the model's output does not change when that input changes, and "
        "training never sees it. Keras saves such a graph without a word; Keras 3 leaves the call out of the "
        "model it loads, tf_keras runs it for nothing. It is almost always a wiring mistake: a siamese head "
        "given the same branch twice (`distance([encoded_a, encoded_a])`), or a custom layer whose call "
        "records only some of its tensor arguments, leaving the other branch dangling.\n\n"
        "The finding names the dead call, what it takes, and the model input it leaves unused. The data flow is "
        "traced in each Functional model whose outputs the file lists, nested models included (a nested "
        "model's call whose result the outer model never uses is dead; a multi-output call is alive when any "
        "of its outputs is used). A model with references that name no call (KS105) is not traced: its data "
        "flow is unknown."
    )
    fix = (
        "Pass each branch where it belongs (`distance([encoded_a, encoded_b])`), or remove the dead branch and "
        "its input. For a custom layer, take every tensor as a positional argument (or a list in the first one) "
        "so the call records it."
    )
    example = """
a, b = keras.Input((8,)), keras.Input((8,))
encoded_a, encoded_b = encoder(a), encoder(b)
distance = keras.layers.Subtract()([encoded_a, encoded_a])   # KS208: encoder's call on b reaches no output
# fix: keras.layers.Subtract()([encoded_a, encoded_b])
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        graph = report.graph
        if not graph.has_graph:
            return
        feeding = report.calls_feeding_outputs
        untraced = {_model_of(graph, ref.consumer, ref.output) for ref in graph.unresolved}
        for model in (graph.root, *(layer for layer in graph.layers.values() if layer.is_model)):
            if model.kind != LayerKind.FUNCTIONAL or model.outputs is None or model.path in untraced:
                continue
            yield from self._dead_in(graph, model, feeding)

    def _dead_in(self, graph: Graph, model: Layer, feeding: dict[str, set[int]]) -> Iterator[Finding]:
        """The dead calls of one traced model's layers, then its inputs that no call reads."""
        children = [graph.layers[path] for path in model.children if path in graph.layers]
        inputs = {layer.path for layer in children if layer.kind == LayerKind.INPUT}
        used = {ref.layer for ref in model.outputs or []}
        dead: list[tuple[Layer, CallSite]] = []
        for layer in children:
            for call in layer.call_sites:
                if call.index in feeding[layer.path]:
                    used.update(ref.layer for ref in call.inputs)
                else:
                    dead.append((layer, call))
        unused = inputs - used
        where = f"nested model {model.path!r}" if model.path else "the model"
        read_by_dead: set[str] = set()
        for layer, call in dead:
            left = sorted({ref.layer for ref in call.inputs} & unused)
            read_by_dead.update(left)
            which = f"the call of {layer.path!r}" if layer.calls == 1 else f"call #{call.index} of {layer.path!r}"
            takes = f" (on {_tensors(graph, call.inputs)})" if call.inputs else ""
            cost = (f", and input {_names(left)} feeds nothing else: the prediction does not depend on it" if left
                    else ": nothing uses its result")
            yield self.finding(layer.path, f"{which}{takes} reaches no output of {where}{cost}")
        for path in sorted(unused - read_by_dead):
            yield self.finding(path, f"input {path!r} of {where} feeds no call that reaches an output: the "
                               "prediction does not depend on it")


def _model_of(graph: Graph, consumer: str, output: bool) -> str:
    """The model an unresolved reference sits in: the model itself for an output, else the consumer's parent."""
    if output:
        return consumer
    layer = graph.layers.get(consumer)
    return (layer.parent or "") if layer is not None else ""


def _tensors(graph: Graph, refs: list[TensorRef]) -> str:
    """What a call takes, for a message: ``'b'``, ``'enc' call #0``, at most ``NAMED_INPUTS`` of them."""
    named = []
    for ref in refs[:NAMED_INPUTS]:
        producer = graph.layers.get(ref.layer)
        several = producer is not None and producer.calls > 1 and ref.call is not None
        named.append(f"{ref.layer!r} call #{ref.call}" if several else repr(ref.layer))
    more = f" and {len(refs) - NAMED_INPUTS} more" if len(refs) > NAMED_INPUTS else ""
    return ", ".join(named) + more


def _names(paths: list[str]) -> str:
    return ", ".join(repr(path) for path in paths)
