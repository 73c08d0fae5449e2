"""KS206 layer-shared-with-other-model, and KS205 transferred-layer-trainable for live models."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.rules.transferred_layer_trainable import TransferredLayerTrainable
from keras_share.vocabulary import Severity


def _names(models: list[str]) -> str:
    return ", ".join(repr(name) for name in models)


def _reportable(layer: LayerReport, by_path: dict[str, LayerReport]) -> bool:
    """A layer with weights whose enclosing model is not already shared with the same models."""
    live = layer.live
    if live is None or not live.other_models or not layer.layer.runs_on_tensors:
        return False
    if not (layer.layer.weights or layer.layer.is_model):
        return False
    parent = by_path.get(layer.layer.parent or "")
    return not (parent is not None and parent.live is not None
                and set(live.other_models) <= set(parent.live.other_models))


class LayerSharedWithOtherModel(Rule):
    code = "KS206"
    name = "layer-shared-with-other-model"
    severity = Severity.WARNING
    summary = "A layer object is also used by another live model: training one changes the other (live models)."
    why = (
        "Layers are Python objects: get_layer() and calling a layer in a second keras.Model do not copy it. "
        "Both models hold the same variables, so fitting either one updates both: a base model silently drifts "
        "while you fine-tune a new head on its layer, and two models trained in turn undo each other. Saved "
        "files cannot show this (each model's file gets its own copy). A warning when the layer is trainable "
        "in the inspected model, info when it is frozen there."
    )
    fix = (
        "Freeze the layer (layer.trainable = False) when the other model must not change, or give this model "
        "its own copy (keras.models.clone_model, or a new layer from get_config() with set_weights()). If the "
        "sharing is intended (an encoder and the autoencoder built from the same layers), ignore the rule for "
        "that model."
    )
    example = """
feature = base.get_layer("feature")
new = keras.Model(x, keras.layers.Dense(2)(feature(x)))   # KS206: fitting `new` changes `base`
# fix: feature.trainable = False, or a copy of the layer
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        by_path = {layer.layer.path: layer for layer in report.layers}
        reported: set[str] = set()
        for layer in report.layers:
            if not _reportable(layer, by_path) or reported & set(layer.same_as):
                continue
            reported.add(layer.layer.path)
            live = layer.live
            assert live is not None
            models = _names(live.other_models)
            calls = f", called {live.external_calls} time(s) in their graphs" if live.external_calls else ""
            if layer.trainable:
                yield self.finding(
                    layer,
                    f"one layer object with model(s) {models}{calls}: it is trainable here, so fitting this model "
                    f"changes {models} too; freeze it or give this model its own copy",
                )
            else:
                yield self.finding(
                    layer,
                    f"one layer object with model(s) {models}{calls}: frozen here, so fitting this model "
                    f"leaves it alone, but fitting {models} still changes this model",
                    severity=Severity.INFO,
                )


class LiveTransferredLayerTrainable(TransferredLayerTrainable):
    """KS205 with ``--base`` as before; on live models also without it, from the model the layer came from."""

    summary = TransferredLayerTrainable.summary + (
        " Live models: also a layer taken from another live model, without --base."
    )

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        flagged: set[str] = set()
        if context.base is not None:
            for finding in super().check(report, context):
                flagged.add(finding.layer)
                yield finding
        for layer in report.layers:
            live = layer.live
            if live is None or live.origin_model is None or layer.layer.path in flagged:
                continue
            if not layer.trainable or not (layer.layer.weights or layer.layer.is_model):
                continue
            yield self.finding(
                layer,
                f"taken from {live.origin_path!r} of model {live.origin_model!r} (its first call is in that model) and "
                f"trainable: fitting this model overwrites what it learned there, and changes {live.origin_model!r} "
                "too; freeze it (layer.trainable = False)",
            )
