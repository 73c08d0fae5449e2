"""Truncated files: a file cut at a byte offset (a download that stopped) is one error line naming it truncated, and
a weights file holding far fewer arrays than its config implies is one missing-weights finding that counts them,
not one finding per layer."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cli_command import keras_share_command, without_run_total
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_share.api import inspect, inspect_file
from keras_share.errors import ReadError
from keras_share.rules.missing_weights import LAYERS_LISTED

# ------------------------------------------------------------------ a file cut at a byte offset


@pytest.fixture(scope="module")
def intact_files(keras3: Any, tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real Keras 3 and tf_keras files of one small model: a .keras zip, a .keras folder, .h5 files, and
    .weights.h5 files."""
    root = tmp_path_factory.mktemp("intact")
    files: dict[str, Path] = {}
    for name, K in (("keras3", keras3), ("tf_keras", tf_keras)):
        K.backend.clear_session()
        inputs = K.Input((8,), name="x")
        hidden = K.layers.BatchNormalization(name="bn")(K.layers.Dense(16, name="body")(inputs))
        model = K.Model(inputs, K.layers.Dense(2, name="head")(hidden), name="small")
        model.save(root / f"{name}.h5")
        files[f"{name}.h5"] = root / f"{name}.h5"
        weights = root / (f"{name}.weights.h5" if name == "keras3" else f"{name}_weights.h5")
        model.save_weights(weights)
        files[weights.name] = weights
        if name == "keras3":
            model.save(root / "keras3.keras")
            files["keras3.keras"] = root / "keras3.keras"
    folder = root / "keras3_folder"
    with zipfile.ZipFile(files["keras3.keras"]) as archive:
        archive.extractall(folder)
    files["keras3_folder/model.weights.h5"] = folder / "model.weights.h5"
    return files


def _cut_copy(source: Path, member: str, tmp_path: Path, size: int) -> Path:
    """A copy of the file (or of the folder holding ``member``) with the file cut to ``size`` bytes; the path to
    give keras-share."""
    if "/" in member:
        folder = tmp_path / source.parent.name
        shutil.copytree(source.parent, folder)
        (folder / source.name).write_bytes(source.read_bytes()[:size])
        return folder
    target = tmp_path / source.name
    target.write_bytes(source.read_bytes()[:size])
    return target


CUT_FILES = ["keras3.keras", "keras3.h5", "tf_keras.h5", "keras3.weights.h5", "tf_keras_weights.h5",
             "keras3_folder/model.weights.h5"]
CUT_POINTS = {"first byte": lambda size: 1, "inside the signature": lambda size: 5,
              "inside the header": lambda size: 40, "middle": lambda size: size // 2,
              "just before the end": lambda size: size - 1}


@pytest.mark.parametrize("where", CUT_POINTS)
@pytest.mark.parametrize("member", CUT_FILES)
def test_a_file_cut_short_is_a_read_error_saying_truncated(
        intact_files: dict[str, Path], tmp_path: Path, member: str, where: str) -> None:
    source = intact_files[member]
    path = _cut_copy(source, member, tmp_path, CUT_POINTS[where](source.stat().st_size))
    with pytest.raises(ReadError) as raised:
        inspect_file(path)
    assert "truncated" in raised.value.problem
    assert raised.value.path == str(path)


@pytest.mark.parametrize("member", CUT_FILES)
def test_the_intact_file_is_read_with_its_weights(intact_files: dict[str, Path], member: str) -> None:
    path = intact_files[member]
    report = inspect_file(path.parent if "/" in member else path)
    assert report.summary.unique_params > 0
    assert not [finding for finding in report.findings if finding.name == "missing-weights"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), member=st.sampled_from(CUT_FILES))
def test_wherever_a_file_is_cut_it_is_never_read_as_a_model(
        intact_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, fraction: float, member: str) -> None:
    source = intact_files[member]
    size = source.stat().st_size
    path = _cut_copy(source, member, tmp_path_factory.mktemp("cut"), max(1, int(size * fraction)))
    with pytest.raises(ReadError, match="truncated"):
        inspect_file(path)


@pytest.mark.parametrize("member", ["keras3.keras", "tf_keras.h5", "keras3_folder/model.weights.h5"])
def test_a_cut_file_on_the_command_line_is_one_error_line_and_exit_3(
        intact_files: dict[str, Path], tmp_path: Path, member: str) -> None:
    source = intact_files[member]
    path = _cut_copy(source, member, tmp_path, source.stat().st_size * 2 // 3)
    result = subprocess.run([*keras_share_command(), "inspect", str(path)], check=False, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 3
    lines = without_run_total(result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"keras-share: error: {path}: ")
    assert "truncated" in lines[0]
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------ a weights file missing most of its arrays


@pytest.fixture(scope="module")
def mobilenet_nested_twice(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """MobileNetV3Small (no pretrained weights, 32x32 input) nested in a Functional nested in another, saved as a
    .keras folder: the live model and the folder."""
    keras3.backend.clear_session()
    keras3.utils.set_random_seed(0)
    backbone = keras3.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), include_top=False)
    middle_in = keras3.Input((32, 32, 3), name="middle_in")
    middle = keras3.Model(middle_in, backbone(middle_in), name="middle")
    top_in = keras3.Input((32, 32, 3), name="image")
    pooled = keras3.layers.GlobalAveragePooling2D(name="pool")(middle(top_in))
    model = keras3.Model(top_in, keras3.layers.Dense(3, name="head")(pooled), name="top")
    archive = tmp_path_factory.mktemp("mobilenet") / "model.keras"
    model.save(archive)
    folder = archive.with_suffix("")
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
    return model, folder


def _keep_one_vars_group(weights_file: Path) -> list[str]:
    """Delete, with h5py, every layer group of the weights file whose ``vars`` hold arrays but the first; return
    the paths of the arrays left."""
    import h5py

    with h5py.File(weights_file, "a") as weights:
        filled: list[str] = []
        weights.visititems(lambda name, item: filled.append(name) if isinstance(item, h5py.Group)
                           and name.endswith("/vars") and len(item) else None)
        for name in filled[1:]:
            del weights[name.rsplit("/", 1)[0]]
        kept = filled[0]
        return [f"{kept}/{index}" for index in weights[kept]]


@pytest.fixture(scope="module")
def mobilenet_truncated(mobilenet_nested_twice: tuple[Any, Path], tmp_path_factory: pytest.TempPathFactory
                        ) -> tuple[Any, Path, list[str]]:
    model, folder = mobilenet_nested_twice
    truncated = tmp_path_factory.mktemp("mobilenet_truncated") / "model"
    shutil.copytree(folder, truncated)
    return model, truncated, _keep_one_vars_group(truncated / "model.weights.h5")


def test_keras_refuses_the_truncated_file(keras3: Any, mobilenet_truncated: tuple[Any, Path, list[str]]) -> None:
    _, folder, _ = mobilenet_truncated
    with pytest.raises(ValueError, match="could not be loaded|expected .* variables"):
        keras3.saving.load_model(folder)


def test_a_weights_file_missing_most_arrays_is_one_finding(mobilenet_truncated: tuple[Any, Path, list[str]]) -> None:
    _, folder, _ = mobilenet_truncated
    report = inspect(folder)
    assert [(finding.name, finding.layer) for finding in report.findings] == [("missing-weights", "")]


def test_the_finding_counts_stored_and_implied_arrays_as_keras_does(
        mobilenet_truncated: tuple[Any, Path, list[str]]) -> None:
    import h5py
    import numpy as np

    model, folder, kept = mobilenet_truncated
    with h5py.File(folder / "model.weights.h5") as weights:
        stored_params = sum(int(np.prod(weights[name].shape)) for name in kept)
    [finding] = inspect(folder).findings
    assert f"stores {len(kept)} of the {len(model.weights)} arrays its config implies" in finding.message
    assert f"({stored_params:,} parameters stored;" in finding.message
    assert inspect(folder).summary.unique_params == stored_params


def test_the_finding_lists_every_layer_whose_weights_are_missing(
        keras3: Any, mobilenet_truncated: tuple[Any, Path, list[str]]) -> None:
    model, folder, _ = mobilenet_truncated
    report = inspect(folder)
    stored = {layer.layer.path for layer in report.layers if layer.layer.weights}
    live_with_weights = set()
    for path, layer in _live_layers(model, ""):
        if layer.weights and not isinstance(layer, keras3.Model):
            live_with_weights.add(path)
    [finding] = report.findings
    assert set(finding.layers) == live_with_weights - stored
    assert len(finding.layers) > LAYERS_LISTED
    assert f"{len(finding.layers)} of the {len(live_with_weights)} layers that must have weights" in finding.message


def _live_layers(model: Any, prefix: str) -> list[tuple[str, Any]]:
    """(path, layer) of every layer below ``model``, nested models' layers included, as keras-share names them."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        path = f"{prefix}{layer.name}"
        found.append((path, layer))
        if hasattr(layer, "layers"):
            found.extend(_live_layers(layer, path + "/"))
    return found


def test_a_few_layers_without_weights_keep_one_finding_each(
        mobilenet_nested_twice: tuple[Any, Path], tmp_path: Path) -> None:
    import h5py

    _, folder = mobilenet_nested_twice
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    with h5py.File(copy / "model.weights.h5", "a") as weights:
        del weights["layers/dense"]
    report = inspect(copy)
    assert [(finding.name, finding.layer, finding.layers) for finding in report.findings] == [
        ("missing-weights", "head", ())]


def test_a_truncated_weights_file_in_json_lists_the_layers(mobilenet_truncated: tuple[Any, Path, list[str]]) -> None:
    import json

    _, folder, _ = mobilenet_truncated
    result = subprocess.run([*keras_share_command(), "inspect", "--format", "json", str(folder)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    [finding] = json.loads(result.stdout)["models"][0]["findings"]
    assert finding["name"] == "missing-weights"
    assert "mid" not in finding["layers"]
    assert "middle/MobileNetV3Small/conv" in finding["layers"]
