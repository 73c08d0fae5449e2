"""``keras_share.testing.assert_no_findings``: the pytest helper, on live models and on files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import keras_share
from keras_share.testing import assert_no_findings


@pytest.fixture(scope="module")
def models(keras3: Any) -> dict[str, Any]:
    """A clean siamese model, and a base model whose layer a transfer model reuses (unfrozen)."""
    K = keras3
    a, b = K.Input((4,), name="a"), K.Input((4,), name="b")
    shared = K.layers.Dense(3, name="shared_d")
    siamese = K.Model([a, b], K.layers.Add(name="add")([shared(a), shared(b)]), name="siamese")
    x = K.Input((4,), name="x")
    feature = K.layers.Dense(3, name="feature")
    base = K.Model(x, K.layers.Dense(1, name="base_head")(feature(x)), name="base")
    y = K.Input((4,), name="y")
    transfer = K.Model(y, K.layers.Dense(2, name="new_head")(feature(y)), name="transfer")
    d = K.layers.Dense(4, name="d")
    repeat = K.Sequential([K.Input((4,)), d, d], name="repeat")
    return {"siamese": siamese, "base": base, "transfer": transfer, "repeat": repeat}


def test_a_clean_model_passes(models: dict[str, Any]) -> None:
    assert_no_findings(models["siamese"])
    assert_no_findings(models["siamese"], fail_on="info")


def test_findings_fail_with_a_readable_message(models: dict[str, Any]) -> None:
    with pytest.raises(AssertionError) as error:
        assert_no_findings(models["transfer"])
    message = str(error.value)
    assert message.startswith("keras-share found 2 findings at or above 'warning':")
    assert "warning KS205 transferred-layer-trainable  live:transfer: feature" in message
    assert "warning KS206 layer-shared-with-other-model  live:transfer: feature" in message
    assert "'base'" in message  # names the other model
    assert "ignore=['KS205', 'KS206']" in message


def test_ignore_and_fail_on(models: dict[str, Any]) -> None:
    assert_no_findings(models["transfer"], ignore=["transferred-layer-trainable", "KS206"])
    assert_no_findings(models["transfer"], fail_on="error")
    with pytest.raises(AssertionError, match="1 finding at or above 'error'"):
        assert_no_findings(models["repeat"], fail_on="error")
    assert_no_findings(models["repeat"], ignore="sequential-repeated-layer")


def test_models_inspected_together(models: dict[str, Any]) -> None:
    with pytest.raises(AssertionError) as error:
        assert_no_findings([models["base"], models["transfer"]])
    assert "live:base: feature" in str(error.value) and "live:transfer: feature" in str(error.value)


def test_paths(sample_dir: Path, tmp_path: Path, models: dict[str, Any]) -> None:
    assert_no_findings(sample_dir / "shared_dense.keras")
    assert_no_findings(str(sample_dir / "nested_encoder.keras"))  # KS201 is info in a triplet encoder
    with pytest.raises(AssertionError, match="KS201 shared-batchnorm .*nested_encoder.keras: encoder"):
        assert_no_findings(str(sample_dir / "nested_encoder.keras"), fail_on="info")
    assert_no_findings(str(sample_dir / "nested_encoder.keras"), fail_on="info", ignore=["shared-batchnorm"])
    # the repeat is invisible in the saved file: the helper on the model is the one that catches it
    path = tmp_path / "repeat.keras"
    models["repeat"].save(str(path))
    assert_no_findings(path)
    with pytest.raises(AssertionError, match="sequential-repeated-layer"):
        assert_no_findings(models["repeat"])


def test_bad_arguments(models: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="fail_on must be one of"):
        assert_no_findings(models["siamese"], fail_on="never")
    with pytest.raises(ValueError, match="unknown rule"):
        assert_no_findings(models["siamese"], ignore=["no-such-rule"])


def test_reachable_from_the_package() -> None:
    assert keras_share.testing.assert_no_findings is assert_no_findings
