"""KS204 unsafe-lambda."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.read.base import BytecodeSite
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


def describe_site(site: BytecodeSite) -> str:
    """Where a serialized function sits, for a message: ``layer 'td', config.layer.config.function``."""
    layer = f"layer {site.layer!r}" if site.layer else "the top model"
    where = f" ({site.source})" if site.source else ""
    return f"{layer}, config.{site.location}{where}" if site.location else f"{layer}{where}"


class UnsafeLambda(Rule):
    code = "KS204"
    name = "unsafe-lambda"
    severity = Severity.WARNING
    security_severity = 8.0
    summary = "A config carries a serialized Python function (a Lambda's bytecode), at any depth."
    why = (
        "Loading the file with safe_mode=False (Keras 3) or with tf_keras (which ignores safe_mode for .h5 and "
        "SavedModel files) unmarshals and runs that bytecode: a model file can execute arbitrary code. Bytecode "
        "is also tied to the Python version that wrote it. keras-share never decodes it, and finds it in every "
        "config at any depth: inside wrappers (TimeDistributed, Bidirectional), layer configs and nested models. "
        "keras-share --live refuses such a file unless --unsafe is given."
    )
    fix = (
        "Replace the Lambda with a registered custom layer (keras.saving.register_keras_serializable) or with "
        "built-in layers and ops. Never load untrusted files with safe_mode=False."
    )
    example = """
x = keras.layers.Lambda(lambda t: t * 2)(x)   # KS204
x = keras.layers.TimeDistributed(keras.layers.Lambda(lambda t: t * 2))(x)   # KS204 on the TimeDistributed
# fix: a subclass of keras.layers.Layer registered with @keras.saving.register_keras_serializable()
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for site in report.bytecode:
            where = f"config.{site.location}" if site.location else "its config"
            source = f" ({site.source})" if site.source else ""
            yield self.finding(
                site.layer,
                f"{where}{source} holds a serialized Python function (marshalled bytecode): loading with "
                "safe_mode=False (or tf_keras) runs it; replace it with a registered custom layer",
            )
