"""Every graph, analysis and rule pass does work linear in the model (n log n at most): a model four times as
large costs at most about four times the Python operations. Work is counted in bytecodes executed inside
keras_share, never timed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from keras_share.analysis.analyze import analyze_graph
from keras_share.graph.build import build_graph
from keras_share.read.base import ArrayDigest, ModelFile, WeightArray, WeightIndex
from keras_share.read.stored import StoredDataset, StoredGroup
from keras_share.read.vars_layout import VarsLayoutReader
from keras_share.rules import ALL_RULES, RuleContext, run_rules

SMALL = 150
GROWTH = 4
ALLOWED_RATIO = 5.0
"""Linear work grows GROWTH times; a quadratic pass would grow GROWTH ** 2 times."""


def _bytecodes(work: Callable[[], object]) -> int:
    """How many bytecodes of keras_share's own code ``work()`` executes (the methods dataclasses generate
    included: their code comes from ``<string>``)."""
    count = 0

    def each_opcode(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "opcode":
            count += 1
        return each_opcode

    def each_call(frame: FrameType, event: str, arg: object) -> Any:
        if "keras_share" not in frame.f_code.co_filename and frame.f_code.co_filename != "<string>":
            return None
        frame.f_trace_opcodes = True
        return each_opcode

    previous = sys.gettrace()
    sys.settrace(each_call)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def _analyse(model_file: ModelFile) -> None:
    report = analyze_graph(model_file, build_graph(model_file))
    run_rules(report, ALL_RULES, RuleContext())


def _input() -> dict[str, Any]:
    return {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [None, 4]},
            "inbound_nodes": []}


def _dense(name: str, nodes: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"class_name": "Dense", "name": name, "config": {"name": name, "units": 4}, "inbound_nodes": nodes or [],
            **extra}


def _functional(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"class_name": "Functional", "config": {"name": "top", "layers": layers, "input_layers": [["x", 0, 0]],
                                                   "output_layers": [[layers[-1]["name"], 0, 0]]}}


def _model_file(config: dict[str, Any], version: str = "3.15.1", form: str = "keras",
                weights: WeightIndex | None = None) -> ModelFile:
    return ModelFile("in-memory.keras", form, version, config, weights or WeightIndex())


def siblings_holding_a_nested_model(count: int) -> ModelFile:
    """Nested models that each hold a nested model named ``inner``: one group of placements of models."""
    models = [{"class_name": "Sequential", "name": f"s{index}",
               "config": {"name": f"s{index}", "layers": [{"class_name": "Sequential", "name": "inner",
                                                           "config": {"name": "inner", "layers": [_dense("d")]}}]},
               "inbound_nodes": [[["x", 0, 0, {}]]]} for index in range(count)]
    return _model_file(_functional([_input(), *models]))


def siblings_sharing_a_layer_name(count: int) -> ModelFile:
    """Nested models that each hold a ``shared`` Dense, with weights: cross-model-sharing and weight-copy."""
    models = [{"class_name": "Sequential", "name": f"s{index}",
               "config": {"name": f"s{index}", "layers": [_dense("shared")]},
               "inbound_nodes": [[["x", 0, 0, {}]]]} for index in range(count)]
    weights = WeightIndex()
    for index in range(count):
        location = f"model.weights.h5:s{index}/kernel"
        weights.by_layer[(f"s{index}", "shared")] = [WeightArray("kernel", (4, 4), "float32", location)]
        weights.digests[location] = ArrayDigest(sha256=f"{index:064x}", constant=False)
    return _model_file(_functional([_input(), *models]), weights=weights)


def keras2_keyword_references(count: int) -> ModelFile:
    """One Keras 2 call whose keyword arguments hold ``count`` tensors."""
    kwargs = {f"k{index}": ["x", 0, 0] for index in range(count)}
    return _model_file(_functional([_input(), _dense("d", [[["x", 0, 0, kwargs]]])]), version="2.15.0")


def calls_of_a_nested_model(count: int) -> ModelFile:
    """A Keras 2 nested model of ``count`` layers whose output feeds ``count`` layers."""
    inner = {"class_name": "Sequential", "name": "seq",
             "config": {"name": "seq", "layers": [_input()] + [_dense(f"i{index}") for index in range(count)]},
             "inbound_nodes": [[["x", 0, 0, {}]]]}
    heads = [_dense(f"h{index}", [[["seq", 1, 0, {}]]]) for index in range(count)]
    return _model_file(_functional([_input(), inner, *heads]), version="2.15.0")


def savedmodel_of_nested_models(count: int) -> ModelFile:
    """A SavedModel config of ``count`` models nested in each other, frozen every other level."""
    config: dict[str, Any] = {"class_name": "Sequential", "config": {"name": "leaf", "layers": [_dense("d")]}}
    for level in range(count):
        inner = {**config, "name": f"m{level}"}
        config = {"class_name": "Sequential", "config": {"name": f"m{level}", "trainable": level % 2 == 0,
                                                         "layers": [_dense(f"d{level}", shared_object_id=level), inner]}}
    return _model_file(config, version="2.15.0", form="savedmodel")


def nested_models_holding_many_layers(count: int) -> ModelFile:
    """A few levels of nested models, the innermost holding ``count`` chained layers."""
    layers = [_input()] + [_dense(f"d{index}", [[[f"d{index - 1}" if index else "x", 0, 0, {}]]]) for index in range(count)]
    config = _functional(layers)
    for level in range(5):
        config = _functional([_input(), {**config, "name": f"m{level}", "inbound_nodes": [[["x", 0, 0, {}]]]}])
        config["config"]["layers"][-1]["config"]["name"] = f"m{level}"
    return _model_file(config, version="2.15.0")


def calls_reaching_no_output(count: int, version: str = "3.15.1") -> ModelFile:
    """A chain of ``count`` layers to the output, each also called once on the input for nothing: the search for
    the calls that reach an output."""
    chain = [_dense(f"c{index}", [[["x" if index == 0 else f"c{index - 1}", 0, 0, {}]], [["x", 0, 0, {}]]])
             for index in range(count)]
    return _model_file(_functional([_input(), *chain]), version=version)


def keras2_calls_reaching_no_output(count: int) -> ModelFile:
    """The same in a Keras 2 file, where tf_keras adds every call back (``connect_ancillary_layers``)."""
    model_file = calls_reaching_no_output(count, "2.15.0")
    layers = model_file.config["config"]["layers"]
    layers.append(_dense("side", [[["x", 0, 0, {}]]]))
    return model_file


@pytest.mark.parametrize("model", [siblings_holding_a_nested_model, siblings_sharing_a_layer_name,
                                   keras2_keyword_references, calls_of_a_nested_model, savedmodel_of_nested_models,
                                   nested_models_holding_many_layers, calls_reaching_no_output,
                                   keras2_calls_reaching_no_output])
def test_four_times_the_model_costs_about_four_times_the_work(model: Callable[[int], ModelFile]) -> None:
    small = _bytecodes(lambda: _analyse(model(SMALL)))
    large = _bytecodes(lambda: _analyse(model(SMALL * GROWTH)))
    assert large <= ALLOWED_RATIO * small, f"{large / small:.1f}x the work for {GROWTH}x the model"


def _weights_tree(count: int) -> StoredGroup:
    """A ``.keras`` weights tree whose layer groups are named otherwise than Keras names them, each recording its
    layer's name (Keras 3.6+), as a renamed or reordered file has them."""
    groups = {f"g{index}": StoredGroup(members={"vars": StoredGroup(
        members={"0": StoredDataset((4, 4), "float32")}, attrs={"name": f"d{index}"})}) for index in range(count)}
    return StoredGroup(members={"layers": StoredGroup(members=dict(groups))})


def test_four_times_the_weight_groups_cost_about_four_times_the_matching() -> None:
    def match(count: int) -> Callable[[], object]:
        entries = [_dense(f"d{index}", shared_object_id=index) for index in range(count)]
        config = _functional(entries + [dict(entry) for entry in entries])  # each layer placed twice: aliases
        tree = _weights_tree(count)
        return lambda: VarsLayoutReader(tree, "model.weights.h5:", 2).read(config)

    small = _bytecodes(match(SMALL))
    large = _bytecodes(match(SMALL * GROWTH))
    assert large <= ALLOWED_RATIO * small, f"{large / small:.1f}x the work for {GROWTH}x the groups"
