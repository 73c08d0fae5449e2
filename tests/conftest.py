"""Shared test set-up: hypothesis profiles and session-wide saved Keras models.

TensorFlow is imported lazily (``pytest.importorskip`` inside fixtures), so tests that do not
ask for a Keras fixture run without TensorFlow installed.

The suite runs in ``-n auto`` pytest-xdist workers (``addopts`` in pyproject.toml): one per CPU this process may
use, at most 4 (each worker imports TensorFlow and builds its own session fixtures);
``PYTEST_XDIST_AUTO_NUM_WORKERS`` sets the count, ``-n 0`` runs the tests in this process.

Hypothesis profiles: ``ci`` (15 examples) when the ``CI`` variable is set, ``dev`` (60) otherwise;
``HYPOTHESIS_PROFILE=long`` (500) or any registered name overrides both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=15, deadline=None)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("long", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: the CPUs this process may run on, at most ``MAX_WORKERS``, unless the variable says."""
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "")
    if chosen.isdigit():
        return int(chosen)
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# --------------------------------------------------------------------------
# Keras modules, imported on first use only.
# --------------------------------------------------------------------------


def _quiet_tf_logging() -> None:
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def keras3() -> Any:
    """The Keras 3 module (``import keras``), or a skip when it is not installed."""
    keras = pytest.importorskip("keras")
    if not keras.__version__.startswith("3"):
        pytest.skip(f"needs Keras 3, found {keras.__version__}")
    _quiet_tf_logging()
    return keras


@pytest.fixture(scope="session")
def tf_keras() -> Any:
    """The tf_keras module (Keras 2), or a skip when it is not installed."""
    module = pytest.importorskip("tf_keras")
    _quiet_tf_logging()
    return module


def keras_module(generation: int) -> Any:
    """``keras`` for generation 3, ``tf_keras`` for generation 2 (already importable)."""
    import importlib

    return importlib.import_module("keras" if generation == 3 else "tf_keras")


# --------------------------------------------------------------------------
# The model cases of tests/test_live_truth.py. Every builder takes the Keras module (keras or
# tf_keras: the public API used here is the same) and returns a model. Layer sizes are tiny.
# --------------------------------------------------------------------------


def _reset(K: Any) -> None:
    K.backend.clear_session()
    K.utils.set_random_seed(0)


def build_shared_dense(K: Any) -> Any:
    """One Dense applied to two inputs, then Add and a head."""
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    shared = K.layers.Dense(3, name="shared_d")
    added = K.layers.Add(name="add")([shared(a), shared(b)])
    return K.Model([a, b], K.layers.Dense(1, name="head")(added), name="shared_dense")


def build_independent_dense(K: Any) -> Any:
    """Two Dense layers with identical config on two inputs: nothing is shared."""
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    left = K.layers.Dense(3, name="left_d")(a)
    right = K.layers.Dense(3, name="right_d")(b)
    added = K.layers.Add(name="add")([left, right])
    return K.Model([a, b], K.layers.Dense(1, name="head")(added), name="independent_dense")


def _transfer(K: Any, freeze: bool) -> Any:
    """A trained base model's ``feature`` layer reused under a new head."""
    import numpy as np

    x = K.Input((4,), name="x")
    feature = K.layers.Dense(3, name="feature")
    base = K.Model(x, K.layers.Dense(1, name="base_head")(feature(x)), name="base")
    base.compile(optimizer="sgd", loss="mse")
    rng = np.random.RandomState(0)
    base.fit(rng.rand(4, 4).astype("float32"), rng.rand(4, 1).astype("float32"), epochs=1, batch_size=4, verbose=0)
    if freeze:
        feature.trainable = False
    inp = K.Input((4,), name="transfer_x")
    return K.Model(inp, K.layers.Dense(2, name="new_head")(feature(inp)), name="transfer")


def build_transfer_unfrozen(K: Any) -> Any:
    return _transfer(K, freeze=False)


def build_transfer_frozen(K: Any) -> Any:
    return _transfer(K, freeze=True)


def _encoder(K: Any, name: str = "encoder") -> Any:
    e_in = K.Input((4,), name="enc_in")
    e = K.layers.Dense(5, name="enc_dense")(e_in)
    e = K.layers.BatchNormalization(name="enc_bn")(e)
    return K.Model(e_in, K.layers.Dense(3, name="enc_out")(e), name=name)


def build_nested_encoder(K: Any) -> Any:
    """A nested encoder (Dense, BatchNormalization, Dense) called on three inputs."""
    encoder = _encoder(K)
    inputs = [K.Input((4,), name=name) for name in ("anchor", "positive", "negative")]
    joined = K.layers.Concatenate(name="embeddings")([encoder(x) for x in inputs])
    return K.Model(inputs, joined, name="triplet")


def build_trained_base(K: Any) -> Any:
    """The seed pitfall's base model: a ``feature`` Dense trained (two epochs) under a ``base_head``."""
    import numpy as np

    x = K.Input((4,), name="x")
    feature = K.layers.Dense(3, name="feature")
    base = K.Model(x, K.layers.Dense(1, name="base_head")(feature(x)), name="base")
    base.compile(optimizer="adam", loss="mse")
    rng = np.random.RandomState(0)
    base.fit(rng.rand(8, 4).astype("float32"), rng.rand(8, 1).astype("float32"), epochs=2, verbose=0)
    return base


def build_transfer(K: Any, base: Any) -> Any:
    """A new model on ``base``'s ``feature`` layer, taken with ``get_layer``: the layer's weights are shared."""
    inp = K.Input((4,), name="transfer_x")
    return K.Model(inp, K.layers.Dense(2, name="new_head")(base.get_layer("feature")(inp)), name="transfer")


def build_three_levels(K: Any) -> Any:
    """top -> level1 (called twice) -> level2 (called twice inside level1) -> level3."""
    i3 = K.Input((4,), name="l3_in")
    level3 = K.Model(i3, K.layers.Dense(4, name="l3_dense")(i3), name="level3")
    i2 = K.Input((4,), name="l2_in")
    level2 = K.Model(i2, K.layers.Dense(4, name="l2_dense")(level3(i2)), name="level2")
    i1 = K.Input((4,), name="l1_in")
    level1 = K.Model(i1, K.layers.Dense(4, name="l1_dense")(level2(level2(i1))), name="level1")
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    added = K.layers.Add(name="add")([level1(a), level1(b)])
    return K.Model([a, b], added, name="three_levels")


def build_frozen_nested_reenabled(K: Any) -> Any:
    """``encoder.trainable = False`` then ``enc_out.trainable = True`` inside it; encoder called twice."""
    encoder = _encoder(K)
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    model = K.Model([a, b], K.layers.Add(name="add")([encoder(a), encoder(b)]), name="frozen_nested")
    encoder.trainable = False
    encoder.get_layer("enc_out").trainable = True
    return model


def build_frozen_top_reenabled(K: Any) -> Any:
    """The top model frozen, then its ``head`` layer set trainable again."""
    x = K.Input((4,), name="x")
    h = K.layers.Dense(3, name="body")(x)
    h = K.layers.BatchNormalization(name="bn")(h)
    model = K.Model(x, K.layers.Dense(1, name="head")(h), name="frozen_top")
    model.trainable = False
    model.get_layer("head").trainable = True
    return model


def build_mha_keywords(K: Any) -> Any:
    """One MultiHeadAttention called with keyword tensors on swapped shapes, plus a shared Dense."""
    q = K.Input((5, 4), name="q")
    v = K.Input((7, 4), name="v")
    mha = K.layers.MultiHeadAttention(num_heads=2, key_dim=2, name="shared_mha")
    proj = K.layers.Dense(4, name="proj")
    first = mha(query=q, value=v)
    second = mha(query=v, value=q, key=q)
    return K.Model([q, v], [proj(first), proj(second)], name="mha_keywords")


def build_sequential_twice(K: Any) -> Any:
    """A nested Sequential (with an Input) called on two inputs."""
    seq = K.Sequential([K.Input((4,)), K.layers.Dense(3, name="s_dense"), K.layers.Dense(2, name="s_out")], name="seq")
    a = K.Input((4,), name="a")
    b = K.Input((4,), name="b")
    return K.Model([a, b], K.layers.Add(name="add")([seq(a), seq(b)]), name="sequential_twice")


def build_conv1d_two_lengths(K: Any) -> Any:
    """One Conv1D applied to sequences of length 10 and 20."""
    short = K.Input((10, 3), name="short")
    long = K.Input((20, 3), name="long")
    conv = K.layers.Conv1D(2, 3, name="shared_conv")
    pool = K.layers.GlobalAveragePooling1D(name="pool")
    added = K.layers.Add(name="add")([pool(conv(short)), pool(conv(long))])
    return K.Model([short, long], added, name="conv_lengths")


def build_frozen_sequential_reenabled(K: Any) -> Any:
    """A nested Sequential frozen, then its last layer set trainable again."""
    seq = K.Sequential([K.Input((4,)), K.layers.Dense(3, name="s_dense"), K.layers.Dense(2, name="s_out")], name="seq")
    a = K.Input((4,), name="a")
    model = K.Model(a, seq(a), name="frozen_sequential")
    seq.trainable = False
    seq.get_layer("s_out").trainable = True
    return model


def build_frozen_top_sequential_reenabled(K: Any) -> Any:
    """A top-level Sequential frozen, then its last layer set trainable again."""
    model = K.Sequential([K.Input((4,)), K.layers.Dense(3, name="s_dense"), K.layers.Dense(2, name="s_out")], name="top_seq")
    model.trainable = False
    model.get_layer("s_out").trainable = True
    return model


def build_frozen_model_beside_a_layer(K: Any) -> Any:
    """Nested model ``outer`` holds a trainable Dense and a frozen nested model ``inner``."""
    i = K.Input((4,), name="inner_in")
    inner = K.Model(i, K.layers.Dense(4, name="inner_d")(i), name="inner")
    j = K.Input((4,), name="outer_in")
    outer = K.Model(j, K.layers.Dense(4, name="outer_d")(inner(j)), name="outer")
    a = K.Input((4,), name="a")
    model = K.Model(a, outer(a), name="frozen_inner")
    inner.trainable = False
    return model


def build_weightless_in_two_models(K: Any) -> Any:
    """One Activation layer object placed inside two different nested models."""
    act = K.layers.Activation("relu", name="shared_act")

    def sub(name: str) -> Any:
        i = K.Input((4,), name=f"{name}_in")
        return K.Model(i, act(K.layers.Dense(4, name=f"{name}_d")(i)), name=name)

    sub1, sub2 = sub("sub1"), sub("sub2")
    a = K.Input((4,), name="a")
    return K.Model(a, sub2(sub1(a)), name="weightless_in_two_models")


def build_nested_model_in_two_models(K: Any) -> Any:
    """Nested model ``sub`` called by the top model and also inside the nested model ``mid``."""
    i = K.Input((4,), name="sub_in")
    sub = K.Model(i, K.layers.Dense(4, name="sub_d")(i), name="sub")
    j = K.Input((4,), name="mid_in")
    mid = K.Model(j, K.layers.Dense(4, name="mid_d")(sub(j)), name="mid")
    a = K.Input((4,), name="a")
    return K.Model(a, K.layers.Add(name="add")([mid(a), sub(a)]), name="nested_in_two_models")


def build_frozen_mha(K: Any) -> Any:
    """A MultiHeadAttention frozen after it was built."""
    q = K.Input((3, 4), name="q")
    mha = K.layers.MultiHeadAttention(num_heads=1, key_dim=2, name="mha")
    model = K.Model(q, K.layers.Dense(2, name="head")(mha(q, q)), name="frozen_mha")
    mha.trainable = False
    return model


CASES: dict[str, Callable[[Any], Any]] = {
    "shared_dense": build_shared_dense,
    "independent_dense": build_independent_dense,
    "transfer_unfrozen": build_transfer_unfrozen,
    "transfer_frozen": build_transfer_frozen,
    "nested_encoder": build_nested_encoder,
    "three_levels": build_three_levels,
    "frozen_nested_reenabled": build_frozen_nested_reenabled,
    "frozen_top_reenabled": build_frozen_top_reenabled,
    "mha_keywords": build_mha_keywords,
    "sequential_twice": build_sequential_twice,
    "conv1d_two_lengths": build_conv1d_two_lengths,
    "frozen_sequential_reenabled": build_frozen_sequential_reenabled,
    "frozen_top_sequential_reenabled": build_frozen_top_sequential_reenabled,
    "frozen_model_beside_a_layer": build_frozen_model_beside_a_layer,
    "weightless_in_two_models": build_weightless_in_two_models,
    "nested_model_in_two_models": build_nested_model_in_two_models,
    "frozen_mha": build_frozen_mha,
}

SAVEDMODEL_CASES = (
    "shared_dense",
    "nested_encoder",
    "frozen_nested_reenabled",
    "frozen_sequential_reenabled",
    "frozen_top_sequential_reenabled",
    "nested_model_in_two_models",
    "frozen_model_beside_a_layer",
    "three_levels",
    "mha_keywords",
    "frozen_mha",
)
"""Cases also saved by tf_keras as a SavedModel directory (slow to write: keep this short)."""

FORMATS: dict[int, tuple[str, ...]] = {3: ("keras", "h5"), 2: ("keras", "h5", "savedmodel")}


@dataclass
class SavedCase:
    """The files one (case, generation) was saved to, and why a format could not be written."""

    files: dict[str, Path] = field(default_factory=dict)
    save_errors: dict[str, str] = field(default_factory=dict)


class ModelStore:
    """Build each case once per Keras generation, save it in every format at once, hand out paths.

    Saving every format right after building matters: some cases change flags afterwards
    (transfer), and a later save would record the changed state.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._saved: dict[tuple[str, int], SavedCase] = {}

    def formats(self, case: str, generation: int) -> tuple[str, ...]:
        return tuple(f for f in FORMATS[generation] if f != "savedmodel" or case in SAVEDMODEL_CASES)

    def saved(self, case: str, generation: int) -> SavedCase:
        key = (case, generation)
        if key not in self._saved:
            K = keras_module(generation)
            _reset(K)
            model = CASES[case](K)
            result = SavedCase()
            for fmt in self.formats(case, generation):
                target = self.root / f"{case}-k{generation}.{fmt}"
                try:
                    if fmt == "savedmodel":
                        model.save(str(target), save_format="tf")
                    else:
                        model.save(str(target))
                except Exception as error:  # noqa: BLE001  (recorded; the test of that format reports it)
                    result.save_errors[fmt] = f"{type(error).__name__}: {error}"
                else:
                    result.files[fmt] = target
            self._saved[key] = result
        return self._saved[key]

    def path(self, case: str, generation: int, fmt: str) -> Path:
        """The file of one case in one format; fails the test when Keras could not write it."""
        saved = self.saved(case, generation)
        if fmt in saved.save_errors:
            pytest.fail(f"Keras (generation {generation}) could not save {case} as {fmt}: {saved.save_errors[fmt]}")
        return saved.files[fmt]


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """Saved files of every case in tests/test_live_truth.py, built lazily, once per session."""
    return ModelStore(tmp_path_factory.mktemp("live_truth"))


@pytest.fixture(scope="session")
def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide directory for files written inside hypothesis examples."""
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The committed sample models."""
    return Path(__file__).resolve().parent.parent / "sample_models"
