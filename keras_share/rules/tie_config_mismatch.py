"""KS108 tie-config-mismatch."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class TieConfigMismatch(Rule):
    code = "KS108"
    name = "tie-config-mismatch"
    severity = Severity.ERROR
    summary = "A KerasHub preset's weights are tied (or untied) but its backbone class rebuilds the other kind."
    why = (
        "A ReversibleEmbedding tied to the output projection stores one (vocab, hidden) array; an untied one "
        "stores a second, transposed reverse_embeddings array. Whether loading builds one or two is decided by the "
        "backbone class's code: hard-coded (Gemma, PaliGemma tie; Mistral, Mixtral, Phi3 do not) or a config key "
        "(tie_word_embeddings for Llama, Qwen, T5Gemma). When the weights and the class disagree, from_preset "
        "fails ('expected 2 variables, but received 1'). keras-hub 0.32's LlamaBackbone.get_config drops "
        "tie_word_embeddings (keras-hub#3098): every tied Llama preset it saves reloads as untied, and fails."
    )
    fix = (
        "Set the key in config.json's \"config\" to what the weights say (\"tie_word_embeddings\": true for a "
        "tied Llama preset); for a class whose tie is hard-coded, save the weights from a model of that class."
    )
    example = """
backbone = keras_hub.models.LlamaBackbone(..., tie_word_embeddings=True)
backbone.save_to_preset("llama")      # KS108: config.json has no tie_word_embeddings
keras_hub.models.Backbone.from_preset("llama")   # ValueError: expected 2 variables, but received 1
# fix: add "tie_word_embeddings": true to the "config" object of llama/config.json
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        preset = report.preset
        if preset is None or preset.tied_embeddings is None or preset.reload_tied is None:
            return
        if preset.tied_embeddings == preset.reload_tied:
            return
        stored = ("tied: one (vocab, hidden) array, no reverse_embeddings" if preset.tied_embeddings
                  else "untied: embeddings and a transposed reverse_embeddings array")
        expected = "tied" if preset.reload_tied else "untied"
        if preset.dropped_key is not None:
            fix = (f"add \"{preset.dropped_key}\": {str(preset.tied_embeddings).lower()} to the \"config\" object of "
                   "config.json")
        else:
            fix = "save the weights from a backbone of the class that builds them"
        yield self.finding(
            preset.embedding_layers[0],
            f"the stored token embedding is {stored}, but loading builds it {expected} "
            f"({preset.reload_reason}): from_preset fails to load these weights; {fix}",
        )
