"""The shapes keras-share prints for the real public models (../shared/real_models) equal the shapes Keras
computes for the same files, for every layer of a class keras-share knows, in every file Keras can load without
running code from it (files with Lambda bytecode and files with custom classes are skipped)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from live_truth import load_model
from shape_truth import shape_mismatches

from keras_share.analysis.layer_shapes import SHAPE_FUNCTIONS
from keras_share.pipeline import inspect_file

REAL = Path(os.environ.get("KERAS_SHARE_REAL_MODELS") or Path(__file__).resolve().parents[2] / "shared" / "real_models")
"""../shared/real_models beside the checkout (as CI lays it), or the folder ``KERAS_SHARE_REAL_MODELS`` names."""
FILES = sorted(path for pattern in ("*", "extra/*") for path in REAL.glob(pattern)
               if path.suffix in (".h5", ".keras")) if REAL.is_dir() else []
KNOWN_CLASSES = frozenset(SHAPE_FUNCTIONS) | {"Functional", "Sequential", "Model", "InputLayer"}


@pytest.mark.skipif(not FILES, reason="../shared/real_models is not available")
@pytest.mark.parametrize("path", FILES, ids=[path.relative_to(REAL).as_posix() for path in FILES] if FILES else [])
def test_real_model_shapes_equal_keras(path: Path) -> None:
    report = inspect_file(path, timeout=None)
    if not report.graph.has_graph:
        pytest.skip("no layer graph in the file")
    if report.bytecode:
        pytest.skip("loading it with Keras would run its Lambda bytecode")
    generation = report.file.keras_generation
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    try:
        model: Any = load_model(path, generation)
    except Exception as error:  # noqa: BLE001 - any failure to load means Keras has no shapes to compare with
        pytest.skip(f"Keras cannot load it: {type(error).__name__}: {str(error)[:120]}")
    assert shape_mismatches(report, model, generation, must_know=KNOWN_CLASSES) == []


SAMPLES = sorted(path for path in (Path(__file__).resolve().parent.parent / "sample_models").iterdir()
                 if path.suffix in (".h5", ".keras") or path.is_dir())


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_sample_model_shapes_equal_keras(path: Path) -> None:
    report = inspect_file(path, timeout=None)
    if not report.graph.has_graph:
        pytest.skip("no layer graph in the file")
    generation = report.file.keras_generation
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    model = load_model(path, generation)
    assert shape_mismatches(report, model, generation, must_know=KNOWN_CLASSES) == []
