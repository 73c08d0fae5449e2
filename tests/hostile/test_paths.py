"""Hostile paths, links and file types: FIFOs and devices, unreadable files and folders, symbolic links leading out
of the input, link loops, HDF5 external links in the middle of a path, and HDF5/zip polyglots.

The rule these tests hold keras-share to: a path given on the command line is followed wherever it leads (the user
chose it); what is found inside an input (a member of a model folder, a file or folder in a scanned folder) is
never read outside that input; only regular files and folders are ever opened.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
from cli_command import unprivileged_prefix
from harness import ROOT, Attack, Outcome, assert_holds, attack, check, run

SAMPLES = ROOT / "sample_models"
KERAS_MODEL = SAMPLES / "shared_dense.keras"
"""A .keras zip whose top model is ``siamese``."""
H5_MODEL = SAMPLES / "nested_encoder.h5"
"""A legacy HDF5 model whose top model is ``triplet``."""
SAVED_MODEL = SAMPLES / "k2_savedmodel"
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")
UNPRIVILEGED_UID = 65534
"""``nobody``: who the permission attacks run as when the interpreter lets that user in."""


def _unzipped(folder: Path, name: str = "unzipped") -> Path:
    """An unzipped ``.keras`` folder of KERAS_MODEL."""
    target = folder / name
    target.mkdir(parents=True)
    with zipfile.ZipFile(KERAS_MODEL) as archive:
        archive.extractall(target)
    return target


def _outside(folder: Path) -> Path:
    """A folder beside the input folder: nothing in it may be read."""
    target = folder / "outside"
    target.mkdir(exist_ok=True)
    return target


# --------------------------------------------------------------------------
# FIFOs and devices: never opened, one line each, exit 3.
# --------------------------------------------------------------------------


@attack("fifo-direct")
def fifo_given_directly(folder: Path, rng: random.Random) -> Attack:
    name = rng.choice(["x.keras", "x.h5", "x.hdf5", "keras_metadata.pb", "model"])
    os.mkfifo(folder / name)
    shutil.copy(KERAS_MODEL, folder / "good.keras")
    return Attack(["inspect", name, "good.keras"], folder, exit_codes=(3,), stderr_mentions="not a regular file (FIFO)")


@attack("fifo-in-folder")
def fifo_inside_a_scanned_folder(folder: Path, rng: random.Random) -> Attack:
    scanned = folder / "models"
    deep = scanned.joinpath(*[f"level{index}" for index in range(rng.randint(0, 3))])
    deep.mkdir(parents=True)
    os.mkfifo(deep / rng.choice(["a.keras", "b.h5", "c.HDF5"]))
    shutil.copy(KERAS_MODEL, scanned / "good.keras")
    return Attack(["inspect", "models"], folder, exit_codes=(3,), stderr_mentions="not a regular file (FIFO)")


@attack("fifo-member")
def fifo_as_a_model_folder_member(folder: Path, rng: random.Random) -> Attack:
    if rng.random() < 0.25:
        model = folder / "saved"
        shutil.copytree(SAVED_MODEL, model)
        member = "keras_metadata.pb"
    else:
        model = _unzipped(folder, "saved")
        member = rng.choice(KERAS_MEMBERS)
    (model / member).unlink()
    os.mkfifo(model / member)
    scan = rng.random() < 0.5  # the model folder given, or found in a scanned folder
    return Attack(["inspect", "." if scan else "saved"], folder, exit_codes=(3,),
                  stderr_mentions=f"{member}: not a regular file (FIFO)")


@attack("device-direct")
def device_given_directly(folder: Path, rng: random.Random) -> Attack:
    device = rng.choice(["/dev/zero", "/dev/null", "/dev/stdin", "/dev/full", "/dev/urandom"])
    return Attack(["inspect", device], folder, exit_codes=(3,), stderr_mentions="not a regular file (character device)")


def test_a_fifo_given_directly_is_refused_without_blocking(tmp_path: Path) -> None:
    assert_holds(fifo_given_directly, tmp_path)


def test_a_fifo_inside_a_scanned_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    assert_holds(fifo_inside_a_scanned_folder, tmp_path)


def test_a_fifo_member_of_a_model_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    assert_holds(fifo_as_a_model_folder_member, tmp_path)


def test_a_device_given_directly_is_refused_unopened(tmp_path: Path) -> None:
    assert_holds(device_given_directly, tmp_path)


# --------------------------------------------------------------------------
# Unreadable files and folders: one line each, exit 3, the rest of the batch reported. Root reads mode-000
# files, so these run as an unprivileged user: uid 65534, or root without its file-permission capabilities.
# --------------------------------------------------------------------------


@functools.cache
def _nobody_runs_keras_share() -> bool:
    """Whether uid 65534 can run this interpreter and import keras-share (not when it lives in a private home)."""
    try:
        probe = subprocess.run([sys.executable, "-c", "import keras_share.cli"], user=UNPRIVILEGED_UID, cwd="/",
                               env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _permission_user() -> int | None:
    """The uid the permission attacks run as: UNPRIVILEGED_UID when root may switch to it and it can run
    keras-share, else None (the current user)."""
    return UNPRIVILEGED_UID if os.geteuid() == 0 and _nobody_runs_keras_share() else None


def _permission_prefix(user: int | None) -> list[str] | None:
    """What to put before the command line so that file permissions bind it when run as ``user``: nothing for
    another user, root without its file-permission capabilities (``cli_command.unprivileged_prefix``) for root;
    None when neither works."""
    return [] if os.geteuid() != 0 or user is not None else unprivileged_prefix()


@pytest.fixture
def unprivileged() -> Iterator[Path]:
    """A folder for permission attacks, which run unprivileged in it (``_permission_user``, ``_permission_prefix``);
    skipped when nothing can hold the command line to file permissions."""
    if _permission_prefix(_permission_user()) is None:
        pytest.skip("running as root, and neither can uid 65534 run this interpreter nor can setpriv drop "
                    "CAP_DAC_OVERRIDE: mode-000 files would be readable (tests/test_input_files.py fakes it)")
    folder = Path(tempfile.mkdtemp(prefix="keras-share-permissions-", dir="/tmp"))
    folder.chmod(0o755)  # tmp_path's parents are private to root: uid 65534 could not reach the input
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def _copy_readable(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    target.chmod(0o644)


UNREADABLE_VARIANTS = ("file", "folder", "member")
"""A mode-000 file given directly, a mode-000 folder in a scanned folder, a mode-000 member of a model folder."""


def _unreadable(folder: Path, variant: str, rng: random.Random) -> Attack:
    _copy_readable(KERAS_MODEL, folder / "good.keras")
    if variant == "file":
        locked = folder / rng.choice(["locked.keras", "locked.h5"])
        _copy_readable(KERAS_MODEL, locked)
        args = [locked.name, "good.keras"]
    elif variant == "folder":
        scanned = folder / "scan"
        (scanned / "sub" / "locked").mkdir(parents=True)
        _copy_readable(KERAS_MODEL, scanned / "a.keras")
        _copy_readable(KERAS_MODEL, scanned / "sub" / "locked" / "b.keras")
        locked = scanned / "sub" / "locked"
        for path in (scanned, scanned / "sub"):
            path.chmod(0o755)
        args = ["scan", "good.keras"]
    else:
        model = _unzipped(folder)
        for path in [model, *model.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        locked = model / rng.choice(KERAS_MEMBERS)
        args = [model.name, "good.keras"]
    locked.chmod(0)
    user = _permission_user()
    prefix = _permission_prefix(user)
    if prefix is None:  # root, unable to drop privileges: only the general promises
        return Attack(["inspect", "--format", "json", *args], folder)
    return Attack(["inspect", "--format", "json", *args], folder, exit_codes=(3,), stderr_mentions="Permission denied",
                  user=user, prefix=prefix)


@attack("unreadable")
def unreadable_file_or_folder(folder: Path, rng: random.Random) -> Attack:
    return _unreadable(folder, rng.choice(UNREADABLE_VARIANTS), rng)


def test_unreadable_files_and_folders_are_one_line_each(unprivileged: Path) -> None:
    assert_holds(unreadable_file_or_folder, unprivileged)


@pytest.mark.parametrize("variant", UNREADABLE_VARIANTS)
def test_an_unreadable_input_does_not_drop_the_rest_of_the_batch(unprivileged: Path, variant: str) -> None:
    attack_ = _unreadable(unprivileged, variant, random.Random(0))
    outcome = run(attack_.args, attack_.cwd, user=attack_.user, prefix=attack_.prefix)
    assert not check(attack_, outcome), check(attack_, outcome)
    document = json.loads(outcome.stdout)
    assert "good.keras" in [model["file"] for model in document["models"]]
    assert len(document["errors"]) == 1


# --------------------------------------------------------------------------
# Symbolic links leading out of the input: never followed (a canary outside is never opened).
# --------------------------------------------------------------------------


@attack("symlink-escape")
def symlink_out_of_the_input(folder: Path, rng: random.Random) -> Attack:
    outside = _outside(folder)
    variant = rng.choice(["keras-member", "savedmodel-member", "scanned-file", "scanned-folder", "scanned-model-folder"])
    if variant == "keras-member":
        model = _unzipped(folder / "input")
        member = rng.choice(KERAS_MEMBERS)
        canary = outside / member
        (model / member).rename(canary)
        (model / member).symlink_to(os.path.relpath(canary, model) if rng.random() < 0.5 else canary)
        args, mentions = [str(model.relative_to(folder))], "not followed"
    elif variant == "savedmodel-member":
        model = folder / "input" / "saved"
        shutil.copytree(SAVED_MODEL, model)
        canary = outside / "keras_metadata.pb"
        (model / "keras_metadata.pb").rename(canary)
        (model / "keras_metadata.pb").symlink_to(canary)
        args, mentions = ["input"], "not followed"
    elif variant == "scanned-file":
        canary = outside / "elsewhere.keras"
        shutil.copy(KERAS_MODEL, canary)
        (folder / "input").mkdir()
        (folder / "input" / rng.choice(["link.keras", "link.h5"])).symlink_to(canary)
        args, mentions = ["input"], "not followed"
    else:
        target = _unzipped(outside, "model") if variant == "scanned-model-folder" else outside
        canary = target / "config.json" if variant == "scanned-model-folder" else outside / "plain.keras"
        if variant == "scanned-folder":
            shutil.copy(KERAS_MODEL, canary)
        (folder / "input").mkdir()
        shutil.copy(KERAS_MODEL, folder / "input" / "good.keras")
        (folder / "input" / "linked").symlink_to(target, target_is_directory=True)
        args, mentions = ["input"], None
    return Attack(["inspect", *args], folder, canaries=[canary], stderr_mentions=mentions)


@attack("symlink-loop")
def symlink_loops(folder: Path, rng: random.Random) -> Attack:
    variant = rng.choice(["folder-loops", "file-loop", "member-loop"])
    scanned = folder / "input"
    scanned.mkdir()
    shutil.copy(KERAS_MODEL, scanned / "good.keras")
    if variant == "folder-loops":
        (scanned / "self").symlink_to(".", target_is_directory=True)
        (scanned / "parent").symlink_to("..", target_is_directory=True)
        (scanned / "sub").mkdir()
        (scanned / "sub" / "up").symlink_to("..", target_is_directory=True)
        return Attack(["inspect", "input"], folder, exit_codes=(0, 1))
    if variant == "file-loop":
        (scanned / "a.keras").symlink_to("b.keras")
        (scanned / "b.keras").symlink_to("a.keras")
    else:
        model = _unzipped(scanned, "model")
        member = rng.choice(KERAS_MEMBERS)
        (model / member).unlink()
        (model / member).symlink_to(member)
    return Attack(["inspect", "input"], folder, exit_codes=(3,), stderr_mentions="Too many levels of symbolic links")


def test_symbolic_links_never_lead_out_of_the_input(tmp_path: Path) -> None:
    assert_holds(symlink_out_of_the_input, tmp_path)


def test_symbolic_link_loops_end_and_say_so(tmp_path: Path) -> None:
    assert_holds(symlink_loops, tmp_path)


def test_a_symbolic_link_given_directly_is_followed(tmp_path: Path) -> None:
    elsewhere = _outside(tmp_path) / "model.keras"
    shutil.copy(KERAS_MODEL, elsewhere)
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "link.keras").symlink_to(elsewhere)
    outcome = run(["inspect", "--format", "json", "input/link.keras"], tmp_path)
    assert outcome.status == 0, outcome.stderr
    assert json.loads(outcome.stdout)["models"][0]["model"]["name"] == "siamese"


def test_a_symbolic_link_inside_the_folder_given_is_followed(tmp_path: Path) -> None:
    model = _unzipped(tmp_path / "input")
    (model / "real_config.json").write_bytes((model / "config.json").read_bytes())
    (model / "config.json").unlink()
    (model / "config.json").symlink_to("real_config.json")
    (tmp_path / "input" / "link.keras").symlink_to(KERAS_MODEL)  # outside: refused
    (tmp_path / "input" / "real.keras").write_bytes(KERAS_MODEL.read_bytes())
    (tmp_path / "input" / "inside.keras").symlink_to("real.keras")
    outcome = run(["inspect", "--format", "json", "input"], tmp_path)
    document = json.loads(outcome.stdout)
    assert sorted(model["file"] for model in document["models"]) == ["input/inside.keras", "input/real.keras",
                                                                      "input/unzipped"]
    assert [error["file"] for error in document["errors"]] == ["input/link.keras"]


# --------------------------------------------------------------------------
# HDF5 external and soft links in the middle of a path: never followed.
# --------------------------------------------------------------------------


@attack("h5-link-component")
def external_link_as_a_path_component(folder: Path, rng: random.Random) -> Attack:
    canary = _outside(folder) / "canary.h5"
    with h5py.File(canary, "w") as h5:
        h5.create_group("inner/deeper").create_dataset("kernel", data=[1.0, 2.0])
    (folder / "input").mkdir()
    model = folder / "input" / "model.h5"
    shutil.copy(H5_MODEL, model)
    with h5py.File(model, "a") as h5:
        root = h5["model_weights"] if rng.random() < 0.7 else h5
        if root == h5:  # a weights-only file: its layer_names are at the root
            del h5.attrs["model_config"]
        root["ext"] = h5py.ExternalLink(str(canary) if rng.random() < 0.5 else os.path.relpath(canary, model.parent), "/")
        root["soft"] = h5py.SoftLink(f"{root.name.rstrip('/')}/ext")
        through = rng.choice(["ext/inner", "/ext/inner", "soft/inner", "ext/inner/deeper", "soft/inner/deeper"])
        names = [name.decode() if isinstance(name, bytes) else name for name in root.attrs.get("layer_names", [])]
        root.attrs["layer_names"] = [name.encode() for name in [through, *names]]
    return Attack(["inspect", "input/model.h5"], folder, canaries=[canary])


def test_hdf5_links_in_the_middle_of_a_path_are_not_followed(tmp_path: Path) -> None:
    assert_holds(external_link_as_a_path_component, tmp_path)


def test_child_checks_every_component_of_a_path(tmp_path: Path) -> None:
    from keras_share.read import h5util

    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5.create_group("inner")
    with h5py.File(tmp_path / "file.h5", "w") as h5:
        h5["ext"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/")
        h5["soft"] = h5py.SoftLink("/ext")
        h5.create_group("hard/inner")
    with h5py.File(tmp_path / "file.h5", "r") as h5:
        assert h5util.child(h5, "ext/inner") is None
        assert h5util.child(h5, "soft/inner") is None
        assert h5util.subgroup(h5, "/ext/inner") is None
        assert isinstance(h5util.child(h5, "hard/inner"), h5py.Group)


# --------------------------------------------------------------------------
# HDF5/zip polyglots: the report describes the model Keras loads, and flags the file as ambiguous.
# --------------------------------------------------------------------------


def _hdf5_then_zip() -> bytes:
    """An HDF5 model (``triplet``) with a .keras zip (``siamese``) appended."""
    return H5_MODEL.read_bytes() + KERAS_MODEL.read_bytes()


def _zip_in_user_block(folder: Path) -> bytes:
    """An HDF5 model (``triplet``) whose user block holds a .keras zip (``siamese``)."""
    zipped = KERAS_MODEL.read_bytes()
    block = 512
    while block < len(zipped):
        block *= 2
    with h5py.File(H5_MODEL, "r") as source, h5py.File(folder / "user_block.h5", "w", userblock_size=block) as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for key in source:
            source.copy(source[key], target, name=key)
    data = bytearray((folder / "user_block.h5").read_bytes())
    data[:len(zipped)] = zipped
    (folder / "user_block.h5").unlink()
    return bytes(data)


POLYGLOTS = {"hdf5-then-zip": lambda folder: _hdf5_then_zip(), "zip-in-user-block": _zip_in_user_block}


@attack("polyglot")
def hdf5_zip_polyglot(folder: Path, rng: random.Random) -> Attack:
    name = rng.choice(["model.keras", "model.h5", "model.hdf5"])
    (folder / name).write_bytes(POLYGLOTS[rng.choice(sorted(POLYGLOTS))](folder))
    return Attack(["inspect", "--fail-on", "warning", "--select", "ambiguous-file-format", name], folder, exit_codes=(1,))


def test_polyglots_are_flagged(tmp_path: Path) -> None:
    assert_holds(hdf5_zip_polyglot, tmp_path)


@pytest.mark.parametrize("polyglot", sorted(POLYGLOTS))
@pytest.mark.parametrize(("name", "loaded"), [("model.keras", "siamese"), ("model.h5", "triplet"), ("model.hdf5", "triplet")])
def test_a_polyglot_is_reported_as_the_model_keras_loads(tmp_path: Path, polyglot: str, name: str, loaded: str) -> None:
    """Keras (3 and tf_keras) loads the zip of a file named .keras that ``zipfile.is_zipfile`` accepts, else HDF5."""
    (tmp_path / name).write_bytes(POLYGLOTS[polyglot](tmp_path))
    outcome: Outcome = run(["inspect", "--format", "json", name], tmp_path)
    model = json.loads(outcome.stdout)["models"][0]
    assert model["model"]["name"] == loaded
    assert "KS207" in [finding["rule"] for finding in model["findings"]]
    assert any(note.startswith("ambiguous file") for note in model["notes"])


@pytest.mark.keras
@pytest.mark.parametrize("polyglot", sorted(POLYGLOTS))
@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_a_polyglot_s_report_names_the_model_keras_3_loads_from_it(tmp_path: Path, keras3: Any, polyglot: str,
                                                                  name: str) -> None:
    path = tmp_path / name
    path.write_bytes(POLYGLOTS[polyglot](tmp_path))
    loaded = keras3.models.load_model(path, compile=False)
    outcome: Outcome = run(["inspect", "--format", "json", name], tmp_path)
    assert json.loads(outcome.stdout)["models"][0]["model"]["name"] == loaded.name
