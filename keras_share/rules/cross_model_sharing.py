"""KS101 cross-model-sharing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.rules.base import Rule, RuleContext


def _comparable(config: dict[str, Any]) -> str:
    """A config as text without the save-time ``shared_object_id`` annotations."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "shared_object_id"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return json.dumps(strip(config), sort_keys=True)


def weighted(report: ModelReport, member: LayerReport) -> bool:
    """True when the layer, or for a nested model any layer inside it, has stored weights."""
    prefix = member.layer.path + "/"
    return bool(member.layer.weights) or (
        member.layer.is_model and any(layer.layer.weights for layer in report.layers if layer.layer.path.startswith(prefix))
    )


def placements(report: ModelReport) -> list[list[LayerReport]]:
    """Groups of entries that are one layer object placed in several nested models.

    Layer names are unique within a Keras session, so the same class and name with the same config in two
    different models is one object; a ``shared_object_id`` on an entry confirms it. Only layers with weights
    count: a weightless layer placed twice loads as two harmless copies.
    """
    groups: dict[tuple[str, str], list[LayerReport]] = {}
    for layer in report.layers:
        if layer.layer.kind not in ("input", "op"):
            groups.setdefault((layer.layer.class_name, layer.layer.name), []).append(layer)
    found = []
    for members in groups.values():
        parents = {member.layer.parent for member in members}
        if len(members) < 2 or len(parents) < 2 or not any(weighted(report, member) for member in members):
            continue
        same_config = len({_comparable(member.layer.config) for member in members}) == 1
        if same_config or any(member.layer.shared_object_id is not None for member in members):
            found.append(members)
    return found


class CrossModelSharing(Rule):
    code = "KS101"
    name = "cross-model-sharing"
    severity = "error"
    summary = "One layer object is used inside two different nested models."
    why = (
        "Keras saves each object once. The .keras format stores the layer's weights at the first model that "
        "holds it; on load both models build their own copy, and the second finds no weights: Keras saves the "
        "file and then fails to load it ('expected 2 variables, but received 0'). Legacy .h5 writes two copies, "
        "which reload as two independent layers: the sharing silently disappears and training diverges."
    )
    fix = (
        "Keep the shared layer in one nested model and call that model where the layer is needed, or move the "
        "layer to the outer model and call it there on both branches."
    )
    example = """
shared = keras.layers.Dense(4)
sub_a = keras.Model(xa, shared(xa), name="sub_a")
sub_b = keras.Model(xb, shared(xb), name="sub_b")   # KS101: shared lives in sub_a and sub_b
# fix: call `shared` (or one sub-model) in the outer model on both inputs
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for members in placements(report):
            first, others = members[0], members[1:]
            models = ", ".join(repr(member.layer.parent or "the top model") for member in members)
            for other in others:
                if report.file.format in ("keras", "keras-dir"):
                    outcome = (f"the file stores its weights once, at {first.layer.path!r}; loading builds a second "
                               "copy that finds no weights, so Keras fails to load this file")
                elif report.file.format == "h5":
                    outcome = ("legacy h5 stores two copies, which reload as two independent layers: the sharing is "
                               "lost and the copies diverge in training")
                else:
                    outcome = "check that a reload keeps one layer: most formats cannot store this sharing"
                yield self.finding(
                    other,
                    f"{other.layer.name!r} is one layer used in models {models}: {outcome}; keep it in one model "
                    "and call that model on both branches",
                )
