"""KS101 cross-model-sharing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.graph.model import Layer
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Format, Severity

SHOWN_MODELS = 5
"""Models named in a finding's message; the others are counted."""


def _without_shared_ids(value: Any) -> Any:
    """A copy of a JSON value without its save-time ``shared_object_id`` annotations, made without recursion."""
    def shell(item: Any) -> Any:
        return {} if isinstance(item, dict) else [] if isinstance(item, list) else item

    copy = shell(value)
    stack = [(value, copy)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if key == "shared_object_id" and isinstance(source, dict):
                continue
            made = shell(item)
            if isinstance(target, dict):
                target[key] = made
            else:
                target.append(made)
            if isinstance(item, (dict, list)):
                stack.append((item, made))
    return copy


def _comparable(layer: Layer) -> str:
    """A layer's config as text without ``shared_object_id``; a nested model's own layers stand by their names
    (each is compared in its own group), so no config is written out once per enclosing model."""
    config = layer.config
    if layer.is_model:
        config = {key: value for key, value in config.items() if key != "layers"}
        config["layers"] = [path[len(layer.path) + 1:] for path in layer.children]
    return json.dumps(_without_shared_ids(config), sort_keys=True)


def _weighted_paths(report: ModelReport) -> set[str]:
    """Paths of the layers with stored weights and of the nested models that hold any (one pass, children first)."""
    weighted: set[str] = set()
    for member in reversed(report.layers):
        if member.layer.weights or any(child in weighted for child in member.layer.children):
            weighted.add(member.layer.path)
    return weighted


def placements(report: ModelReport) -> list[list[LayerReport]]:
    """Groups of entries that are one layer object placed in several nested models.

    Layer names are unique within a Keras session, so the same class and name with the same config in two
    different models is one object; a ``shared_object_id`` on an entry confirms it. Only layers with weights
    count: a weightless layer placed twice loads as two harmless copies. A graph made from a known class's code
    (a KerasHub preset) has none: its layers are its weight groups, named by attribute, each stored once.
    """
    if report.graph.from_class_table:
        return []
    groups: dict[tuple[str, str], list[LayerReport]] = {}
    for layer in report.layers:
        if layer.layer.runs_on_tensors:
            groups.setdefault((layer.layer.class_name, layer.layer.name), []).append(layer)
    weighted = _weighted_paths(report)
    found = []
    for members in groups.values():
        if len(members) < 2 or not any(member.layer.path in weighted for member in members):
            continue
        if len({member.layer.parent for member in members}) < 2:
            continue
        first = _comparable(members[0].layer)
        same_config = all(_comparable(member.layer) == first for member in members[1:])
        if same_config or any(member.layer.shared_object_id is not None for member in members):
            found.append(members)
    return found


def _models(members: list[LayerReport]) -> str:
    """The models holding the members, the first ``SHOWN_MODELS`` by name."""
    names = ", ".join(repr(member.layer.parent or "the top model") for member in members[:SHOWN_MODELS])
    hidden = len(members) - SHOWN_MODELS
    return f"{names} and {hidden:,} more" if hidden > 0 else names


class CrossModelSharing(Rule):
    code = "KS101"
    name = "cross-model-sharing"
    severity = Severity.ERROR
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
            models = _models(members)
            for other in others:
                if report.file.format.keras_archive:
                    outcome = (f"the file stores its weights once, at {first.layer.path!r}; loading builds a second "
                               "copy that finds no weights, so Keras fails to load this file")
                elif report.file.format == Format.H5:
                    outcome = ("legacy h5 stores two copies, which reload as two independent layers: the sharing is "
                               "lost and the copies diverge in training")
                else:
                    outcome = "check that a reload keeps one layer: most formats cannot store this sharing"
                yield self.finding(
                    other,
                    f"{other.layer.name!r} is one layer used in models {models}: {outcome}; keep it in one model "
                    "and call that model on both branches",
                )
