"""KS105 unresolved-call."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class UnresolvedCall(Rule):
    code = "KS105"
    name = "unresolved-call"
    severity = Severity.ERROR
    summary = "A tensor in the config names a call its layer does not have, so Keras cannot rebuild the graph."
    why = (
        "A config wires each call to the output of a call of another layer by node index. An index past the "
        "producer's calls (or below them: Keras 2 numbers a nested model's calls from 1) names nothing: Keras 3 "
        "stops with 'loops or disconnected nodes', tf_keras waits forever for that node. keras-share leaves the "
        "reference unresolved (call null, a note) rather than guess which call was meant. Such files come from "
        "configs edited by hand or written by another tool, and from loading a Keras 2 file with Keras 3, which "
        "reads Keras 2's numbering literally."
    )
    fix = (
        "Load the model with the Keras that wrote it and save it again, or rebuild it from its code; when the "
        "config was edited, correct the node index (the n-th call of a layer is index n-1, or n for a nested "
        "model in a Keras 2 file)."
    )
    example = """
# config.json of a Keras 3 file: "dense" has one call, but "out" takes its second
{"name": "out", "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
  "config": {"keras_history": ["dense", 1, 0]}}]}]}          # KS105
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for reference in report.graph.unresolved:
            what = "an output of this model is" if reference.output else "takes"
            yield self.finding(
                reference.consumer,
                f"{what} node {reference.node_index} of {reference.producer!r}, which names none of its calls: "
                "Keras cannot rebuild this graph",
            )
