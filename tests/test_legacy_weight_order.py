"""KS304 legacy-weight-order: a nested model's arrays stored trainable-first in a legacy .h5 file, shown with tf_keras:
``load_weights`` into the model rebuilt with other trainable flags puts the arrays on the wrong layers (or fails)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keras_share.api import inspect

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def findings(path: Path) -> list[str]:
    return [f"{finding.layer}: {finding.message}" for finding in inspect(str(path), select=["KS304"]).findings]


def two_dense(K: Any, frozen_first: bool, batchnorm: bool = False) -> Any:
    """A model around a nested Sequential ``enc`` of two Dense layers of one shape (a BatchNormalization between)."""
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    inner = [K.layers.Dense(4, name="first")] + ([K.layers.BatchNormalization(name="bn")] if batchnorm else [])
    enc = K.Sequential([K.Input((4,)), *inner, K.layers.Dense(4, name="second")], name="enc")
    enc.get_layer("first").trainable = not frozen_first
    x = K.Input((4,), name="x")
    return K.Model(x, enc(x), name="outer")


@pytest.fixture(scope="module")
def saved(tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    folder = tmp_path_factory.mktemp("legacy_weight_order")
    made = {}
    for name, frozen_first, batchnorm in (("frozen_first.h5", True, False), ("all_trainable.h5", False, False),
                                          ("batchnorm.h5", False, True)):
        model = two_dense(tf_keras, frozen_first, batchnorm)
        path = folder / name
        model.save(str(path))
        made[name] = (path, [variable.numpy() for variable in model.get_layer("enc").get_layer("second").weights])
    return made


@pytest.mark.keras
def test_a_frozen_first_sublayer_is_flagged(saved: dict) -> None:
    (message,) = findings(saved["frozen_first.h5"][0])
    assert message.startswith("enc: the file stores first/kernel, first/bias after weights of later layers")


@pytest.mark.keras
def test_load_weights_with_other_flags_puts_the_second_layer_s_arrays_on_the_first(tf_keras: Any, saved: dict) -> None:
    path, second = saved["frozen_first.h5"]
    rebuilt = two_dense(tf_keras, frozen_first=False)
    rebuilt.load_weights(str(path))
    np.testing.assert_array_equal(rebuilt.get_layer("enc").get_layer("first").kernel.numpy(), second[0])


@pytest.mark.keras
def test_batchnorm_statistics_stored_after_a_later_layer_are_flagged(saved: dict) -> None:
    (message,) = findings(saved["batchnorm.h5"][0])
    assert "bn/moving_mean, bn/moving_variance after weights of later layers" in message


@pytest.mark.keras
def test_load_weights_into_a_frozen_rebuild_of_the_batchnorm_model_fails(tf_keras: Any, saved: dict) -> None:
    rebuilt = two_dense(tf_keras, frozen_first=False, batchnorm=True)
    rebuilt.get_layer("enc").trainable = False
    with pytest.raises(ValueError, match="[Ss]hape"):
        rebuilt.load_weights(str(saved["batchnorm.h5"][0]))


@pytest.mark.keras
def test_stored_in_build_order_is_silent_and_loads_into_the_same_flags(tf_keras: Any, saved: dict) -> None:
    path, second = saved["all_trainable.h5"]
    assert findings(path) == []
    rebuilt = two_dense(tf_keras, frozen_first=False)
    rebuilt.load_weights(str(path))
    np.testing.assert_array_equal(rebuilt.get_layer("enc").get_layer("second").kernel.numpy(), second[0])


def test_keras_archives_are_never_flagged() -> None:
    """A .keras file stores each layer's weights under its own name: no order to get wrong."""
    assert findings(SAMPLES / "nested_encoder.keras") == []


def test_the_sample_h5_with_a_batchnorm_in_its_encoder_is_flagged() -> None:
    (message,) = findings(SAMPLES / "nested_encoder.h5")
    assert message.startswith("encoder: the file stores enc_bn/moving_mean, enc_bn/moving_variance")
