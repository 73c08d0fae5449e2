"""The reader child's CPU-time and memory limits: going over either is a one-line ReadError naming the file and
the limit (the command line prints it and exits 3)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from keras_share.errors import ReadError
from keras_share.read import deadline

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/statm").exists(),
                                reason="needs fork and /proc")


def _spin() -> None:
    while True:
        pass


def _allocate() -> bytes:
    return bytes(512 << 20)


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _error_of(pending: deadline.Pending[object]) -> str:
    with pytest.raises(ReadError) as caught:
        pending.wait()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_reader_child_over_its_cpu_limit_is_a_read_error_naming_the_file_and_the_limit() -> None:
    message = _error_of(deadline.start_with_deadline(_spin, "model.h5", 30, cpu_seconds=1))
    assert "model.h5" in message and "CPU limit" in message


def test_a_reader_child_over_its_memory_limit_is_a_read_error_naming_the_file_and_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deadline, "READER_ADDRESS_SPACE_BYTES", 128 << 20)
    message = _error_of(deadline.start_with_deadline(_allocate, "model.h5", 30))
    assert "model.h5" in message and "memory limit" in message


def test_a_reader_child_killed_before_its_cpu_limit_is_said_to_be_over_its_memory_limit() -> None:
    message = _error_of(deadline.start_with_deadline(_killed, "model.h5", 30))
    assert "model.h5" in message and "memory limit" in message


def test_a_reader_child_within_its_limits_answers() -> None:
    assert len(deadline.call_with_deadline(lambda: bytes(64 << 20), "model.h5", 30)) == 64 << 20
