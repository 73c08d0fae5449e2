"""One entry point shared by the hypothesis fuzz tests and the atheris harness under fuzz/."""

from __future__ import annotations

import os
import tempfile

from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.render.json_format import model_to_dict

FUZZ_TIMEOUT_SECONDS = 10.0


def inspect_bytes(data: bytes, suffix: str) -> None:
    """Inspect ``data`` saved as a file with ``suffix``: a report or a ReadError, nothing else."""
    handle, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        try:
            model_to_dict(inspect_file(path, timeout=FUZZ_TIMEOUT_SECONDS))
        except ReadError:
            pass
    finally:
        os.unlink(path)
