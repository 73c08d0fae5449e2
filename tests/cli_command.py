"""How the tests run the keras-share command in a subprocess."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys


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
