"""Reader child processes and the deadline that ends them."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path
from typing import NoReturn

import pytest

from keras_share.errors import ReadError
from keras_share.read import deadline
from keras_share.read.deadline import call_with_deadline

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or not hasattr(os, "fork"),
                                reason="needs fork and /proc to watch processes")


def _gone(pid: int, seconds: float = 20.0) -> bool:
    """Whether process ``pid`` has ended (or is a zombie nobody reaped yet) within ``seconds``."""
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _in_reader(function):
    return lambda: (os.getpid(), function())


def _pid_in(pid_file: Path, seconds: float = 20.0) -> int:
    """The pid written to ``pid_file`` (waiting for it to be written)."""
    stop = time.monotonic() + seconds
    while not pid_file.exists() and time.monotonic() < stop:
        time.sleep(0.01)
    return int(pid_file.read_text())


def test_the_deadline_kills_what_the_reader_child_started(tmp_path: Path) -> None:
    started_pid = tmp_path / "started.pid"

    def start_and_hang() -> None:
        if os.fork() == 0:
            started_pid.write_text(str(os.getpid()))
            time.sleep(600)
            os._exit(0)
        time.sleep(600)

    with pytest.raises(ReadError, match="took longer than 3 s"):
        call_with_deadline(start_and_hang, "model", 3)
    assert _gone(_pid_in(started_pid))


def test_a_cancelled_read_ends_its_reader_child() -> None:
    pending = deadline.start_with_deadline(partial(_in_reader(time.sleep), 60), "model", 120)
    assert pending._child is not None
    pid = pending._child[0]
    pending.cancel()
    assert _gone(pid, seconds=5)


def _unreadable() -> NoReturn:
    raise ReadError("model", "damaged")


def test_a_read_done_in_this_process_raises_its_error_when_waited_for() -> None:
    pending = deadline.start_with_deadline(_unreadable, "model", None)
    with pytest.raises(ReadError, match="damaged"):
        pending.wait()
