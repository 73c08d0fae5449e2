"""``keras_share.inspect`` on paths and live models, and the live entry points the CLI uses.

Truth comes from Keras: a model and the file it was saved to give the same report wherever the file can
say it (layers, calls, effective calls, trainability, sharing, weight shapes, input shapes); where a
saved file cannot keep what the live model has, the difference is asserted and named.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, _reset

import keras_share
from keras_share.analysis.report import ModelReport
from keras_share.render.json_format import model_to_dict, run_to_dict

REPO = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------ a model and its file agree


def comparable(report: ModelReport, generation: int) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """What a model and its file must agree on, per layer path, and the summary counts."""
    document = model_to_dict(report)
    layers = {}
    for layer in document["layers"]:
        layers[layer["path"]] = {
            "class_name": layer["class_name"], "kind": layer["kind"], "calls": layer["calls"],
            "effective_calls": layer["effective_calls"], "trainable": layer["trainable"], "shared": layer["shared"],
            "same_as": sorted(layer["same_as"]),
            "weight_shapes": sorted(weight["shape"] for weight in layer["weights"]),  # files order them by group
        }
        if generation == 3:  # Keras 2 files record no tensor shapes past the inputs
            layers[layer["path"]]["input_shapes"] = [site["input_shapes"] for site in layer["call_sites"]]
    summary = {key: document["summary"][key] for key in ("layers", "shared_layers", "unique_params", "naive_params")}
    return layers, summary


def differences(live: ModelReport, saved: ModelReport, generation: int) -> list[tuple[str, str]]:
    (live_layers, live_summary), (file_layers, file_summary) = comparable(live, generation), comparable(saved, generation)
    found = [(path, "missing") for path in sorted(set(live_layers) ^ set(file_layers))]
    for path in sorted(set(live_layers) & set(file_layers)):
        found += [(path, key) for key in live_layers[path] if live_layers[path][key] != file_layers[path][key]]
    found += [("summary", key) for key in live_summary if live_summary[key] != file_summary[key]]
    return found


SAME_REPORT = {
    3: ["shared_dense", "independent_dense", "transfer_frozen", "nested_encoder", "three_levels",
        "frozen_nested_reenabled", "mha_keywords", "sequential_twice", "conv1d_two_lengths"],
    2: ["shared_dense", "transfer_unfrozen", "nested_encoder", "three_levels", "sequential_twice"],
}

ROUND_TRIP_LOSSES = {
    # (generation, case): (what differs between the live model and its reloaded file, why)
    (3, "weightless_in_two_models"): (
        {("sub1/shared_act", "shared"), ("sub1/shared_act", "same_as"), ("sub2/shared_act", "shared"),
         ("sub2/shared_act", "same_as"), ("summary", "shared_layers")},
        "one Activation object in two nested models reloads as two copies",
    ),
    (3, "frozen_mha"): ({("mha", "trainable")}, "a frozen MultiHeadAttention reloads trainable (Keras 3)"),
    (2, "frozen_nested_reenabled"): (
        {("encoder", "trainable"), ("encoder/enc_out", "trainable")},
        "tf_keras drops a nested model's frozen flag on load: in memory the frozen encoder wins",
    ),
}


def _model_and_file(generation: int, case: str, directory: Path, fmt: str) -> tuple[Any, Path]:
    K = importlib.import_module("keras" if generation == 3 else "tf_keras")
    _reset(K)
    model = CASES[case](K)
    path = directory / f"{case}-k{generation}.{fmt}"
    model.save(str(path))
    return model, path


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("generation", [3, 2], ids=["keras3", "tf_keras"])
def test_a_live_model_and_its_saved_file_give_the_same_report(
    generation: int, fmt: str, keras3: Any, tf_keras: Any, tmp_path: Path
) -> None:
    problems = []
    for case in SAME_REPORT[generation]:
        model, path = _model_and_file(generation, case, tmp_path, fmt)
        live, saved = keras_share.inspect(model), keras_share.inspect(str(path))
        assert live.file.format == "live" and saved.file.format == fmt
        problems += [f"{case}: {where}: {what}" for where, what in differences(live, saved, generation)]
    assert problems == []


@pytest.mark.parametrize(("generation", "case"), list(ROUND_TRIP_LOSSES), ids=[f"{g}-{c}" for g, c in ROUND_TRIP_LOSSES])
def test_what_a_saved_file_cannot_keep_shows_as_a_difference(
    generation: int, case: str, keras3: Any, tf_keras: Any, tmp_path: Path
) -> None:
    model, path = _model_and_file(generation, case, tmp_path, "keras")
    expected, reason = ROUND_TRIP_LOSSES[(generation, case)]
    assert set(differences(keras_share.inspect(model), keras_share.inspect(str(path)), generation)) == expected, reason


def test_live_report_agrees_with_the_objects(keras3: Any) -> None:
    """Sharing, identity and trainability straight from the Keras objects, no file involved."""
    _reset(keras3)
    model = CASES["nested_encoder"](keras3)
    report = keras_share.inspect(model)
    by_path = {layer.layer.path: layer for layer in report.layers}
    encoder = model.get_layer("encoder")
    assert by_path["encoder"].layer.calls == len(encoder._inbound_nodes) == 3
    assert by_path["encoder/enc_dense"].effective_calls == 3 and by_path["encoder/enc_dense"].shared
    assert report.summary.unique_params == int(model.count_params())
    trainable_ids = {id(v) for v in model.trainable_weights}
    bn = by_path["encoder/enc_bn"]
    assert bn.live is not None
    assert [v.trainable for v in bn.live.variables] == [
        id(v) in trainable_ids for v in encoder.get_layer("enc_bn").weights
    ] == [True, True, False, False]
    assert [w.location for w in bn.layer.weights] == [f"live:{id(v)}" for v in encoder.get_layer("enc_bn").weights]


# ------------------------------------------------------------------ the seed's three examples


def _findings(report: ModelReport) -> list[tuple[str, str, str]]:
    return sorted((f.name, f.severity, f.layer) for f in report.findings)


def test_seed_shared_dense_on_two_inputs(keras3: Any) -> None:
    _reset(keras3)
    report = keras_share.inspect(CASES["shared_dense"](keras3))
    shared = [(layer.layer.path, layer.layer.calls, layer.effective_calls) for layer in report.shared_layers]
    assert shared == [("shared_d", 2, 2)]
    assert _findings(report) == []
    assert report.summary.unique_params < report.summary.naive_params


def test_seed_two_independent_dense_layers(keras3: Any) -> None:
    _reset(keras3)
    report = keras_share.inspect(CASES["independent_dense"](keras3))
    assert report.shared_layers == [] and _findings(report) == []
    assert report.summary.unique_params == report.summary.naive_params


@pytest.mark.parametrize("freeze", [False, True], ids=["unfrozen", "frozen"])
def test_seed_trained_layer_reused_from_a_base_model(keras3: Any, freeze: bool) -> None:
    import numpy as np

    K = keras3
    x = K.Input((4,), name="x")
    feature = K.layers.Dense(3, name="feature")
    base = K.Model(x, K.layers.Dense(1, name="base_head")(feature(x)), name="base")
    base.compile(optimizer="sgd", loss="mse")
    base.fit(np.ones((4, 4), "float32"), np.ones((4, 1), "float32"), epochs=1, verbose=0)
    reused = base.get_layer("feature")
    reused.trainable = not freeze
    inp = K.Input((4,), name="transfer_x")
    new = K.Model(inp, K.layers.Dense(2, name="new_head")(reused(inp)), name="transfer")
    report = keras_share.inspect(new)
    if freeze:
        assert _findings(report) == [("layer-shared-with-other-model", "info", "feature")]
    else:
        assert _findings(report) == [("layer-shared-with-other-model", "warning", "feature"),
                                     ("transferred-layer-trainable", "warning", "feature")]
    # --base with a saved base file: the static match by weight values agrees with the live one
    assert next(layer for layer in report.layers if layer.layer.path == "feature").transferred_from == "feature"


def test_base_file_matches_live_weights_by_value(keras3: Any, tmp_path: Path) -> None:
    """``base=`` a saved file: transferred layers of a live model are found by hashing the live variables."""
    _reset(keras3)
    x = keras3.Input((4,), name="x")
    base = keras3.Model(x, keras3.layers.Dense(1, name="base_head")(keras3.layers.Dense(3, name="feature")(x)),
                        name="base")
    base.save(str(tmp_path / "base.keras"))
    copy = keras3.models.load_model(str(tmp_path / "base.keras"))  # new objects, same values
    inp = keras3.Input((4,), name="transfer_x")
    new = keras3.Model(inp, keras3.layers.Dense(2, name="new_head")(copy.get_layer("feature")(inp)), name="transfer")
    del base
    report = keras_share.inspect(new, select=["transferred-layer-trainable"], base=tmp_path / "base.keras")
    assert _findings(report) == [("transferred-layer-trainable", "warning", "feature")]


def test_base_can_be_a_live_model_and_copies_are_found_by_value(keras3: Any) -> None:
    """Live variables are hashed like stored arrays: --base matching and weight-copy work in memory."""
    import numpy as np

    _reset(keras3)
    x = keras3.Input((4,), name="x")
    base = keras3.Model(x, keras3.layers.Dense(1, name="base_head")(keras3.layers.Dense(3, name="feature")(x)),
                        name="base")
    copied = keras3.layers.Dense(3, name="copied")
    inp = keras3.Input((4,), name="transfer_x")
    twin = keras3.layers.Dense(3, name="twin")
    new = keras3.Model(inp, keras3.layers.Add(name="add")([copied(inp), twin(inp)]), name="transfer")
    weights = [np.asarray(w) for w in base.get_layer("feature").get_weights()]
    copied.set_weights(weights)
    twin.set_weights(weights)
    report = keras_share.inspect(new, select=["transferred-layer-trainable", "weight-copy"], base=base)
    assert ("transferred-layer-trainable", "warning", "copied") in _findings(report)
    assert ("transferred-layer-trainable", "warning", "twin") in _findings(report)
    assert any(name == "weight-copy" for name, _, _ in _findings(report))
    assert next(layer for layer in report.layers if layer.layer.path == "copied").transferred_from == "feature"
    twin.set_weights([w + 1 for w in weights])
    report = keras_share.inspect(new, select=["transferred-layer-trainable", "weight-copy"], base=base)
    assert _findings(report) == [("transferred-layer-trainable", "warning", "copied")]


# ------------------------------------------------------------------ the API surface


def test_inspect_shapes_of_results(keras3: Any, sample_dir: Path) -> None:
    _reset(keras3)
    one, two = CASES["shared_dense"](keras3), CASES["independent_dense"](keras3)
    path = sample_dir / "shared_dense.keras"
    assert isinstance(keras_share.inspect(one), ModelReport)
    assert isinstance(keras_share.inspect(path), ModelReport) and keras_share.inspect(str(path)).live is None
    reports = keras_share.inspect({"left": one, "right": two})
    assert [r.file.path for r in reports] == ["live:left", "live:right"]
    assert reports[0].live is not None and reports[0].live.inspected_with == ["right"]
    mixed = keras_share.inspect([one, path])
    assert [r.file.format for r in mixed] == ["live", "keras"]
    assert keras_share.inspect(one, select="KS1") .findings == []
    with pytest.raises(ValueError, match="unknown rule"):
        keras_share.inspect(one, select=["no-such-rule"])
    with pytest.raises(TypeError, match="not a Keras"):
        keras_share.inspect([one, object()])


def test_live_reports_validate_against_the_json_schema(keras3: Any, tf_keras: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    schema = json.loads((files("keras_share") / "schema" / "report-v1.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    reports = []
    for K in (keras3, tf_keras):
        _reset(K)
        reports += keras_share.inspect([CASES[name](K) for name in ("mha_keywords", "nested_encoder", "sequential_twice")])
    document = json.loads(json.dumps(run_to_dict(reports, [])))
    assert [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)] == []
    assert {model["keras_version"][0] for model in document["models"]} == {"2", "3"}
    assert all(model["live"]["source"] == "object" for model in document["models"])


def test_tf_keras_models_are_read_with_their_keras(tf_keras: Any) -> None:
    _reset(tf_keras)
    report = keras_share.inspect(CASES["three_levels"](tf_keras))
    assert report.file.keras_version == tf_keras.__version__ and report.live is not None
    assert report.live.keras == f"tf_keras {tf_keras.__version__}"
    by_path = {layer.layer.path: layer for layer in report.layers}
    assert by_path["level1/level2/level3/l3_dense"].effective_calls == 4


def test_inspect_on_a_path_imports_no_tensorflow(sample_dir: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        import keras_share
        report = keras_share.inspect({str(sample_dir / 'shared_dense.keras')!r})
        print(json.dumps({{"forbidden": sorted(m for m in sys.modules if m.split('.')[0] in ("tensorflow", "keras", "tf_keras")),
                          "findings": len(report.findings), "testing": hasattr(keras_share.testing, "assert_no_findings")}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=REPO,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {"forbidden": [], "findings": 0, "testing": True}


# ------------------------------------------------------------------ what the CLI calls


@pytest.fixture
def target_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "ks_target_models.py").write_text(textwrap.dedent("""
        import keras

        def _pair():
            x = keras.Input((4,), name="x")
            feature = keras.layers.Dense(3, name="feature")
            base = keras.Model(x, keras.layers.Dense(1, name="base_head")(feature(x)), name="base")
            y = keras.Input((4,), name="y")
            return base, keras.Model(y, keras.layers.Dense(2, name="head")(feature(y)), name="transfer")

        def one():
            x = keras.Input((4,), name="x")
            return keras.Model(x, keras.layers.Dense(2, name="d")(x), name="single")

        def several():
            return list(_pair())

        def named():
            base, transfer = _pair()
            return {"pretrained": base, "fine_tuned": transfer}

        def broken():
            raise RuntimeError("no GPU here")

        def not_a_model():
            return 42

        NOT_CALLABLE = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "ks_target_models"


def test_load_target_returns_named_models(keras3: Any, target_module: str) -> None:
    from keras_share.live.targets import load_target, target_reports

    assert list(load_target(f"{target_module}:one")) == ["single"]
    assert list(load_target(f"{target_module}:several")) == ["base", "transfer"]
    assert list(load_target(f"{target_module}:named")) == ["pretrained", "fine_tuned"]
    reports = target_reports(f"{target_module}:named")
    assert [r.file.path for r in reports] == [f"{target_module}:named[pretrained]", f"{target_module}:named[fine_tuned]"]
    feature = next(layer for layer in reports[1].layers if layer.layer.path == "feature")
    assert feature.live is not None and feature.live.other_models == ["pretrained"]


@pytest.mark.parametrize(("suffix", "problem"), [
    (":missing", "has no attribute"),
    (":broken", "calling broken() raised RuntimeError: no GPU here"),
    (":not_a_model", "must return a Keras model"),
    (":NOT_CALLABLE", "not a function"),
])
def test_load_target_errors_are_one_line_read_errors(keras3: Any, target_module: str, suffix: str, problem: str) -> None:
    from keras_share.errors import ReadError
    from keras_share.live.targets import TargetError, load_target

    with pytest.raises(TargetError) as error:
        load_target(target_module + suffix)
    assert isinstance(error.value, ReadError) and problem in error.value.problem
    assert "\n" not in error.value.problem and error.value.path == target_module + suffix


def test_load_target_bad_spec_and_missing_module() -> None:
    from keras_share.live.targets import TargetError, load_target

    with pytest.raises(TargetError, match="expected package.module:function"):
        load_target("not a spec")
    with pytest.raises(TargetError, match="cannot import 'ks_no_such_module_here'"):
        load_target("ks_no_such_module_here:build")


def test_the_pipeline_lints_live_reports_by_the_settings(keras3: Any, target_module: str) -> None:
    from keras_share.live.targets import target_reports
    from keras_share.pipeline import Pipeline
    from keras_share.settings import LintSettings

    transfer = target_reports(f"{target_module}:several")[1]
    Pipeline(LintSettings()).finish(transfer)
    assert _findings(transfer) == [("layer-shared-with-other-model", "warning", "feature"),
                                   ("transferred-layer-trainable", "warning", "feature")]
    Pipeline(LintSettings(ignore=["KS205"], suppress=["layer-shared-with-other-model:feat*"])).finish(transfer)
    assert transfer.findings == []


def test_live_file_report_keeps_the_static_report(keras3: Any, sample_dir: Path) -> None:
    from keras_share.pipeline import live_file_report

    report = live_file_report(sample_dir / "nested_encoder.keras")
    assert report.file.format == "keras" and report.live is not None and report.live.source == "file"
    assert report.live.mismatches == [] and report.live.keras == f"Keras {keras3.__version__}"
    assert model_to_dict(report)["live"]["mismatches"] == []
    weights_only = live_file_report(sample_dir / "shared_dense.weights.h5")
    assert weights_only.live is not None and weights_only.live.mismatches == []
    assert any("nothing was cross-checked" in note for note in weights_only.notes)
