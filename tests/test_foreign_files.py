"""Files often mistaken for Keras models are named in the one-line error (exit 3), never loaded."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from cli_command import keras_share_command, without_run_total

from keras_share.api import inspect_file
from keras_share.errors import ReadError

LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


def _tflite() -> bytes:
    return b"\x1c\x00\x00\x00TFL3" + b"\0" * 40


def _pytorch_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", pickle.dumps({"w": 1}))
        archive.writestr("model/version", "3\n")


@pytest.mark.parametrize(("name", "content", "named"), [
    ("model.keras", LFS_POINTER, "Git LFS pointer"),
    ("model.h5", LFS_POINTER, "git lfs pull"),
    ("model.keras", pickle.dumps({"w": 1}, protocol=4), "Python pickle"),
    ("model.keras", _safetensors(), "safetensors"),
    ("model.keras", _tflite(), "TensorFlow Lite"),
    ("model.onnx", b"\x08\x07\x12\x07pytorch", "ONNX"),
], ids=["lfs-keras", "lfs-h5", "pickle", "safetensors", "tflite", "onnx-by-name"])
def test_a_file_of_another_kind_is_named_in_the_error(tmp_path: Path, name: str, content: bytes, named: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReadError, match="not a Keras model") as raised:
        inspect_file(path)
    assert named in raised.value.problem


def test_a_pytorch_checkpoint_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    _pytorch_zip(path)
    with pytest.raises(ReadError, match="PyTorch checkpoint.*not a .keras model"):
        inspect_file(path)


def test_an_unknown_file_keeps_the_plain_error(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(b"just some text\n")
    with pytest.raises(ReadError, match=r"not a Keras model \(neither a .keras zip nor an HDF5 file\)"):
        inspect_file(path)


def test_an_lfs_pointer_in_a_batch_is_one_error_line_and_exit_3(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(LFS_POINTER)
    result = subprocess.run([*keras_share_command(), "inspect", "model.keras"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3
    assert without_run_total(result.stderr).strip().splitlines() == [
        ("keras-share: error: model.keras: a Git LFS pointer, not the file itself: run `git lfs pull` (in GitHub "
         "Actions, check out with `lfs: true`); not a Keras model")
    ]
