"""Orbax checkpoint folders (Keras >= 3.14 loads them as models) are named in a one-line error, exit 3: their
arrays' dtypes and values are in a compressed TensorStore database that keras-share does not read."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_command import keras_share_command, without_run_total
from orbax_layout import write_orbax_checkpoint

from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.read.detect import discover

ORBAX_ERROR = "Orbax checkpoint folder: not readable by keras-share"


@pytest.fixture(scope="module")
def small_model(keras3: Any) -> Any:
    keras3.backend.clear_session()
    inputs = keras3.Input((4,), name="x")
    hidden = keras3.layers.BatchNormalization(name="bn")(inputs)
    model = keras3.Model(inputs, keras3.layers.Dense(2, name="head")(hidden), name="small")
    model.compile(optimizer="adam", loss="mse")
    return model


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*keras_share_command(), "inspect", *args], cwd=cwd, check=False, capture_output=True,
                          text=True, timeout=120)


def test_keras_detects_the_builders_folder_as_an_orbax_checkpoint(tmp_path: Path, small_model: Any) -> None:
    from keras.src.saving.orbax_util import is_orbax_checkpoint

    step = write_orbax_checkpoint(tmp_path / "ckpt", small_model, step=3)
    assert is_orbax_checkpoint(str(tmp_path / "ckpt"))
    assert is_orbax_checkpoint(str(step))


@pytest.mark.parametrize("given", ["root", "step"])
def test_an_orbax_checkpoint_folder_is_one_error_line_and_exit_3(tmp_path: Path, small_model: Any, given: str) -> None:
    step = write_orbax_checkpoint(tmp_path / "ckpt", small_model, step=3)
    target = "ckpt" if given == "root" else "ckpt/3"
    result = _run(target, cwd=tmp_path)
    assert result.returncode == 3
    lines = without_run_total(result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"keras-share: error: {target}: {ORBAX_ERROR} (")
    assert step.is_dir()


def test_a_weights_only_orbax_checkpoint_is_named_too(tmp_path: Path, small_model: Any) -> None:
    write_orbax_checkpoint(tmp_path / "ckpt", small_model, step=0, weights_only=True)
    with pytest.raises(ReadError, match=ORBAX_ERROR):
        inspect_file(tmp_path / "ckpt")


def test_an_interrupted_orbax_save_is_named(tmp_path: Path) -> None:
    (tmp_path / "ckpt" / "5.orbax-checkpoint-tmp-1712345678").mkdir(parents=True)
    with pytest.raises(ReadError, match=ORBAX_ERROR):
        inspect_file(tmp_path / "ckpt")


@pytest.mark.parametrize("member", ["3/_CHECKPOINT_METADATA", "3/pytree/_METADATA", "3/pytree/manifest.ocdbt",
                                    "3/pytree/ocdbt.process_0/d/4e434e36df87c69b3fafb7f68fba7166",
                                    "3/model_config/_strings.json"])
def test_a_file_of_an_orbax_checkpoint_is_named_in_the_error(tmp_path: Path, small_model: Any, member: str) -> None:
    write_orbax_checkpoint(tmp_path / "ckpt", small_model, step=3)
    with pytest.raises(ReadError, match="Orbax checkpoint folder.*not readable by keras-share.*not a Keras model"):
        inspect_file(tmp_path / "ckpt" / member)


def test_an_orbax_checkpoint_in_a_batch_folder_is_an_error_line_and_the_batch_goes_on(
        tmp_path: Path, small_model: Any) -> None:
    write_orbax_checkpoint(tmp_path / "runs" / "ckpt", small_model, step=1)
    small_model.save(tmp_path / "runs" / "final.keras")
    result = _run("runs", "--format", "json", cwd=tmp_path)
    assert result.returncode == 3
    lines = without_run_total(result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("keras-share: error: runs/ckpt: " + ORBAX_ERROR)
    assert "final.keras" in result.stdout


def test_a_numbered_folder_without_orbax_files_is_not_an_orbax_checkpoint(tmp_path: Path) -> None:
    """The TF Serving layout (``model/1/saved_model.pb``) has numbered folders too: its SavedModel is still found."""
    (tmp_path / "model" / "1").mkdir(parents=True)
    (tmp_path / "model" / "1" / "saved_model.pb").write_bytes(b"")
    assert [path for path, _ in discover(tmp_path / "model")] == [tmp_path / "model" / "1"]
