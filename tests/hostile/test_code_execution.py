"""Hostile inputs that try to make keras-share run their code: a file name that reads as an import target,
and Lambda bytecode hidden in wrappers, layer configs and nested models for ``--live`` to hand to Keras.

The Lambda files are real Keras 3 and tf_keras saves, built once per process in a subprocess (run this file
as a script: ``python test_code_execution.py FOLDER``) by models whose lambda writes a marker file when
it runs: loading any of them with tf_keras (or with ``safe_mode=False``) writes the marker.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from harness import ROOT, Attack, assert_holds, attack, check, run

MARKER = "marker"
EVIL_MODULE = "open({marker!r}, 'w').close()  # imported\n\ndef x():\n    open({marker!r}, 'w').close()  # called\n"

LAMBDA_FILES = ("k3_td.keras", "k3_td.h5", "k3_bidirectional.keras", "k3_activation.keras", "k2_td.h5",
                "k2_nested.h5", "k2_td.keras", "k2_td_savedmodel")
"""Keras 3 and tf_keras files whose lambda sits in a TimeDistributed (or, by an edited config, a
Bidirectional), a nested model, or a Dense layer's activation."""


# --------------------------------------------------------------------------
# A file name that looks like package.module:function.
# --------------------------------------------------------------------------


@attack("file-name-import-target")
def file_name_import_target(folder: Path, rng: random.Random) -> Attack:
    """``evil.py`` beside file names a shell expands into ``inspect``'s arguments: a dangling symlink (or a
    missing path) named like ``evil:x.keras``, a file named ``--call=evil:x.keras``, or files named ``--call``
    and ``evil:x.keras``."""
    package = rng.choice([None, "pkg"])
    module_folder = folder / package if package else folder
    module_folder.mkdir(exist_ok=True)
    if package:
        (module_folder / "__init__.py").write_text("")
    (module_folder / "evil.py").write_text(EVIL_MODULE.format(marker=str(folder / MARKER)))
    spec = f"{package + '.' if package else ''}evil:{rng.choice(['x.keras', 'x', 'x.h5'])}"
    form = rng.choice(["name", "name", "glued option", "option and name"])
    names = {"name": [spec], "glued option": [f"--call={spec}"], "option and name": ["--call", spec]}[form]
    for name in names:
        if name.startswith("-") or rng.random() < 0.7:
            (folder / name).symlink_to(folder / "no-such-model.keras")
    return Attack(args=["inspect", *names], cwd=folder, marker=folder / MARKER, exit_codes=(3,), stderr_mentions=spec)


def test_a_file_name_never_imports_code(tmp_path: Path) -> None:
    assert_holds(file_name_import_target, tmp_path)


@pytest.mark.parametrize("names", [["--call=evil:x.keras"], ["--call", "evil:x.keras"], ["--unsafe"]])
def test_a_file_name_that_looks_like_an_option_is_a_path(names: list[str], tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text(EVIL_MODULE.format(marker=str(tmp_path / MARKER)))
    for name in names:
        (tmp_path / name).write_bytes(b"")
    attack_ = Attack(args=["inspect", *names], cwd=tmp_path, marker=tmp_path / MARKER, exit_codes=(3,))
    outcome = run(attack_.args, attack_.cwd)
    assert check(attack_, outcome) == []
    from cli_command import without_run_total  # tests/ is importable under pytest, not when this file runs as a script

    assert sorted(line.split(": ")[2] for line in without_run_total(outcome.stderr).splitlines()) == sorted(names)


# --------------------------------------------------------------------------
# Lambda bytecode inside wrappers, layer configs and nested models, given to --live without --unsafe.
# --------------------------------------------------------------------------

_built: dict[str, Path] = {}


def lambda_files() -> Path:
    """The folder of LAMBDA_FILES (and ``plain.keras``), built on first use; its ``marker`` is the file every
    lambda writes."""
    if "folder" not in _built:
        if importlib.util.find_spec("keras") is None or importlib.util.find_spec("tf_keras") is None:
            pytest.skip("needs Keras 3 and tf_keras")  # found, not imported: a forked run would inherit their memory
        folder = Path(tempfile.mkdtemp(prefix="keras-share-lambdas-"))
        atexit.register(shutil.rmtree, folder, True)
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([sys.executable, __file__, str(folder)], check=True, env=env, capture_output=True, timeout=600)
        _built["folder"] = folder
    return _built["folder"]


def lambda_attack(folder: Path, name: str) -> Attack:
    """``inspect --live FILE`` on a copy of one Lambda file: refused (exit 3), the marker never written."""
    source = lambda_files() / name
    target = folder / name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    (lambda_files() / MARKER).unlink(missing_ok=True)
    return Attack(args=["inspect", "--live", name], cwd=folder, marker=lambda_files() / MARKER, exit_codes=(3,),
                  stderr_mentions="unsafe-lambda")


@attack("live-lambda-bytecode")
def live_lambda_bytecode(folder: Path, rng: random.Random) -> Attack:
    """One of LAMBDA_FILES, given to ``--live`` without ``--unsafe``."""
    return lambda_attack(folder, rng.choice(LAMBDA_FILES))


@pytest.mark.keras
@pytest.mark.parametrize("name", LAMBDA_FILES)
def test_live_refuses_bytecode_in_any_config_before_keras_sees_it(name: str, tmp_path: Path) -> None:
    attack_ = lambda_attack(tmp_path, name)
    outcome = run(attack_.args, attack_.cwd)
    assert check(attack_, outcome) == []
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("keras-share: error:")]
    assert len(errors) == 1 and name in errors[0] and "layer '" in errors[0]


@pytest.mark.keras
def test_the_lambda_files_run_their_bytecode_when_tf_keras_loads_them() -> None:
    """The premise: handed to tf_keras, these files write the marker."""
    folder = lambda_files()
    marker = folder / MARKER
    for name in ("k2_td.h5", "k2_nested.h5"):
        marker.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-c", "import sys, tf_keras; tf_keras.models.load_model(sys.argv[1], compile=False)",
                        str(folder / name)], check=True, capture_output=True, timeout=300,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        assert marker.exists(), name
    marker.unlink()


# --------------------------------------------------------------------------
# What still works: --live --unsafe on a safe file, --call on a module that returns a model.
# These start TensorFlow (seconds), so they run the command line without the 5 s bound.
# --------------------------------------------------------------------------


def _json_run(args: list[str], cwd: Path) -> tuple[int, dict, str]:
    outcome = run(["inspect", "--format", "json", *args], cwd, timeout=300)
    return outcome.status, json.loads(outcome.stdout) if outcome.stdout.strip() else {}, outcome.stderr


@pytest.mark.keras
def test_live_unsafe_still_loads_a_plain_file(tmp_path: Path) -> None:
    shutil.copyfile(lambda_files() / "plain.keras", tmp_path / "plain.keras")
    status, report, stderr = _json_run(["--live", "--unsafe", "plain.keras"], tmp_path)
    assert status == 0, stderr
    assert report["models"][0]["findings"] == []
    assert "Traceback" not in stderr


@pytest.mark.keras
def test_call_imports_and_runs_a_module_that_returns_a_model(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        import keras

        def build():
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")], name="built")
    """))
    status, report, stderr = _json_run(["--call", "mymodels:build"], tmp_path)
    assert status == 0, stderr
    assert [model["file"] for model in report["models"]] == ["mymodels:build[built]"]


# --------------------------------------------------------------------------
# Building the Lambda files (run in a subprocess: it imports Keras 3 and tf_keras).
# --------------------------------------------------------------------------


def _rewrite_config(source: Path, target: Path, edit) -> None:
    with zipfile.ZipFile(source) as archive_in, zipfile.ZipFile(target, "w") as archive_out:
        for item in archive_in.infolist():
            data = archive_in.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            archive_out.writestr(item, data)


def build_lambda_files(folder: Path) -> None:
    """Save LAMBDA_FILES and ``plain.keras`` into ``folder``, with real Keras 3 and tf_keras."""
    import keras
    import tf_keras

    marker = folder / MARKER

    def writes_marker():
        return eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")

    def wrapped(K, nested: bool = False):
        inputs = K.Input((3, 4))
        mapped = K.layers.TimeDistributed(K.layers.Lambda(writes_marker(), name="evil"), name="td")(inputs)
        if not nested:
            return K.Model(inputs, K.layers.Dense(2, name="d")(mapped), name="top")
        inner = K.Model(inputs, mapped, name="inner")
        outer_inputs = K.Input((3, 4))
        return K.Model(outer_inputs, K.layers.Dense(2, name="d")(inner(outer_inputs)), name="outer")

    wrapped(keras).save(folder / "k3_td.keras")
    wrapped(keras).save(folder / "k3_td.h5")
    wrapped(tf_keras).save(folder / "k2_td.h5")
    wrapped(tf_keras, nested=True).save(folder / "k2_nested.h5")
    wrapped(tf_keras).save(folder / "k2_td.keras")
    wrapped(tf_keras).save(folder / "k2_td_savedmodel", save_format="tf")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="act")], name="plain").save(folder / "plain.keras")

    with zipfile.ZipFile(folder / "k3_td.keras") as archive:
        td = json.loads(archive.read("config.json"))["config"]["layers"][1]
    function = td["config"]["layer"]["config"]["function"]

    def bidirectional(config: dict) -> None:
        config["config"]["layers"][1]["class_name"] = "Bidirectional"

    def activation(config: dict) -> None:
        config["config"]["layers"][-1]["config"]["activation"] = {
            "class_name": "__lambda__", "config": {"value": function["config"]["code"]}}

    _rewrite_config(folder / "k3_td.keras", folder / "k3_bidirectional.keras", bidirectional)
    _rewrite_config(folder / "plain.keras", folder / "k3_activation.keras", activation)
    marker.unlink(missing_ok=True)  # building called the lambdas


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    build_lambda_files(Path(sys.argv[1]))
