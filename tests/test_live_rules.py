"""The live-only rules, each with a model that triggers it and a near-identical one that must not.

Truth comes from Keras: the Sequential repeat is checked with a real save and load (the reloaded model
computes d(x)), the cross-model-sharing confirmation quotes Keras's own load error, and sharing across
models is what the layer objects say.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import build_trained_base, build_transfer

import keras_share
from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.pipeline import Pipeline, live_file_report

GENERATIONS = [pytest.param(3, id="keras3"), pytest.param(2, id="tf_keras")]


@pytest.fixture(scope="module", params=GENERATIONS)
def K(request: pytest.FixtureRequest) -> Any:
    """Keras 3 or tf_keras: every builder below uses only their common public API."""
    if request.param == 3:
        return request.getfixturevalue("keras3")
    return request.getfixturevalue("tf_keras")


def found(report: ModelReport, *names: str) -> list[tuple[str, str, str]]:
    """(rule name, severity, layer) of the findings, only of the given rules when names are given."""
    return sorted((f.name, f.severity, f.layer) for f in report.findings if not names or f.name in names)


def static_findings(path: Path) -> ModelReport:
    return keras_share.inspect(str(path))


# ------------------------------------------------------------------ sequential-repeated-layer


def test_sequential_repeated_layer_fires_and_the_saved_file_really_drops_the_repeat(K: Any, tmp_path: Path) -> None:
    d = K.layers.Dense(4, name="d")
    model = K.Sequential([K.Input((4,)), d, d], name="repeat")
    report = keras_share.inspect(model)
    assert found(report, "sequential-repeated-layer") == [("sequential-repeated-layer", "error", "d")]
    layer = next(layer for layer in report.layers if layer.layer.path == "d")
    assert (layer.layer.calls, layer.effective_calls, layer.shared) == (2, 2, True)
    assert [call.index for call in layer.layer.call_sites] == [0, 1]
    assert [ref.layer for call in layer.layer.call_sites for ref in call.inputs][1:] == ["d"]  # d(d(x))
    assert "d(d(x))" in report.findings[0].message

    # Keras: the live model applies d twice; the saved file reloads as a model that applies it once.
    path = tmp_path / "repeat.keras"
    model.save(str(path))
    loaded = K.models.load_model(str(path), compile=False)
    x = np.random.RandomState(0).rand(2, 4).astype("float32")
    kernel, bias = (np.asarray(w) for w in d.get_weights())
    once, twice = x @ kernel + bias, (x @ kernel + bias) @ kernel + bias
    np.testing.assert_allclose(np.asarray(model(x)), twice, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(loaded(x)), once, rtol=1e-5, atol=1e-5)
    assert len(loaded.layers) == 1

    # ... and the file itself cannot show it: one call, no finding.
    saved = static_findings(path)
    assert [(layer.layer.path, layer.layer.calls) for layer in saved.layers if layer.layer.kind == "layer"] == [("d", 1)]
    assert found(saved, "sequential-repeated-layer") == []


def test_sequential_of_two_distinct_layers_is_clean(K: Any) -> None:
    model = K.Sequential([K.Input((4,)), K.layers.Dense(4, name="d1"), K.layers.Dense(4, name="d2")], name="two")
    report = keras_share.inspect(model)
    assert found(report) == []
    assert [layer.layer.calls for layer in report.layers if layer.layer.kind == "layer"] == [1, 1]


def test_a_functional_model_calling_a_layer_twice_is_not_a_sequential_repeat(K: Any) -> None:
    x = K.Input((4,), name="x")
    d = K.layers.Dense(4, name="d")
    report = keras_share.inspect(K.Model(x, d(d(x)), name="twice"))
    assert found(report, "sequential-repeated-layer") == []


# ------------------------------------------------------------------ layer-shared-with-other-model and transfer


def _base_and_transfer(K: Any, freeze: bool) -> tuple[Any, Any]:
    """The seed pitfall: a trained base model's layer taken with get_layer into a new model."""
    base = build_trained_base(K)
    transfer = build_transfer(K, base)
    if freeze:
        base.get_layer("feature").trainable = False
    return base, transfer


def test_shared_trainable_layer_warns_on_both_models_and_the_transfer_is_flagged(K: Any) -> None:
    base, transfer = _base_and_transfer(K, freeze=False)
    base_report, transfer_report = keras_share.inspect([base, transfer])
    assert found(base_report) == [("layer-shared-with-other-model", "warning", "feature")]
    assert found(transfer_report) == [
        ("layer-shared-with-other-model", "warning", "feature"),
        ("transferred-layer-trainable", "warning", "feature"),
    ]
    feature = next(layer for layer in transfer_report.layers if layer.layer.path == "feature")
    assert feature.live is not None
    assert (feature.live.external_calls, feature.live.other_models) == (1, ["base"])
    assert (feature.live.origin_model, feature.live.origin_path, feature.transferred_from) == ("base", "feature", "feature")
    assert all(variable.trainable for variable in feature.live.variables)
    # the base model is where the layer was first called: nothing was transferred into it
    base_feature = next(layer for layer in base_report.layers if layer.layer.path == "feature")
    assert base_feature.live is not None and base_feature.live.origin_model is None
    # truth from Keras: fitting the new model changes the base model's layer
    before = np.asarray(base.get_layer("feature").get_weights()[0]).copy()
    transfer.compile(optimizer="sgd", loss="mse")
    rng = np.random.RandomState(1)
    transfer.fit(rng.rand(4, 4).astype("float32"), rng.rand(4, 2).astype("float32"), epochs=1, verbose=0)
    assert not np.allclose(before, np.asarray(base.get_layer("feature").get_weights()[0]))


def test_frozen_shared_layer_is_info_and_the_transfer_is_reported_not_flagged(K: Any) -> None:
    base, transfer = _base_and_transfer(K, freeze=True)
    report = keras_share.inspect({"pretrained": base, "fine_tuned": transfer})[1]
    assert found(report) == [("layer-shared-with-other-model", "info", "feature")]
    feature = next(layer for layer in report.layers if layer.layer.path == "feature")
    assert feature.live is not None and feature.live.other_models == ["pretrained"]
    assert feature.transferred_from == "feature" and not feature.trainable
    assert not any(variable.trainable for variable in feature.live.variables)


def test_another_live_model_is_found_without_being_passed(K: Any) -> None:
    base, transfer = _base_and_transfer(K, freeze=False)
    report = keras_share.inspect(transfer)
    assert found(report) == [
        ("layer-shared-with-other-model", "warning", "feature"),
        ("transferred-layer-trainable", "warning", "feature"),
    ]
    assert "'base'" in report.findings[0].message
    del base


def test_a_layer_whose_other_model_is_gone_is_not_shared(K: Any) -> None:
    base, transfer = _base_and_transfer(K, freeze=False)
    del base
    gc.collect()
    report = keras_share.inspect(transfer)
    assert found(report) == []
    feature = next(layer for layer in report.layers if layer.layer.path == "feature")
    assert feature.live is not None and (feature.live.external_calls, feature.live.other_models) == (0, [])


def test_independent_models_and_sequential_add_leave_no_shared_layers(K: Any) -> None:
    built = K.Sequential(name="built")
    built.add(K.Input((4,)))
    built.add(K.layers.Dense(3, name="b1"))
    built.add(K.layers.Dense(2, name="b2"))  # Keras 3 rebuilds the graph: the old calls are left over
    x = K.Input((4,), name="x")
    other = K.Model(x, K.layers.Dense(2, name="o1")(x), name="other")
    for report in keras_share.inspect([built, other]):
        assert found(report) == [], report.file.path
        assert all(layer.live is None or layer.live.other_models == [] for layer in report.layers)


def test_a_nested_model_shared_by_two_models_is_reported_once_at_the_nested_model(K: Any) -> None:
    e_in = K.Input((4,), name="enc_in")
    encoder = K.Model(e_in, K.layers.Dense(3, name="enc_dense")(e_in), name="encoder")
    a = K.Input((4,), name="a")
    first = K.Model(a, K.layers.Dense(1, name="head_1")(encoder(a)), name="first")
    b = K.Input((4,), name="b")
    second = K.Model(b, K.layers.Dense(1, name="head_2")(encoder(b)), name="second")
    report = keras_share.inspect([first, second])[0]
    assert found(report) == [("layer-shared-with-other-model", "warning", "encoder")]


# ------------------------------------------------------------------ tied-variable


def _tied_autoencoder(K: Any, tie: bool) -> Any:
    class Decoder(K.layers.Layer):
        """Transposes the encoder's kernel (tie=True) or owns its kernel (tie=False)."""

        def __init__(self, source: Any, units: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.source_layer = lambda: source  # behind a function: not tracked as a sublayer
            self.units = units

        def build(self, input_shape: Any) -> None:
            if tie:
                self.kernel = self.source_layer().kernel
            else:
                self.kernel = self.add_weight(shape=(self.units, int(input_shape[-1])), name="kernel")
            self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

        def call(self, x: Any) -> Any:
            return K.backend.dot(x, K.backend.transpose(self.kernel)) + self.bias if K.__name__ == "tf_keras" else \
                K.ops.matmul(x, K.ops.transpose(self.kernel)) + self.bias

    x = K.Input((6,), name="x")
    encoder = K.layers.Dense(3, name="enc")
    return K.Model(x, Decoder(encoder, 6, name="dec")(encoder(x)), name="tied" if tie else "untied")


def test_tied_variable_lists_the_tie_group(K: Any) -> None:
    model = _tied_autoencoder(K, tie=True)
    report = keras_share.inspect(model)
    assert report.live is not None and report.live.tie_groups == [["dec/enc/kernel", "enc/kernel"]]
    assert found(report) == [("tied-variable", "info", "dec")]
    dec = next(layer for layer in report.layers if layer.layer.path == "dec")
    assert dec.live is not None
    assert [(v.name, v.tied_with) for v in dec.live.variables] == [("enc/kernel", ["enc/kernel"]), ("bias", [])]
    # one variable object: Keras counts it once, and so does unique_params
    assert report.summary.unique_params == int(model.count_params()) == 6 * 3 + 3 + 6
    enc = next(layer for layer in report.layers if layer.layer.path == "enc")
    assert not enc.shared and not dec.shared  # a tie is not a layer applied twice


def test_untied_layers_have_no_tie_group(K: Any) -> None:
    report = keras_share.inspect(_tied_autoencoder(K, tie=False))
    assert report.live is not None and report.live.tie_groups == []
    assert found(report) == []


def test_a_shared_layer_is_not_a_tie(K: Any) -> None:
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    shared = K.layers.Dense(3, name="shared_d")
    report = keras_share.inspect(K.Model([a, b], K.layers.Add(name="add")([shared(a), shared(b)]), name="siamese"))
    assert report.live is not None and report.live.tie_groups == []
    assert found(report, "tied-variable") == []


# ------------------------------------------------------------------ live-static-mismatch (--live on files)


def _cross_model(K: Any) -> Any:
    """One Dense object inside two nested models: cross-model-sharing (KS101)."""
    shared = K.layers.Dense(4, name="shared")

    def sub(name: str) -> Any:
        i = K.Input((4,), name=f"{name}_in")
        return K.Model(i, K.layers.Dense(4, name=f"{name}_d")(shared(i)), name=name)

    sub_a, sub_b = sub("sub_a"), sub("sub_b")
    x = K.Input((4,), name="x")
    return K.Model(x, K.layers.Add(name="add")([sub_a(x), sub_b(x)]), name="cross")


def _live_lint(path: Path, unsafe: bool = False) -> ModelReport:
    report = Pipeline().finish(live_file_report(path, unsafe=unsafe))
    return report


def test_cross_model_sharing_file_that_keras_cannot_load_is_confirmed(K: Any, tmp_path: Path) -> None:
    path = tmp_path / "cross.keras"
    _cross_model(K).save(str(path))
    with pytest.raises(Exception) as keras_error:
        K.models.load_model(str(path), compile=False)
    report = _live_lint(path)
    assert found(report, "live-static-mismatch") == [("live-static-mismatch", "error", "sub_b/shared")]
    assert found(report, "cross-model-sharing") == [("cross-model-sharing", "error", "sub_b/shared")]
    message = next(f.message for f in report.findings if f.name == "live-static-mismatch")
    assert "confirming cross-model-sharing (KS101)" in message
    assert "expected 2 variables" in message or "could not be loaded" in message
    assert report.live is not None and report.live.load_error is not None
    assert str(keras_error.value).strip().splitlines()[0].strip()[:40] in report.live.load_error


def test_cross_model_sharing_h5_reloads_as_independent_layers(keras3: Any, tmp_path: Path) -> None:
    path = tmp_path / "cross.h5"
    _cross_model(keras3).save(str(path))
    loaded = keras3.models.load_model(str(path), compile=False)
    assert loaded.get_layer("sub_a").get_layer("shared") is not loaded.get_layer("sub_b").get_layer("shared")
    report = _live_lint(path)
    assert found(report, "live-static-mismatch") == [("live-static-mismatch", "error", "sub_b/shared")]
    assert "2 independent layers" in report.findings[[f.name for f in report.findings].index("live-static-mismatch")].message


def test_a_file_that_round_trips_has_no_mismatch(K: Any, tmp_path: Path) -> None:
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    shared = K.layers.Dense(3, name="shared_d")
    model = K.Model([a, b], K.layers.Dense(1, name="head")(K.layers.Add(name="add")([shared(a), shared(b)])),
                    name="siamese")
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"siamese{suffix}"
        model.save(str(path))
        report = _live_lint(path)
        assert report.live is not None and report.live.mismatches == [] and report.live.load_error is None, suffix
        # A tf_keras .keras file is one Keras 3 cannot load (keras3-incompatible): not a mismatch of the cross-check.
        assert [item for item in found(report) if item[0] != "keras3-incompatible"] == [], suffix
        assert report.file.format != "live"  # the file's own report, cross-checked
        shared_layer = next(layer for layer in report.layers if layer.layer.path == "shared_d")
        assert shared_layer.live is not None
        assert [v.location for v in shared_layer.live.variables] == [w.location for w in shared_layer.layer.weights]


def test_unsafe_lambda_file_is_not_loaded_without_unsafe(keras3: Any, tmp_path: Path) -> None:
    x = keras3.Input((4,), name="x")
    model = keras3.Model(x, keras3.layers.Lambda(lambda t: t * 2, name="double")(x), name="lam")
    path = tmp_path / "lambda.keras"
    model.save(str(path))
    with pytest.raises(ReadError, match="layer 'double', config.function .*unsafe-lambda"):
        _live_lint(path)
    trusted = _live_lint(path, unsafe=True)
    assert found(trusted, "live-static-mismatch") == []
    assert trusted.live is not None and trusted.live.keras is not None


def test_live_rules_never_fire_on_files_read_statically(sample_dir: Path) -> None:
    live_only = {"sequential-repeated-layer", "layer-shared-with-other-model", "tied-variable", "live-static-mismatch"}
    for path in sorted(sample_dir.glob("*.keras")) + sorted(sample_dir.glob("*.h5")):
        report = keras_share.inspect(str(path))
        assert report.live is None
        assert not [f for f in report.findings if f.name in live_only], path.name
