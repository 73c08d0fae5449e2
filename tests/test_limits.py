"""The bounds of keras_share.limits: each refuses with one clear line, at its number and not before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keras_share.analysis.analyze import analyze_graph
from keras_share.errors import ReadError
from keras_share.graph import build
from keras_share.graph.build import build_graph
from keras_share.limits import MAX_JSON_DEPTH, MAX_JSON_VALUES
from keras_share.read.base import ModelFile, WeightIndex
from keras_share.read.json_text import JsonRefused, load_json


def _nested_arrays(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_json_nested_exactly_to_the_depth_limit_is_parsed() -> None:
    assert load_json(_nested_arrays(MAX_JSON_DEPTH)) is not None


def test_json_nested_one_level_deeper_than_the_limit_is_refused() -> None:
    with pytest.raises(JsonRefused, match=f"nested too deeply: more than {MAX_JSON_DEPTH} levels"):
        load_json(_nested_arrays(MAX_JSON_DEPTH + 1))


def test_json_nested_past_the_parsers_own_limit_gets_the_same_refusal() -> None:
    with pytest.raises(JsonRefused, match=f"nested too deeply: more than {MAX_JSON_DEPTH} levels"):
        load_json(_nested_arrays(100_000))


def test_json_with_more_values_than_the_limit_is_refused_before_it_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json, "loads", lambda *args, **kwargs: pytest.fail("parsed"))
    with pytest.raises(JsonRefused, match=f"too large: {MAX_JSON_VALUES + 1:,} JSON values"):
        load_json(b"[" + b"0," * MAX_JSON_VALUES + b"0]")


def _dense(name: str, *inputs: str) -> dict[str, Any]:
    return {"class_name": "Dense", "name": name, "config": {"name": name},
            "inbound_nodes": [[[source, 0, 0, {}] for source in inputs]] if inputs else []}


def _model_file(layers: list[dict[str, Any]], form: str = "keras") -> ModelFile:
    config = {"class_name": "Functional", "config": {"name": "top", "layers": layers, "input_layers": [],
                                                     "output_layers": []}}
    return ModelFile("m.keras", form, "2.15.0", config, WeightIndex())


@pytest.mark.parametrize(("limit", "layers", "problem"), [
    ("MAX_LAYERS", [_dense(f"d{index}") for index in range(4)], "config too large: 4 layers (limit 3)"),
    ("MAX_CALLS", [_dense("a"), _dense("b", "a"), _dense("c", "a"), _dense("e", "a"), _dense("f", "a")],
     "config too large: 4 calls (limit 3)"),
    ("MAX_TENSOR_REFERENCES", [_dense("a"), _dense("b", "a", "a"), _dense("c", "a", "b")],
     "config too large: over 3 tensor references (limit 3)"),
    ("MAX_PATH_CHARACTERS", [_dense("a" * 10), _dense("b" * 10)], "config too large: over 3 characters of layer paths"),
])
def test_a_graph_past_a_limit_is_refused_with_one_line(limit: str, layers: list[dict[str, Any]], problem: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, limit, 3)
    with pytest.raises(ReadError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        build_graph(_model_file(layers))


def test_a_graph_at_every_limit_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    for limit in ("MAX_LAYERS", "MAX_CALLS", "MAX_TENSOR_REFERENCES"):
        monkeypatch.setattr(build, limit, 3)
    graph = build_graph(_model_file([_dense("a"), _dense("b", "a"), _dense("c", "a", "b")]))
    assert len(graph.layers) == 3


def test_one_layer_object_at_too_many_places_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras_share.analysis import analyze

    shared = {"class_name": "Dense", "name": "shared", "config": {"name": "shared"}, "shared_object_id": 1}
    models = [{"class_name": "Sequential", "name": f"s{index}", "config": {"name": f"s{index}", "layers": [shared]}}
              for index in range(4)]
    model_file = _model_file(models, form="savedmodel")
    monkeypatch.setattr(analyze, "MAX_SAME_LAYER_CHARACTERS", 20)
    with pytest.raises(ReadError, match="config too large: .* characters of paths that name one layer object"):
        analyze_graph(model_file, build_graph(model_file))
