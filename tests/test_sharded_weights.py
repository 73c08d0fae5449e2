"""Sharded Keras 3 weights (``save_weights("x.weights.json", max_shard_size=...)``, KerasHub preset folders), and
``.keras`` files whose weights are in a form keras-share does not read (npz, unknown members): every layout is
read as Keras reads it, or refused with one line and exit 3.

Every file is written by the installed Keras 3 (``max_shard_size`` is in GB: 0.00002 GB is 21,474 bytes, so the
8x600 kernel below nearly fills one shard and its bias starts the next). The live model of a preset folder is built as
KerasHub builds it: ``config.json`` deserialized, then ``load_weights("model.weights.json")``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cli_command import keras_share_command
from live_truth import assert_static_matches_live, static_report

from keras_share.limits import MAX_WEIGHT_SHARDS

SHARD_GB = 0.00002
"""Shards of about 21 KiB: the model below is split over several, one layer's vars over two."""


def run(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*keras_share_command(), *map(str, args)], capture_output=True, text=True, timeout=180)


def _build(keras: Any) -> Any:
    """A frozen BatchNormalization, a nested Sequential and a Dense applied twice, behind a Dense whose kernel
    and bias land in two shards."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(600, name="wide")(inputs)
    norm = keras.layers.BatchNormalization(name="norm")
    norm.trainable = False
    hidden = keras.layers.Dense(4, name="narrow")(norm(hidden))
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, name="e1"), keras.layers.Dense(4, name="e2")],
                               name="encoder")
    head = keras.layers.Dense(4, name="head")
    outputs = head(head(encoder(hidden)))
    return keras.Model(inputs, outputs, name="sharded")


@pytest.fixture(scope="module")
def saved(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model saved as a weights map with shards, as a plain ``.weights.h5``, and as a preset folder
    (``config.json``, ``metadata.json``, ``model.weights.json`` and shards)."""
    from keras.src.saving import saving_lib

    root = tmp_path_factory.mktemp("sharded")
    model = _build(keras3)
    model.save_weights(str(root / "x.weights.json"), max_shard_size=SHARD_GB)
    model.save_weights(str(root / "plain.weights.h5"))
    preset = root / "preset"
    saving_lib.save_model(model, str(preset), zipped=False)
    (preset / "model.weights.h5").unlink()
    model.save_weights(str(preset / "model.weights.json"), max_shard_size=SHARD_GB)
    return {"map": root / "x.weights.json", "plain": root / "plain.weights.h5", "preset": preset}


def _copy_preset(saved: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved["preset"], tmp_path / "preset"))


def _rewrite_map(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data["weight_map"])
    path.write_text(json.dumps(data))


def _load_preset(keras: Any, folder: Path) -> Any:
    """The preset's live model, built as KerasHub builds it."""
    model = keras.saving.deserialize_keras_object(json.loads((folder / "config.json").read_text()))
    model.load_weights(str(folder / "model.weights.json"))
    return model


def _one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("keras-share: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_a_preset_folder_with_sharded_weights_matches_the_model_keras_loads_from_it(keras3: Any, saved: dict[str, Path]) -> None:
    assert len(list(saved["preset"].glob("model_*.weights.h5"))) > 1
    assert keras3.__version__.startswith("3")
    assert_static_matches_live(saved["preset"], _load_preset(keras3, saved["preset"]), 3)


def test_live_loads_a_sharded_preset_folder_as_kerashub_does_and_finds_no_mismatch(saved: dict[str, Path]) -> None:
    proc = run("inspect", "--live", "--format", "json", saved["preset"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "live-static-mismatch" not in proc.stdout


def test_the_vars_of_one_layer_split_over_two_shards_are_all_read(saved: dict[str, Path]) -> None:
    weight_map = json.loads((saved["preset"] / "model.weights.json").read_text())["weight_map"]
    assert len(weight_map["/layers/dense/vars"]) == 2, weight_map
    wide = next(layer for layer in static_report(saved["preset"])["layers"] if layer["path"] == "wide")
    shards = {weight["location"].split(":")[0] for weight in wide["weights"]}
    assert [weight["shape"] for weight in wide["weights"]] == [[8, 600], [600]]
    assert shards == set(weight_map["/layers/dense/vars"])


def test_a_weights_map_given_directly_reads_like_the_same_weights_in_one_file(saved: dict[str, Path]) -> None:
    sharded, plain = static_report(saved["map"]), static_report(saved["plain"])

    def groups(report: dict[str, Any]) -> dict[str, list[tuple[str, list[int]]]]:
        return {group["group"]: [(w["name"], w["shape"]) for w in group["weights"]] for group in report["unattached_weights"]}

    assert sharded["format"] == plain["format"] == "weights-h5"
    assert groups(sharded) == groups(plain) and groups(plain)
    assert sharded["summary"]["unique_params"] == plain["summary"]["unique_params"] > 0
    assert any("sharded weights-only" in note for note in sharded["notes"])


def test_a_weights_map_given_directly_is_inspected_with_exit_0(saved: dict[str, Path]) -> None:
    proc = run("inspect", saved["map"])
    assert proc.returncode == 0, proc.stderr
    assert "sharded weights-only" in proc.stdout


def test_a_missing_shard_is_one_error_naming_it(saved: dict[str, Path], tmp_path: Path) -> None:
    preset = _copy_preset(saved, tmp_path)
    (preset / "model_00001.weights.h5").unlink()
    line = _one_error(run("inspect", preset))
    assert "model_00001.weights.h5" in line and "no such file" in line


@pytest.mark.parametrize("shard", ["../outside.weights.h5", "/tmp/outside.weights.h5", "sub/model_00000.weights.h5", ".."])
def test_a_shard_path_leading_out_of_the_folder_is_refused(saved: dict[str, Path], tmp_path: Path, shard: str) -> None:
    preset = _copy_preset(saved, tmp_path)
    (tmp_path / "outside.weights.h5").write_bytes((preset / "model_00000.weights.h5").read_bytes())
    _rewrite_map(preset / "model.weights.json", lambda weight_map: weight_map.update({"/layers/dense/vars": [shard]}))
    line = _one_error(run("inspect", preset))
    assert "not a file name in the map's folder" in line


def test_a_shard_that_is_a_symbolic_link_out_of_the_folder_is_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    preset = _copy_preset(saved, tmp_path)
    outside = tmp_path / "outside.weights.h5"
    shutil.move(preset / "model_00000.weights.h5", outside)
    os.symlink(outside, preset / "model_00000.weights.h5")
    line = _one_error(run("inspect", preset))
    assert "model_00000.weights.h5" in line and "outside the folder" in line


def test_a_weights_map_naming_more_shards_than_the_limit_is_refused_before_any_is_opened(tmp_path: Path) -> None:
    weight_map = {f"/layers/dense_{index}/vars": f"x_{index:05}.weights.h5" for index in range(MAX_WEIGHT_SHARDS + 1)}
    path = tmp_path / "x.weights.json"
    path.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    line = _one_error(run("inspect", path))
    assert f"more than {MAX_WEIGHT_SHARDS:,} shards" in line


def test_a_weights_map_larger_than_the_json_limit_is_refused(tmp_path: Path) -> None:
    from keras_share.limits import MAX_JSON_BYTES

    path = tmp_path / "x.weights.json"
    path.write_bytes(b'{"weight_map": {}}' + b" " * MAX_JSON_BYTES)
    assert "larger than" in _one_error(run("inspect", path))


def test_a_weights_map_without_a_weight_map_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "x.weights.json"
    path.write_text(json.dumps({"metadata": {}}))
    assert "no weight_map object" in _one_error(run("inspect", path))


def test_a_large_array_in_a_shard_is_hashed_when_a_rule_asks(keras3: Any, tmp_path: Path) -> None:
    from keras_share.api import inspect_file
    from keras_share.read.arrays import array_digests
    from keras_share.read.digest import value_digest

    keras3.backend.clear_session()
    keras3.utils.set_random_seed(0)
    model = keras3.Sequential([keras3.Input((8,)), keras3.layers.Dense(40_000, name="big"), keras3.layers.Dense(2)])
    model.save_weights(str(tmp_path / "big.weights.json"), max_shard_size=0.002)
    report = inspect_file(tmp_path / "big.weights.json", timeout=None)
    kernel = next(array for group in report.file.weights.unattached.values() for array in group if array.shape == (8, 40_000))
    assert kernel.location.startswith("big_0000") and kernel.location not in report.file.weights.digests
    digests = array_digests(report.file, [kernel], timeout=None)
    assert digests[kernel.location] == value_digest(keras3.ops.convert_to_numpy(model.layers[0].kernel))


def test_a_folder_walk_lists_a_weights_map_once_and_not_its_shards(saved: dict[str, Path]) -> None:
    from keras_share.read.detect import discover

    found = [(path.name, error) for path, error in discover(saved["map"].parent)]
    assert found == [("plain.weights.h5", None), ("preset", None), ("x.weights.json", None)]


@pytest.mark.parametrize("target", ["preset", "map"])
def test_the_process_reporting_on_sharded_weights_never_loads_h5py(saved: dict[str, Path], target: str) -> None:
    """Every shard is read in the reader child: libhdf5 never runs in the process that asked."""
    code = textwrap.dedent(f"""
        import sys, io, contextlib, json
        import keras_share.cli
        with contextlib.redirect_stdout(io.StringIO()) as report:
            status = keras_share.cli.run(["inspect", "--format", "json", {str(saved[target])!r}])
        [model] = json.loads(report.getvalue())["models"]
        print(status, model["summary"]["unique_params"] > 0, "h5py" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.stdout.split() == ["0", "True", "False"], proc.stdout + proc.stderr[-2000:]


# ---------------------------------------------------------------- weights keras-share does not read


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "folder"])
def test_npz_weights_are_one_error_and_keras_cannot_load_them_either(keras3: Any, tmp_path: Path, zipped: bool) -> None:
    from keras.src.saving import saving_lib

    """Zipped, Keras writes ``model.weights.npz``; unzipped, it writes the npz archive as ``model.weights.h5``, which
    its own loader then fails to open as HDF5."""
    path = tmp_path / ("npz.keras" if zipped else "npz")
    saving_lib.save_model(_build(keras3), str(path), weights_format="npz", zipped=zipped)
    with pytest.raises(ValueError if zipped else UnboundLocalError, match="allow_pickle=False" if zipped else ""):
        keras3.saving.load_model(str(path), compile=False)
    line = _one_error(run("inspect", path))
    assert "model.weights.npz" in line and "pickled" in line
    assert zipped or "model.weights.h5 is a zip (npz) archive" in line


def test_tf_keras_npz_weights_are_one_error_and_tf_keras_cannot_load_them_either(tf_keras: Any, tmp_path: Path) -> None:
    from tf_keras.src.saving import saving_lib

    path = tmp_path / "npz.keras"
    saving_lib.save_model(tf_keras.Sequential([tf_keras.layers.Dense(2, input_shape=(3,))]), str(path), weights_format="npz")
    with pytest.raises(ValueError, match="allow_pickle=False"):
        tf_keras.models.load_model(str(path), compile=False)
    assert "model.weights.npz" in _one_error(run("inspect", path))


def _keras_zip_with(tmp_path: Path, saved: dict[str, Path], members: dict[str, bytes]) -> Path:
    path = tmp_path / "odd.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("config.json", "metadata.json"):
            archive.write(saved["preset"] / name, name)
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_keras_zip_with_sharded_weights_is_one_error(saved: dict[str, Path], tmp_path: Path) -> None:
    members = {path.name: path.read_bytes() for path in saved["preset"].glob("model*.weights.*")}
    line = _one_error(run("inspect", _keras_zip_with(tmp_path, saved, members)))
    assert "model.weights.json" in line and "inside a .keras zip" in line


def test_a_keras_zip_with_an_unknown_weights_member_is_one_error(saved: dict[str, Path], tmp_path: Path) -> None:
    path = _keras_zip_with(tmp_path, saved, {"model.safetensors": b"\0" * 64})
    line = _one_error(run("inspect", path))
    assert "'model.safetensors'" in line


def test_a_model_folder_with_an_unknown_weights_file_is_one_error(saved: dict[str, Path], tmp_path: Path) -> None:
    preset = tmp_path / "preset"
    preset.mkdir()
    for name in ("config.json", "metadata.json"):
        shutil.copy(saved["preset"] / name, preset / name)
    (preset / "tokenizer.json").write_text("{}")
    shutil.copy(saved["plain"], preset / "backbone.weights.h5")
    line = _one_error(run("inspect", preset))
    assert "'backbone.weights.h5'" in line and "tokenizer.json" not in line


def test_a_keras_zip_with_configs_only_is_still_an_architecture_without_weights(saved: dict[str, Path], tmp_path: Path) -> None:
    report = static_report(_keras_zip_with(tmp_path, saved, {"assets/vocabulary.txt": b"a\nb\n"}))
    assert any("architecture without weights" in note for note in report["notes"])
