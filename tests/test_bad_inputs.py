"""Corrupt and hostile inputs: every one is reported as one clean error line, never a traceback.

All inputs are built in tmp_path (from scratch, or by damaging copies of sample_models/).
Static path only: no TensorFlow/Keras import here.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from cli_command import keras_share_command, unprivileged_prefix, without_run_total

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
GOOD_KERAS = SAMPLES / "shared_dense.keras"
GOOD_H5 = SAMPLES / "shared_dense.h5"
GOOD_K2_H5 = SAMPLES / "k2_shared.h5"


def run(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*keras_share_command(), *map(str, args)], capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- builders


def _zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _keras_zip(path: Path, config: bytes | str, weights: bytes | None = None) -> Path:
    members: dict[str, bytes | str] = {"metadata.json": json.dumps({"keras_version": "3.15.1"}), "config.json": config}
    if weights is not None:
        members["model.weights.h5"] = weights
    return _zip(path, members)


def _truncated(source: Path, target: Path, keep: Callable[[int], int]) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: keep(len(data))])
    return target


def _h5_with_attrs(path: Path, **attrs: Any) -> Path:
    with h5py.File(path, "w") as h5:
        for key, value in attrs.items():
            h5.attrs[key] = value
        h5.create_dataset("some/data", data=np.zeros((2, 3), dtype="float32"))
    return path


def empty_keras(tmp: Path) -> Path:
    (tmp / "empty.keras").write_bytes(b"")
    return tmp / "empty.keras"


def empty_h5(tmp: Path) -> Path:
    (tmp / "empty.h5").write_bytes(b"")
    return tmp / "empty.h5"


def random_keras(tmp: Path) -> Path:
    (tmp / "random.keras").write_bytes(random.Random(1).randbytes(4096))
    return tmp / "random.keras"


def random_h5(tmp: Path) -> Path:
    (tmp / "random.h5").write_bytes(random.Random(2).randbytes(10_000))
    return tmp / "random.h5"


def text_named_keras(tmp: Path) -> Path:
    (tmp / "readme.keras").write_text("This is a text file, not a model.\n" * 20)
    return tmp / "readme.keras"


def zip_without_config(tmp: Path) -> Path:
    return _zip(tmp / "noconfig.keras", {"metadata.json": "{}", "model.weights.h5": b"\x00" * 16})


def zip_config_invalid_json(tmp: Path) -> Path:
    return _keras_zip(tmp / "badjson.keras", '{"class_name": "Functional", "config": {')


def zip_config_not_utf8(tmp: Path) -> Path:
    return _keras_zip(tmp / "latin1.keras", b'{"name": "\xff\xfe"}')


def zip_config_list(tmp: Path) -> Path:
    return _keras_zip(tmp / "list.keras", "[1, 2, 3]")


def zip_config_number(tmp: Path) -> Path:
    return _keras_zip(tmp / "number.keras", "42")


def zip_config_null(tmp: Path) -> Path:
    return _keras_zip(tmp / "null.keras", "null")


def zip_config_deeply_nested(tmp: Path) -> Path:
    return _keras_zip(tmp / "deep.keras", "[" * 200_000 + "]" * 200_000)


def zip_metadata_invalid_json(tmp: Path) -> Path:
    config = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": []}})
    return _zip(tmp / "badmeta.keras", {"metadata.json": "{nope", "config.json": config})


def zip_weights_garbage(tmp: Path) -> Path:
    with zipfile.ZipFile(GOOD_KERAS) as archive:
        config = archive.read("config.json")
    return _keras_zip(tmp / "badweights.keras", config, weights=b"not an hdf5 file at all" * 10)


def keras_truncated_half(tmp: Path) -> Path:
    return _truncated(GOOD_KERAS, tmp / "half.keras", lambda n: n // 2)


def keras_truncated_few_bytes(tmp: Path) -> Path:
    return _truncated(GOOD_KERAS, tmp / "short5.keras", lambda n: n - 5)


def keras_truncated_one_byte(tmp: Path) -> Path:
    return _truncated(GOOD_KERAS, tmp / "short1.keras", lambda n: n - 1)


def keras_truncated_header(tmp: Path) -> Path:
    return _truncated(GOOD_KERAS, tmp / "head.keras", lambda n: 40)


def keras_corrupt_member(tmp: Path) -> Path:
    """Flip bytes inside the compressed config.json: the CRC or inflate step fails."""
    target = tmp / "crc.keras"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}) * 50)
    data = bytearray(target.read_bytes())
    start = data.index(b"config.json") + len("config.json")
    for offset in range(start + 10, start + 40):
        data[offset] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def h5_without_keras_attrs(tmp: Path) -> Path:
    return _h5_with_attrs(tmp / "plain.h5", note="just some data")


def h5_config_not_json(tmp: Path) -> Path:
    return _h5_with_attrs(tmp / "notjson.h5", model_config="{this is not json", keras_version="2.8.0")


def h5_config_int(tmp: Path) -> Path:
    return _h5_with_attrs(tmp / "intconfig.h5", model_config=7, keras_version="2.8.0")


def h5_config_json_list(tmp: Path) -> Path:
    return _h5_with_attrs(tmp / "listconfig.h5", model_config="[1, 2]", keras_version="2.8.0")


def h5_truncated_half(tmp: Path) -> Path:
    return _truncated(GOOD_H5, tmp / "half.h5", lambda n: n // 2)


def h5_truncated_few_bytes(tmp: Path) -> Path:
    return _truncated(GOOD_K2_H5, tmp / "short.h5", lambda n: n - 10)


def h5_truncated_superblock(tmp: Path) -> Path:
    return _truncated(GOOD_H5, tmp / "super.h5", lambda n: 12)


def h5_layer_names_not_text(tmp: Path) -> Path:
    path = tmp / "weightsnames.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["layer_names"] = np.arange(3)
    return path


def empty_folder(tmp: Path) -> Path:
    (tmp / "nothing_here").mkdir()
    return tmp / "nothing_here"


def folder_without_models(tmp: Path) -> Path:
    folder = tmp / "docs_only"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("# not a model")
    (folder / "sub" / "data.npz").write_bytes(b"PK\x03\x04")
    return folder


def nonexistent(tmp: Path) -> Path:
    return tmp / "does" / "not" / "exist.keras"


def savedmodel_garbage_metadata(tmp: Path) -> Path:
    folder = tmp / "saved"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    (folder / "keras_metadata.pb").write_bytes(random.Random(3).randbytes(2048))
    return folder


def savedmodel_truncated_metadata(tmp: Path) -> Path:
    folder = tmp / "saved_trunc"
    shutil.copytree(SAMPLES / "k2_savedmodel", folder)
    metadata = folder / "keras_metadata.pb"
    metadata.write_bytes(metadata.read_bytes()[: metadata.stat().st_size // 2])
    return folder


def savedmodel_without_metadata(tmp: Path) -> Path:
    folder = tmp / "tf_only"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    return folder


def folder_with_bad_config(tmp: Path) -> Path:
    folder = tmp / "unzipped"
    folder.mkdir()
    (folder / "config.json").write_text("{broken")
    return folder


def folder_with_bad_weights(tmp: Path) -> Path:
    folder = tmp / "unzipped_weights"
    folder.mkdir()
    with zipfile.ZipFile(GOOD_KERAS) as archive:
        (folder / "config.json").write_bytes(archive.read("config.json"))
    (folder / "model.weights.h5").write_bytes(b"not an hdf5 file at all" * 10)
    return folder


# (builder, a pattern the error message must match)
BAD_INPUTS: list[tuple[Callable[[Path], Path], str]] = [
    (empty_keras, r"empty"),
    (empty_h5, r"empty"),
    (random_keras, r"not a Keras model"),
    (random_h5, r"not a Keras model"),
    (text_named_keras, r"not a Keras model"),
    (zip_without_config, r"config\.json"),
    (zip_config_invalid_json, r"config\.json is not valid JSON"),
    (zip_config_not_utf8, r"config\.json is not valid JSON"),
    (zip_config_list, r"config\.json"),
    (zip_config_number, r"config\.json"),
    (zip_config_null, r"config\.json"),
    (zip_config_deeply_nested, r"config\.json"),
    (zip_metadata_invalid_json, r"metadata\.json is not valid JSON"),
    (zip_weights_garbage, r"model\.weights\.h5"),
    (keras_truncated_half, r"zip"),
    (keras_truncated_few_bytes, r"zip"),
    (keras_truncated_one_byte, r"zip"),
    (keras_truncated_header, r"zip"),
    (keras_corrupt_member, r"zip|JSON"),
    (h5_without_keras_attrs, r"not a Keras model"),
    (h5_config_not_json, r"model_config"),
    (h5_config_int, r"model_config"),
    (h5_config_json_list, r"model_config"),
    (h5_truncated_half, r"HDF5"),
    (h5_truncated_few_bytes, r"HDF5"),
    (h5_truncated_superblock, r"HDF5|Keras model"),
    (h5_layer_names_not_text, r"layer_names"),
    (empty_folder, r"no model files"),
    (folder_without_models, r"no model files"),
    (nonexistent, r"no such file"),
    (savedmodel_garbage_metadata, r"keras_metadata\.pb"),
    (savedmodel_truncated_metadata, r"keras_metadata\.pb"),
    (savedmodel_without_metadata, r"keras_metadata\.pb"),
    (folder_with_bad_config, r"config\.json is not valid JSON"),
    (folder_with_bad_weights, r"model\.weights\.h5 is not a readable HDF5 file"),
]
IDS = [builder.__name__ for builder, _ in BAD_INPUTS]


def _assert_one_clean_error(proc: subprocess.CompletedProcess[str], path: Path, pattern: str) -> None:
    assert "Traceback" not in proc.stdout and "Traceback" not in proc.stderr, proc.stderr
    lines = without_run_total(proc.stderr).splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stderr.endswith("\n")
    line = lines[0]
    assert line.startswith(f"keras-share: error: {path}: "), line
    problem = line[len(f"keras-share: error: {path}: "):]
    assert problem.strip(), line
    assert re.search(pattern, problem), line


@pytest.mark.parametrize(("builder", "pattern"), BAD_INPUTS, ids=IDS)
def test_bad_input_is_one_clean_error(builder: Callable[[Path], Path], pattern: str, tmp_path: Path) -> None:
    path = builder(tmp_path)
    proc = run("inspect", path)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    _assert_one_clean_error(proc, path, pattern)
    assert "1 input(s) could not be read" in proc.stdout


def test_all_bad_inputs_in_one_json_batch(tmp_path: Path) -> None:
    paths = []
    for number, (builder, _) in enumerate(BAD_INPUTS):
        folder = tmp_path / f"{number:02d}"
        folder.mkdir()
        paths.append(builder(folder))
    proc = run("inspect", "--format", "json", *paths)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stdout + proc.stderr
    document = json.loads(proc.stdout)
    assert document["models"] == []
    assert [error["file"] for error in document["errors"]] == [str(path) for path in paths]
    assert all(error["error"] and "\n" not in error["error"] for error in document["errors"])
    assert len(proc.stderr.splitlines()) == len(paths)


@pytest.mark.parametrize(
    "builder",
    [zip_config_list, keras_truncated_half, h5_config_int, h5_truncated_half, nonexistent, savedmodel_garbage_metadata],
    ids=["zip_config_list", "keras_truncated_half", "h5_config_int", "h5_truncated_half", "nonexistent",
         "savedmodel_garbage_metadata"],
)
@pytest.mark.parametrize("output_format", ["json", "rich"])
def test_good_bad_good_batch(builder: Callable[[Path], Path], output_format: str, tmp_path: Path) -> None:
    bad = builder(tmp_path)
    proc = run("inspect", "--format", output_format, GOOD_KERAS, bad, GOOD_K2_H5)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stdout + proc.stderr
    assert len(without_run_total(proc.stderr).splitlines()) == 1 and str(bad) in proc.stderr
    if output_format == "json":
        document = json.loads(proc.stdout)
        assert [model["file"] for model in document["models"]] == [str(GOOD_KERAS), str(GOOD_K2_H5)]
        assert [error["file"] for error in document["errors"]] == [str(bad)]
        shared = [[layer["path"] for layer in model["layers"] if layer["calls"] > 1] for model in document["models"]]
        assert shared == [["shared_dense"], ["shared_dense", "tower"]]
    else:
        assert str(GOOD_KERAS) in proc.stdout and str(GOOD_K2_H5) in proc.stdout
        assert "1 input(s) could not be read" in proc.stdout


def test_bad_file_inside_a_folder_does_not_hide_the_good_ones(tmp_path: Path) -> None:
    shutil.copyfile(GOOD_KERAS, tmp_path / "a_good.keras")
    keras_truncated_half(tmp_path).rename(tmp_path / "b_bad.keras")
    shutil.copyfile(GOOD_H5, tmp_path / "c_good.h5")
    proc = run("inspect", "--format", "json", tmp_path)
    assert proc.returncode == 3
    document = json.loads(proc.stdout)
    assert [Path(model["file"]).name for model in document["models"]] == ["a_good.keras", "c_good.h5"]
    assert [Path(error["file"]).name for error in document["errors"]] == ["b_bad.keras"]


# ---------------------------------------------------------------- strange but readable configs


def _functional(layers: list[Any], **extra: Any) -> dict[str, Any]:
    return {"class_name": "Functional",
            "config": {"name": "odd", "layers": layers, "input_layers": [], "output_layers": [], **extra}}


ODD_CONFIGS: list[tuple[str, Any]] = [
    ("object_without_class", {"hello": "world"}),
    ("layers_not_a_list", {"class_name": "Functional", "config": {"name": "x", "layers": "many"}}),
    ("layers_with_non_dict", {"class_name": "Functional", "config": {"name": "x", "layers": [1, "two", None]}}),
    ("inbound_nodes_garbage", _functional([
        {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_shape": [None, 3]},
         "inbound_nodes": []},
        {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2},
         "inbound_nodes": [[["in", "zero", 0, {}]], "junk", {"args": "nope"}, [[None]], 5]},
    ])),
    ("unknown_producer_and_node", _functional([
        {"class_name": "Dense", "name": "d", "config": {"name": "d"},
         "inbound_nodes": [[["ghost", 0, 0, {}]], [["d", 99, 0, {}]]]},
    ])),
    ("self_loop_and_cycle", _functional([
        {"class_name": "Dense", "name": "a", "config": {"name": "a"}, "inbound_nodes": [[["b", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "b", "config": {"name": "b"}, "inbound_nodes": [[["a", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "c", "config": {"name": "c"}, "inbound_nodes": [[["c", 0, 0, {}]]]},
    ])),
    ("duplicate_layer_names", _functional([
        {"class_name": "Dense", "name": "d", "config": {"name": "d"}, "inbound_nodes": []},
        {"class_name": "Conv2D", "name": "d", "config": {"name": "d"}, "inbound_nodes": []},
    ])),
    ("odd_types", _functional([
        {"class_name": 5, "name": ["x"], "config": {"name": None, "trainable": "no", "batch_shape": "big"},
         "inbound_nodes": None, "shared_object_id": "seven"},
    ])),
    ("deep_nesting", None),  # built below: 300 nested Sequential models
]


def _deep_nesting(depth: int) -> str:
    """JSON text of ``depth`` Sequential models nested in each other around one Dense (built as text:
    json.dumps itself recurses)."""
    text = '{"class_name": "Dense", "config": {"name": "leaf", "units": 1}}'
    for level in range(depth):
        text = f'{{"class_name": "Sequential", "config": {{"name": "s{level}", "layers": [{text}]}}}}'
    return text


@pytest.mark.parametrize(("name", "config"), ODD_CONFIGS, ids=[name for name, _ in ODD_CONFIGS])
def test_odd_config_never_crashes(name: str, config: Any, tmp_path: Path) -> None:
    text = _deep_nesting(300) if config is None else json.dumps(config)
    path = _keras_zip(tmp_path / f"{name}.keras", text)
    proc = run("inspect", "--fail-on", "never", "--format", "json", path)  # findings (unresolved-call) are not crashes
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode in (0, 3), proc.stderr
    document = json.loads(proc.stdout)
    if proc.returncode == 0:
        assert [model["file"] for model in document["models"]] == [str(path)] and proc.stderr == ""
    else:
        assert [error["file"] for error in document["errors"]] == [str(path)]
        assert len(proc.stderr.splitlines()) == 1


def test_h5_dangling_links_are_not_followed(tmp_path: Path) -> None:
    """Soft and external links in the weights tree are skipped, not followed or crashed on."""
    path = tmp_path / "links.h5"
    shutil.copyfile(GOOD_H5, path)
    with h5py.File(path, "a") as h5:
        group = h5["model_weights/shared_dense/shared_dense"]
        del group["kernel"]
        group["kernel"] = h5py.ExternalLink("/etc/passwd", "/whatever")
        del h5["model_weights/score/score/bias"]
        h5["model_weights/score/score/bias"] = h5py.SoftLink("/nowhere")
    proc = run("inspect", "--format", "json", path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode in (0, 3)
    if proc.returncode == 0:
        document = json.loads(proc.stdout)
        locations = [w["location"] for layer in document["models"][0]["layers"] for w in layer["weights"]]
        assert not any(location.endswith(("shared_dense/kernel", "score/bias")) for location in locations)


def test_stdin_like_paths_are_just_paths(tmp_path: Path) -> None:
    proc = run("inspect", "--format", "json", "--", "-")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["errors"][0]["file"] == "-"
    assert "Traceback" not in proc.stderr


def test_unreadable_file_permissions(tmp_path: Path) -> None:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE: mode-000 files stay readable "
                    "(tests/test_input_files.py fakes the refusal instead)")
    path = tmp_path / "locked.keras"
    shutil.copyfile(GOOD_KERAS, path)
    path.chmod(0)
    try:
        proc = subprocess.run([*prefix, *keras_share_command(), "inspect", str(path)], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 3
        _assert_one_clean_error(proc, path, r"cannot read \(Permission denied\)")
    finally:
        path.chmod(0o644)


def _jobs_options() -> list[list[str]]:
    """Serial and parallel runs when the command has ``--jobs``, else just the default run."""
    if "--jobs" not in run("inspect", "--help").stdout:
        return [[]]
    return [["--jobs", "1"], ["--jobs", "2"]]


@pytest.mark.parametrize("depth", [30, 100])
def test_moderately_deep_nesting_is_reported(depth: int, tmp_path: Path) -> None:
    deep = _keras_zip(tmp_path / "deep.keras", _deep_nesting(depth))
    for jobs in _jobs_options():
        proc = run("inspect", "--format", "json", *jobs, GOOD_KERAS, deep, GOOD_K2_H5)
        assert proc.returncode == 0 and proc.stderr == "", (jobs, proc.stderr)
        document = json.loads(proc.stdout)
        assert [model["file"] for model in document["models"]] == [str(GOOD_KERAS), str(deep), str(GOOD_K2_H5)]
        layers = document["models"][1]["layers"]
        assert len(layers) == depth and layers[-1]["name"] == "leaf"
        assert layers[-1]["effective_calls"] == 1


@pytest.mark.parametrize("depth", [250, 1000])
def test_extremely_deep_nesting_is_a_clean_outcome(depth: int, tmp_path: Path) -> None:
    """Reported, or refused with one clean error line; never a traceback, and the batch survives."""
    deep = _keras_zip(tmp_path / "deep.keras", _deep_nesting(depth))
    for jobs in _jobs_options():
        proc = run("inspect", "--format", "json", *jobs, GOOD_KERAS, deep, GOOD_K2_H5)
        assert "Traceback" not in proc.stdout + proc.stderr, (jobs, proc.stderr[-3000:])
        assert proc.returncode in (0, 3), jobs
        document = json.loads(proc.stdout)
        files = [model["file"] for model in document["models"]]
        assert files[0] == str(GOOD_KERAS) and files[-1] == str(GOOD_K2_H5)
        if proc.returncode == 3:
            assert [error["file"] for error in document["errors"]] == [str(deep)]
            assert len(proc.stderr.splitlines()) == 1 and str(deep) in proc.stderr
        else:
            assert files == [str(GOOD_KERAS), str(deep), str(GOOD_K2_H5)]


def test_deep_nesting_is_readable_in_process(tmp_path: Path) -> None:
    from keras_share.api import inspect_file

    deep = _keras_zip(tmp_path / "deep.keras", _deep_nesting(200))
    report = inspect_file(deep, timeout=None)
    assert len(report.layers) == 200 and report.layers[-1].layer.name == "leaf"


def test_deep_nesting_readable_in_process_is_reported_by_the_cli(tmp_path: Path) -> None:
    deep = _keras_zip(tmp_path / "deep.keras", _deep_nesting(200))
    proc = run("inspect", "--format", "json", deep)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["models"][0]["layers"]) == 200
