"""How the tests run the keras-share command in a subprocess."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def keras_share_command() -> list[str]:
    """``python -m keras_share``, or the installed ``keras-share`` script."""
    if importlib.util.find_spec("keras_share.__main__") is not None:
        return [sys.executable, "-m", "keras_share"]
    script = shutil.which("keras-share")
    assert script, "neither python -m keras_share nor the keras-share script is available"
    return [script]


RUN_TOTAL = re.compile(r"[\d,]+ files?, ")
"""The start of the run's total, the last stderr line of the human formats (``3 files, 1 unreadable, ...``)."""


def without_run_total(stderr: str) -> str:
    """``stderr`` without the run's total: the errors alone."""
    return "".join(line for line in stderr.splitlines(keepends=True) if not RUN_TOTAL.match(line))


DROP_FILE_CAPABILITIES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                          "--inh-caps=-dac_override,-dac_read_search", "--"]
"""A command prefix: root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH is held to file permissions (mode-000
files and folders are closed to it) like any other user."""


@functools.cache
def unprivileged_prefix() -> list[str] | None:
    """What to put before a command so that file permissions bind it: nothing for a user other than root,
    DROP_FILE_CAPABILITIES for root where setpriv can drop them; None when neither works."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run([*DROP_FILE_CAPABILITIES, "true"], capture_output=True)
    return DROP_FILE_CAPABILITIES if probe.returncode == 0 else None


TERMINAL_VARIABLES = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
"""What decides colour and width: left out of a command's environment unless a test sets them."""


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without ``TERMINAL_VARIABLES``, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in TERMINAL_VARIABLES}
    env.update(extra)
    return env


def run_cli(*args: Any, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """keras-share with ``args`` in a subprocess (``clean_env`` unless ``env`` is given)."""
    return subprocess.run([*keras_share_command(), *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=env or clean_env(), cwd=cwd)


def assert_usage_error(result: Any, *fragments: str) -> None:
    """A click ``CliRunner`` result that is one usage-error line (exit 2) holding every fragment."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keras-share: usage error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
