"""KS107 weights-mismatch (with ``--weights``)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class WeightsMismatch(Rule):
    code = "KS107"
    name = "weights-mismatch"
    severity = Severity.ERROR
    summary = ("The --weights file does not fit the model: load_weights would raise, skip a layer, or leave "
               "layers at their initial values.")
    why = (
        "A weights file is paired with a model by the loader's own rules, which differ by format: Keras 3 "
        "reads a .weights.h5 by path (layers/dense_1/vars, numbered by class, not by layer name), a legacy .h5 "
        "by the order of the layers that have weights, or by layer name with by_name=True. When they disagree, "
        "load_weights raises ('Layer count mismatch', 'expected 2 variables, but received 0'), or, with "
        "by_name=True or skip_mismatch=True, goes on and leaves the layers it skipped at their random initial "
        "values: a model that runs and predicts nonsense. Error: load_weights raises. Warning: it goes on, and "
        "layers keep their initial values or part of the file is not used."
    )
    fix = (
        "Load the weights into the architecture that saved them (same layers, same order, same shapes), or "
        "save them again from the model they are meant for. For a deliberate partial load (a new head on a "
        "pretrained body), load by name into the layers that match and check each finding's layer is one you "
        "meant to train from scratch."
    )
    example = """
base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
base.save_weights("base.weights.h5")
bigger = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(4),
                           keras.layers.Dense(1)])
bigger.save("bigger.keras")
# keras-share inspect bigger.keras --weights base.weights.h5
# KS107 on the second and third Dense: their paths (layers/dense_1, layers/dense_2) hold other shapes or nothing
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if context.weights is None:
            return
        for mismatch in context.weights.mismatches:
            yield self.finding(mismatch.layer, f"{context.weights.loader} ({context.weights.weights_path}): "
                               f"{mismatch.message}",
                               severity=Severity.ERROR if mismatch.raises else Severity.WARNING)
