"""How inputs are found and opened: regular files only, never blocking, never outside the input, one error per
unreadable path; and which format a file is read in when it is two (as Keras dispatches).

Permission failures are faked here (any user, root included, runs them); tests/hostile/test_paths.py runs the
real ones unprivileged.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from keras_share import cli
from keras_share.errors import ReadError
from keras_share.pipeline import Pipeline
from keras_share.read import files
from keras_share.read.detect import HDF5_MAGIC, discover, input_form
from keras_share.read.keras_archive import stored_data_start

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
GOOD_KERAS = SAMPLES / "shared_dense.keras"


def _deny(monkeypatch: pytest.MonkeyPatch, module: object, name: str, denied: Path) -> None:
    """Make ``module.name`` (``os.open``, ``os.scandir``, ...) fail with EACCES for ``denied``, as for a user
    without permission."""
    original = getattr(module, name)

    def fake(path: object, *args: object, **kwargs: object) -> object:
        if os.path.realpath(os.fspath(path)) == os.path.realpath(denied):  # type: ignore[arg-type]
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))  # type: ignore[arg-type]
        return original(path, *args, **kwargs)

    monkeypatch.setattr(module, name, fake)


def test_a_fifo_is_refused_from_its_stat_without_being_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(tmp_path / "pipe.keras")
    _deny(monkeypatch, files.os, "open", tmp_path / "pipe.keras")  # opening it would be a failure of its own
    with pytest.raises(ReadError, match=r"^pipe\.keras: not a regular file \(FIFO\)$"):
        files.open_regular(tmp_path / "pipe.keras", "pipe.keras")


def test_a_fifo_swapped_in_after_the_stat_is_opened_without_blocking_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.mkfifo(tmp_path / "pipe.keras")
    regular, real_stat = os.stat(GOOD_KERAS), os.stat
    monkeypatch.setattr(files.os, "stat",
                        lambda path, *a, **k: regular if str(path).endswith("pipe.keras") else real_stat(path, *a, **k))
    with pytest.raises(ReadError, match="changed while it was opened"):
        files.open_regular(tmp_path / "pipe.keras", "pipe.keras")


def test_a_member_linked_outside_its_folder_is_refused_unopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.json").write_text("{}")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").symlink_to("../secret.json")
    _deny(monkeypatch, files.os, "open", tmp_path / "secret.json")
    with pytest.raises(ReadError, match="config.json: a symbolic link leading outside the folder; not followed"):
        files.open_member(tmp_path / "model", "config.json")


def test_a_member_linked_inside_its_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "sub" / "real.json").write_text("{}")
    (tmp_path / "model" / "config.json").symlink_to("sub/real.json")
    with files.open_member(tmp_path / "model", "config.json") as stream:
        assert stream.read() == b"{}"


def test_an_unreadable_file_is_one_error_and_the_batch_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("locked.keras", "good.keras"):
        shutil.copy(GOOD_KERAS, tmp_path / name)
    _deny(monkeypatch, files.os, "open", tmp_path / "locked.keras")
    results = Pipeline().paths([tmp_path / "locked.keras", tmp_path / "good.keras"])
    assert isinstance(results[0][1], ReadError) and results[0][1].problem == "cannot read (Permission denied)"
    assert not isinstance(results[1][1], ReadError)


def test_an_unlistable_folder_is_one_error_and_the_walk_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "locked").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    shutil.copy(GOOD_KERAS, tmp_path / "b" / "good.keras")
    _deny(monkeypatch, os, "scandir", tmp_path / "a" / "locked")
    found = list(discover(tmp_path))
    assert [(path.relative_to(tmp_path).as_posix(), error and error.problem) for path, error in found] == [
        ("a/locked", "cannot list folder (Permission denied)"), ("b/good.keras", None),
    ]


def test_an_unreadable_path_argument_is_reported_with_the_others_not_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("locked.keras", "good.keras"):
        shutil.copy(GOOD_KERAS, tmp_path / name)
    _deny(monkeypatch, files.os, "open", tmp_path / "locked.keras")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: False if str(path).endswith("locked.keras")
                        else real_access(path, mode, *a, **k))
    status = cli.run(["inspect", "--format", "json", str(tmp_path / "locked.keras"), str(tmp_path / "good.keras")])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_UNREADABLE
    assert err == f"keras-share: error: {tmp_path / 'locked.keras'}: cannot read (Permission denied)\n"
    assert [model["file"] for model in json.loads(out)["models"]] == [str(tmp_path / "good.keras")]


def test_a_keras_file_whose_stored_weights_start_at_a_superblock_offset_is_not_ambiguous(tmp_path: Path) -> None:
    """An uncompressed model.weights.h5 starting at byte 1024 makes the archive look like HDF5 there: that is
    the member itself, not a second model."""
    path = tmp_path / "model.keras"
    weights_name = "model.weights.h5"
    padding = 1024 - 2 * 30 - len("pad") - len(weights_name)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pad", b"\0" * padding)
        archive.writestr(weights_name, HDF5_MAGIC + b"\0" * 100)
        archive.writestr("config.json", "{}")
    with zipfile.ZipFile(path) as archive, open(path, "rb") as stream:
        assert stored_data_start(stream, archive.getinfo(weights_name)) == 1024
    assert input_form(path, str(path)) == ("keras", None)


def test_a_folder_that_is_both_a_keras_folder_and_a_savedmodel_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "saved_model.pb").write_bytes(b"")
    form = input_form(tmp_path, str(tmp_path))
    assert form.name == "keras-dir"
    assert form.ambiguity is not None and "SavedModel" in form.ambiguity


def test_a_polyglot_whose_zip_directory_is_over_its_cap_is_refused_before_the_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check for a second model reads the zip's directory in the reporting process: under the same caps
    as the archive's own reading, so a huge directory is refused from its end record, never parsed."""
    from keras_share.limits import MAX_ZIP_MEMBERS

    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        for index in range(MAX_ZIP_MEMBERS):
            archive.writestr(f"m{index}", b"")
    path.write_bytes(HDF5_MAGIC + b"\0" * 504 + path.read_bytes())  # an HDF5 signature at 0, the zip after it
    parsed = []
    real_zipfile = zipfile.ZipFile
    monkeypatch.setattr(zipfile, "ZipFile", lambda *args, **kwargs: parsed.append(args) or real_zipfile(*args, **kwargs))
    with pytest.raises(ReadError, match=f"zip archive of {MAX_ZIP_MEMBERS + 1:,} members"):
        input_form(path, str(path))
    assert parsed == []
