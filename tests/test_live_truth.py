"""Truth comes from Keras: for models saved in every format, keras-share's static report must say
what the live Keras objects say once the same file is loaded back (see tests/live_truth.py).

Models are built once per session (``model_store`` in conftest.py) by Keras 3 (``.keras``,
``.h5``) and by tf_keras (``.keras``, ``.h5``, and a SavedModel directory for a few cases, its
weights read from ``variables/``). Each file is loaded with the Keras that wrote it.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import ModelStore
from live_truth import (
    StoredArrays,
    assert_static_matches_live,
    compare,
    live_facts,
    load_model,
    static_report,
)

K3_FILES = [pytest.param(3, "keras", id="keras3-keras"), pytest.param(3, "h5", id="keras3-h5")]
K2_FILES = [pytest.param(2, "keras", id="tf_keras-keras"), pytest.param(2, "h5", id="tf_keras-h5")]
SAVEDMODEL = [pytest.param(2, "savedmodel", id="tf_keras-savedmodel")]
ALL_FILES = K3_FILES + K2_FILES

KERAS3_H5_FROZEN_NESTED = (
    "Keras 3.15.1 cannot load its own legacy .h5 of a frozen nested Sequential with a layer re-enabled "
    "inside: the group was written while the Sequential was frozen (layer order), but "
    "Sequential.from_config drops trainable=False, so the loader expects the re-enabled layer's "
    "weights first ('Shape mismatch')"
)
KERAS_SHARED_ACROSS_MODELS = (
    "Keras cannot load a .keras file in which one layer with weights sits in two models "
    "('expected 2 variables, but received 0 variables'; rule cross-model-sharing)"
)

KNOWN_KERAS_LOAD_FAILURES: dict[tuple[str, int, str], tuple[str, str]] = {
    # (case, generation, format): (text of Keras's error, reason)
    ("frozen_sequential_reenabled", 3, "h5"): ("Shape mismatch", KERAS3_H5_FROZEN_NESTED),
    ("nested_model_in_two_models", 3, "keras"): ("could not be loaded", KERAS_SHARED_ACROSS_MODELS),
    ("nested_model_in_two_models", 2, "keras"): ("expected 2 variables", KERAS_SHARED_ACROSS_MODELS),
}


def _load(store: ModelStore, case: str, generation: int, fmt: str) -> tuple[Path, Any]:
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    path = store.path(case, generation, fmt)
    try:
        return path, load_model(path, generation)
    except Exception as error:
        known = KNOWN_KERAS_LOAD_FAILURES.get((case, generation, fmt))
        if known is not None and known[0] in str(error):
            pytest.skip(f"known Keras bug, Keras itself cannot load this file: {known[1]}")
        raise


def _check(store: ModelStore, case: str, generation: int, fmt: str) -> dict[str, Any]:
    path, loaded = _load(store, case, generation, fmt)
    return assert_static_matches_live(path, loaded, generation)


def _layer(report: dict[str, Any], path: str) -> dict[str, Any]:
    return next(layer for layer in report["layers"] if layer["path"] == path)


# --------------------------------------------------------------------------
# The cases, one behaviour per test, every file format.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES + SAVEDMODEL)
def test_dense_shared_by_two_inputs_is_one_layer_called_twice(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "shared_dense", generation, fmt)
    assert _layer(report, "shared_d")["calls"] == 2


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES)
def test_two_dense_layers_with_equal_config_stay_independent(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "independent_dense", generation, fmt)
    assert not _layer(report, "left_d")["shared"] and not _layer(report, "right_d")["shared"]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES)
def test_trained_layer_reused_from_a_base_model_trains(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "transfer_unfrozen", generation, fmt)
    assert _layer(report, "feature")["trainable"]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES)
def test_frozen_layer_reused_from_a_base_model_stays_frozen(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "transfer_frozen", generation, fmt)
    assert not _layer(report, "feature")["trainable"]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES + SAVEDMODEL)
def test_nested_encoder_with_batchnorm_called_three_times(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "nested_encoder", generation, fmt)
    assert _layer(report, "encoder/enc_bn")["effective_calls"] == 3


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES + SAVEDMODEL)
def test_three_levels_of_nesting_multiply_effective_calls(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "three_levels", generation, fmt)
    assert _layer(report, "level1/level2/level3/l3_dense")["effective_calls"] == 4


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES + SAVEDMODEL)
def test_layer_reenabled_inside_frozen_nested_model_follows_the_loading_keras(
    model_store: ModelStore, generation: int, fmt: str
) -> None:
    """Keras 3 keeps every flag; tf_keras drops model flags from .h5/.keras; SavedModel keeps the freeze."""
    report = _check(model_store, "frozen_nested_reenabled", generation, fmt)
    assert _layer(report, "encoder/enc_out")["trainable"] is (fmt != "savedmodel")
    assert not _layer(report, "encoder/enc_dense")["trainable"]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES)
def test_layer_reenabled_inside_frozen_top_model_follows_the_loading_keras(
    model_store: ModelStore, generation: int, fmt: str
) -> None:
    """Keras 3: a frozen top model trains nothing; tf_keras forgets the top flag on load."""
    report = _check(model_store, "frozen_top_reenabled", generation, fmt)
    assert _layer(report, "head")["trainable"] is (generation == 2)
    assert not _layer(report, "body")["trainable"]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES + SAVEDMODEL)
def test_shared_attention_called_with_keyword_tensors_on_two_shapes(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "mha_keywords", generation, fmt)
    if generation == 3:
        assert _layer(report, "shared_mha")["call_sites"][1]["input_shapes"] == [[None, 7, 4], [None, 5, 4], [None, 5, 4]]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES)
def test_nested_sequential_called_twice(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "sequential_twice", generation, fmt)
    assert _layer(report, "seq/s_out")["effective_calls"] == 2


@pytest.mark.parametrize(
    ("generation", "fmt"),
    ALL_FILES + [pytest.param(2, "savedmodel", id="tf_keras-savedmodel")],
)
def test_layer_reenabled_inside_frozen_nested_sequential(model_store: ModelStore, generation: int, fmt: str) -> None:
    _check(model_store, "frozen_sequential_reenabled", generation, fmt)


@pytest.mark.parametrize(
    ("generation", "fmt"),
    ALL_FILES + [pytest.param(2, "savedmodel", id="tf_keras-savedmodel")],
)
def test_layer_reenabled_inside_frozen_top_sequential(model_store: ModelStore, generation: int, fmt: str) -> None:
    """Keras 3 and tf_keras .h5/.keras forget a top-level Sequential's flag on load; a SavedModel keeps it."""
    report = _check(model_store, "frozen_top_sequential_reenabled", generation, fmt)
    assert _layer(report, "s_out")["trainable"] is (fmt != "savedmodel")
    assert not _layer(report, "s_dense")["trainable"]


@pytest.mark.parametrize(("generation", "fmt"), ALL_FILES)
def test_shared_conv1d_on_two_sequence_lengths(model_store: ModelStore, generation: int, fmt: str) -> None:
    report = _check(model_store, "conv1d_two_lengths", generation, fmt)
    if generation == 3:
        shapes = [site["input_shapes"] for site in _layer(report, "shared_conv")["call_sites"]]
        assert shapes == [[[None, 10, 3]], [[None, 20, 3]]]


@pytest.mark.parametrize(
    ("generation", "fmt"),
    ALL_FILES
    + [pytest.param(2, "savedmodel", id="tf_keras-savedmodel")],
)
def test_nested_model_with_a_trainable_layer_beside_a_frozen_model_trains(
    model_store: ModelStore, generation: int, fmt: str
) -> None:
    report = _check(model_store, "frozen_model_beside_a_layer", generation, fmt)
    assert _layer(report, "outer")["trainable"]
    assert not _layer(report, "outer/inner")["trainable"]


# --------------------------------------------------------------------------
# Layers placed in two models, and a frozen attention layer: where Keras's loaders differ.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "fmt"),
    [
        pytest.param(3, "keras", id="keras3-keras"),
        pytest.param(3, "h5", id="keras3-h5"),
        pytest.param(2, "keras", id="tf_keras-keras"),
        pytest.param(2, "h5", id="tf_keras-h5"),
    ],
)
def test_weightless_layer_placed_in_two_nested_models_loads_as_two_copies(
    model_store: ModelStore, generation: int, fmt: str
) -> None:
    _check(model_store, "weightless_in_two_models", generation, fmt)


@pytest.mark.parametrize(
    ("generation", "fmt"),
    [
        pytest.param(3, "keras", id="keras3-keras"),
        pytest.param(3, "h5", id="keras3-h5"),
        pytest.param(2, "keras", id="tf_keras-keras"),
        pytest.param(2, "h5", id="tf_keras-h5"),
        pytest.param(2, "savedmodel", id="tf_keras-savedmodel"),
    ],
)
def test_nested_model_placed_in_two_models(model_store: ModelStore, generation: int, fmt: str) -> None:
    """``sub`` is called by the top model and inside ``mid``: tf_keras .h5 loads two copies, SavedModel one."""
    _check(model_store, "nested_model_in_two_models", generation, fmt)


@pytest.mark.parametrize(
    ("generation", "fmt"),
    [
        pytest.param(3, "keras", id="keras3-keras"),
        pytest.param(3, "h5", id="keras3-h5"),
        *K2_FILES,
        *SAVEDMODEL,
    ],
)
def test_frozen_attention_layer_after_reload(model_store: ModelStore, generation: int, fmt: str) -> None:
    _check(model_store, "frozen_mha", generation, fmt)


# --------------------------------------------------------------------------
# The committed sample models, each loaded with the Keras that wrote it.
# --------------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def _is_weights_only(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as h5:
        return "model_config" not in h5.attrs


def _sample_models() -> list[str]:
    found = []
    for path in sorted(SAMPLES.iterdir()) if SAMPLES.is_dir() else []:
        if path.suffix in (".keras", ".h5") or (path.is_dir() and (path / "keras_metadata.pb").is_file()):
            found.append(path.name)
    return found


def writer_generation(path: Path) -> int:
    """Which Keras wrote a file, from its own metadata (not from keras-share)."""
    if path.is_dir():
        return 2  # a SavedModel with keras_metadata.pb: only tf_keras writes those
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            version = json.loads(archive.read("metadata.json"))["keras_version"]
    else:
        import h5py

        with h5py.File(path, "r") as h5:
            version = h5.attrs.get("keras_version")
            if version is None and "model_weights" in h5:
                version = h5["model_weights"].attrs.get("keras_version")
            if version is None:
                version = "3" if "vars" in h5 or "layers" in h5 else "2"
    version = version.decode() if isinstance(version, bytes) else str(version)
    return 3 if version.startswith("3") else 2


def _register_sample_classes() -> None:
    """``subclassed.keras`` needs ``samples>Scorer``: importing sample_models/build.py registers it."""
    spec = importlib.util.spec_from_file_location("keras_share_sample_build", SAMPLES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _weight_multiset(arrays: list[tuple[tuple[int, ...], str]]) -> Counter[tuple[tuple[int, ...], str]]:
    return Counter(arrays)


def _live_arrays(variables: list[Any]) -> list[tuple[tuple[int, ...], str]]:
    from live_truth import _digest

    return [(tuple(int(d) for d in v.shape), _digest(v.numpy())) for v in variables]


def _unattached_arrays(report: dict[str, Any], path: Path) -> dict[str, list[tuple[tuple[int, ...], str]]]:
    stored = StoredArrays(path)
    try:
        return {
            group["group"]: [(tuple(w["shape"]), stored.digest(w["location"])) for w in group["weights"]]
            for group in report["unattached_weights"]
        }
    finally:
        stored.close()


SAMPLE_MODELS = _sample_models()
WEIGHTS_ONLY_SIBLINGS = {"shared_dense.weights.h5": "shared_dense.keras", "k2_weights_only.h5": "k2_shared.h5"}


@pytest.mark.parametrize("name", [n for n in SAMPLE_MODELS if n not in WEIGHTS_ONLY_SIBLINGS and n != "subclassed.keras"])
def test_sample_model_report_matches_the_keras_that_wrote_it(name: str) -> None:
    path = SAMPLES / name
    generation = writer_generation(path)
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    assert_static_matches_live(path, load_model(path, generation), generation)


def test_subclassed_sample_has_no_graph_and_reports_its_weight_groups() -> None:
    path = SAMPLES / "subclassed.keras"
    if not path.exists():
        pytest.skip("sample_models/subclassed.keras is missing")
    pytest.importorskip("keras")
    _register_sample_classes()
    loaded = load_model(path, 3)
    report = static_report(path)
    assert not report["model"]["has_graph"]
    assert report["model"]["kind"] == "subclassed"
    assert [layer for layer in report["layers"] if layer["kind"] not in ("input", "op")] == []
    groups = _unattached_arrays(report, path)
    live_groups = [_live_arrays(layer.weights) for layer in loaded._flatten_layers(include_self=False) if layer.weights]
    assert sorted(sorted(group) for group in groups.values()) == sorted(sorted(group) for group in live_groups)
    assert report["summary"]["unique_params"] == loaded.count_params()


@pytest.mark.parametrize("name", sorted(WEIGHTS_ONLY_SIBLINGS))
def test_weights_only_sample_holds_the_weights_keras_loads_from_it(name: str) -> None:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample_models/{name} is missing")
    sibling = SAMPLES / WEIGHTS_ONLY_SIBLINGS[name]
    generation = writer_generation(sibling)
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    assert _is_weights_only(path)
    model = load_model(sibling, generation)
    model.load_weights(str(path))
    report = static_report(path)
    assert not report["model"]["has_graph"]
    stored = [array for group in _unattached_arrays(report, path).values() for array in group]
    assert _weight_multiset(stored) == _weight_multiset(_live_arrays(model.weights))
    assert report["summary"]["unique_params"] == model.count_params()


# --------------------------------------------------------------------------
# The oracle itself: it must notice a wrong report (no TensorFlow needed).
# --------------------------------------------------------------------------


def _fake_static(**changes: Any) -> dict[str, Any]:
    def layer(path: str, location: str, **extra: Any) -> dict[str, Any]:
        base = {
            "path": path, "parent": "", "kind": "layer", "calls": 1, "effective_calls": 1, "unreachable_calls": [],
            "trainable": True, "trainable_flag": True, "frozen_by": None, "same_as": [], "shared": False,
            "weights_missing": False, "call_sites": [{"index": 0, "input_shapes": [[None, 4]]}],
            "weights": [{"location": location, "shape": [4, 3]}],
        }
        base.update(extra)
        return base

    report = {
        "format": "keras", "keras_version": "3.15.1", "summary": {"unique_params": 24},
        "layers": [layer("left_d", "loc/left"), layer("right_d", "loc/right")],
    }
    for path, extra in changes.items():
        next(item for item in report["layers"] if item["path"] == path).update(extra)
    return report


def _fake_live() -> dict[str, dict[str, Any]]:
    def fact(obj: int, variable: int, digest: str) -> dict[str, Any]:
        return {
            "object": obj, "is_model": False, "parent_is_sequential": False, "calls": 1, "effective_calls": 1,
            "trainable": True, "input_shapes": [[(None, 4)]], "variables": [(variable, (4, 3), digest)],
        }

    return {"left_d": fact(1, 10, "aaaa"), "right_d": fact(2, 20, "bbbb")}


class _FakeStored:
    def __init__(self, digests: dict[str, str]) -> None:
        self.digests = digests

    def digest(self, location: str) -> str:
        return self.digests[location]


def test_oracle_accepts_a_matching_report() -> None:
    stored = _FakeStored({"loc/left": "aaaa", "loc/right": "bbbb"})
    assert compare(_fake_static(), _fake_live(), 3, count_params=24, stored=stored) == []  # type: ignore[arg-type]


def test_oracle_notices_swapped_weight_locations() -> None:
    stored = _FakeStored({"loc/left": "bbbb", "loc/right": "aaaa"})
    problems = compare(_fake_static(), _fake_live(), 3, count_params=24, stored=stored)  # type: ignore[arg-type]
    assert any("values aaaa" in problem for problem in problems)


def test_oracle_notices_two_layers_reported_as_one_location() -> None:
    static = _fake_static(right_d={"weights": [{"location": "loc/left", "shape": [4, 3]}]})
    problems = compare(static, _fake_live(), 3, count_params=24, stored=_FakeStored({"loc/left": "aaaa"}))  # type: ignore[arg-type]
    assert any("['left_d', 'right_d']" in problem for problem in problems)


def test_oracle_notices_wrong_calls_trainability_and_shapes() -> None:
    static = _fake_static(left_d={"calls": 2, "trainable": False, "call_sites": [{"index": 0, "input_shapes": [[None, 5]]}]})
    problems = compare(static, _fake_live(), 3, count_params=None, weights=False)
    assert [problem.split(":")[1].strip() for problem in problems] == ["calls", "trainable", "input shapes per call"]


def test_live_facts_rejects_an_unknown_generation() -> None:
    with pytest.raises(ValueError, match="generation"):
        live_facts(object(), 4)
