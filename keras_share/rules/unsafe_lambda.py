"""KS204 unsafe-lambda."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext


def carries_bytecode(config: dict[str, Any]) -> bool:
    """True when a Lambda config holds marshalled Python code (Keras 3 ``__lambda__``, Keras 2 lambda)."""
    function = config.get("function")
    if isinstance(function, dict) and function.get("class_name") == "__lambda__":
        return True
    if config.get("function_type") == "lambda":
        return True
    return isinstance(function, list) and bool(function) and isinstance(function[0], str)


class UnsafeLambda(Rule):
    code = "KS204"
    name = "unsafe-lambda"
    severity = "warning"
    summary = "A Lambda layer carries serialized Python bytecode (at any nesting depth)."
    why = (
        "Loading the file with safe_mode=False (Keras 3) or with any tf_keras version unmarshals and runs that "
        "bytecode: a model file can execute arbitrary code. Bytecode is also tied to the Python version that "
        "wrote it. keras-share never decodes it; ModelScan looks only at top-level layers, this rule at every depth."
    )
    fix = (
        "Replace the Lambda with a registered custom layer (keras.saving.register_keras_serializable) or with "
        "built-in layers and ops. Never load untrusted files with safe_mode=False."
    )
    example = """
x = keras.layers.Lambda(lambda t: t * 2)(x)   # KS204
# fix: a subclass of keras.layers.Layer registered with @keras.saving.register_keras_serializable()
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for layer in report.layers:
            if layer.layer.class_name == "Lambda" and carries_bytecode(layer.layer.config):
                yield self.finding(
                    layer,
                    "Lambda holds marshalled Python bytecode: loading with safe_mode=False (or tf_keras) runs it; "
                    "replace it with a registered custom layer",
                )
