"""``--weights`` (rule KS107 weights-mismatch) against live ``load_weights``, case by case.

Each case saves a model and a weights file with real Keras, asks keras-share statically whether
``load_weights`` fits the file into the model, then loads the model with Keras, fills every variable with a
sentinel, calls ``load_weights`` and records what it did: raised, warned or loaded, and which layers still hold
the sentinel (left at their initial values). The static verdict must be the live one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keras_share.pipeline import Pipeline, read_weights
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


def _static(model_path: Path, weights_path: Path, by_name: bool) -> Verdict:
    pipeline = Pipeline()
    pipeline.weights = read_weights(weights_path, by_name)
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
# Keras 3: .keras model, .weights.h5 / .weights.json by path
# --------------------------------------------------------------------------

KERAS3_CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], str]] = {
    # case: (the model, the model the weights were saved from, the weights file's suffix)
    "matching": (lambda K: _stack(K, [4, 2]), lambda K: _stack(K, [4, 2]), ".weights.h5"),
    "layer_added": (lambda K: _stack(K, [4, 4, 2]), lambda K: _stack(K, [4, 2]), ".weights.h5"),
    "layer_removed": (lambda K: _stack(K, [4, 2]), lambda K: _stack(K, [4, 4, 2]), ".weights.h5"),
    "shape_changed": (lambda K: _stack(K, [5, 2]), lambda K: _stack(K, [4, 2]), ".weights.h5"),
    "renamed_layers": (lambda K: _stack(K, [4, 2], ["p", "q"]), lambda K: _stack(K, [4, 2]), ".weights.h5"),
    "sharded_layer_added": (lambda K: _stack(K, [4, 4, 2]), lambda K: _stack(K, [4, 2]), ".weights.json"),
    "keras_file_matching": (lambda K: _stack(K, [4, 2], ["p", "q"]), lambda K: _stack(K, [4, 2]), ".keras"),
    "keras_file_shape_changed": (lambda K: _stack(K, [4, 3]), lambda K: _stack(K, [4, 2]), ".keras"),
}


@pytest.fixture(scope="module")
def keras3_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each Keras 3 case's ``.keras`` model and weights file, saved once."""
    folder = tmp_path_factory.mktemp("weights_mismatch_k3")
    saved: dict[str, tuple[Path, Path]] = {}
    for case, (build, build_source, suffix) in KERAS3_CASES.items():
        weights = folder / f"{case}_source{suffix}"
        source = build_source(keras3)
        if suffix == ".keras":
            source.save(weights)
        elif suffix == ".weights.json":
            source.save_weights(weights, max_shard_size=0.0001)
        else:
            source.save_weights(weights)
        model = folder / f"{case}.keras"
        build(keras3).save(model)
        saved[case] = (model, weights)
    return saved


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
def test_keras3_verdict_is_what_load_weights_does(case: str, keras3: Any,
                                                  keras3_files: dict[str, tuple[Path, Path]]) -> None:
    model_path, weights_path = keras3_files[case]
    static = _static(model_path, weights_path, by_name=False)
    live = _live(keras3.saving.load_model(model_path), weights_path)
    assert static == live
    assert live.outcome == EXPECTED_KERAS3[case]


def test_keras3_skip_mismatch_warns_and_leaves_the_flagged_layers_at_init(
        keras3: Any, keras3_files: dict[str, tuple[Path, Path]]) -> None:
    model_path, weights_path = keras3_files["shape_changed"]
    static = _static(model_path, weights_path, by_name=False)
    live = _live(keras3.saving.load_model(model_path), weights_path, skip_mismatch=True)
    assert live == Verdict("warns", static.left_at_init)


def test_keras3_weights_no_layer_reads_are_a_warning(keras3_files: dict[str, tuple[Path, Path]]) -> None:
    model_path, weights_path = keras3_files["layer_removed"]
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

LEGACY_CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], bool]] = {
    # case: (the model, the model the weights were saved from, by_name)
    "matching": (lambda K: _stack(K, [4, 2]), lambda K: _stack(K, [4, 2]), False),
    "layer_added": (lambda K: _stack(K, [4, 4, 2]), lambda K: _stack(K, [4, 2]), False),
    "shape_changed": (lambda K: _stack(K, [5, 2]), lambda K: _stack(K, [4, 2]), False),
    "order_swapped": (lambda K: _stack(K, [4, 4], ["b", "a"]), lambda K: _stack(K, [4, 4], ["a", "b"]), False),
    "order_swapped_by_name": (lambda K: _stack(K, [4, 4], ["b", "a"]), lambda K: _stack(K, [4, 4], ["a", "b"]),
                              True),
    "renamed_by_name": (lambda K: _stack(K, [4, 2], ["d0", "renamed"]), lambda K: _stack(K, [4, 2]), True),
    "layer_added_by_name": (lambda K: _stack(K, [4, 4, 2], ["d0", "new", "d1"]),
                            lambda K: _stack(K, [4, 2]), True),
    "shape_changed_by_name": (lambda K: _stack(K, [5, 2]), lambda K: _stack(K, [4, 2]), True),
    "nested_matching": (_nested, _nested, False),
    "nested_frozen_sublayer": (lambda K: _nested(K, freeze_first=True), _nested, False),
}

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


@pytest.fixture(scope="module")
def legacy_files(tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each legacy case's tf_keras ``.h5`` model and ``save_weights`` ``.h5`` file, saved once."""
    folder = tmp_path_factory.mktemp("weights_mismatch_legacy")
    saved: dict[str, tuple[Path, Path]] = {}
    for case, (build, build_source, _) in LEGACY_CASES.items():
        weights = folder / f"{case}_weights.h5"
        build_source(tf_keras).save_weights(str(weights))
        model = folder / f"{case}.h5"
        build(tf_keras).save(str(model))
        saved[case] = (model, weights)
    return saved


@pytest.mark.parametrize("case", list(LEGACY_CASES))
def test_legacy_verdict_is_what_load_weights_does(case: str, tf_keras: Any,
                                                  legacy_files: dict[str, tuple[Path, Path]]) -> None:
    model_path, weights_path = legacy_files[case]
    by_name = LEGACY_CASES[case][2]
    static = _static(model_path, weights_path, by_name)
    live = _live(tf_keras.models.load_model(str(model_path)), weights_path, by_name=by_name)
    assert static.outcome == live.outcome == EXPECTED_LEGACY[case].outcome
    if live.outcome != "raises":  # tf_keras assigns nothing when it raises
        assert static.left_at_init == live.left_at_init == EXPECTED_LEGACY[case].left_at_init


def test_by_name_on_a_keras3_weights_file_is_an_error(keras3_files: dict[str, tuple[Path, Path]]) -> None:
    model_path, weights_path = keras3_files["matching"]
    assert _static(model_path, weights_path, by_name=True).outcome == "raises"


# --------------------------------------------------------------------------
# Keras 3: .keras model, tf_keras save_weights .h5 (legacy_h5_format)
# --------------------------------------------------------------------------

KERAS3_LEGACY_CASES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], bool, Verdict]] = {
    # case: (the Keras 3 model, the tf_keras model the weights were saved from, by_name, what Keras 3 does)
    "matching": (lambda K: _stack(K, [4, 2]), lambda K: _stack(K, [4, 2]), False, Verdict("loads", frozenset())),
    "layer_added": (lambda K: _stack(K, [4, 4, 2]), lambda K: _stack(K, [4, 2]), False,
                    Verdict("raises", frozenset({"d0", "d1", "d2"}))),
    "renamed_by_name": (lambda K: _stack(K, [4, 2], ["d0", "renamed"]), lambda K: _stack(K, [4, 2]), True,
                        Verdict("loads", frozenset({"renamed"}))),
}


@pytest.fixture(scope="module")
def keras3_legacy_files(keras3: Any, tf_keras: Any,
                        tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Each case's Keras 3 ``.keras`` model and tf_keras ``save_weights`` ``.h5`` file, saved once."""
    folder = tmp_path_factory.mktemp("weights_mismatch_k3_legacy")
    saved: dict[str, tuple[Path, Path]] = {}
    for case, (build, build_source, _, _) in KERAS3_LEGACY_CASES.items():
        weights = folder / f"{case}_weights.h5"
        build_source(tf_keras).save_weights(str(weights))
        model = folder / f"{case}.keras"
        build(keras3).save(model)
        saved[case] = (model, weights)
    return saved


@pytest.mark.parametrize("case", list(KERAS3_LEGACY_CASES))
def test_keras3_legacy_h5_verdict_is_what_load_weights_does(
        case: str, keras3: Any, keras3_legacy_files: dict[str, tuple[Path, Path]]) -> None:
    model_path, weights_path = keras3_legacy_files[case]
    _, _, by_name, expected = KERAS3_LEGACY_CASES[case]
    static = _static(model_path, weights_path, by_name)
    live = _live(keras3.saving.load_model(model_path), weights_path, by_name=by_name)
    assert live == expected
    assert static.outcome == live.outcome
    if live.outcome != "raises":  # a layer-count mismatch is one finding on the whole model
        assert static.left_at_init == live.left_at_init


def test_keras3_legacy_by_name_skip_mismatch_warns_and_leaves_the_flagged_layer_at_init(
        keras3: Any, tf_keras: Any, tmp_path: Path) -> None:
    weights = tmp_path / "source_weights.h5"
    _stack(tf_keras, [4, 2]).save_weights(str(weights))
    model = tmp_path / "wider.keras"
    _stack(keras3, [5, 2]).save(model)
    static = _static(model, weights, by_name=True)
    live = _live(keras3.saving.load_model(model), weights, by_name=True, skip_mismatch=True)
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


@pytest.mark.parametrize(("widths", "expected"), [([4, 2], "loads"), ([4, 4, 2], "raises")])
def test_a_full_model_h5_is_read_as_load_weights_reads_it(widths: list[int], expected: str, tf_keras: Any,
                                                          tmp_path: Path) -> None:
    source = tmp_path / "source_model.h5"
    _stack(tf_keras, [4, 2]).save(str(source))
    model = tmp_path / "model.h5"
    _stack(tf_keras, widths).save(str(model))
    static = _static(model, source, by_name=False)
    live = _live(tf_keras.models.load_model(str(model)), source)
    assert static.outcome == live.outcome == expected
