"""What every hostile-input test checks: run the command line on an attacker's input and hold it to the
bounds SECURITY.md promises.

Each attack class registers a *builder* with ``@attack("name")``: ``builder(folder, rng) -> Attack`` writes
one variant of the attack into ``folder`` (``rng`` picks the variant) and says how to run keras-share on it.
The tests in this folder run a few seeds of each builder; ``python tests/hostile/campaign.py`` runs many.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from keras_share.fuzzing import injected_lines

ROOT = Path(__file__).resolve().parents[2]

MAX_SECONDS = 5.0
"""Wall time per file, interpreter start included (SECURITY.md)."""
MAX_PEAK_BYTES = 300 * (1 << 20)
"""Peak resident memory of any one process of a run (SECURITY.md)."""
ALLOWED_EXIT_CODES = (0, 1, 3)
"""A report (0, 1) or an unreadable input (3): never a usage error or a crash."""


@dataclass
class Attack:
    """One hostile input and how to run keras-share on it."""

    args: list[str]
    """Arguments after ``keras-share``."""
    cwd: Path
    marker: Path | None = None
    """A file that exists afterwards only if code from the input ran."""
    canaries: list[Path] = field(default_factory=list)
    """Files outside the input that must never be opened."""
    exit_codes: tuple[int, ...] = ALLOWED_EXIT_CODES
    stderr_mentions: str | None = None
    """Text the one-line error must contain (a fragment of the problem), when the input is refused."""
    user: int | None = None
    """Run as this uid (for permission attacks); the run's folder must let it in."""
    prefix: list[str] = field(default_factory=list)
    """A command put before keras-share's (``setpriv ...``: root held to file permissions, for permission attacks)."""


@dataclass
class Outcome:
    """What one run did."""

    status: int
    stdout: str
    stderr: str
    seconds: float
    peak_bytes: int
    opened_canaries: list[Path]


Builder = Callable[[Path, random.Random], Attack]
ATTACKS: dict[str, Builder] = {}


def attack(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder`` as the attack class ``name``."""
    def register(builder: Builder) -> Builder:
        ATTACKS[name] = builder
        return builder
    return register


def keras_share_command() -> list[str]:
    """``python -m keras_share`` with this interpreter."""
    return [sys.executable, "-m", "keras_share"]


# --------------------------------------------------------------------------
# inotify: which canary files were opened or read while a run went on (Linux).
# --------------------------------------------------------------------------

_IN_ACCESS, _IN_OPEN = 0x1, 0x20
_IN_NONBLOCK = 0o4000


class _Inotify:
    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._libc = libc
        self.fd = libc.inotify_init1(_IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._watches: dict[int, Path] = {}

    def watch(self, path: Path) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), _IN_ACCESS | _IN_OPEN)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self._watches[wd] = path

    def touched(self) -> list[Path]:
        seen: list[Path] = []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return seen
        offset = 0
        while offset + 16 <= len(data):
            wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            if self._watches.get(wd) and self._watches[wd] not in seen:
                seen.append(self._watches[wd])
            offset += 16 + length
        return seen

    def close(self) -> None:
        os.close(self.fd)


@contextmanager
def watching(paths: list[Path]) -> Iterator[Callable[[], list[Path]]]:
    """Yield a function listing which of ``paths`` were opened or read since the block began."""
    notify = _Inotify()
    try:
        for path in paths:
            notify.watch(path)
        yield notify.touched
    finally:
        notify.close()


# --------------------------------------------------------------------------
# Running and judging.
# --------------------------------------------------------------------------


_SPAWNER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss).encode())
code = os.waitstatus_to_exitcode(status)
if code < 0:
    if -code not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
os._exit(code)
"""
"""Runs the command from a fresh small interpreter and reports its peak RSS: a process forked from the test
process starts with the test process's resident size as its peak (TensorFlow, once a test module imported
it, is hundreds of MB), which the command itself never used."""


def run(args: list[str], cwd: Path, user: int | None = None, timeout: float = 60.0,
        canaries: list[Path] = (), prefix: list[str] = ()) -> Outcome:  # type: ignore[assignment]
    """Run ``keras-share ARGS`` in ``cwd``; wall time and the peak RSS of the process and its children."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               COLUMNS="120", TERM="xterm-256color")
    env.pop("GITHUB_ACTIONS", None)
    peak_read, peak_write = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, watching(list(canaries)) as touched:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", _SPAWNER, str(peak_write), *prefix, *keras_share_command(), *args],
                                   cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, user=user,
                                   start_new_session=True, pass_fds=(peak_write,))
        os.close(peak_write)
        deadline = started + timeout
        while True:
            pid, status, _usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(process.pid, 9)
                pid, status, _usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        with os.fdopen(peak_read, "rb") as peak:
            peak_kilobytes = int(peak.read() or 0)
        out.seek(0)
        err.seek(0)
        return Outcome(process.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                       seconds, peak_kilobytes * 1024, touched())


def check(attack_: Attack, outcome: Outcome) -> list[str]:
    """Every promise ``outcome`` broke, as sentences (empty: it held)."""
    broken: list[str] = []
    if outcome.status not in attack_.exit_codes:
        broken.append(f"exit {outcome.status}, expected one of {attack_.exit_codes}; stderr: {outcome.stderr[-600:]!r}")
    if outcome.seconds > MAX_SECONDS:
        broken.append(f"took {outcome.seconds:.1f} s (> {MAX_SECONDS:g} s)")
    if outcome.peak_bytes > MAX_PEAK_BYTES:
        broken.append(f"peak RSS {outcome.peak_bytes >> 20} MB (> {MAX_PEAK_BYTES >> 20} MB)")
    if "Traceback" in outcome.stderr:
        broken.append(f"traceback on stderr: {outcome.stderr[-600:]!r}")
    if attack_.marker is not None and attack_.marker.exists():
        broken.append(f"code from the input ran: {attack_.marker} exists")
    if outcome.opened_canaries:
        broken.append(f"read outside the input: {[str(path) for path in outcome.opened_canaries]}")
    github = any(arg == "github" or arg.endswith("=github") for arg in attack_.args)
    for name, text, own_annotations in (("stdout", outcome.stdout, github), ("stderr", outcome.stderr, False)):
        lines = injected_lines(text, own_annotations)
        if lines:
            broken.append(f"{name} has lines a CI system would take for commands: {lines[:3]!r}")
    error_lines = [line for line in outcome.stderr.splitlines() if line.startswith("keras-share: error:")]
    if outcome.status == 3 and not error_lines:
        broken.append(f"exit 3 without a 'keras-share: error:' line: {outcome.stderr[-600:]!r}")
    if attack_.stderr_mentions is not None and attack_.stderr_mentions not in outcome.stderr:
        broken.append(f"stderr does not say {attack_.stderr_mentions!r}: {outcome.stderr[-600:]!r}")
    return broken


def run_attack(builder: Builder, folder: Path, seed: int) -> tuple[Attack, Outcome, list[str]]:
    """Build variant ``seed`` of an attack in ``folder``, run it, and judge it."""
    attack_ = builder(folder, random.Random(seed))
    outcome = run(attack_.args, attack_.cwd, user=attack_.user, canaries=attack_.canaries, prefix=attack_.prefix)
    return attack_, outcome, check(attack_, outcome)


def seeds() -> range:
    """The variants each test runs: 2 in CI, ``HOSTILE_VARIANTS`` (default 3) elsewhere."""
    default = "2" if os.environ.get("CI") else "3"
    return range(int(os.environ.get("HOSTILE_VARIANTS", default)))


def assert_holds(builder: Builder, folder: Path) -> None:
    """Run every seed of ``builder`` in sub-folders of ``folder``; fail with every broken promise."""
    failures: list[str] = []
    for seed in seeds():
        variant = folder / f"variant{seed}"
        variant.mkdir()
        attack_, _outcome, broken = run_attack(builder, variant, seed)
        failures.extend(f"seed {seed} ({' '.join(attack_.args)}): {sentence}" for sentence in broken)
    assert not failures, "\n".join(failures)
