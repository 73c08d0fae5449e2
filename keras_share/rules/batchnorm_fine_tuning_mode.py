"""KS210 batchnorm-fine-tuning-mode."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.rules.base import Rule, RuleContext, first_names
from keras_share.rules.shared_batchnorm import MOVING_STATISTICS_CLASSES
from keras_share.vocabulary import LayerKind, Severity

NAMED_IN_MESSAGE = 5
"""BatchNormalization layers a finding's message names (``layers`` lists every one)."""


class BatchNormFineTuningMode(Rule):
    code = "KS210"
    name = "batchnorm-fine-tuning-mode"
    severity = Severity.WARNING
    summary = ("A pretrained nested model holding BatchNormalization layers is called in a way that lets fine-tuning "
               "overwrite their moving statistics (without training=False; in Keras 3, whatever the call).")
    why = (
        "A BatchNormalization layer that trains normalises each batch with the batch's own mean and variance and "
        "moves its stored moving mean and variance toward them; a layer called with training=False (or frozen) "
        "uses and keeps the stored ones. When a pretrained model is nested in a new one and called as `base(x)`, "
        "unfreezing it for fine-tuning puts its BatchNormalization layers back in training mode: the first "
        "epochs on a small new dataset replace statistics learned on the original one, and accuracy drops. The "
        "Keras transfer-learning guide calls the base as `base(x, training=False)` for this reason; a Sequential "
        "(`Sequential([base, head])`) passes no training argument at all.\n\n"
        "Keras 3 does not keep that promise: a Functional model passes its own training value to every call in "
        "its graph (`functional.operation_fn`, read in Keras 3.8, 3.10 and 3.15), so fit's training=True replaces the "
        "training=False a call recorded, and the statistics move anyway (tests/test_rule_batchnorm_fine_tuning_mode.py "
        "shows it with Keras 3.15.1; tf_keras honours the argument). In a Keras 3 file only a frozen "
        "BatchNormalization layer keeps its statistics.\n\n"
        "The call's arguments are in the config (Keras 3 node `kwargs`, Keras 2 tensor kwargs), so the file "
        "tells. The rule looks at every call of the nested model that Keras rebuilds, with BatchNormalization at "
        "any depth below it, and at enclosing nested models (in a Keras 2 file, training=False on any enclosing "
        "call protects what is inside). It is a warning when one of those BatchNormalization layers trains as the file loads and "
        "the nested model shows it is pretrained: it is frozen by its own flag, some layer in it is (the top "
        "layers unfrozen for fine-tuning), or its arrays equal those of the --base model. It is info when the "
        "nested model is frozen and its BatchNormalization layers with it: nothing moves now, but it bites at "
        "the next unfreeze. A nested model with no frozen layer and no --base match is taken for one trained "
        "from scratch with the rest (a siamese or triplet encoder, whose statistics should follow the data) and "
        "is not flagged; pass the pretrained model as --base to check a fully unfrozen one."
    )
    fix = (
        "Keras 3: freeze the BatchNormalization layers alone before fine-tuning (`layer.trainable = False` for "
        "each, after `base.trainable = True`). tf_keras: call the pretrained model as "
        "`base(inputs, training=False)` in a Functional model (not inside a Sequential), or freeze its "
        "BatchNormalization layers."
    )
    example = """
base = keras.applications.MobileNetV2(include_top=False, weights="imagenet")
base.trainable = False
x = base(inputs)                     # KS210 (info while frozen, a warning once base.trainable = True)
# fix (tf_keras): x = base(inputs, training=False)
# fix (Keras 3): after base.trainable = True, set trainable = False on each BatchNormalization in base
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        by_path = {layer.layer.path: layer for layer in report.layers}
        protected: dict[str, bool] = {"": False}
        outermost: dict[str, str] = {}
        exposed: dict[str, list[LayerReport]] = {}
        pretrained: set[str] = set()
        honours_training_false = report.file.keras_generation == 2
        for layer in report.layers:  # parents first
            parent = layer.layer.parent or ""
            if layer.layer.is_model:
                protected[layer.layer.path] = protected.get(parent, False) or (
                    honours_training_false and _called_for_inference(layer))
                outermost[layer.layer.path] = outermost.get(parent, layer.layer.path)
            if parent in outermost and (not layer.layer.trainable_flag or layer.transferred_from is not None):
                pretrained.add(outermost[parent])
            if (layer.layer.class_name in MOVING_STATISTICS_CLASSES and parent in outermost
                    and not protected.get(parent, True)):
                exposed.setdefault(outermost[parent], []).append(layer)
        for path, norms in exposed.items():
            model = by_path[path]
            parent = model.layer.parent or ""
            kind = report.graph.root.kind if not parent else by_path[parent].layer.kind
            frozen = not model.layer.trainable_flag or not model.trainable
            overridden = not honours_training_false and _called_for_inference(model)
            if any(norm.trainable for norm in norms) and model.trainable and (frozen or path in pretrained):
                yield self._finding(model, norms, kind == LayerKind.SEQUENTIAL, overridden, Severity.WARNING)
            elif frozen:
                yield self._finding(model, norms, kind == LayerKind.SEQUENTIAL, overridden, Severity.INFO)

    def _finding(self, model: LayerReport, norms: list[LayerReport], in_sequential: bool, overridden: bool,
                 severity: Severity) -> Finding:
        prefix = model.layer.path + "/"
        names = [norm.layer.path.removeprefix(prefix) for norm in norms]
        named = first_names(names, NAMED_IN_MESSAGE)
        several = len(norms) > 1
        holds = f"nested model {model.layer.path!r} holds {len(norms)} BatchNormalization layer{'s' if several else ''} ({named})"
        if overridden:
            holds += (" and is called with training=False, which Keras 3 replaces with fit's training=True (a "
                      "Functional model passes its own training value to every call)")
        else:
            holds += " and is called without training=False"
        if in_sequential:
            holds += " (a Sequential passes no training argument)"
        fix = "freeze each BatchNormalization layer" if overridden else "call it as base(x, training=False)"
        paths = [norm.layer.path for norm in norms]
        their = "their" if several else "its"
        if severity == Severity.WARNING:
            return self.finding(model, f"{holds}: fine-tuning it updates {their} pretrained moving mean and variance "
                                f"from the new batches; {fix}", layers=paths)
        return self.finding(model, f"{holds}: it is frozen now, but once it is unfrozen for fine-tuning, fitting "
                            f"updates {their} pretrained moving mean and variance; {fix}",
                            severity=severity, layers=paths)


def _called_for_inference(model: LayerReport) -> bool:
    """True when every call of the nested model that Keras rebuilds passes ``training=False`` (and it has one)."""
    calls = [call for call in model.layer.call_sites if call.index not in model.unreachable_calls]
    return bool(calls) and all(call.training is False for call in calls)
