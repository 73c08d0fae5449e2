"""KS211 optimizer-state-mismatch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity

OPTIMIZER_VARS = "/optimizer/vars/"
"""Where a Keras 3 ``.keras`` file keeps the optimizer's variables (``optimizer/vars/<i>``; ``metrics/`` is not it)."""
NON_TRAINABLE_VARIABLES = frozenset({"moving_mean", "moving_variance"})
"""Variables of the classes whose names keras-share knows that are never trainable (BatchNormalization's)."""


def _slots(class_name: str, config: dict[str, Any]) -> int | None:
    """Variables Keras 3.15's optimizer of this class makes per trainable variable; None for a class not known here
    (measured with ``optimizer.build``: tests/test_optimizer_state_mismatch.py)."""
    flag = bool(config.get("amsgrad"))
    per_class = {
        "SGD": int(bool(config.get("momentum"))),
        "Adam": 2 + flag, "AdamW": 2 + flag,
        "RMSprop": 1 + int(bool(config.get("momentum"))) + int(bool(config.get("centered"))),
        "Adagrad": 1, "Adadelta": 2, "Adamax": 2, "Nadam": 2, "Ftrl": 2, "Lion": 1, "Lamb": 2,
    }
    return per_class.get(class_name)


class OptimizerStateMismatch(Rule):
    code = "KS211"
    name = "optimizer-state-mismatch"
    severity = Severity.WARNING
    summary = ("The saved optimizer state does not fit the trainable weights of the model as loaded: Keras skips it "
               "and the optimizer starts from zero.")
    why = (
        "Keras 3 restores a compiled .keras model's optimizer by building a new one over the loaded model's "
        "trainable weights and copying the saved arrays into it, only when their numbers agree; otherwise it warns "
        "'Skipping variable loading for optimizer' and keeps the fresh optimizer: iterations back to 0, Adam's "
        "moments and momentum gone, so resumed training takes large steps again. The numbers disagree when the "
        "trainable weights changed after the optimizer was built: the usual case is fitting, then freezing layers "
        "(for fine-tuning or transfer), then saving. The rule counts what the file holds under optimizer/ against "
        "what the optimizer class named in compile_config makes (iterations, learning rate, and its slots per "
        "trainable weight, for the built-in Keras 3 optimizers). It says nothing of a model never fitted (no slots "
        "saved: nothing to lose), nor of optimizers, schedules of variables or layers it cannot count."
    )
    fix = (
        "Save the model before changing trainable flags, or compile again after freezing (model.compile(...)) and "
        "fit or save with that optimizer; to resume from the saved state, set the same trainable flags before "
        "compiling and load the weights with model.load_weights."
    )
    example = """
model.compile(optimizer="adam", loss="mse")
model.fit(x, y)
model.get_layer("encoder").trainable = False
model.save("model.keras")     # KS211: Adam holds moments for weights no longer trainable
# fix: model.compile(optimizer="adam", loss="mse") after freezing, then fit and save
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        model = report.file
        if (not model.format.keras_archive or model.keras_generation != 3 or model.weights.unattached
                or not report.graph.has_graph):
            return
        optimizer = (model.config or {}).get("compile_config") or {}
        optimizer = optimizer.get("optimizer") if isinstance(optimizer, dict) else None
        if not isinstance(optimizer, dict) or not isinstance(optimizer.get("config"), dict):
            return
        class_name, config = str(optimizer.get("class_name")), optimizer["config"]
        slots = _slots(class_name, config)
        if slots is None or config.get("use_ema") or config.get("gradient_accumulation_steps"):
            return
        trainable = _trainable_variables(report)
        saved = sum(OPTIMIZER_VARS in array.location for array in model.weights.optimizer)
        base = 1 + isinstance(config.get("learning_rate"), (int, float)) + (class_name == "Nadam")
        if trainable is None or saved <= base:
            return
        expected = base + slots * trainable
        if saved != expected:
            yield self.finding("", (
                f"the file holds {saved} optimizer arrays, but the {class_name} Keras builds on load has {expected} "
                f"({base} + {slots} per trainable weight, {trainable} trainable weights as loaded): Keras skips "
                "loading its state and training resumes with a fresh optimizer (iterations 0, no moments); the "
                "trainable flags were probably changed after fitting"))


def _trainable_variables(report: ModelReport) -> int | None:
    """Trainable variables of the model as Keras loads it (each stored array once); None when a layer's variables
    are not all known by name, or a layer's weights are missing from the file (Keras still makes them)."""
    locations: set[str] = set()
    for layer in report.layers:
        if layer.layer.weights_missing:
            return None
        for array in layer.layer.weights:
            if array.name.split("/")[-1].isdigit():
                return None
            if layer.trainable and array.name not in NON_TRAINABLE_VARIABLES:
                locations.add(array.location)
    return len(locations)
