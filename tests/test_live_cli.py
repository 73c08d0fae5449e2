"""The CLI's live inputs: ``--call package.module:function`` targets and ``--live`` on saved files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("keras")
SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"

MODULE = textwrap.dedent('''
    import sys

    import keras

    def repeated():
        dense = keras.layers.Dense(4, name="d")
        return keras.Sequential([keras.Input((4,)), dense, dense], name="repeated")

    def clean():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="d")], name="clean")

    def broken():
        raise RuntimeError("no model today")

    def talkative():
        print("built by talkative", file=sys.stderr)
        return clean()
''')


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keras_share", "inspect", "--format", "json", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "mymodels.py").write_text(MODULE)
    return folder


def test_a_function_target_returning_a_sequential_with_a_repeated_layer_fails_the_lint(project: Path) -> None:
    result = _run(project, "--call", "mymodels:repeated")
    assert result.returncode == 1, result.stderr
    findings = [(f["rule"], f["layer"]) for f in json.loads(result.stdout)["models"][0]["findings"]]
    assert ("KS103", "d") in findings


def test_a_clean_function_target_passes(project: Path) -> None:
    result = _run(project, "--call", "mymodels:clean")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models"][0]["findings"] == []


def test_a_target_that_raises_is_one_error_line_and_exit_3(project: Path) -> None:
    result = _run(project, "--call", "mymodels:broken", str(SAMPLES / "shared_dense.keras"))
    assert result.returncode == 3
    ours = [line for line in result.stderr.splitlines() if line.startswith("keras-share:")]
    assert len(ours) == 1 and "mymodels:broken" in ours[0] and "no model today" in ours[0]
    assert "Traceback" not in result.stderr
    assert len(json.loads(result.stdout)["models"]) == 1


def test_a_function_target_leaves_out_tensorflow_native_logs_and_keeps_its_own_stderr(project: Path) -> None:
    """TensorFlow's C++ code logs on import (GPU probing, CPU features) whatever TF_CPP_MIN_LOG_LEVEL says."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "keras_share", "inspect", "--format", "json", "--call",
                             "mymodels:talkative"], capture_output=True, text=True, cwd=project, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "built by talkative\n"


def test_live_on_a_file_keras_loads_reports_no_mismatch(project: Path) -> None:
    result = _run(project, "--live", str(SAMPLES / "shared_dense.keras"))
    assert result.returncode == 0, result.stderr
    assert [f["rule"] for f in json.loads(result.stdout)["models"][0]["findings"]] == []


def test_live_without_keras_installed_is_a_usage_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from keras_share.cli import run

    monkeypatch.setitem(sys.modules, "keras", None)  # find_spec then answers None, as for a missing package
    monkeypatch.setitem(sys.modules, "tf_keras", None)
    status = run(["inspect", "--live", str(SAMPLES / "shared_dense.keras")])
    assert status == 2
    assert "pip install 'keras-share[tensorflow]'" in capsys.readouterr().err
