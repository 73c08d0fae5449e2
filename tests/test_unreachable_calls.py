"""Calls that reach no output: the file keeps them (``calls``), Keras's rebuilt graph does not, so effective calls
and ``shared`` leave them out and ``unreachable_calls`` names them.

Keras never saves such a call itself (``get_config`` writes only the nodes of the graph mapped back from the
outputs); files in the wild get them from a custom layer whose node records only some of its tensor arguments
(SOURCES.md note 7 of the real-model corpus). The tests reproduce that by editing the saved config so that a
consumer takes the same tensor twice (``config_rewrite``), then load the file with the Keras that wrote it and
compare (tests/live_truth.py).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from config_rewrite import layer_entry, rewrite_h5, rewrite_keras, rewrite_savedmodel
from live_truth import assert_static_matches_live, load_model, static_report

FORMATS = [pytest.param(3, "keras", id="keras3-keras"), pytest.param(3, "h5", id="keras3-h5"),
           pytest.param(2, "keras", id="tf_keras-keras"), pytest.param(2, "h5", id="tf_keras-h5"),
           pytest.param(2, "savedmodel", id="tf_keras-savedmodel")]


def _module(generation: int) -> Any:
    return pytest.importorskip("keras" if generation == 3 else "tf_keras")


def _first_input_twice(entry: dict[str, Any]) -> None:
    """The entry's only call takes its first tensor argument twice: what it took second now feeds nothing."""
    (node,) = entry["inbound_nodes"]
    if isinstance(node, dict):  # Keras 3: {"args": [[tensor, tensor]], "kwargs": {}}
        tensors = node["args"][0]
    else:  # Keras 2: [[name, node, tensor, kwargs], ...]
        tensors = node
    tensors[1] = copy.deepcopy(tensors[0])


def _save_with_edit(model: Any, path: Path, generation: int, fmt: str, consumer: str) -> Path:
    """Save ``model`` and make ``consumer`` take its first tensor argument twice."""
    if fmt == "savedmodel":
        model.save(str(path), save_format="tf")
        rewrite_savedmodel(path, lambda node, metadata: _first_input_twice(layer_entry(metadata, consumer))
                           if node == "root" else None)
        return path
    model.save(str(path))
    (rewrite_keras if fmt == "keras" else rewrite_h5)(path, lambda config: _first_input_twice(layer_entry(config, consumer)))
    return path


def _siamese(K: Any, dangling: bool = False) -> Any:
    """An encoder called on ``a`` then ``b``, both results joined; with ``dangling``, a Dense that only the
    result on ``b`` feeds sits between them."""
    K.backend.clear_session()
    encoder = K.Sequential([K.Input((8,)), K.layers.Dense(4, name="e1")], name="enc")
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    left, right = encoder(a), encoder(b)
    if dangling:
        right = K.layers.Dense(4, name="side")(right)
    return K.Model([a, b], K.layers.Subtract(name="join")([left, right]))


def _layer(report: dict[str, Any], path: str) -> dict[str, Any]:
    return next(layer for layer in report["layers"] if layer["path"] == path)


def _facts(report: dict[str, Any], path: str) -> tuple[int, list[int], int, bool]:
    layer = _layer(report, path)
    return layer["calls"], layer["unreachable_calls"], layer["effective_calls"], layer["shared"]


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_a_second_call_of_a_nested_model_that_feeds_nothing_is_not_counted(
        tmp_path: Path, generation: int, fmt: str) -> None:
    K = _module(generation)
    path = _save_with_edit(_siamese(K), tmp_path / f"siamese.{fmt}", generation, fmt, "join")
    report = assert_static_matches_live(path, load_model(path, generation), generation)
    assert _facts(report, "enc") == (2, [1], 1, False)
    assert _facts(report, "enc/e1") == (1, [], 1, False)
    assert report["summary"]["shared_layers"] == 0
    assert report["summary"]["naive_params"] == report["summary"]["unique_params"]


def test_keras3_drops_a_layer_whose_only_call_reaches_no_output(keras3: Any, tmp_path: Path) -> None:
    path = _save_with_edit(_siamese(keras3, dangling=True), tmp_path / "dangling.keras", 3, "keras", "join")
    loaded = load_model(path, 3)
    assert "side" not in [layer.name for layer in loaded.layers]
    report = assert_static_matches_live(path, loaded, 3)
    assert _facts(report, "side") == (1, [0], 0, False)
    assert _facts(report, "enc") == (2, [1], 1, False)


def test_a_dropped_layer_with_weights_makes_a_keras3_h5_unloadable(keras3: Any, tmp_path: Path) -> None:
    """Keras 3 matches a legacy .h5's weight groups to the layers it kept, one for one, and stops: the facts
    keras-share reports are those of the .keras file above."""
    path = _save_with_edit(_siamese(keras3, dangling=True), tmp_path / "dangling.h5", 3, "h5", "join")
    with pytest.raises(ValueError, match="Layer count mismatch"):
        load_model(path, 3)
    report = static_report(path)
    assert _facts(report, "side") == (1, [0], 0, False)
    assert _facts(report, "enc") == (2, [1], 1, False)


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel"])
def test_tf_keras_runs_every_call_again_once_a_layer_reaches_no_output(tf_keras: Any, tmp_path: Path, fmt: str) -> None:
    """tf_keras adds a layer that reaches no output back to the model (``connect_ancillary_layers``) together with
    every call of every layer, except the first call of a nested model numbered from 1: here both calls of the
    encoder run again, so it is shared."""
    path = _save_with_edit(_siamese(tf_keras, dangling=True), tmp_path / f"dangling.{fmt}", 2, fmt, "join")
    report = assert_static_matches_live(path, load_model(path, 2), 2)
    assert _facts(report, "side") == (1, [], 1, False)
    assert _facts(report, "enc") == (2, [], 2, True)


def _nested_with_a_dead_branch(K: Any) -> Any:
    """A nested Functional with two outputs, called twice; only its first output is used (the second is dropped
    from its ``output_layers`` after saving). Keras 3 cannot load such a file's legacy .h5 (the weight groups no
    longer match its layers one for one, as above), so that format is left out."""
    K.backend.clear_session()
    x = K.Input((8,), name="x")
    inner = K.Model(x, [K.layers.Dense(4, name="kept")(x), K.layers.Dense(4, name="branch")(x)], name="inner")
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    return K.Model([a, b], K.layers.Subtract(name="join")([inner(a)[0], inner(b)[0]]))


def _drop_second_output_of_inner(config: dict[str, Any]) -> None:
    inner = layer_entry(config, "inner")
    del inner["config"]["output_layers"][1]


@pytest.mark.parametrize(("generation", "fmt"), [pytest.param(3, "keras", id="keras3-keras"),
                                                 pytest.param(2, "keras", id="tf_keras-keras"),
                                                 pytest.param(2, "h5", id="tf_keras-h5")])
def test_a_call_inside_a_nested_model_counts_only_if_it_reaches_the_nested_models_outputs(
        tmp_path: Path, generation: int, fmt: str) -> None:
    K = _module(generation)
    path = tmp_path / f"nested.{fmt}"
    _nested_with_a_dead_branch(K).save(str(path))
    (rewrite_keras if fmt == "keras" else rewrite_h5)(path, _drop_second_output_of_inner)
    report = assert_static_matches_live(path, load_model(path, generation), generation)
    assert _facts(report, "inner") == (2, [], 2, True)
    assert _facts(report, "inner/kept") == (1, [], 2, True)
    # Keras 3 leaves the branch out of the nested model; tf_keras adds it back and runs it on both calls
    assert _facts(report, "inner/branch") == ((1, [0], 0, False) if generation == 3 else (1, [], 2, True))


@pytest.mark.parametrize(("generation", "fmt"), [pytest.param(3, "keras", id="keras3-keras"),
                                                 pytest.param(2, "h5", id="tf_keras-h5")])
def test_live_crosscheck_agrees_with_the_file_on_a_call_that_feeds_nothing(
        tmp_path: Path, generation: int, fmt: str) -> None:
    """``--live`` compares the calls that reach an output with the loaded model's calls: no mismatch."""
    from keras_share.api import inspect_file
    from keras_share.live.crosscheck import load_and_compare

    K = _module(generation)
    path = _save_with_edit(_siamese(K), tmp_path / f"siamese.{fmt}", generation, fmt, "join")
    outcome = load_and_compare(inspect_file(path, timeout=None), unsafe=False)
    assert outcome.load_error is None
    assert outcome.mismatches == []


def test_the_terminal_report_says_which_calls_reach_no_output(tmp_path: Path) -> None:
    """A Keras 2 file written by hand: ``join`` takes the encoder's call 0 twice, call 1 feeds nothing."""
    import json
    import subprocess

    import h5py
    from cli_command import keras_share_command

    dense = {"class_name": "Dense", "config": {"name": "e1", "units": 4}}
    encoder = {"class_name": "Sequential", "name": "enc",
               "config": {"name": "enc", "layers": [
                   {"class_name": "InputLayer", "config": {"name": "x", "batch_input_shape": [None, 8]}}, dense]},
               "inbound_nodes": [[["a", 0, 0, {}]], [["b", 0, 0, {}]]]}
    inputs = [{"class_name": "InputLayer", "name": name, "config": {"name": name, "batch_input_shape": [None, 8]},
               "inbound_nodes": []} for name in ("a", "b")]
    join = {"class_name": "Subtract", "name": "join", "config": {"name": "join"},
            "inbound_nodes": [[["enc", 1, 0, {}], ["enc", 1, 0, {}]]]}
    config = {"class_name": "Functional", "config": {"name": "top", "layers": [*inputs, encoder, join],
                                                     "input_layers": [["a", 0, 0], ["b", 0, 0]],
                                                     "output_layers": [["join", 0, 0]]}}
    path = tmp_path / "dead_call.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["keras_version"] = "2.15.0"
        h5.create_group("model_weights").attrs["layer_names"] = []
    proc = subprocess.run([*keras_share_command(), "inspect", "--fail-on", "never", "--all-layers", str(path)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "calls 2 (x1), #1 reaches no output" in proc.stdout
    assert "shared" not in proc.stdout.split("enc", 1)[1].splitlines()[0]


def test_live_crosscheck_expects_keras3_to_drop_a_layer_that_reaches_no_output(keras3: Any, tmp_path: Path) -> None:
    from keras_share.api import inspect_file
    from keras_share.live.crosscheck import load_and_compare

    path = _save_with_edit(_siamese(keras3, dangling=True), tmp_path / "dangling.keras", 3, "keras", "join")
    outcome = load_and_compare(inspect_file(path, timeout=None), unsafe=False)
    assert outcome.load_error is None
    assert outcome.mismatches == []
