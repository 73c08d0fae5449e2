"""Reader child processes: the spare started ahead of time, and the deadline that ends them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import NoReturn

import pytest

from keras_share.errors import ReadError
from keras_share.read import deadline
from keras_share.read.deadline import (
    call_with_deadline,
    discard_spare_reader,
    start_spare_reader,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or not hasattr(os, "fork"),
                                reason="needs fork and /proc to watch processes")
REPO = Path(__file__).resolve().parents[1]


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


def _in_reader(function):  # noqa: ANN001, ANN202 - a job for call_with_deadline
    return lambda: (os.getpid(), function())


@pytest.fixture(autouse=True)
def _no_spare_left() -> Iterator[None]:
    yield
    discard_spare_reader()


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


# ---------------------------------------------------------------------------------------------- the spare

_WARMED_UP_IN = 0


def _warm_up() -> None:
    global _WARMED_UP_IN
    _WARMED_UP_IN = os.getpid()


def _warmed_up_here() -> tuple[int, int]:
    return os.getpid(), _WARMED_UP_IN


def _pid_file_warm_up(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def _sleep_then_answer() -> int:
    time.sleep(600)
    return 0


def test_the_spare_reader_runs_the_next_job_in_the_process_it_warmed_up() -> None:
    assert start_spare_reader(_warm_up)
    reader, warmed_up_in = call_with_deadline(_warmed_up_here, "model", 60)
    assert reader == warmed_up_in != os.getpid()


def test_only_the_first_job_goes_to_the_spare() -> None:
    start_spare_reader(_warm_up)
    call_with_deadline(_warmed_up_here, "model", 60)
    reader, warmed_up_in = call_with_deadline(_warmed_up_here, "model", 60)
    assert warmed_up_in == 0 and reader != os.getpid()


def test_a_job_that_does_not_pickle_runs_in_a_new_child_and_the_spare_ends(tmp_path: Path) -> None:
    pid_file = tmp_path / "spare.pid"
    start_spare_reader(partial(_pid_file_warm_up, str(pid_file)))
    spare = _pid_in(pid_file)
    reader, warmed_up_in = call_with_deadline(lambda: _warmed_up_here(), "model", 60)
    assert warmed_up_in == 0 and reader not in (spare, os.getpid())
    assert _gone(spare)


def test_a_spare_job_past_the_deadline_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "spare.pid"
    start_spare_reader(partial(_pid_file_warm_up, str(pid_file)))
    spare = _pid_in(pid_file)
    with pytest.raises(ReadError, match="model: reading took longer than 2 s"):
        call_with_deadline(_sleep_then_answer, "model", 2)
    assert _gone(spare)


def test_discarding_the_spare_ends_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "spare.pid"
    start_spare_reader(partial(_pid_file_warm_up, str(pid_file)))
    spare = _pid_in(pid_file)
    discard_spare_reader()
    assert _gone(spare)


def _run_python(code: str, seconds: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, timeout=seconds, cwd=REPO)


def _pid_in(pid_file: Path, seconds: float = 20.0) -> int:
    """The pid a spare's warm-up wrote to ``pid_file`` (waiting for the warm-up to run)."""
    stop = time.monotonic() + seconds
    while not pid_file.exists() and time.monotonic() < stop:
        time.sleep(0.01)
    return int(pid_file.read_text())


def test_a_spare_that_gets_no_job_ends_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "spare.pid"
    proc = _run_python(f"""
        import os
        from pathlib import Path
        from keras_share.read.deadline import start_spare_reader
        start_spare_reader(lambda: Path({str(pid_file)!r}).write_text(str(os.getpid())))
    """, 60)
    assert proc.returncode == 0
    assert _gone(_pid_in(pid_file))


def test_no_spare_is_started_while_a_standard_stream_is_closed() -> None:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, sys
        from keras_share.read.deadline import start_spare_reader
        os.close(1)
        started = start_spare_reader(lambda: None)
        sys.stderr.write(f"{started}")
    """)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60, cwd=REPO)
    assert proc.stderr == "False"


def test_a_spare_still_warming_up_does_not_hold_the_command_output_open(tmp_path: Path) -> None:
    pid_file = tmp_path / "spare.pid"
    proc = _run_python(f"""
        import os, time
        from pathlib import Path
        from keras_share.read.deadline import start_spare_reader
        def warm_up():
            Path({str(pid_file)!r}).write_text(str(os.getpid()))
            print("from the spare", flush=True)
            time.sleep(600)
        start_spare_reader(warm_up)
        print("report")
    """, 120)  # a spare holding stdout would make this wait for its ten minutes
    spare = _pid_in(pid_file)
    try:
        assert proc.stdout == "report\n"
    finally:
        os.kill(spare, 9)


def _printed_by(code: str) -> list[str]:
    """What ``code`` prints, run by a new interpreter whose environment does not limit numpy's threads."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"})
    return done.stdout.split()


def test_a_process_that_only_reads_runs_numpy_on_one_thread() -> None:
    code = "from keras_share.read.detect import prepare_reader_process; prepare_reader_process(); import os; "
    assert _printed_by(code + "print(len(os.listdir('/proc/self/task')))") == ["1"]


def test_the_api_leaves_numpys_threads_to_the_user() -> None:
    code = "from keras_share.read.detect import import_readers; import_readers(); import os; "
    assert _printed_by(code + "print(os.environ.get('OPENBLAS_NUM_THREADS'))") == ["None"]


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


_collecting_while_warming_up: list[bool] = []


def _note_whether_collecting() -> None:
    import gc

    _collecting_while_warming_up.append(gc.isenabled())


def _was_collecting_while_warming_up() -> list[bool]:
    return _collecting_while_warming_up


def test_a_spare_reader_child_collects_no_garbage_while_it_imports() -> None:
    assert start_spare_reader(_note_whether_collecting)
    assert call_with_deadline(_was_collecting_while_warming_up, "model", 60) == [False]
