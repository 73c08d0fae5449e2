"""``.keras`` files in the tf.keras 2.12-2.14 layout: layers under ``_layer_checkpoint_dependencies/``.

The files are written by ``tests/tfkeras213_layout.py`` (the writer cannot be installed beside TensorFlow 2.21;
its docstring says which ``saving_lib`` lines it reproduces) from tf_keras models, and keras-share's report is
compared with those live models. ``tests/tfkeras213_written/`` holds files the real tf.keras 2.13 and 2.14 wrote
for the same models: the builder must write what they hold.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES as LIVE_TRUTH_CASES
from live_truth import assert_static_matches_live, static_report
from tfkeras213_layout import CASES, build_case, weights_file, write_archive

from keras_share.api import inspect_file
from keras_share.pipeline import Pipeline
from keras_share.read.vars_layout import CHECKPOINT_DEPENDENCIES_NOTE
from keras_share.settings import LintSettings

VERSIONS = ("2.13.1", "2.14.0")
"""One version of each way of numbering layers of one class (2.12 numbered as 2.13 did)."""
WRITTEN = Path(__file__).parent / "tfkeras213_written"
LOADED_CASES = ("frozen_nested_reenabled", "frozen_top_reenabled", "frozen_sequential_reenabled",
                "frozen_top_sequential_reenabled", "weightless_in_two_models", "three_levels", "sequential_twice")
"""Cases of tests/conftest.py whose trainability or copies depend on how Keras loads the file."""


def _written(tf_keras: Any, tmp_path: Path, case: str, version: str = "2.14.0") -> tuple[Path, Any]:
    model = build_case(tf_keras, case)
    path = tmp_path / f"{case}-{version}.keras"
    write_archive(model, path, version)
    return path, model


def _missing_weights_findings(path: Path) -> list[str]:
    """The layers keras-share's missing-weights rule names in the file at ``path``."""
    report = Pipeline(LintSettings(), timeout=None).finish(inspect_file(path, timeout=None))
    return [finding.layer for finding in report.findings if finding.name == "missing-weights"]


def _structure(path: Path) -> tuple[Any, ...]:
    """What the builder must reproduce of a file: members, metadata keys, config text (object ids aside), and the
    HDF5 tree's paths, shapes and dtypes."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, info.compress_type) for info in archive.infolist()]
        metadata = json.loads(archive.read("metadata.json"))
        config = re.sub(r'"shared_object_id": \d+', '"shared_object_id": 0', archive.read("config.json").decode())
        tree: list[tuple[str, Any, Any]] = []
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            h5.visititems(lambda name, item: tree.append((name, getattr(item, "shape", None), str(getattr(item, "dtype", "")))))
    return members, sorted(metadata), metadata["keras_version"], config, tree


def _rewrite_member(path: Path, member: str, change: Any) -> None:
    """Replace one member of the zip at ``path`` by ``change(its bytes)`` (None: leave it out)."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            written = change(data) if name == member else data
            if written is not None:
                archive.writestr(name, written)


def _add_group(weights: bytes, group: str) -> bytes:
    import h5py
    import numpy as np

    buffer = io.BytesIO(weights)
    with h5py.File(buffer, "a") as h5:
        h5.create_group(group).create_group("vars")["0"] = np.ones((2, 2), "float32")
    return buffer.getvalue()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_weights_params_and_trainability_match_the_live_tf_keras_model(
    tf_keras: Any, tmp_path: Path, case: str, version: str
) -> None:
    path, model = _written(tf_keras, tmp_path, case, version)
    assert_static_matches_live(path, model, generation=2)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_layer_is_reported_missing_its_weights(tf_keras: Any, tmp_path: Path, case: str, version: str) -> None:
    path, _ = _written(tf_keras, tmp_path, case, version)
    assert _missing_weights_findings(path) == []
    assert static_report(path)["unattached_weights"] == []


def test_weightless_layers_are_not_weights_missing(tf_keras: Any, tmp_path: Path) -> None:
    path, _ = _written(tf_keras, tmp_path, "rescaled_sequential")
    layers = {layer["path"]: layer for layer in static_report(path)["layers"]}
    assert layers["rescaling"]["weights_missing"] is False
    assert layers["flatten"]["weights_missing"] is False


def test_a_note_says_which_keras_will_not_load_these_weights(tf_keras: Any, tmp_path: Path) -> None:
    path, _ = _written(tf_keras, tmp_path, "shared_with_batchnorm")
    assert CHECKPOINT_DEPENDENCIES_NOTE in inspect_file(path, timeout=None).notes
    assert "Keras 3" in CHECKPOINT_DEPENDENCIES_NOTE and "tf_keras 2.16+" in CHECKPOINT_DEPENDENCIES_NOTE


def test_a_file_numbered_as_tf_keras_213_is_noted_as_not_loading_in_214(tf_keras: Any, tmp_path: Path) -> None:
    path, _ = _written(tf_keras, tmp_path, "rescaled_sequential", "2.13.1")
    notes = inspect_file(path, timeout=None).notes
    assert any("tf.keras 2.14 looks for other group names" in note for note in notes)


@pytest.mark.parametrize("version", VERSIONS)
def test_without_metadata_the_numbering_the_groups_fit_is_used(tf_keras: Any, tmp_path: Path, version: str) -> None:
    path, model = _written(tf_keras, tmp_path, "frozen_nested_sequential", version)
    _rewrite_member(path, "metadata.json", lambda data: None)
    assert_static_matches_live(path, model, generation=2)


def test_a_group_no_config_layer_matches_is_listed_with_a_note(tf_keras: Any, tmp_path: Path) -> None:
    path, _ = _written(tf_keras, tmp_path, "rescaled_sequential")
    _rewrite_member(path, "model.weights.h5", lambda data: _add_group(data, "_layer_checkpoint_dependencies/dense_7"))
    model = inspect_file(path, timeout=None)
    assert list(model.file.weights.unattached) == ["_layer_checkpoint_dependencies/dense_7"]
    assert any("match no layer of the config" in note and "dense_7" in note for note in model.notes)


def test_a_missing_layer_group_is_a_missing_weights_finding(tf_keras: Any, tmp_path: Path) -> None:
    import h5py

    def drop_dense_1(data: bytes) -> bytes:
        buffer = io.BytesIO(data)
        with h5py.File(buffer, "a") as h5:
            del h5["_layer_checkpoint_dependencies/dense_1"]
        return buffer.getvalue()

    path, _ = _written(tf_keras, tmp_path, "rescaled_sequential")
    _rewrite_member(path, "model.weights.h5", drop_dense_1)
    assert _missing_weights_findings(path) == ["dense_1"]


def test_the_builder_writes_the_members_tf_keras_214_wrote(tf_keras: Any, tmp_path: Path) -> None:
    path, _ = _written(tf_keras, tmp_path, "nested_called_twice")
    with zipfile.ZipFile(path) as archive:
        assert [(info.filename, info.compress_type) for info in archive.infolist()] == [
            ("metadata.json", zipfile.ZIP_STORED), ("config.json", zipfile.ZIP_STORED),
            ("model.weights.h5", zipfile.ZIP_STORED)]
        config = json.loads(archive.read("config.json"))
    assert config["module"] == "keras.src.engine.functional"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_builder_writes_what_the_real_tf_keras_wrote(tf_keras: Any, tmp_path: Path, case: str, version: str) -> None:
    path, _ = _written(tf_keras, tmp_path, case, version)
    assert _structure(path) == _structure(WRITTEN / version / f"{case}.keras")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", LOADED_CASES)
def test_trainability_and_copies_match_what_tf_keras_loads(tf_keras: Any, tmp_path: Path, case: str, version: str) -> None:
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    model = LIVE_TRUTH_CASES[case](tf_keras)
    path = tmp_path / f"{case}.keras"
    write_archive(model, path, version)
    twin = tmp_path / f"{case}-tf_keras.keras"  # the same config and weights, in the layout tf_keras loads
    model.save(twin)
    assert_static_matches_live(path, tf_keras.models.load_model(twin, compile=False), generation=2)


def test_a_weights_only_file_in_this_layout_is_named_for_tf_keras_not_keras_3(tf_keras: Any, tmp_path: Path) -> None:
    path = tmp_path / "model.weights.h5"
    path.write_bytes(weights_file(build_case(tf_keras, "rescaled_sequential", compiled=False)))
    notes = inspect_file(path, timeout=None).notes
    assert any(note.startswith("tf.keras 2.12-2.14 weights-only file") for note in notes)


@pytest.mark.parametrize("case", sorted(CASES))
def test_tf_keras_212_wrote_the_weights_tree_tf_keras_213_wrote(tf_keras: Any, tmp_path: Path, case: str) -> None:
    path, _ = _written(tf_keras, tmp_path, case, "2.13.1")
    members, metadata_keys, _, _, tree = _structure(WRITTEN / "2.12.0" / f"{case}.keras")
    assert (members, metadata_keys, tree) == tuple(_structure(path)[index] for index in (0, 1, 4))


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_file_tf_keras_212_wrote_has_every_layer_s_weights(case: str) -> None:
    path = WRITTEN / "2.12.0" / f"{case}.keras"
    assert _missing_weights_findings(path) == []
    report = static_report(path)
    assert report["unattached_weights"] == []
    assert [layer["path"] for layer in report["layers"] if layer["weights_missing"]] == []
