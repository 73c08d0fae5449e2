"""Serialized Python functions are found in every config at any depth, whatever class holds them, by one walk
whose answer the unsafe-lambda rule and ``--live`` share."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from bundle_bytes import write_bundle
from protobuf_bytes import length_delimited

from keras_share import configs
from keras_share.analysis.analyze import analyze
from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.live.crosscheck import cross_check
from keras_share.read.base import ModelFile, WeightIndex
from keras_share.rules.base import RuleContext
from keras_share.rules.unsafe_lambda import UnsafeLambda

K3_LAMBDA = {"class_name": "__lambda__", "config": {"code": "4wEAAAAA", "defaults": None, "closure": None}}


def _layer(class_name: str, name: str, **config: Any) -> dict[str, Any]:
    return {"class_name": class_name, "name": name, "config": {"name": name, **config}}


def _functional(name: str, layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"class_name": "Functional", "name": name,
            "config": {"name": name, "layers": layers, "input_layers": [], "output_layers": []}}


def _sites(config: dict[str, Any], version: str = "3.15.1") -> list[tuple[str, str]]:
    report = analyze(ModelFile("model.keras", "keras", version, config, WeightIndex()))
    return [(site.layer, site.location) for site in report.bytecode]


def test_a_lambda_inside_wrappers_inside_a_nested_model_is_found_on_its_layer() -> None:
    lam = _layer("Lambda", "evil", function=K3_LAMBDA)
    wrapped = _layer("Bidirectional", "bi", layer=_layer("TimeDistributed", "td", layer=lam))
    config = _functional("top", [_layer("InputLayer", "x"), _functional("inner", [wrapped])])
    assert _sites(config) == [("inner/bi", "layer.config.layer.config.function")]


def test_any_serialized_lambda_is_found_not_only_a_lambda_layers() -> None:
    config = _functional("top", [_layer("Dense", "d", activation={"class_name": "__lambda__", "config": {"value": "x"}})])
    assert _sites(config) == [("d", "activation")]


@pytest.mark.parametrize(("fields", "location"), [
    ({"function": ["4wEAAAAA", None, None], "function_type": "lambda"}, "function"),
    ({"function": "4wEAAAAA", "function_type": "lambda"}, "function"),
    ({"function": "f", "function_type": "function", "output_shape": "4wE", "output_shape_type": "lambda"}, "output_shape"),
    ({"function": ["4wEAAAAA", None, None]}, "function"),  # Keras 3 turns a legacy Lambda's list into a __lambda__
    ({"dropout_fn": "4wE", "dropout_fn_type": "lambda"}, "dropout_fn"),  # tf_keras cell wrappers
])
def test_every_tf_keras_form_of_func_dump_is_found(fields: dict[str, Any], location: str) -> None:
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        _layer("TimeDistributed", "td", layer={"class_name": "Lambda", "config": {"name": "evil", **fields}})]}}
    assert _sites(config, "2.15.0") == [("td", f"layer.config.{location}")]


def test_a_plain_function_reference_is_not_bytecode() -> None:
    config = _functional("top", [_layer("Lambda", "l", function={"module": "builtins", "class_name": "function",
                                                                  "config": "abs", "registered_name": "function"})])
    assert _sites(config) == []


def test_a_lambda_in_an_entry_the_graph_drops_is_still_found() -> None:
    """A second layer of the same name is not in the graph, but Keras would still deserialize it."""
    config = _functional("top", [_layer("Dense", "d"), _layer("Lambda", "d", function=K3_LAMBDA)])
    assert _sites(config) == [("", "layers[1].config.function")]


def test_a_deep_config_is_walked_iteratively() -> None:
    deep: Any = K3_LAMBDA
    for _ in range(100_000):
        deep = [deep]
    assert configs.bytecode_sites({"x": deep}) == [("", "x" + "[0]" * 5 + "..." + "[0]" * 8)]


def test_the_walk_takes_linear_time() -> None:
    def wide(count: int) -> dict[str, Any]:
        return {"layers": [{"class_name": "Dense", "config": {"name": f"d{i}", "units": [i, {"a": [1, 2]}]}}
                           for i in range(count)]}

    def seconds(count: int) -> float:
        value = wide(count)
        started = time.perf_counter()
        configs.bytecode_sites(value)
        return time.perf_counter() - started

    small, big = min(seconds(2_000) for _ in range(3)), min(seconds(20_000) for _ in range(3))
    assert big < 25 * small


def test_places_are_listed_up_to_a_bound() -> None:
    value = [dict(K3_LAMBDA) for _ in range(configs.MAX_BYTECODE_SITES + 50)]
    assert len(configs.bytecode_sites(value)) == configs.MAX_BYTECODE_SITES


@pytest.mark.parametrize(("text", "may"), [
    (b'{"class_name": "Dense", "module": "keras.src.models.functional"}', False),
    (b'{"function_type": "lambda"}', True),
    (b'{"class_name": "__lambda__"}', True),
    (b'{"function": ["x"]}', True),
    (b'{"class_name": "__\\u006cambda__"}', True),  # an escape can spell anything: the config is walked
])
def test_the_text_screen_only_skips_configs_that_cannot_hold_bytecode(text: bytes, may: bool) -> None:
    assert configs.text_may_hold_bytecode(text) is may
    assert configs.text_may_hold_bytecode(text.decode()) is may


def _keras_file(tmp_path: Path, config: dict[str, Any], text: str | None = None) -> Path:
    import zipfile

    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", text if text is not None else json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    return path


def test_an_escaped_lambda_in_a_keras_file_is_found(tmp_path: Path) -> None:
    config = _functional("top", [_layer("TimeDistributed", "td", layer=_layer("Lambda", "l", function=K3_LAMBDA))])
    text = json.dumps(config).replace('"__lambda__"', '"\\u005f_lambda__"')
    report = inspect_file(_keras_file(tmp_path, config, text))
    assert not report.file.config_bytecode_free
    assert [(site.layer, site.location) for site in report.bytecode] == [("td", "layer.config.function")]


def test_the_rule_reports_each_place_with_its_layer_path(tmp_path: Path) -> None:
    config = _functional("top", [
        _layer("TimeDistributed", "td", layer=_layer("Lambda", "l", function=K3_LAMBDA)),
        _layer("Lambda", "plain", function=K3_LAMBDA, output_shape=K3_LAMBDA),
    ])
    report = inspect_file(_keras_file(tmp_path, config))
    findings = list(UnsafeLambda().check(report, RuleContext()))
    assert [(finding.layer, finding.message.split(" holds")[0]) for finding in findings] == [
        ("td", "config.layer.config.function"), ("plain", "config.function"), ("plain", "config.output_shape")]


def test_live_refuses_a_file_with_bytecode_naming_the_file_and_layer(tmp_path: Path) -> None:
    config = _functional("top", [_layer("TimeDistributed", "td", layer=_layer("Lambda", "l", function=K3_LAMBDA))])
    report = inspect_file(_keras_file(tmp_path, config))
    with pytest.raises(ReadError) as refused:
        cross_check(report)
    assert refused.value.path == report.file.path
    assert "layer 'td', config.layer.config.function" in refused.value.problem and "--unsafe" in refused.value.problem
    assert "\n" not in refused.value.problem


# --------------------------------------------------------------------------
# SavedModel: tf_keras rebuilds each layer from its own metadata node, not only from the root's config.
# --------------------------------------------------------------------------


def _saved_model(folder: Path, nodes: list[tuple[str, str, dict[str, Any]]]) -> Path:
    folder.mkdir()
    data = b"".join(length_delimited(1, length_delimited(3, path.encode()) + length_delimited(4, identifier.encode())
                           + length_delimited(5, json.dumps(metadata).encode())) for path, identifier, metadata in nodes)
    (folder / "keras_metadata.pb").write_bytes(data)
    write_bundle(folder)
    return folder


def _hidden_lambda_saved_model(tmp_path: Path) -> Path:
    clean = {"class_name": "Lambda", "name": "td", "config": {"name": "td", "function": "abs", "function_type": "function"}}
    root = {"class_name": "Sequential", "name": "s", "keras_version": "2.15.0",
            "config": {"name": "s", "layers": [clean]}}
    hidden = {"class_name": "Lambda", "name": "td",
              "config": {"name": "td", "function": ["4wEAAAAA", None, None], "function_type": "lambda"}}
    return _saved_model(tmp_path / "sm", [("root", "_tf_keras_sequential", root),
                                          ("root.layer-0", "_tf_keras_layer", hidden)])


def test_a_lambda_in_a_saved_model_node_the_root_config_does_not_show_is_found(tmp_path: Path) -> None:
    report = inspect_file(_hidden_lambda_saved_model(tmp_path))
    assert [(site.layer, site.location, site.source) for site in report.bytecode] == [
        ("td", "function", "keras_metadata.pb node root.layer-0")]


def test_a_second_root_node_is_walked_whole(tmp_path: Path) -> None:
    clean = {"class_name": "Sequential", "name": "s", "config": {"name": "s", "layers": []}}
    hidden = {"class_name": "Sequential", "name": "s", "config": {"name": "s", "layers": [
        {"class_name": "Lambda", "config": {"name": "l", "function": "4wE", "function_type": "lambda"}}]}}
    folder = _saved_model(tmp_path / "sm", [("root", "_tf_keras_sequential", clean),
                                            ("root", "_tf_keras_sequential", hidden)])
    assert [(site.location, site.source) for site in inspect_file(folder).bytecode] == [
        ("function", "keras_metadata.pb node root")]


def test_a_node_path_from_the_file_is_escaped_where_it_is_shown(tmp_path: Path) -> None:
    hidden = {"class_name": "Lambda", "name": "l", "config": {"name": "l", "function": "4wE", "function_type": "lambda"}}
    root = {"class_name": "Sequential", "name": "s", "config": {"name": "s", "layers": []}}
    folder = _saved_model(tmp_path / "sm", [("root", "_tf_keras_sequential", root),
                                            ("root.x\n::error::\x1b[2J", "_tf_keras_layer", hidden)])
    [site] = inspect_file(folder).bytecode
    assert site.source == "keras_metadata.pb node root.x\\n::error::\\x1b[2J"


def test_live_refuses_before_importing_keras_or_tensorflow(tmp_path: Path) -> None:
    folder = _hidden_lambda_saved_model(tmp_path)
    script = (
        "import sys\n"
        "from keras_share.errors import ReadError\n"
        "from keras_share.pipeline import live_file_report\n"
        "try:\n"
        f"    live_file_report({str(folder)!r})\n"
        "except ReadError as error:\n"
        "    print(error.problem)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    problem, imported = result.stdout.strip().splitlines()
    assert "layer 'td', config.function (keras_metadata.pb node root.layer-0)" in problem
    assert imported == "[]"
