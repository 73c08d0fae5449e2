"""Where an input is, as CI tools want it: relative to the checkout (``GITHUB_WORKSPACE``, else the working
directory), so a code-scanning alert or an annotation attaches to the file in the repository."""

from __future__ import annotations

import os
from pathlib import PurePosixPath


def source_root() -> str:
    """The folder inputs are shown relative to: ``GITHUB_WORKSPACE`` when set, else the working directory."""
    return os.path.abspath(os.environ.get("GITHUB_WORKSPACE") or os.getcwd())


def relative_to_root(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators, or None when it lies outside ``root``."""
    absolute = os.path.abspath(path)
    if os.path.commonpath([absolute, root]) != root:
        return None
    return PurePosixPath(*os.path.relpath(absolute, root).split(os.sep)).as_posix()
