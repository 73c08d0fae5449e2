"""``--live`` loads a file with Keras in a child process, killed at the static readers' deadline; what the
parent gets back is plain data."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from keras_share.analysis.report import LiveLayer, LiveMismatch, LiveVariable, ModelReport
from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.live import crosscheck
from keras_share.live.crosscheck import LiveLoad, cross_check

SAMPLE = Path(__file__).resolve().parents[1] / "sample_models" / "shared_dense.keras"


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load in a child even in a test process that has imported Keras."""
    monkeypatch.setattr(crosscheck, "_keras_imported", lambda: False)


def test_a_load_that_outlives_the_deadline_is_killed_and_is_one_error_line(
        forked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def hangs(report: ModelReport, unsafe: bool) -> LiveLoad:
        time.sleep(60)
        raise AssertionError("not killed")

    monkeypatch.setattr(crosscheck, "load_and_compare", hangs)
    report = inspect_file(SAMPLE)
    started = time.monotonic()
    with pytest.raises(ReadError, match="--live: loading with Keras failed .*longer than 0.5 s") as error:
        cross_check(report, timeout=0.5)
    assert time.monotonic() - started < 5
    assert error.value.path == str(SAMPLE) and "\n" not in error.value.problem


def test_a_load_that_kills_its_process_is_one_error_line(forked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crosscheck, "load_and_compare", lambda report, unsafe: os._exit(9))
    with pytest.raises(ReadError, match="--live: loading with Keras failed"):
        cross_check(inspect_file(SAMPLE))


def test_the_child_load_runs_in_another_process_and_its_answer_is_attached(
        forked: None, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()

    def answers(report: ModelReport, unsafe: bool) -> LiveLoad:
        assert os.getpid() != parent
        return LiveLoad(keras="Keras 9", mismatches=[LiveMismatch("shared_dense", "differs")],
                        layers={"shared_dense": LiveLayer(variables=[LiveVariable("kernel", "live:1", True),
                                                               LiveVariable("bias", "live:2", True)])})

    monkeypatch.setattr(crosscheck, "load_and_compare", answers)
    report = inspect_file(SAMPLE)
    cross_check(report)
    assert report.live is not None and report.live.keras == "Keras 9"
    assert report.live.mismatches == [LiveMismatch("shared_dense", "differs")]
    shared = next(layer for layer in report.layers if layer.layer.path == "shared_dense")
    assert shared.live is not None
    assert [variable.location for variable in shared.live.variables] == [array.location for array in shared.layer.weights]


def test_what_the_child_sends_back_pickles() -> None:
    outcome = LiveLoad(keras="Keras 3", load_error=None, mismatches=[LiveMismatch("a", "b", "warning")],
                       tie_groups=[["a/kernel", "b/kernel"]], layers={"a": LiveLayer(external_calls=1)})
    assert pickle.loads(pickle.dumps(outcome)) == outcome


def test_what_keras_prints_in_the_child_never_reaches_the_output(
        forked: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    def prints(report: ModelReport, unsafe: bool) -> LiveLoad:
        os.write(1, b"::error file=x::from the file\n")
        os.write(2, b"\x1b[2J::add-mask::secret\n")
        return LiveLoad(keras="Keras 9")

    monkeypatch.setattr(crosscheck, "load_and_compare", prints)
    report = inspect_file(SAMPLE)
    capfd.readouterr()
    cross_check(report)
    assert report.live is not None and report.live.keras == "Keras 9"
    assert capfd.readouterr() == ("", "")
