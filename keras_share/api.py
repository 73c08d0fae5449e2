"""The Python API: inspect saved model files and get ModelReport objects."""

from __future__ import annotations

import os

from keras_share.analysis.analyze import analyze
from keras_share.analysis.report import ModelReport
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS
from keras_share.read.detect import read_model


def inspect_file(path: str | os.PathLike[str], timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelReport:
    """Read one saved model statically and analyse it; raises ``ReadError`` on bad input.

    Reading is abandoned after ``timeout`` seconds (a damaged HDF5 file can make libhdf5 loop).
    """
    return analyze(read_model(path, timeout))
