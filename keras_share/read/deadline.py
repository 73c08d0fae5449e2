"""Run a reader in a forked child with a time limit: libhdf5 can loop for minutes on a damaged file.

Native code never returns to Python, so no signal handler can stop it; a child process can be killed.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from keras_share.errors import ReadError, describe

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 60.0
_PICKLE_RECURSION_LIMIT = 20_000
"""Enough for any config json.loads accepts (it stops near 1,000 nested levels, a pickle level each)."""


def allow_deep_pickles() -> None:
    """Raise this process's recursion limit so a deeply nested config can be pickled and unpickled."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), _PICKLE_RECURSION_LIMIT))


def _child(function: Callable[[], T], write_fd: int) -> None:
    gc.disable()  # a short-lived process: collecting would only slow the reading down
    allow_deep_pickles()
    try:
        try:
            payload = pickle.dumps(("ok", function()))
        except ReadError as error:
            payload = pickle.dumps(("error", error))
        except BaseException as error:  # the child must always answer, whatever happened
            payload = pickle.dumps(("crash", describe(error)))
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os._exit(0)


def call_with_deadline(function: Callable[[], T], path: str, seconds: float | None) -> T:
    """``function()`` run in a child process, or a ReadError naming ``path`` after ``seconds``.

    With ``seconds`` None, or where ``fork`` does not exist, the function runs in this process.
    """
    if seconds is None or not hasattr(os, "fork"):
        return function()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(function, write_fd)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            ready = select.select([read_fd], [], [], max(remaining, 0))[0] if remaining > 0 else []
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise ReadError(path, f"reading took longer than {seconds:g} s; the file structure is probably damaged")
            data = os.read(read_fd, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    if not chunks:
        raise ReadError(path, "the reader process died without an answer (damaged file?)")
    allow_deep_pickles()
    status, value = pickle.loads(b"".join(chunks))
    if status == "error":
        raise value
    if status == "crash":
        raise ReadError(path, f"unexpected failure while reading ({value})")
    return value
