"""KS209 keras3-incompatible: each reason it gives is checked against Keras 3's own ``load_model``.

Files made by tf_keras (Keras 2) to show one reason each must fail to load in Keras 3; near misses must load. On every
real model, sample model and tf.keras 2.12-2.14 file of the tests, the rule fires only on files Keras 3 fails to load,
and is silent on every file it loads. Keras 3 loads all of them in one child process (``keras3_load_errors``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from config_rewrite import as_keras_2_2_sequential, rewrite_h5

from keras_share.analysis.report import Finding
from keras_share.api import inspect

TESTS = Path(__file__).resolve().parent
REAL = next((folder for folder in (TESTS.parents[level] / "shared" / "real_models" for level in (1, 2))
             if folder.is_dir()), None)
REAL_FILES = sorted(path for path in REAL.rglob("*") if path.suffix in (".h5", ".keras")) if REAL else []
SAMPLES = sorted(path for path in (TESTS.parent / "sample_models").iterdir()
                 if path.suffix in (".h5", ".keras") or path.is_dir())
WEIGHTS_ONLY = {"k2_weights_only.h5", "shared_dense.weights.h5"}
"""Sample files load_model is not for (load_weights is): the rule does not look at weights-only files."""
TFKERAS_213 = [TESTS / "tfkeras213_written" / name for name in (
    "2.13.1/rescaled_sequential.keras", "2.14.0/rescaled_sequential.keras", "2.14.0/nested_called_twice.keras")]
"""What real tf.keras 2.13 and 2.14 wrote: a Sequential numbered as 2.13 did (Keras 3 finds no weights for one layer),
the same as 2.14 did (Keras 3 loads it), a Functional (its module is tf.keras's)."""

OTHER_CAUSES = ("Unknown layer", "Could not locate class", "Requested the deserialization of a `Lambda` layer")
"""Keras 3 load errors this rule does not predict: a custom class not given to load_model, a Lambda in safe mode
(unsafe-lambda's subject)."""

LOADER = r"""
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import keras
errors = {}
for path in sys.argv[1:]:
    try:
        keras.models.load_model(path, compile=False)
        errors[path] = None
    except Exception as error:
        errors[path] = f"{type(error).__name__}: {error}"
print(json.dumps(errors))
"""


def keras3_load_errors(paths: Iterable[Path]) -> dict[str, str | None]:
    """Each file's Keras 3 ``load_model`` error (safe mode, compile=False), None for a file it loads; one child
    process loads them all."""
    pytest.importorskip("keras")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", LOADER, *map(str, paths)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors: dict[str, str | None] = json.loads(proc.stdout.splitlines()[-1])
    return errors


def findings(path: Path) -> list[Finding]:
    report = inspect(str(path), select=["KS209"])
    return list(report.findings)


# ------------------------------------------------------------------ files made by tf_keras, one reason each


def _nested(K: Any) -> Any:
    i = K.Input((4,), name="enc_in")
    return K.Model(i, K.layers.Dense(3, name="enc_dense")(i), name="enc")


def siamese_of_nested_functional(K: Any) -> Any:
    encoder, a, b = _nested(K), K.Input((4,), name="a"), K.Input((4,), name="b")
    return K.Model([a, b], K.layers.Concatenate(name="join")([encoder(a), encoder(b)]))


def nested_functional_as_output(K: Any) -> Any:
    a = K.Input((4,), name="a")
    return K.Model(a, _nested(K)(a))


def nested_sequential_as_output(K: Any) -> Any:
    seq, a = K.Sequential([K.Input((4,)), K.layers.Dense(3)], name="seq"), K.Input((4,), name="a")
    return K.Model(a, seq(a))


def one_layer(make: Callable[[Any], Any], shape: tuple[int, ...]) -> Callable[[Any], Any]:
    def build(K: Any) -> Any:
        x = K.Input(shape, name="x")
        return K.Model(x, make(K)(x))
    return build


def first_layer_with_input_shape(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def build(K: Any) -> Any:
        return K.Sequential([make(K), K.layers.Flatten()], name="seq")
    return build


BUILT: dict[str, tuple[Callable[[Any], Any], str, str | None]] = {
    # name: (builder, how it is saved, the reason's words, None for a near miss that Keras 3 loads)
    "siamese.h5": (siamese_of_nested_functional, "h5", "node 2 of this nested model, numbered from 1"),
    "nested_output.h5": (nested_functional_as_output, "h5", None),
    "sequential_output.h5": (nested_sequential_as_output, "h5", "output takes node 1"),
    "lstm.h5": (one_layer(lambda K: K.layers.LSTM(2), (3, 4)), "h5", "argument time_major"),
    "bidirectional_gru.h5": (one_layer(lambda K: K.layers.Bidirectional(K.layers.GRU(2)), (3, 4)), "h5",
                             "its layer GRU is saved with argument time_major"),
    "depthwise.h5": (one_layer(lambda K: K.layers.DepthwiseConv2D(2), (5, 5, 3)), "h5", "argument groups"),
    "transposed.h5": (one_layer(lambda K: K.layers.Conv2DTranspose(2, 2), (5, 5, 3)), "h5", "argument groups"),
    "conv2d.h5": (one_layer(lambda K: K.layers.Conv2D(2, 2), (5, 5, 3)), "h5", None),
    "spatial_dropout.h5": (one_layer(lambda K: K.layers.SpatialDropout1D(0.2), (5, 3)), "h5", "argument trainable"),
    "conv_first.h5": (first_layer_with_input_shape(lambda K: K.layers.Conv2D(2, 3, input_shape=(6, 6, 1))),
                      "keras-2.2-h5", "carries batch_input_shape"),
    "dense_first.h5": (first_layer_with_input_shape(lambda K: K.layers.Dense(2, input_shape=(4,))),
                       "keras-2.2-h5", None),
    "functional.keras": (siamese_of_nested_functional, "keras", "module tf_keras.src.engine.functional"),
    "dense_first.keras": (first_layer_with_input_shape(lambda K: K.layers.Dense(2, input_shape=(4,))), "keras",
                          "Dense is saved with batch_input_shape"),
    "sequential.keras": (lambda K: K.Sequential([K.Input((4,)), K.layers.Dense(2)], name="seq"), "keras", None),
    "lstm.keras": (lambda K: K.Sequential([K.Input((3, 4)), K.layers.LSTM(2)], name="seq"), "keras",
                   "argument time_major"),
    "savedmodel": (nested_functional_as_output, "tf", "not SavedModel folders"),
}


def _save(K: Any, case: str, folder: Path) -> Path:
    builder, how, _ = BUILT[case]
    K.backend.clear_session()
    model, path = builder(K), folder / case
    if how == "tf":
        model.save(str(path), save_format="tf")
    else:
        model.save(str(path))
    if how == "keras-2.2-h5":
        rewrite_h5(path, as_keras_2_2_sequential)
    return path


@pytest.fixture(scope="module")
def built(tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keras3_incompatible")
    return {case: _save(tf_keras, case, folder) for case in BUILT}


@pytest.fixture(scope="module")
def load_errors(built: dict[str, Path]) -> dict[str, str | None]:
    """Keras 3's verdict on every file of this module, loaded once."""
    return keras3_load_errors([*built.values(), *REAL_FILES, *SAMPLES, *TFKERAS_213])


@pytest.mark.keras
@pytest.mark.parametrize("case", [case for case, (_, _, reason) in BUILT.items() if reason])
def test_a_file_keras_3_cannot_load_is_flagged_with_the_reason(
        case: str, built: dict[str, Path], load_errors: dict[str, str | None]) -> None:
    path, reason = built[case], BUILT[case][2]
    assert load_errors[str(path)] is not None
    messages = [finding.message for finding in findings(path)]
    assert messages and any(reason in message for message in messages), messages
    assert all("written by Keras 2.21.0" in message for message in messages)


@pytest.mark.keras
@pytest.mark.parametrize("case", [case for case, (_, _, reason) in BUILT.items() if not reason])
def test_a_near_miss_keras_3_loads_is_not_flagged(
        case: str, built: dict[str, Path], load_errors: dict[str, str | None]) -> None:
    assert load_errors[str(built[case])] is None
    assert findings(built[case]) == []


@pytest.mark.keras
def test_the_node_offset_reason_matches_keras_3_s_own_error(
        built: dict[str, Path], load_errors: dict[str, str | None]) -> None:
    assert "either has loops or disconnected nodes" in (load_errors[str(built["siamese.h5"])] or "")


def assert_verdict_matches(path: Path, error: str | None) -> None:
    """The rule fires only when Keras 3 fails; when it is silent on a failure, the failure has another cause."""
    found = findings(path)
    if error is None:
        assert found == [], [finding.message for finding in found]
    elif not found:
        assert any(cause in error for cause in OTHER_CAUSES), error


@pytest.mark.keras
@pytest.mark.skipif(not REAL_FILES, reason="../shared/real_models is not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=[path.name for path in REAL_FILES])
def test_real_models_verdict_matches_keras_3_load_model(path: Path, load_errors: dict[str, str | None]) -> None:
    assert_verdict_matches(path, load_errors[str(path)])


@pytest.mark.keras
@pytest.mark.parametrize("path", [path for path in SAMPLES if path.name not in WEIGHTS_ONLY],
                         ids=lambda path: path.name)
def test_sample_models_verdict_matches_keras_3_load_model(path: Path, load_errors: dict[str, str | None]) -> None:
    assert_verdict_matches(path, load_errors[str(path)])


@pytest.mark.keras
@pytest.mark.parametrize("path", TFKERAS_213, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_tf_keras_212_to_214_archives_verdict_matches_keras_3_load_model(
        path: Path, load_errors: dict[str, str | None]) -> None:
    assert_verdict_matches(path, load_errors[str(path)])


@pytest.mark.keras
@pytest.mark.skipif(not REAL_FILES, reason="../shared/real_models is not available")
def test_real_models_keras_3_fails_on_are_flagged_with_keras_3_s_reason(load_errors: dict[str, str | None]) -> None:
    """The three public files whose first Keras 3 error is one the rule predicts."""
    expected = {"birdsong_triplet.h5": "loops or disconnected nodes", "fml_seq_cnn_k231.h5": "Kernel shape must have",
                "onlinesig_siamese.h5": "time_major"}
    for name, error in expected.items():
        path = next(path for path in REAL_FILES if path.name == name)
        assert error in (load_errors[str(path)] or "")
        assert findings(path)


def test_a_hand_written_keras_2_config_is_read_for_its_reason(tmp_path: Path) -> None:
    """No Keras needed: the legacy config of an LSTM with time_major, its layer name kept as the file gives it."""
    import h5py

    path = tmp_path / "hand_written.h5"
    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_input_shape": [None, 3, 4]},
         "inbound_nodes": []},
        {"class_name": "LSTM", "name": "\x1b[31mred", "config": {"name": "\x1b[31mred", "units": 2,
                                                                 "time_major": False},
         "inbound_nodes": [[["x", 0, 0, {}]]]}],
        "input_layers": [["x", 0, 0]], "output_layers": [["\x1b[31mred", 0, 0]]}}
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["keras_version"] = "2.8.0"
    (finding,) = findings(path)
    assert finding.layer == "\x1b[31mred" and "written by Keras 2.8.0" in finding.message
