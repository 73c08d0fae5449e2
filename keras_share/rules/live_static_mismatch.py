"""KS104 live-static-mismatch (``--live`` on a file)."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class LiveStaticMismatch(Rule):
    code = "KS104"
    name = "live-static-mismatch"
    severity = Severity.ERROR
    summary = "With --live: Keras cannot load the file, or loads something else than the file describes."
    why = (
        "keras-share reads files without running Keras. With --live it also loads the file with Keras "
        "(safe_mode unless --unsafe) and compares the loaded objects with the static reading. A disagreement "
        "means the file does not round-trip: Keras fails to load it (a layer shared across nested models, "
        "missing weights), or builds another model than the file describes (sharing lost, calls or "
        "trainability changed). The message quotes Keras and names the rule it confirms."
    )
    fix = (
        "Fix what the confirmed rule says (cross-model-sharing, missing-weights, ...), re-save from the Python "
        "objects, and run --live again until the file loads as described. When Keras cannot find a custom "
        "class (reported as a warning), inspect the code that builds the model instead: "
        "keras-share inspect --call package.module:function."
    )
    example = """
shared = keras.layers.Dense(4)
sub_a = keras.Model(xa, shared(xa)); sub_b = keras.Model(xb, shared(xb))
keras.Model([xa2, xb2], [sub_a(xa2), sub_b(xb2)]).save("m.keras")
# keras-share inspect --live m.keras -> KS104: Keras cannot load it, confirming cross-model-sharing (KS101)
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if report.live is None or report.live.source != "file":
            return
        for mismatch in report.live.mismatches:
            yield self.finding(mismatch.layer, mismatch.message, severity=mismatch.severity)
