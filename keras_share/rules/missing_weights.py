"""KS102 missing-weights."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, LayerReport, ModelReport
from keras_share.configs import WEIGHTED_CLASSES, expected_variable_names
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Format, Severity

LAYERS_LISTED = 5
"""Up to this many layers without their weights get one finding each; more (a truncated or cut file) get one
finding for the whole model, the layers listed in its ``layers``."""
"""Formats without a model config: which layers need weights is not known, only which groups the file lists."""


def _needs_weights(layer: LayerReport) -> bool:
    """A built, called layer of a class that always creates variables, not a second place of another layer."""
    return (layer.layer.class_name in WEIGHTED_CLASSES and layer.layer.built and layer.effective_calls > 0
            and not layer.same_as)


def _stored_arrays(report: ModelReport) -> int:
    """Distinct stored layer arrays (one array at several places counts once)."""
    locations = {array.location for arrays in report.file.weights.by_layer.values() for array in arrays}
    locations.update(array.location for arrays in report.file.weights.unattached.values() for array in arrays)
    return len(locations)


class MissingWeights(Rule):
    code = "KS102"
    name = "missing-weights"
    severity = Severity.ERROR
    summary = "A layer that must have weights has none stored, so the file will not load."
    why = (
        "Keras matches stored arrays to layers when it loads a file; a built Dense, Conv or BatchNormalization "
        "without its arrays makes load_model fail ('expected 2 variables, but received 0'). It happens when one "
        "layer object is placed in two nested models (the .keras format stores it once), when a save was "
        "interrupted or a file was cut short (then most layers have none, and one finding counts them), or when "
        "the weights were never written (an optimizer with slots but no layer variables)."
    )
    fix = (
        "Re-save the model from the Python objects that trained it (or download the file again when it was cut "
        "short); if a layer is shared across nested models, restructure so it lives in one of them (see "
        "cross-model-sharing)."
    )
    example = """
shared = keras.layers.Dense(4)
sub_a = keras.Model(xa, shared(xa))
sub_b = keras.Model(xb, keras.layers.Dense(4)(shared(xb)))
top = keras.Model([i1, i2], [sub_a(i1), sub_b(i2)])
top.save("m.keras")   # KS102 on sub_b's copy of the layer: its group is never written
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        stored_nothing = _stored_arrays(report) == 0
        if report.file.format == Format.SAVEDMODEL:
            yield from self._optimizer_only(report)
            return
        if report.file.format.weights_only:
            yield from self._weights_only(report, stored_nothing)
            return
        without = [layer for layer in report.layers if _needs_weights(layer) and not layer.layer.weights]
        if not without:
            if stored_nothing:
                yield from self._optimizer_only(report)
            return
        if len(without) <= LAYERS_LISTED:
            for layer in without:
                yield self.finding(
                    layer,
                    f"{layer.layer.class_name} has no stored weights: Keras will fail to load this file; re-save the "
                    "model from the trained Python objects",
                )
            return
        yield self._summary(report, without)

    def _summary(self, report: ModelReport, without: list[LayerReport]) -> Finding:
        """One finding for many layers without weights: what is stored against what the config implies."""
        needing = sum(1 for layer in report.layers if _needs_weights(layer))
        stored = _stored_arrays(report)
        expected = [expected_variable_names(layer.layer.class_name, layer.layer.config) for layer in without]
        implied = stored + sum(len(names) for names in expected if names is not None)
        at_least = "at least " if any(names is None for names in expected) else ""
        return self.finding(
            "",
            f"{len(without)} of the {needing} layers that must have weights have none stored: the file stores "
            f"{stored:,} of the {at_least}{implied:,} arrays its config implies ({report.summary.unique_params:,} "
            "parameters stored; how many the missing arrays hold, the config alone does not say). The file looks "
            "truncated or incomplete, and Keras will fail to load it; download or re-save it from the trained "
            "Python objects (`--format json` lists the layers in this finding's `layers`)",
            layers=[layer.layer.path for layer in without],
        )

    def _weights_only(self, report: ModelReport, stored_nothing: bool) -> Iterator[Finding]:
        """A weights-only file: groups its layer list names but it lacks, or no arrays at all."""
        missing = ["/".join(key) for key in report.file.weights.missing]
        if missing:
            yield self.finding(
                "",
                f"{len(missing)} weight groups of this weights file are missing or lack some of their arrays: "
                "load_weights fails on this file; save the weights again",
                layers=missing,
            )
        elif stored_nothing:
            yield self.finding("", "this weights file stores no weight arrays: loading it sets no weights; save the "
                               "weights again")

    def _optimizer_only(self, report: ModelReport) -> Iterator[Finding]:
        """Optimizer state stored without any layer weights: the model's variables were never written."""
        if report.summary.optimizer_arrays > 1 and report.summary.unique_params == 0:
            yield self.finding(
                "",
                f"the optimizer holds {report.summary.optimizer_arrays} arrays but no layer weights were stored: "
                "the model's variables were never written; re-save the model from the trained Python objects",
            )
