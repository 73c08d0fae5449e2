"""KS302 frozen-layer-trains-after-load, held against what Keras 3 does when it loads the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from keras_share.api import inspect_file
from keras_share.pipeline import Pipeline
from keras_share.settings import LintSettings

keras = pytest.importorskip("keras")


def _saved(tmp_path: Path, layer_factory, freeze: bool) -> Path:
    inputs = keras.Input((3, 2))
    layer = layer_factory()
    model = keras.Model(inputs, layer(inputs, inputs) if isinstance(layer, keras.layers.MultiHeadAttention) else layer(inputs))
    layer.trainable = not freeze
    path = tmp_path / "model.keras"
    model.save(path)
    return path


def _trains_after_load(path: Path, name: str) -> bool:
    """Whether any of the layer's variables is among the reloaded model's trainable weights."""
    model = keras.models.load_model(path)
    trained = {id(variable) for variable in model.trainable_weights}
    return any(id(variable) in trained for variable in model.get_layer(name).weights)


def _findings(path: Path) -> list[tuple[str, str]]:
    report = Pipeline(LintSettings(select=["KS302"])).finish(inspect_file(path))
    return [(finding.rule, finding.layer) for finding in report.findings]


def test_a_frozen_attention_layer_that_keras_reloads_trainable_is_flagged(tmp_path: Path) -> None:
    path = _saved(tmp_path, lambda: keras.layers.MultiHeadAttention(1, 2, name="mha"), freeze=True)
    assert _trains_after_load(path, "mha")
    assert _findings(path) == [("KS302", "mha")]


def test_a_trainable_attention_layer_is_not_flagged(tmp_path: Path) -> None:
    path = _saved(tmp_path, lambda: keras.layers.MultiHeadAttention(1, 2, name="mha"), freeze=False)
    assert _findings(path) == []


def test_a_frozen_dense_layer_stays_frozen_and_is_not_flagged(tmp_path: Path) -> None:
    path = _saved(tmp_path, lambda: keras.layers.Dense(2, name="dense"), freeze=True)
    assert not _trains_after_load(path, "dense")
    assert _findings(path) == []
