"""KS212 parameter-count-mismatch."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class ParameterCountMismatch(Rule):
    code = "KS212"
    name = "parameter-count-mismatch"
    severity = Severity.WARNING
    summary = "A KerasHub preset's metadata.json parameter_count differs from the parameters its weights store."
    why = (
        "save_to_preset writes backbone.count_params() to metadata.json, and model hubs show that number. When the "
        "stored weights hold another count, the weights are not those of the model the metadata describes: "
        "variables were added after the count (LoRA adapters enabled, whose kernels save_to_preset does not store), "
        "weights were cut or edited, or files from two presets were mixed."
    )
    fix = (
        "Save the preset again from the model it should hold (merge or drop LoRA adapters first, and save them "
        "with save_lora_weights), or correct parameter_count in metadata.json."
    )
    example = """
backbone.enable_lora(rank=4)
backbone.save_to_preset("preset")   # KS212: parameter_count counts the LoRA kernels, model.weights.h5 lacks them
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        preset = report.preset
        if preset is None or preset.parameter_count is None:
            return
        stored = report.summary.unique_params
        if stored == preset.parameter_count:
            return
        yield self.finding(
            "",
            f"metadata.json says parameter_count {preset.parameter_count:,}, but the backbone's weights store "
            f"{stored:,} unique parameters ({stored - preset.parameter_count:+,}): the weights are not those of the "
            "model the metadata describes; save the preset again from that model",
        )
