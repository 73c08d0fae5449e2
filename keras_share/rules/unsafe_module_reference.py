"""KS106 unsafe-module-reference."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class UnsafeModuleReference(Rule):
    code = "KS106"
    name = "unsafe-module-reference"
    severity = Severity.ERROR
    security_severity = 9.0
    summary = ("A config names an object in a module that can run code on import or call (os, subprocess, "
               "builtins.eval, pickle...), at any depth.")
    why = (
        "Keras rebuilds each object of a config from its `module` and `class_name` (or `registered_name`, or the "
        "function name of a `{\"class_name\": \"function\"}` entry): it imports the module and takes the name "
        "from it. Keras 3 before 3.9 did so for any module, even with safe_mode=True (CVE-2025-1550): a file "
        "whose layer activation is `{\"module\": \"os\", \"class_name\": \"function\", \"config\": \"system\"}` "
        "gets `os.system` called on load or on the first prediction. tf_keras's loader for the `.keras` format "
        "still imports any module it names, and Keras up to 3.11 called Keras's own non-modelling functions "
        "(`keras.utils.get_file`, `keras.config.enable_unsafe_deserialization`, `keras.models.load_model`). "
        "Scanners that look only at the top-level layer list miss a reference nested in an activation, an "
        "initializer, a wrapped layer or the compile config; keras-share walks every config at any depth "
        "(the model config with its compile config) and never imports what it names.\n\n"
        "Keras's own namespaces (keras, keras_hub, keras_nlp, keras_cv, tf_keras, TensorFlow) and functions "
        "saved by name under `builtins` (`relu`, `mse`) are not flagged. A class from a user's package or "
        "`__main__`, or registered with `register_keras_serializable` (`Custom>MyLayer`), is a custom object: "
        "it is named in the report's notes, not flagged."
    )
    fix = (
        "Do not load the file. If you wrote it, replace the reference with a Keras built-in or a registered "
        "custom object (keras.saving.register_keras_serializable) and save it again; load untrusted files only "
        "with Keras 3.12 or later."
    )
    example = """
# config.json, hand-edited: the activation of a Dense layer
"activation": {"module": "os", "class_name": "function", "config": "system", "registered_name": "function"}
# KS106: Keras < 3.9 imports os and calls os.system; fix: "activation": "relu"
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        for reference in report.module_references:
            if not reference.unsafe:
                continue
            target = f"{reference.module}.{reference.name}" if reference.name else reference.module
            where = f"config {reference.location}" if reference.layer else reference.location
            yield self.finding(
                reference.layer,
                f"{where} names {target!r}, which can run code: Keras imports the module it names and calls what "
                "it finds (Keras 3 before 3.9 even in safe mode, CVE-2025-1550; tf_keras's .keras loader still); "
                "do not load this file",
            )
