"""Which calls a Keras 2 file's node indices name: a nested model that had a node 0 of its own before its first call
is numbered from 1 (tf_keras ``_should_skip_first_node``; ``kept_nodes = 1`` for every model in Keras 2.0-2.3),
everything else from 0; and a node index that names no call is left unresolved with a note, never moved.

Keras-built cases are compared with the model tf_keras (or Keras 3) loads from the same file (tests/live_truth.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from config_rewrite import (
    as_keras_2_2_sequential,
    layer_entry,
    rewrite_h5,
    rewrite_savedmodel,
)
from live_truth import assert_static_matches_live, load_model, static_report

from keras_share.analysis.analyze import analyze
from keras_share.read.base import ModelFile, WeightIndex


def _siamese_of_a_sequential_with_input_shape(K: Any) -> Any:
    """An encoder Sequential whose first Dense is given ``input_shape``, called on ``a`` then ``b``."""
    K.backend.clear_session()
    encoder = K.Sequential([K.layers.Dense(4, input_shape=(8,)), K.layers.Dense(3)], name="enc")
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    joined = K.layers.Concatenate(name="join")([encoder(a), encoder(b)])
    return K.Model([a, b], K.layers.Dense(1, name="score")(joined))


def _calls_named(report: dict[str, Any], consumer: str) -> list[tuple[str, int | None]]:
    (site,) = next(layer for layer in report["layers"] if layer["path"] == consumer)["call_sites"]
    return [(ref["layer"], ref["call"]) for ref in site["inputs"]]


def _encoder_inputs(report: dict[str, Any]) -> list[str]:
    encoder = next(layer for layer in report["layers"] if layer["path"] == "enc")
    return [site["inputs"][0]["layer"] for site in encoder["call_sites"]]


def _saved_in_the_keras_2_2_layout(tf_keras: Any, path: Path, fmt: str) -> Path:
    """The siamese model saved by tf_keras, its encoder's config rewritten the way Keras 2.2-2.3 and tf.keras up
    to 2.1 wrote a Sequential built with an input shape: no InputLayer entry, ``batch_input_shape`` on the first
    Dense (tf_keras 2.21 itself writes the InputLayer)."""
    model = _siamese_of_a_sequential_with_input_shape(tf_keras)
    if fmt == "savedmodel":
        model.save(str(path), save_format="tf")

        def edit(node_path: str, metadata: dict[str, Any]) -> None:
            config = metadata.get("config")
            if node_path == "root":
                as_keras_2_2_sequential(layer_entry(metadata, "enc"))
            elif isinstance(config, dict) and config.get("name") == "enc" and "layers" in config:
                as_keras_2_2_sequential(metadata)

        rewrite_savedmodel(path, edit)
    else:
        model.save(str(path))
        rewrite_h5(path, lambda config: as_keras_2_2_sequential(layer_entry(config, "enc")))
    return path


@pytest.mark.parametrize("fmt", ["h5", "savedmodel"])
def test_nested_sequential_whose_first_layer_has_batch_input_shape_is_numbered_from_one(
        tf_keras: Any, tmp_path: Path, fmt: str) -> None:
    path = _saved_in_the_keras_2_2_layout(tf_keras, tmp_path / f"siamese.{fmt}", fmt)
    report = assert_static_matches_live(path, load_model(path, 2), 2)
    encoder = next(layer for layer in report["layers"] if layer["path"] == "enc")
    assert [child["class_name"] for child in report["layers"] if child["parent"] == "enc"] == ["Dense", "Dense"]
    assert (encoder["calls"], encoder["effective_calls"], encoder["shared"]) == (2, 2, True)
    assert _calls_named(report, "join") == [("enc", 0), ("enc", 1)]
    assert _encoder_inputs(report) == ["a", "b"]
    assert not [note for note in report["notes"] if "node index" in note]


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras3_numbers_the_same_nested_sequential_from_zero(keras3: Any, tmp_path: Path, fmt: str) -> None:
    model = _siamese_of_a_sequential_with_input_shape(keras3)
    path = tmp_path / f"siamese.{fmt}"
    model.save(str(path))
    report = assert_static_matches_live(path, load_model(path, 3), 3)
    assert _calls_named(report, "join") == [("enc", 0), ("enc", 1)]
    assert _encoder_inputs(report) == ["a", "b"]


# ------------------------------------------------------------------ configs written by hand (no Keras needed)


def _input(name: str) -> dict[str, Any]:
    return {"class_name": "InputLayer", "name": name, "config": {"name": name, "batch_input_shape": [None, 8]},
            "inbound_nodes": []}


def _dense(name: str, nodes: list[Any], **config: Any) -> dict[str, Any]:
    return {"class_name": "Dense", "name": name, "config": {"name": name, "units": 4, **config},
            "inbound_nodes": nodes}


def _siamese_config(encoder_layers: list[dict[str, Any]], indices: tuple[int, int]) -> dict[str, Any]:
    encoder = {"class_name": "Sequential", "name": "enc", "config": {"name": "enc", "layers": encoder_layers},
               "inbound_nodes": [[["a", 0, 0, {}]], [["b", 0, 0, {}]]]}
    join = {"class_name": "Concatenate", "name": "join", "config": {"name": "join"},
            "inbound_nodes": [[["enc", indices[0], 0, {}], ["enc", indices[1], 0, {}]]]}
    return {"class_name": "Model", "config": {"name": "top", "layers": [_input("a"), _input("b"), encoder, join],
                                              "input_layers": [["a", 0, 0], ["b", 0, 0]],
                                              "output_layers": [["join", 0, 0]]}}


def _report(config: dict[str, Any], keras_version: str) -> Any:
    return analyze(ModelFile("by-hand.h5", "h5", keras_version, config, WeightIndex()))


def _join_calls(config: dict[str, Any], keras_version: str) -> list[int | None]:
    report = _report(config, keras_version)
    join = next(layer for layer in report.layers if layer.layer.path == "join")
    return [ref.call for ref in join.layer.call_sites[0].inputs]


@pytest.mark.parametrize("version", ["2.2.4", "2.3.1", "2.1.6"])
def test_standalone_keras_numbered_every_nested_model_from_one(version: str) -> None:
    """Keras 2.0-2.3 gave every model a node of its own at construction, a Sequential built on its first call too
    (``Network._init_graph_network``), and wrote ``kept_nodes = 1`` for every model."""
    assert _join_calls(_siamese_config([_dense("d", [])], (1, 2)), version) == [0, 1]


@pytest.mark.parametrize("version", ["2.2.4-tf", "2.15.0"])
def test_tf_keras_numbers_a_sequential_without_an_input_shape_from_zero(version: str) -> None:
    """tf.keras counts node 0 only for a Sequential built as a graph network (an Input first, or an input shape);
    one without either is numbered from 0."""
    assert _join_calls(_siamese_config([_dense("d", [])], (0, 1)), version) == [0, 1]


def test_a_node_index_below_the_numbering_is_left_unresolved_with_a_note() -> None:
    """Index 0 of a Sequential numbered from 1 names no call: it is not read as call 0."""
    config = _siamese_config([_dense("d", [], batch_input_shape=[None, 8])], (0, 1))
    report = _report(config, "2.15.0")
    join = next(layer for layer in report.layers if layer.layer.path == "join")
    assert [ref.call for ref in join.layer.call_sites[0].inputs] == [None, 0]
    assert any("node index 0 of 'enc' points at no call" in note for note in report.notes)


def test_a_node_index_past_the_last_call_is_left_unresolved_with_a_note() -> None:
    config = _siamese_config([_input("enc_input"), _dense("d", [])], (2, 3))
    report = _report(config, "2.15.0")
    join = next(layer for layer in report.layers if layer.layer.path == "join")
    assert [ref.call for ref in join.layer.call_sites[0].inputs] == [1, None]
    assert any("node index 3 of 'enc' points at no call" in note for note in report.notes)


def test_keras3_files_are_numbered_from_zero_whatever_the_first_layer() -> None:
    config = _siamese_config([_dense("d", [], batch_input_shape=[None, 8])], (0, 1))
    assert _join_calls(config, "3.15.1") == [0, 1]


def test_a_report_read_from_the_command_line_keeps_the_note(tmp_path: Path) -> None:
    """The JSON report carries the unresolved reference as null and the note (nothing is dropped on the way)."""
    import json

    import h5py

    path = tmp_path / "unresolved.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(_siamese_config([_dense("d", [], batch_input_shape=[None, 8])], (0, 1)))
        h5.attrs["keras_version"] = "2.15.0"
        h5.create_group("model_weights").attrs["layer_names"] = []
    report = static_report(path)
    assert _calls_named(report, "join") == [("enc", None), ("enc", 0)]
    assert any("points at no call" in note for note in report["notes"])


def test_outputs_that_name_no_call_leave_every_call_counted_with_a_note() -> None:
    """Which calls reach an output is unknown when an output names no call: nothing is declared unreachable."""
    config = _siamese_config([_input("enc_input"), _dense("d", [])], (1, 2))
    config["config"]["output_layers"] = [["join", 3, 0]]
    report = _report(config, "2.15.0")
    assert [(layer.layer.path, layer.unreachable_calls, layer.effective_calls) for layer in report.layers
            if layer.layer.path in ("enc", "join")] == [("enc", [], 2), ("join", [], 1)]
    assert any("output_layers do not all name a call" in note for note in report.notes)


def test_an_unresolved_reference_is_an_unresolved_call_finding() -> None:
    from keras_share.rules import RuleContext, run_rules, select_rules

    config = _siamese_config([_input("enc_input"), _dense("d", [])], (2, 3))
    config["config"]["output_layers"] = [["join", 1, 0]]
    report = _report(config, "2.15.0")
    findings = run_rules(report, select_rules(["unresolved-call"]), RuleContext())
    assert [(finding.layer, finding.message) for finding in findings] == [
        ("join", "takes node 3 of 'enc', which names none of its calls: Keras cannot rebuild this graph"),
        ("", ("an output of this model is node 1 of 'join', which names none of its calls: Keras cannot rebuild "
              "this graph")),
    ]
    assert all(finding.severity == "error" and finding.rule == "KS105" for finding in findings)
