"""KS208 unreachable-call: a call, or a model input, whose result reaches no output of its model.

Keras saves a model input that feeds nothing as it is; a call that feeds nothing is what a siamese head given one
branch twice, or a custom layer that records only some of its tensor arguments, leaves in a file. The tests build
the first with Keras and the second by editing the saved config so the head takes its first tensor twice (as in
tests/test_unreachable_calls.py), then show with the loaded model that its prediction ignores the input named.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from config_rewrite import layer_entry, rewrite_h5, rewrite_keras
from live_truth import load_model

from keras_share.analysis.report import Finding
from keras_share.api import inspect_file
from keras_share.pipeline import Pipeline
from keras_share.settings import LintSettings

CODE = "KS208"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real_models"
REAL_FILES = sorted(path for pattern in ("*.h5", "*.keras", "extra/*.h5", "extra/*.keras") for path in REAL.glob(pattern))
SAMPLES = sorted(path for path in (Path(__file__).resolve().parents[1] / "sample_models").iterdir()
                 if path.suffix in (".h5", ".keras") or path.is_dir())


def findings(path: Path) -> list[Finding]:
    """The KS208 findings on a saved file."""
    report = Pipeline(LintSettings(select=[CODE])).finish(inspect_file(path, timeout=None))
    return [finding for finding in report.findings if finding.rule == CODE]


def _module(generation: int) -> Any:
    return pytest.importorskip("keras" if generation == 3 else "tf_keras")


def _siamese(K: Any, dangling: bool = False) -> Any:
    """An encoder called on ``a`` then ``b``, the results joined; with ``dangling``, a Dense between the call on
    ``b`` and the join."""
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    encoder = K.Sequential([K.Input((8,)), K.layers.Dense(4, name="e1")], name="enc")
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    left, right = encoder(a), encoder(b)
    if dangling:
        right = K.layers.Dense(4, name="side")(right)
    return K.Model([a, b], K.layers.Concatenate(name="join")([left, right]))


def _join_takes_its_first_tensor_twice(config: dict[str, Any]) -> None:
    """``join([left, right])`` becomes ``join([left, left])``, in either node layout."""
    (node,) = layer_entry(config, "join")["inbound_nodes"]
    tensors = node["args"][0] if isinstance(node, dict) else node
    tensors[1] = copy.deepcopy(tensors[0])


def _saved(model: Any, path: Path, edit: bool = True) -> Path:
    model.save(str(path))
    if edit:
        (rewrite_keras if path.suffix == ".keras" else rewrite_h5)(path, _join_takes_its_first_tensor_twice)
    return path


def _ignores_input(loaded: Any, index: int) -> bool:
    """True when changing input ``index`` leaves the loaded model's prediction unchanged."""
    rng = np.random.default_rng(0)
    inputs = [rng.random((2, 8), dtype=np.float32) for _ in range(2)]
    changed = [array.copy() for array in inputs]
    changed[index] = changed[index] + 1.0
    return bool(np.allclose(np.asarray(loaded.predict(inputs, verbose=0)),
                            np.asarray(loaded.predict(changed, verbose=0))))


@pytest.fixture(scope="module")
def siamese_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The siamese model saved as Keras 3 ``.keras`` and tf_keras ``.h5`` (the two node layouts), edited and not."""
    folder = tmp_path_factory.mktemp("ks208")
    files: dict[str, Path] = {}
    for generation, suffix in ((3, "keras"), (2, "h5")):
        K = _module(generation)
        files[f"dead-{generation}"] = _saved(_siamese(K), folder / f"dead{generation}.{suffix}")
        files[f"intact-{generation}"] = _saved(_siamese(K), folder / f"intact{generation}.{suffix}", edit=False)
    return files


@pytest.mark.parametrize("generation", [3, 2], ids=["keras3-keras", "tf_keras-h5"])
def test_a_branch_passed_twice_leaves_the_other_call_and_its_input_dead(
        siamese_files: dict[str, Path], generation: int) -> None:
    (finding,) = findings(siamese_files[f"dead-{generation}"])
    assert finding.layer == "enc"
    assert "call #1 of 'enc' (on 'b')" in finding.message
    assert "input 'b' feeds nothing else" in finding.message


@pytest.mark.parametrize("generation", [3, 2], ids=["keras3-keras", "tf_keras-h5"])
def test_the_report_carries_the_calls_whose_result_reaches_an_output(siamese_files: dict[str, Path],
                                                                     generation: int) -> None:
    """The encoder's call on ``b`` (call 1) feeds an output exactly when the loaded model's prediction uses ``b``."""
    for state in ("dead", "intact"):
        path = siamese_files[f"{state}-{generation}"]
        uses_b = not _ignores_input(load_model(path, generation), 1)
        assert inspect_file(path, timeout=None).calls_feeding_outputs["enc"] == ({0, 1} if uses_b else {0}), state


@pytest.mark.parametrize("generation", [3, 2], ids=["keras3-keras", "tf_keras-h5"])
def test_the_loaded_model_ignores_the_input_the_finding_names(siamese_files: dict[str, Path], generation: int) -> None:
    loaded = load_model(siamese_files[f"dead-{generation}"], generation)
    assert _ignores_input(loaded, 1)
    assert not _ignores_input(loaded, 0)


@pytest.mark.parametrize("generation", [3, 2], ids=["keras3-keras", "tf_keras-h5"])
def test_a_siamese_model_using_both_branches_is_not_flagged(siamese_files: dict[str, Path], generation: int) -> None:
    assert findings(siamese_files[f"intact-{generation}"]) == []
    assert not _ignores_input(load_model(siamese_files[f"intact-{generation}"], generation), 1)


def test_every_call_of_a_dead_branch_is_named(keras3: Any, tmp_path: Path) -> None:
    found = findings(_saved(_siamese(keras3, dangling=True), tmp_path / "dangling.keras"))
    assert [(finding.layer, "input 'b'" in finding.message) for finding in found] == [("enc", True), ("side", False)]
    assert "the call of 'side' (on 'enc' call #1)" in found[1].message


@pytest.mark.parametrize("generation", [3, 2], ids=["keras3", "tf_keras"])
def test_a_model_input_that_feeds_no_call_is_flagged(tmp_path: Path, generation: int) -> None:
    K = _module(generation)
    K.backend.clear_session()
    a, b = K.Input((8,), name="a"), K.Input((8,), name="b")
    path = tmp_path / "unused_input.keras"
    K.Model([a, b], K.layers.Dense(2, name="d")(a)).save(str(path))
    (finding,) = findings(path)
    assert (finding.layer, "input 'b' of the model feeds no call" in finding.message) == ("b", True)
    assert _ignores_input(load_model(path, generation), 1)


def _two_output_inner(K: Any) -> tuple[Any, Any]:
    K.backend.clear_session()
    x = K.Input((8,), name="x")
    inner = K.Model(x, [K.layers.Dense(4, name="kept")(x), K.layers.Dense(4, name="branch")(x)], name="inner")
    a = K.Input((8,), name="a")
    return inner, a


def test_a_multi_output_call_that_has_one_output_used_is_not_flagged(keras3: Any, tmp_path: Path) -> None:
    inner, a = _two_output_inner(keras3)
    path = tmp_path / "one_output_used.keras"
    keras3.Model(a, keras3.layers.Dense(1, name="head")(inner(a)[0])).save(str(path))
    assert findings(path) == []


def test_a_dead_branch_inside_a_nested_model_is_named_by_its_path(keras3: Any, tmp_path: Path) -> None:
    """The nested model's second output is dropped from its ``output_layers``: its ``branch`` feeds none of the
    nested model's outputs."""
    inner, a = _two_output_inner(keras3)
    path = tmp_path / "nested_dead.keras"
    keras3.Model(a, keras3.layers.Dense(1, name="head")(inner(a)[0])).save(str(path))
    rewrite_keras(path, lambda config: layer_entry(config, "inner")["config"]["output_layers"].pop(1))
    (finding,) = findings(path)
    assert finding.layer == "inner/branch"
    assert "reaches no output of nested model 'inner'" in finding.message
    assert "branch" not in [layer.name for layer in load_model(path, 3).get_layer("inner").layers]


@pytest.mark.skipif(not REAL_FILES, reason="../shared/real_models is not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=[path.name for path in REAL_FILES])
def test_no_real_model_has_an_unreachable_call(path: Path) -> None:
    """None of the public files has a dead call or input (onlinesig's validation branch reaches its distance layer
    through a keyword argument: alive)."""
    assert findings(path) == []


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_no_sample_model_has_an_unreachable_call(path: Path) -> None:
    assert findings(path) == []


def test_a_model_with_a_reference_that_names_no_call_is_not_traced(tmp_path: Path) -> None:
    """``join`` names the encoder's node 5, which does not exist (KS105): the data flow is unknown, so the encoder's
    calls are not called dead."""
    import json

    import h5py

    encoder = {"class_name": "Sequential", "name": "enc",
               "config": {"name": "enc", "layers": [
                   {"class_name": "InputLayer", "config": {"name": "i", "batch_input_shape": [None, 8]}},
                   {"class_name": "Dense", "config": {"name": "e1", "units": 4}}]},
               "inbound_nodes": [[["a", 0, 0, {}]], [["b", 0, 0, {}]]]}
    inputs = [{"class_name": "InputLayer", "name": name, "config": {"name": name, "batch_input_shape": [None, 8]},
               "inbound_nodes": []} for name in ("a", "b")]
    join = {"class_name": "Concatenate", "name": "join", "config": {"name": "join"},
            "inbound_nodes": [[["enc", 1, 0, {}], ["enc", 5, 0, {}]]]}
    config = {"class_name": "Functional", "config": {"name": "top", "layers": [*inputs, encoder, join],
                                                     "input_layers": [["a", 0, 0], ["b", 0, 0]],
                                                     "output_layers": [["join", 0, 0]]}}
    path = tmp_path / "unresolved.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["keras_version"] = "2.15.0"
        h5.create_group("model_weights").attrs["layer_names"] = []
    assert findings(path) == []
    report = Pipeline(LintSettings()).finish(inspect_file(path, timeout=None))
    assert "KS105" in {finding.rule for finding in report.findings}
