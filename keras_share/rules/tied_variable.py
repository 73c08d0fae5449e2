"""KS303 tied-variable (live models only)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


def _layer_of(report: ModelReport, entry: str) -> str:
    """The layer path of a ``path/variable`` entry (variable names may contain '/')."""
    paths = sorted((layer.layer.path for layer in report.layers), key=len, reverse=True)
    return next((path for path in paths if entry.startswith(path + "/")), "")


class TiedVariable(Rule):
    code = "KS303"
    name = "tied-variable"
    severity = Severity.INFO
    summary = "One variable object is used by two different layers: a tie group (live models)."
    why = (
        "Tied weights (a decoder reusing the encoder's kernel, an output projection sharing the embedding "
        "matrix) are often intended, but summary() does not show them and saved files hide them: each layer "
        "saves the variable under its own name, and whether a reloaded model is tied again depends on the "
        "layer's code. keras-share lists each tie group, as safetensors and accelerate do for PyTorch, so "
        "you can check that the ties are the ones you meant."
    )
    fix = (
        "Nothing, if the tie is intended: take the other layer's variable in the custom layer's build() so a "
        "reloaded model ties it again, and check that the reloaded model reports the same tie group. If it is "
        "not intended, give the layer its own variable (self.add_weight)."
    )
    example = """
class TiedDense(keras.layers.Layer):
    def __init__(self, source, **kwargs):
        super().__init__(**kwargs)
        self.source = source
    def build(self, input_shape):
        self.kernel = self.source.kernel            # KS303: one variable, two layers
    def call(self, x):
        return x @ keras.ops.transpose(self.kernel)
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if report.live is None:
            return
        for group in report.live.tie_groups:
            layers = sorted({_layer_of(report, entry) for entry in group})
            yield self.finding(
                _layer_of(report, group[0]),
                f"tie group {group}: one variable object used by {len(layers)} layers; training through either "
                "changes both, and a saved file stores it once per layer",
            )
