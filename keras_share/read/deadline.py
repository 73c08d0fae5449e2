"""Run a reader in a forked child with a time limit: libhdf5 can loop for minutes on a damaged file.

Native code never returns to Python, so no signal handler can stop it; a child process can be killed.
Each reader child leads a process group of its own, so whatever it may start is killed with it.

Besides the wall deadline, each reader child is held to as many seconds of CPU time (``RLIMIT_CPU``) and to
``limits.READER_ADDRESS_SPACE_BYTES`` of address space above what it had mapped when its job began
(``RLIMIT_AS``).
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from keras_share.errors import ReadError, describe
from keras_share.limits import READER_ADDRESS_SPACE_BYTES

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 60.0
_PICKLE_RECURSION_LIMIT = 20_000
"""Enough for any config json.loads accepts (it stops near 1,000 nested levels, a pickle level each)."""


def allow_deep_pickles() -> None:
    """Raise this process's recursion limit so a deeply nested config can be pickled and unpickled."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), _PICKLE_RECURSION_LIMIT))


def write_all(fd: int, payload: bytes | memoryview) -> None:
    """Write all of ``payload`` to the pipe or file ``fd``: a short write is taken for what it is, and a
    non-blocking descriptor's EAGAIN as a wait until it takes more."""
    view = memoryview(payload)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])


def _fork_reader() -> tuple[int, int]:
    """Fork a reader child leading its own process group; returns (pid, the pipe the child writes) in the parent,
    and (0, that pipe's write end) in the child."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.setpgid(0, 0)
        return 0, write_fd
    os.close(write_fd)
    try:
        os.setpgid(pid, pid)  # also here: the group must exist before anyone could kill it
    except OSError:  # the child got there first, or has already ended
        pass
    return pid, read_fd


def _mapped_bytes() -> int | None:
    """The address space this process has mapped (None where ``/proc`` does not say)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_resources(cpu_seconds: float | None, memory_bytes: int) -> None:
    """Hold this reader child to ``cpu_seconds`` more of CPU time (then SIGXCPU, and SIGKILL a second later) and
    to ``memory_bytes`` more of address space (then allocations fail); it writes no core file."""
    import resource

    def lower(limit: int, soft: int, hard: int) -> None:
        current = resource.getrlimit(limit)[1]
        ceiling = hard if current == resource.RLIM_INFINITY else min(hard, current)
        resource.setrlimit(limit, (min(soft, ceiling), ceiling))

    try:
        lower(resource.RLIMIT_CORE, 0, 0)
        if cpu_seconds is not None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
            lower(resource.RLIMIT_CPU, soft, soft + 1)
        mapped = _mapped_bytes()
        if mapped is not None:
            lower(resource.RLIMIT_AS, mapped + memory_bytes, mapped + memory_bytes)
    except (ValueError, OSError):  # a platform without these limits: the wall deadline still holds
        pass


def _run_job(function: Callable[[], T], write_fd: int, cpu_seconds: float | None, memory_bytes: int) -> None:
    """Run ``function`` as a reader child held to ``cpu_seconds`` of CPU time and to ``memory_bytes`` more of
    address space, send its pickled outcome through ``write_fd``, and end the process."""
    gc.disable()  # a short-lived process: collecting would only slow the reading down
    allow_deep_pickles()
    # numpy's OpenBLAS maps a buffer per thread, one thread per CPU, as it loads: a reader multiplies no matrices,
    # and its address space must not grow with the machine's CPU count.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    _limit_resources(cpu_seconds, memory_bytes)
    try:
        try:
            payload = pickle.dumps(("ok", function()))
        except ReadError as error:
            payload = pickle.dumps(("error", error))
        except MemoryError:
            payload = pickle.dumps(("memory", None))
        except BaseException as error:  # noqa: BLE001 - the child must always answer, whatever happened
            payload = pickle.dumps(("crash", describe(error)))
        write_all(write_fd, payload)
    finally:
        os._exit(0)


def _kill_group(leader: int) -> None:
    try:
        os.killpg(leader, signal.SIGKILL)
    except OSError:  # the group is gone already
        pass


class Pending(Generic[T]):
    """A function started by ``start_with_deadline``: ``wait`` for its value, or ``cancel`` it."""

    def __init__(self, path: str, seconds: float | None, child: tuple[int, int] | None = None,
                 outcome: tuple[str, object] | None = None, cpu_seconds: float | None = None,
                 memory_bytes: int = 0) -> None:
        self._path, self._seconds, self._cpu_seconds, self._memory_bytes = path, seconds, cpu_seconds, memory_bytes
        self._child = child  # (pid, answer pipe) of the reader child running it
        self._outcome = outcome  # its (status, value) when it ran in this process
        self._deadline = time.monotonic() + seconds if seconds is not None else None

    def wait(self) -> T:
        """The function's value, or the ReadError it raised; a ReadError naming the path after the deadline."""
        if self._outcome is None:
            self._outcome = self._answer()
        status, value = self._outcome
        if status == "error":
            raise value  # type: ignore[misc]
        if status == "crash":
            raise ReadError(self._path, f"unexpected failure while reading ({value})")
        if status == "memory":
            raise ReadError(self._path, f"reading needed more than the memory limit ({self._memory_bytes >> 20} MiB)")
        return value  # type: ignore[return-value]

    def cancel(self) -> None:
        """End the reader child without waiting for its answer."""
        if self._child is not None:
            pid, read_fd = self._child
            self._child = None
            os.close(read_fd)
            _kill_group(pid)
            os.waitpid(pid, 0)

    def _answer(self) -> tuple[str, object]:
        assert self._child is not None and self._deadline is not None
        pid, read_fd = self._child
        self._child = None
        chunks: list[bytes] = []
        answered = False
        try:
            while True:
                remaining = self._deadline - time.monotonic()
                ready = select.select([read_fd], [], [], max(remaining, 0))[0] if remaining > 0 else []
                if not ready:
                    raise ReadError(self._path, f"reading took longer than {self._seconds:g} s; "
                                    "the file structure is probably damaged")
                data = os.read(read_fd, 1 << 20)
                if not data:
                    break
                chunks.append(data)
            answered = bool(chunks)
        finally:
            os.close(read_fd)
            if not answered:  # timed out, interrupted or died: the child may still run
                _kill_group(pid)
            _, wait_status, usage = os.wait4(pid, 0)
        if not chunks:
            raise ReadError(self._path, self._death(wait_status, usage.ru_utime + usage.ru_stime))
        allow_deep_pickles()
        return pickle.loads(b"".join(chunks))

    def _death(self, wait_status: int, cpu_used: float) -> str:
        """Why a reader child that ended without an answer ended, from its wait status and the CPU time it used."""
        signal_number = os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None
        over_cpu = self._cpu_seconds is not None and cpu_used >= self._cpu_seconds
        if signal_number == signal.SIGXCPU or (signal_number == signal.SIGKILL and over_cpu):
            return f"reading went over the CPU limit ({self._cpu_seconds:g} s); the file structure is probably damaged"
        if signal_number == signal.SIGKILL:
            return f"the reader process was killed, probably for going over the memory limit ({self._memory_bytes >> 20} MiB)"
        return "the reader process died without an answer (damaged file?)"


def start_with_deadline(function: Callable[[], T], path: str, seconds: float | None,
                        cpu_seconds: float | None = None, memory_bytes: int | None = None) -> Pending[T]:
    """Start ``function()`` in a child process that is given ``seconds`` (then a ReadError naming ``path``).

    The child may use ``cpu_seconds`` of CPU time (by default ``seconds``) and ``memory_bytes`` more of address
    space (by default ``READER_ADDRESS_SPACE_BYTES``); going over either is a ReadError naming ``path``. With
    ``seconds`` None, or where ``fork`` does not exist, it runs in this process, now, without these limits.
    """
    if seconds is None or not hasattr(os, "fork"):
        try:
            return Pending(path, seconds, outcome=("ok", function()))
        except ReadError as error:
            return Pending(path, seconds, outcome=("error", error))
    cpu_seconds = seconds if cpu_seconds is None else cpu_seconds
    memory_bytes = READER_ADDRESS_SPACE_BYTES if memory_bytes is None else memory_bytes
    pid, write_fd = _fork_reader()
    if pid == 0:
        _run_job(function, write_fd, cpu_seconds, memory_bytes)
    return Pending(path, seconds, child=(pid, write_fd), cpu_seconds=cpu_seconds, memory_bytes=memory_bytes)


def call_with_deadline(function: Callable[[], T], path: str, seconds: float | None,
                       memory_bytes: int | None = None) -> T:
    """``function()`` run in a child process, or a ReadError naming ``path`` after ``seconds``
    (``start_with_deadline``, then ``wait``)."""
    return start_with_deadline(function, path, seconds, memory_bytes=memory_bytes).wait()
