"""``--weights`` (rule KS107 weights-mismatch) against live ``load_weights``, case by case.

Each case saves a model and a weights file with real Keras, asks keras-share statically whether
``load_weights`` fits the file into the model, then loads the model with Keras, fills every variable with a
sentinel, calls ``load_weights`` and records what it did: raised, warned or loaded, and which layers still hold
the sentinel (left at their initial values). The static verdict must be the live one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keras_share.pipeline import Pipeline, Weights, read_weights
from keras_share.vocabulary import Severity

SENTINEL = 7.25


@dataclass(frozen=True)
class Verdict:
    outcome: str
    """``raises``, ``warns`` or ``loads``."""
    left_at_init: frozenset[str]
    """Names of the layers that keep their initial values."""


def _stack(K: Any, widths: list[int], names: list[str] | None = None) -> Any:
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    inputs = K.Input((8,), name="x")
    hidden = inputs
    for position, width in enumerate(widths):
        hidden = K.layers.Dense(width, name=names[position] if names else f"d{position}")(hidden)
    return K.Model(inputs, hidden, name="stack")


def _nested(K: Any, freeze_first: bool = False) -> Any:
    """A nested encoder (Dense, BatchNormalization, Dense) and a head; ``freeze_first`` freezes the first Dense,
    which moves its arrays after the encoder's trainable ones in ``_legacy_weights`` order."""
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    inner = K.Input((8,), name="e_in")
    hidden = K.layers.Dense(3, name="e_d2")(K.layers.BatchNormalization(name="e_bn")(
        K.layers.Dense(5, name="e_d1")(inner)))
    encoder = K.Model(inner, hidden, name="enc")
    encoder.get_layer("e_d1").trainable = not freeze_first
    outer = K.Input((8,), name="x")
    return K.Model(outer, K.layers.Dense(1, name="head")(encoder(outer)), name="top")


# --------------------------------------------------------------------------
# Static and live verdicts
# --------------------------------------------------------------------------


@functools.cache
def _read_weights(weights_path: Path, by_name: bool) -> Weights:
    """``read_weights``, once per file: several cases check their models against one weights file."""
    return read_weights(weights_path, by_name)


def _static(model_path: Path, weights_path: Path, by_name: bool) -> Verdict:
    pipeline = Pipeline()
    pipeline.weights = _read_weights(weights_path, by_name)
    report = pipeline.file(model_path)
    assert not isinstance(report, Exception), report
    findings = [finding for finding in report.findings if finding.rule == "KS107"]
    outcome = "raises" if any(finding.severity is Severity.ERROR for finding in findings) else "loads"
    return Verdict(outcome, frozenset(finding.layer.rpartition("/")[2] for finding in findings if finding.layer))


def _leaf_layers(model: Any) -> list[Any]:
    return [layer for layer in model._flatten_layers(include_self=False) if layer.weights
            and not list(layer._flatten_layers(include_self=False))]


def _live(model: Any, weights_path: Path, **options: Any) -> Verdict:
    for layer in _leaf_layers(model):
        for variable in layer.weights:
            variable.assign(np.full(tuple(variable.shape), SENTINEL, dtype="float32"))
    outcome = "loads"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(weights_path), **options)
        except (ValueError, KeyError):
            outcome = "raises"
    if outcome == "loads" and any("load" in str(warning.message).lower() for warning in caught):
        outcome = "warns"
    left = frozenset(layer.name for layer in _leaf_layers(model)
                     if any(np.all(np.asarray(variable.numpy()) == SENTINEL) for variable in layer.weights))
    return Verdict(outcome, left)


# --------------------------------------------------------------------------
# The models, each built once per Keras and module (a case names the two it pairs)
# --------------------------------------------------------------------------

ARCHITECTURES: dict[str, Callable[[Any], Any]] = {
    "4-2": lambda K: _stack(K, [4, 2]),
    "4-4-2": lambda K: _stack(K, [4, 4, 2]),
    "5-2": lambda K: _stack(K, [5, 2]),
    "4-3": lambda K: _stack(K, [4, 3]),
    "4-2 as p,q": lambda K: _stack(K, [4, 2], ["p", "q"]),
    "4-2 as d0,renamed": lambda K: _stack(K, [4, 2], ["d0", "renamed"]),
    "4-4 as a,b": lambda K: _stack(K, [4, 4], ["a", "b"]),
    "4-4 as b,a": lambda K: _stack(K, [4, 4], ["b", "a"]),
    "4-4-2 as d0,new,d1": lambda K: _stack(K, [4, 4, 2], ["d0", "new", "d1"]),
    "nested": _nested,
    "nested, e_d1 frozen": lambda K: _nested(K, freeze_first=True),
}
"""Every model of the cases below, by a name that says what it is (widths of its Dense layers, their names)."""


@dataclass
class Saved:
    """The files of one Keras's architectures: the model (``.keras`` or ``.h5``) and its weights files."""

    models: dict[str, Path]
    weights: dict[tuple[str, str], Path]
    """``(architecture, suffix)``: a ``save_weights`` file, or for ``.keras`` the model file itself."""


def _save_all(K: Any, folder: Path, models: set[str], weights: set[tuple[str, str]], model_suffix: str) -> Saved:
    """Build each architecture once, and save it as a model and as each weights file asked for."""
    saved = Saved({}, {})
    for name in sorted(models | {arch for arch, _ in weights}):
        model = ARCHITECTURES[name](K)
        stem = folder / name.replace(" ", "_").replace(",", "+")
        if name in models or (name, ".keras") in weights:
            saved.models[name] = stem.with_suffix(model_suffix)
            model.save(str(saved.models[name]))
        for arch, suffix in weights:
            if arch != name:
                continue
            if suffix == ".keras":
                saved.weights[arch, suffix] = saved.models[name]
                continue
            saved.weights[arch, suffix] = Path(f"{stem}_source{suffix}")
            if suffix == ".weights.json":
                model.save_weights(saved.weights[arch, suffix], max_shard_size=0.0001)
            else:
                model.save_weights(str(saved.weights[arch, suffix]))
    return saved


@pytest.fixture(scope="module")
def live_models() -> dict[Path, Any]:
    """Each model file loaded with Keras once per module: ``_live`` sets all its variables again first."""
    return {}


def _loaded(live_models: dict[Path, Any], load: Callable[[str], Any], path: Path) -> Any:
    if path not in live_models:
        live_models[path] = load(str(path))
    return live_models[path]


# --------------------------------------------------------------------------
# Keras 3: .keras model, .weights.h5 / .weights.json by path
# --------------------------------------------------------------------------

KERAS3_CASES: dict[str, tuple[str, str, str]] = {
    # case: (the model, the model the weights were saved from, the weights file's suffix)
    "matching": ("4-2", "4-2", ".weights.h5"),
    "layer_added": ("4-4-2", "4-2", ".weights.h5"),
    "layer_removed": ("4-2", "4-4-2", ".weights.h5"),
    "shape_changed": ("5-2", "4-2", ".weights.h5"),
    "renamed_layers": ("4-2 as p,q", "4-2", ".weights.h5"),
    "sharded_layer_added": ("4-4-2", "4-2", ".weights.json"),
    "keras_file_matching": ("4-2 as p,q", "4-2", ".keras"),
    "keras_file_shape_changed": ("4-3", "4-2", ".keras"),
}

KERAS3_LEGACY_CASES: dict[str, tuple[str, str, bool, Verdict]] = {
    # case: (the Keras 3 model, the tf_keras model the weights were saved from, by_name, what Keras 3 does)
    "matching": ("4-2", "4-2", False, Verdict("loads", frozenset())),
    "layer_added": ("4-4-2", "4-2", False, Verdict("raises", frozenset({"d0", "d1", "d2"}))),
    "renamed_by_name": ("4-2 as d0,renamed", "4-2", True, Verdict("loads", frozenset({"renamed"}))),
}

LEGACY_CASES: dict[str, tuple[str, str, bool]] = {
    # case: (the model, the model the weights were saved from, by_name)
    "matching": ("4-2", "4-2", False),
    "layer_added": ("4-4-2", "4-2", False),
    "shape_changed": ("5-2", "4-2", False),
    "order_swapped": ("4-4 as b,a", "4-4 as a,b", False),
    "order_swapped_by_name": ("4-4 as b,a", "4-4 as a,b", True),
    "renamed_by_name": ("4-2 as d0,renamed", "4-2", True),
    "layer_added_by_name": ("4-4-2 as d0,new,d1", "4-2", True),
    "shape_changed_by_name": ("5-2", "4-2", True),
    "nested_matching": ("nested", "nested", False),
    "nested_frozen_sublayer": ("nested, e_d1 frozen", "nested", False),
}


@pytest.fixture(scope="module")
def keras3_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> Saved:
    """Every Keras 3 model of the cases (a ``.keras`` file) and each weights file they pair it with, saved once."""
    models = {model for model, _, _ in KERAS3_CASES.values()} | {model for model, *_ in KERAS3_LEGACY_CASES.values()}
    weights = {(source, suffix) for _, source, suffix in KERAS3_CASES.values()}
    return _save_all(keras3, tmp_path_factory.mktemp("weights_mismatch_k3"), models | {"5-2"}, weights, ".keras")


@pytest.fixture(scope="module")
def legacy_files(tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Saved:
    """Every tf_keras model of the cases (a legacy ``.h5`` file) and each ``save_weights`` ``.h5`` file, saved
    once; the Keras 3 cases read the weights files too."""
    models = {model for model, _, _ in LEGACY_CASES.values()}
    weights = {(source, ".h5") for _, source, _ in LEGACY_CASES.values()}
    weights |= {(source, ".h5") for _, source, _, _ in KERAS3_LEGACY_CASES.values()}
    return _save_all(tf_keras, tmp_path_factory.mktemp("weights_mismatch_legacy"), models, weights, ".h5")


def _keras3_case(keras3_files: Saved, case: str) -> tuple[Path, Path]:
    model, source, suffix = KERAS3_CASES[case]
    return keras3_files.models[model], keras3_files.weights[source, suffix]


EXPECTED_KERAS3 = {
    "matching": "loads",
    "layer_added": "raises",
    "layer_removed": "raises",
    "shape_changed": "raises",
    "renamed_layers": "loads",
    "sharded_layer_added": "raises",
    "keras_file_matching": "loads",
    "keras_file_shape_changed": "raises",
}


@pytest.mark.parametrize("case", list(KERAS3_CASES))
def test_keras3_verdict_is_what_load_weights_does(case: str, keras3: Any, keras3_files: Saved,
                                                  live_models: dict[Path, Any]) -> None:
    model_path, weights_path = _keras3_case(keras3_files, case)
    static = _static(model_path, weights_path, by_name=False)
    live = _live(_loaded(live_models, keras3.saving.load_model, model_path), weights_path)
    assert static == live
    assert live.outcome == EXPECTED_KERAS3[case]


def test_keras3_skip_mismatch_warns_and_leaves_the_flagged_layers_at_init(
        keras3: Any, keras3_files: Saved, live_models: dict[Path, Any]) -> None:
    model_path, weights_path = _keras3_case(keras3_files, "shape_changed")
    static = _static(model_path, weights_path, by_name=False)
    live = _live(_loaded(live_models, keras3.saving.load_model, model_path), weights_path, skip_mismatch=True)
    assert live == Verdict("warns", static.left_at_init)


def test_keras3_weights_no_layer_reads_are_a_warning(keras3_files: Saved) -> None:
    model_path, weights_path = _keras3_case(keras3_files, "layer_removed")
    pipeline = Pipeline()
    pipeline.weights = read_weights(weights_path)
    report = pipeline.file(model_path)
    assert not isinstance(report, Exception)
    unused = [finding for finding in report.findings if finding.rule == "KS107" and not finding.layer]
    assert [finding.severity for finding in unused] == [Severity.WARNING]
    assert "layers/dense_2/vars" in unused[0].message


# --------------------------------------------------------------------------
# tf_keras: legacy .h5 model and save_weights .h5, by order and by name
# --------------------------------------------------------------------------

EXPECTED_LEGACY = {
    "matching": Verdict("loads", frozenset()),
    "layer_added": Verdict("raises", frozenset()),
    "shape_changed": Verdict("raises", frozenset()),
    "order_swapped": Verdict("loads", frozenset()),  # paired by order: b gets a's arrays, shapes fit
    "order_swapped_by_name": Verdict("raises", frozenset()),  # paired by name: b's kernel is 8x4, the file's 4x4
    "renamed_by_name": Verdict("loads", frozenset({"renamed"})),
    "layer_added_by_name": Verdict("loads", frozenset({"new"})),
    "shape_changed_by_name": Verdict("raises", frozenset()),
    "nested_matching": Verdict("loads", frozenset()),
    "nested_frozen_sublayer": Verdict("raises", frozenset()),  # e_d1's kernel now comes after e_bn's gamma
}


def _legacy_case(legacy_files: Saved, case: str) -> tuple[Path, Path]:
    model, source, _ = LEGACY_CASES[case]
    return legacy_files.models[model], legacy_files.weights[source, ".h5"]


@pytest.mark.parametrize("case", list(LEGACY_CASES))
def test_legacy_verdict_is_what_load_weights_does(case: str, tf_keras: Any, legacy_files: Saved,
                                                  live_models: dict[Path, Any]) -> None:
    model_path, weights_path = _legacy_case(legacy_files, case)
    by_name = LEGACY_CASES[case][2]
    static = _static(model_path, weights_path, by_name)
    live = _live(_loaded(live_models, tf_keras.models.load_model, model_path), weights_path, by_name=by_name)
    assert static.outcome == live.outcome == EXPECTED_LEGACY[case].outcome
    if live.outcome != "raises":  # tf_keras assigns nothing when it raises
        assert static.left_at_init == live.left_at_init == EXPECTED_LEGACY[case].left_at_init


def test_by_name_on_a_keras3_weights_file_is_an_error(keras3_files: Saved) -> None:
    model_path, weights_path = _keras3_case(keras3_files, "matching")
    assert _static(model_path, weights_path, by_name=True).outcome == "raises"


# --------------------------------------------------------------------------
# Keras 3: .keras model, tf_keras save_weights .h5 (legacy_h5_format)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(KERAS3_LEGACY_CASES))
def test_keras3_legacy_h5_verdict_is_what_load_weights_does(
        case: str, keras3: Any, keras3_files: Saved, legacy_files: Saved, live_models: dict[Path, Any]) -> None:
    model, source, by_name, expected = KERAS3_LEGACY_CASES[case]
    model_path, weights_path = keras3_files.models[model], legacy_files.weights[source, ".h5"]
    static = _static(model_path, weights_path, by_name)
    live = _live(_loaded(live_models, keras3.saving.load_model, model_path), weights_path, by_name=by_name)
    assert live == expected
    assert static.outcome == live.outcome
    if live.outcome != "raises":  # a layer-count mismatch is one finding on the whole model
        assert static.left_at_init == live.left_at_init


def test_keras3_legacy_by_name_skip_mismatch_warns_and_leaves_the_flagged_layer_at_init(
        keras3: Any, keras3_files: Saved, legacy_files: Saved, live_models: dict[Path, Any]) -> None:
    model, weights = keras3_files.models["5-2"], legacy_files.weights["4-2", ".h5"]
    static = _static(model, weights, by_name=True)
    live = _live(_loaded(live_models, keras3.saving.load_model, model), weights, by_name=True, skip_mismatch=True)
    assert static == Verdict("raises", frozenset({"d0", "d1"}))  # d1's kernel is 5x2, the file's 4x2
    assert live == Verdict("warns", static.left_at_init)


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def _inspect(*args: Any) -> Any:
    from click.testing import CliRunner

    from keras_share.cli import app

    return CliRunner().invoke(app, ["inspect", "--jobs", "1", *map(str, args)])


def test_cli_weights_that_fit_give_no_finding() -> None:
    result = _inspect(SAMPLES / "shared_dense.keras", "--weights", SAMPLES / "shared_dense.weights.h5",
                      "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "KS107" not in result.stdout


def test_cli_weights_that_do_not_fit_fail_the_run() -> None:
    result = _inspect(SAMPLES / "nested_encoder.keras", "--weights", SAMPLES / "shared_dense.weights.h5")
    assert result.exit_code == 1
    assert "KS107" in result.stdout


def test_cli_unreadable_weights_file_is_one_error_line_and_exit_3(tmp_path: Path) -> None:
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not hdf5")
    result = _inspect(SAMPLES / "shared_dense.keras", "--weights", broken)
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"keras-share: error: --weights {broken}: "), result.stderr


def test_cli_weights_by_name_without_weights_is_a_usage_error() -> None:
    from cli_command import assert_usage_error

    assert_usage_error(_inspect(SAMPLES / "shared_dense.keras", "--weights-by-name"), "add --weights PATH")


def test_weights_that_cannot_be_checked_say_so_in_a_note() -> None:
    result = _inspect(SAMPLES / "shared_dense.h5", "--weights", SAMPLES / "shared_dense.weights.h5",
                      "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert "not checked: the model is not a .keras file" in result.stdout


@pytest.mark.parametrize(("model", "expected"), [("4-2", "loads"), ("4-4-2", "raises")])
def test_a_full_model_h5_is_read_as_load_weights_reads_it(model: str, expected: str, tf_keras: Any,
                                                          legacy_files: Saved, live_models: dict[Path, Any]) -> None:
    source = legacy_files.models["4-2"]  # a full model .h5 as the weights file
    model_path = legacy_files.models[model]
    static = _static(model_path, source, by_name=False)
    live = _live(_loaded(live_models, tf_keras.models.load_model, model_path), source)
    assert static.outcome == live.outcome == expected


def test_api_weights_are_checked_as_with_the_option() -> None:
    import keras_share

    report = keras_share.inspect(SAMPLES / "nested_encoder.keras", weights=SAMPLES / "shared_dense.weights.h5")
    assert any(finding.rule == "KS107" and finding.severity is Severity.ERROR for finding in report.findings)


def test_api_weights_that_fit_give_no_finding() -> None:
    import keras_share

    report = keras_share.inspect(str(SAMPLES / "shared_dense.keras"), weights=SAMPLES / "shared_dense.weights.h5")
    assert [finding for finding in report.findings if finding.rule == "KS107"] == []


def test_api_weights_by_name_is_passed_to_the_check(legacy_files: Saved) -> None:
    import keras_share

    model_path, weights_path = _legacy_case(legacy_files, "renamed_by_name")
    by_order = keras_share.inspect(model_path, weights=weights_path)
    by_name = keras_share.inspect(model_path, weights=weights_path, weights_by_name=True)
    assert [finding.layer for finding in by_order.findings if finding.rule == "KS107"] == []
    assert "renamed" in [finding.layer for finding in by_name.findings if finding.rule == "KS107"]


def test_api_weights_by_name_without_weights_is_a_value_error() -> None:
    import keras_share

    with pytest.raises(ValueError, match="give weights=PATH"):
        keras_share.inspect(SAMPLES / "shared_dense.keras", weights_by_name=True)
