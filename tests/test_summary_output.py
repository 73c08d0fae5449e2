"""The summary the human formats print: shapes per call (stored or inferred), the layer tree with output shapes
and params as loaded, and the JSON fields that carry them (sample models, no Keras needed)."""

from __future__ import annotations

import json
from pathlib import Path

from keras_share.analysis.report import ModelReport
from keras_share.api import inspect
from keras_share.render.json_format import JsonFormatter
from keras_share.render.markdown import MarkdownFormatter
from keras_share.render.terminal import TerminalFormatter

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def _report(name: str) -> ModelReport:
    report = inspect(SAMPLES / name)
    assert isinstance(report, ModelReport)
    return report


def _terminal(name: str, all_layers: bool = True) -> str:
    return TerminalFormatter(all_layers=all_layers, width=200).format([_report(name)], [])


def test_tree_shows_inferred_output_shape_inside_keras2_nested_model() -> None:
    assert "tower_dense Dense  -> (None, 4)" in _terminal("k2_shared.h5")


def test_tree_shows_declared_shape_of_input_layer() -> None:
    assert "tower_in InputLayer  -> (None, 4)" in _terminal("k2_shared.h5")


def test_shared_table_shows_inferred_input_and_output_shape_of_each_call() -> None:
    text = _terminal("k2_shared.h5", all_layers=False)
    assert "#0: (None, 4) -> (None, 4)" in text and "#1: (None, 4) -> (None, 4)" in text
    assert "#0: ?" not in text


def test_tree_labels_shared_submodel_with_its_layer_count_and_calls() -> None:
    assert "encoder Functional (3 layers) ×3  -> (None, 3)" in _terminal("nested_encoder.h5")


def test_tree_gives_unique_params_of_submodel_and_non_trainable_part_of_a_layer() -> None:
    text = _terminal("nested_encoder.keras")
    assert "trains  73 params" in text
    assert "20 params (10 non-trainable)" in text


def test_header_gives_trainable_and_non_trainable_params_as_loaded() -> None:
    assert "as loaded: 63 trainable, 10 non-trainable params" in _terminal("nested_encoder.keras", all_layers=False)


def test_header_gives_frozen_params_as_non_trainable() -> None:
    assert "as loaded: 14 trainable, 54 non-trainable params" in _terminal("transfer_frozen.keras", all_layers=False)


def test_markdown_shows_inferred_input_shapes_of_keras2_nested_model() -> None:
    text = MarkdownFormatter().format([_report("k2_shared.h5")], [])
    assert "#0: (None, 4); #1: (None, 4)" in text


def test_json_call_shapes_say_which_shapes_are_stored_and_which_inferred() -> None:
    document = json.loads(JsonFormatter().format([_report("k2_shared.h5")], []))
    layers = {layer["path"]: layer for layer in document["models"][0]["layers"]}
    tower_call = layers["tower"]["call_sites"][0]
    assert tower_call["input_shapes"] == [None]
    assert tower_call["shapes"] == {"inputs": [[None, 4]], "input_sources": ["inferred"],
                                    "outputs": [[None, 4]], "output_sources": ["inferred"]}
    assert layers["shared_dense"]["call_sites"][0]["shapes"]["input_sources"] == ["stored"]


def test_json_gives_params_split_per_layer_and_for_the_model() -> None:
    document = json.loads(JsonFormatter().format([_report("nested_encoder.keras")], []))
    model = document["models"][0]
    bn = next(layer for layer in model["layers"] if layer["path"] == "encoder/enc_bn")
    encoder = next(layer for layer in model["layers"] if layer["path"] == "encoder")
    assert (bn["trainable_params"], bn["non_trainable_params"], bn["unique_params"]) == (10, 10, 20)
    assert encoder["unique_params"] == 73
    assert (model["summary"]["trainable_params"], model["summary"]["non_trainable_params"]) == (63, 10)


def test_model_without_graph_has_unknown_trainable_split() -> None:
    summary = _report("subclassed.keras").summary
    assert (summary.trainable_params, summary.non_trainable_params) == (None, None)
