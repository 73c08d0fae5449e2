"""``inspect --jobs N``: parallel reading gives the serial result, in input order."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from keras_share import batch
from keras_share.errors import ReadError
from keras_share.pipeline import Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
CORRUPT_NAME = "m_corrupt.keras"
"""Sorts between the ``k2_*`` and ``n*`` samples, so it lands in the middle of the folder."""


def _sample_files() -> list[Path]:
    files = sorted(path for path in SAMPLES.iterdir() if path.suffix in (".keras", ".h5") and path.is_file())
    if len(files) < 4:
        pytest.skip("sample_models/ holds too few models (run sample_models/build.py)")
    return files


@pytest.fixture()
def model_folder(tmp_path: Path) -> Path:
    """Sample models copied into a folder, with a corrupt ``.keras`` file in the middle."""
    folder = tmp_path / "models"
    folder.mkdir()
    for path in _sample_files():
        shutil.copy2(path, folder / path.name)
    (folder / CORRUPT_NAME).write_bytes(b"PK\x03\x04" + b"\x00garbage, not a zip archive" * 40)
    return folder


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "keras_share", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_json_of_parallel_run_is_identical_to_serial_run(model_folder: Path) -> None:
    serial = _run("inspect", str(model_folder), "--format", "json", "--jobs", "1")
    parallel = _run("inspect", str(model_folder), "--format", "json", "--jobs", "2")
    assert serial.returncode == parallel.returncode == 3, (serial.stderr, parallel.stderr)
    assert parallel.stdout == serial.stdout
    assert parallel.stderr == serial.stderr

    corrupt = model_folder / CORRUPT_NAME
    assert parallel.stderr.startswith(f"keras-share: error: {corrupt}: ")
    assert len(parallel.stderr.splitlines()) == 1
    document = json.loads(parallel.stdout)
    assert [error["file"] for error in document["errors"]] == [str(corrupt)]
    readable = sorted(path for path in model_folder.iterdir() if path.name != CORRUPT_NAME)
    assert [model["file"] for model in document["models"]] == [str(path) for path in readable]
    before = [path for path in readable if path.name < CORRUPT_NAME]
    after = [path for path in readable if path.name > CORRUPT_NAME]
    assert before and after, "the corrupt file must sit in the middle of the folder"


def test_results_come_back_in_input_order(model_folder: Path) -> None:
    inputs = sorted(model_folder.iterdir(), reverse=True)
    inputs.insert(2, model_folder / "missing.keras")
    parallel = Pipeline().paths(inputs, jobs=2)
    serial = Pipeline().paths(inputs, jobs=1)
    assert [path for path, _ in parallel] == inputs
    assert [path for path, _ in serial] == inputs
    for (path, left), (_, right) in zip(parallel, serial):
        if isinstance(left, ReadError):
            assert isinstance(right, ReadError)
            assert (left.path, left.problem) == (right.path, right.problem) == (str(path), right.problem)
        else:
            assert left == right
            assert left.file.path == str(path)
    problems = {path.name: result for path, result in parallel if isinstance(result, ReadError)}
    assert set(problems) == {"missing.keras", CORRUPT_NAME}


def test_folders_are_expanded_in_place_and_empty_folders_are_errors(model_folder: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    first = _sample_files()[0]
    results = Pipeline().paths([first, empty, model_folder], jobs=2)
    assert results[0][0] == first and not isinstance(results[0][1], ReadError)
    assert results[1][0] == empty
    error = results[1][1]
    assert isinstance(error, ReadError) and error.path == str(empty) and "no model files" in error.problem
    assert [path for path, _ in results[2:]] == sorted(model_folder.iterdir())


def test_no_pool_for_one_job_or_one_input(monkeypatch: pytest.MonkeyPatch, model_folder: Path) -> None:
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process pool was started")

    monkeypatch.setattr(batch, "_run_pool", no_pool)
    assert len(Pipeline().paths([model_folder], jobs=1)) == len(list(model_folder.iterdir()))
    (only,) = Pipeline().paths([_sample_files()[0]], jobs=8)
    assert not isinstance(only[1], ReadError)


def test_recursion_and_memory_errors_become_read_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from keras_share import pipeline

    def deep(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pipeline, "start_read", deep)
    result = Pipeline().file(tmp_path / "deep.keras")
    assert isinstance(result, ReadError)
    assert result.path == str(tmp_path / "deep.keras") and "RecursionError" in result.problem


def test_reports_survive_pickling() -> None:
    for path in _sample_files():
        report = Pipeline().file(path)
        assert not isinstance(report, ReadError)
        assert pickle.loads(pickle.dumps(report)) == report


def _report_json(report: object) -> str:
    from keras_share.render.json_format import run_to_dict

    return json.dumps(run_to_dict([report], []))  # type: ignore[list-item]


@pytest.mark.parametrize("path", sorted(p for p in SAMPLES.iterdir() if p.suffix in (".keras", ".h5")), ids=lambda p: p.name)
def test_a_graph_built_while_the_weights_are_read_is_the_graph_built_after(path: Path) -> None:
    from keras_share.analysis.analyze import analyze
    from keras_share.pipeline import read_and_analyze
    from keras_share.read.detect import read_model

    assert _report_json(read_and_analyze(path)) == _report_json(analyze(read_model(path)))


def test_the_configs_of_a_keras_archive_come_before_its_weights() -> None:
    from keras_share.read.detect import read_model

    seen: list[object] = []
    model = read_model(SAMPLES / "shared_dense.keras", while_reading=seen.append)
    (early,) = seen
    assert early.config is model.config and early.keras_version == model.keras_version  # type: ignore[attr-defined]
    assert not early.weights.by_layer and model.weights.by_layer  # type: ignore[attr-defined]


def test_a_failure_while_the_weights_are_read_ends_the_reader_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras_share.read import deadline
    from keras_share.read.detect import read_model

    children: list[int] = []

    def start(*args: object) -> deadline.Pending:
        pending = deadline.start_with_deadline(*args)  # type: ignore[arg-type]
        children.append(pending._child[0])  # type: ignore[index]
        return pending

    def fails(_: object) -> None:
        raise RuntimeError("the caller's own work failed")

    monkeypatch.setattr("keras_share.read.detect.start_with_deadline", start)
    with pytest.raises(RuntimeError, match="own work"):
        read_model(SAMPLES / "shared_dense.keras", while_reading=fails)
    with pytest.raises(ProcessLookupError):  # ended and reaped
        os.kill(children[0], 0)
