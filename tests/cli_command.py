"""How the tests run the keras-share command in a subprocess."""

from __future__ import annotations

import importlib.util
import shutil
import sys


def keras_share_command() -> list[str]:
    """``python -m keras_share``, or the installed ``keras-share`` script."""
    if importlib.util.find_spec("keras_share.__main__") is not None:
        return [sys.executable, "-m", "keras_share"]
    script = shutil.which("keras-share")
    assert script, "neither python -m keras_share nor the keras-share script is available"
    return [script]
