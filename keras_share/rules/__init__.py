"""The rules: one module per rule id, each a small class with its code, name, severity and docs."""

from __future__ import annotations

from collections.abc import Iterable

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.ambiguous_file_format import AmbiguousFileFormat
from keras_share.rules.base import Rule, RuleContext
from keras_share.rules.batchnorm_fine_tuning_mode import BatchNormFineTuningMode
from keras_share.rules.cross_model_sharing import CrossModelSharing
from keras_share.rules.frozen_layer_trains_after_load import FrozenLayerTrainsAfterLoad
from keras_share.rules.keras3_incompatible import Keras3Incompatible
from keras_share.rules.layer_shared_with_other_model import (
    LayerSharedWithOtherModel,
    LiveTransferredLayerTrainable,
)
from keras_share.rules.legacy_weight_order import LegacyWeightOrder
from keras_share.rules.live_static_mismatch import LiveStaticMismatch
from keras_share.rules.missing_weights import MissingWeights
from keras_share.rules.optimizer_state_mismatch import OptimizerStateMismatch
from keras_share.rules.parameter_count_mismatch import ParameterCountMismatch
from keras_share.rules.sequential_repeated_layer import SequentialRepeatedLayer
from keras_share.rules.shared_batchnorm import SharedBatchNorm
from keras_share.rules.tie_config_mismatch import TieConfigMismatch
from keras_share.rules.tied_variable import TiedVariable
from keras_share.rules.trainable_in_frozen_parent import TrainableInFrozenParent
from keras_share.rules.unreachable_call import UnreachableCall
from keras_share.rules.unresolved_call import UnresolvedCall
from keras_share.rules.unsafe_lambda import UnsafeLambda
from keras_share.rules.unsafe_module_reference import UnsafeModuleReference
from keras_share.rules.varying_input_shapes import VaryingInputShapes
from keras_share.rules.weight_copy import WeightCopy
from keras_share.rules.weights_mismatch import WeightsMismatch
from keras_share.settings import rule_matches, unknown_rule_problem

ALL_RULES: tuple[Rule, ...] = (
    CrossModelSharing(),
    MissingWeights(),
    SequentialRepeatedLayer(),
    LiveStaticMismatch(),
    UnresolvedCall(),
    SharedBatchNorm(),
    VaryingInputShapes(),
    WeightCopy(),
    UnsafeLambda(),
    LiveTransferredLayerTrainable(),
    LayerSharedWithOtherModel(),
    AmbiguousFileFormat(),
    TrainableInFrozenParent(),
    FrozenLayerTrainsAfterLoad(),
    TiedVariable(),
    WeightsMismatch(),
    TieConfigMismatch(),
    ParameterCountMismatch(),
    UnreachableCall(),
    BatchNormFineTuningMode(),
    UnsafeModuleReference(),
    Keras3Incompatible(),
    OptimizerStateMismatch(),
    LegacyWeightOrder(),
)

RULE_IDS = tuple((rule.code, rule.name) for rule in ALL_RULES)
"""Every rule's ``(code, name)``: what settings are checked against."""

__all__ = ["ALL_RULES", "RULE_IDS", "Rule", "RuleContext", "find_rule", "run_rules", "select_rules"]


def find_rule(code_or_name: str) -> Rule | None:
    """The rule with this code (``KS201``) or name (``shared-batchnorm``), case-insensitive."""
    wanted = code_or_name.strip().lower()
    return next((rule for rule in ALL_RULES if wanted in (rule.code.lower(), rule.name)), None)


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[Rule]:
    """Rules matched by ``select`` (all when empty) minus those matched by ``ignore``.

    Selectors are codes, code prefixes (``KS2``) or names; one that matches no rule raises ValueError.
    """
    select, ignore = list(select), list(ignore)
    for pattern in select + ignore:
        problem = unknown_rule_problem(pattern, RULE_IDS)
        if problem:
            raise ValueError(problem)
    return [
        rule for rule in ALL_RULES
        if (not select or any(rule_matches(pattern, rule.code, rule.name) for pattern in select))
        and not any(rule_matches(pattern, rule.code, rule.name) for pattern in ignore)
    ]


def run_rules(report: ModelReport, rules: Iterable[Rule], context: RuleContext) -> list[Finding]:
    """Every finding of ``rules`` on ``report``, in rule order."""
    return [finding for rule in rules for finding in rule.check(report, context)]
