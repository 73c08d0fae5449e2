"""Opening the files of an input: regular files only, never in a way that can block, never outside the input.

A path given on the command line is opened wherever its symbolic links lead: the user chose it. A file reached
inside a folder input (a member of a model folder) is opened only when its links resolve inside that folder.
A FIFO, a device or a socket is never opened: it is refused from its ``stat``, before any ``open``; the file
is then opened without blocking and checked again with ``fstat``, so one swapped in meanwhile is refused too.
Nothing here imports h5py.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from keras_share.errors import ReadError

_KINDS = (
    (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"), (stat.S_ISLNK, "symbolic link"),
)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words (``FIFO``, ``character device``, ...)."""
    return next((name for test, name in _KINDS if test(mode)), "special file")


def resolves_inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, its symbolic links resolved, lies inside ``folder`` (its own links resolved too)."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real.startswith(top.rstrip(os.sep) + os.sep)


def open_regular(path: Path, error_path: str, member: str = "", within: Path | None = None) -> BinaryIO:
    """``path`` opened for reading when it is a regular file; else a one-line ReadError naming ``error_path``.

    ``member`` (a file of a model folder) starts the problem's text. With ``within``, ``path`` must resolve
    inside that folder, and is opened at the place it resolves to.
    """
    prefix = f"{member}: " if member else ""
    target = path
    if within is not None:
        if not resolves_inside(path, within):
            raise ReadError(error_path, f"{prefix}a symbolic link leading outside the folder; not followed")
        target = Path(os.path.realpath(path))
    try:
        before = os.stat(target)
        if not stat.S_ISREG(before.st_mode):
            raise ReadError(error_path, f"{prefix}not a regular file ({file_kind(before.st_mode)})")
        fd = os.open(target, _OPEN_FLAGS)
    except FileNotFoundError:
        raise ReadError(error_path, f"{prefix}no such file" if member else "no such file or folder") from None
    except OSError as error:
        raise ReadError(error_path, f"{prefix}cannot read ({error.strerror or error})") from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise ReadError(error_path, f"{prefix}changed while it was opened; not read")
    return os.fdopen(fd, "rb")


def open_member(folder: Path, member: str) -> BinaryIO:
    """The file ``member`` of the model folder ``folder``, opened as ``open_regular`` does, inside the folder."""
    return open_regular(folder / member, str(folder), member, within=folder)


def name_of_open_file(stream: BinaryIO, path: Path) -> str:
    """A name that opens the very file ``stream`` has open, for libraries that open files by name (libhdf5):
    ``/proc/self/fd/N`` where the system has it, else ``path``."""
    name = f"/proc/self/fd/{stream.fileno()}"
    return name if os.path.exists(name) else str(path)
