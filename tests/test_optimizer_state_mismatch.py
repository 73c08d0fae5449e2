"""KS211 optimizer-state-mismatch, against what Keras 3 does when it loads the same file: it warns "Skipping variable
loading for optimizer" and leaves the optimizer fresh (iterations 0), or restores it (iterations as saved)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from keras_share.api import inspect

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
SKIPPED = "Skipping variable loading for optimizer"


def findings(path: Path) -> list[str]:
    return [finding.message for finding in inspect(str(path), select=["KS211"]).findings]


def keras3_restores(keras3: Any, path: Path) -> tuple[bool, int | None]:
    """(whether Keras 3 warned that it skipped the optimizer's state, the loaded optimizer's iterations)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras3.models.load_model(str(path))
    skipped = any(SKIPPED in str(warning.message) for warning in caught)
    optimizer = getattr(model, "optimizer", None)
    return skipped, int(optimizer.iterations.numpy()) if optimizer is not None else None


def _model(K: Any) -> Any:
    K.utils.set_random_seed(0)
    x = K.Input((4,), name="x")
    h = K.layers.BatchNormalization(name="bn")(K.layers.Dense(3, name="body")(x))
    return K.Model(x, K.layers.Dense(1, name="head")(h), name="net")


def _save(K: Any, path: Path, optimizer: Any = "adam", fit: bool = True, freeze: str | None = None,
          compile: bool = True) -> Path:
    import numpy as np

    K.backend.clear_session()
    model = _model(K)
    if compile:
        model.compile(optimizer=optimizer, loss="mse", run_eagerly=True)  # no tracing: faster for one step
    if fit:
        rng = np.random.RandomState(0)
        model.fit(rng.rand(8, 4).astype("float32"), rng.rand(8, 1).astype("float32"), epochs=1, verbose=0)
    if freeze:
        model.get_layer(freeze).trainable = False
    model.save(str(path))
    return path


CASES: dict[str, dict[str, Any]] = {
    "fit_freeze_save.keras": {"freeze": "body"},
    "fit_freeze_batchnorm_save.keras": {"freeze": "bn"},
    "sgd_momentum_fit_freeze_save.keras": {"freeze": "head", "optimizer": "sgd_momentum"},
    "fit_save.keras": {},
    "sgd_momentum_fit_save.keras": {"optimizer": "sgd_momentum"},
    "compiled_never_fitted.keras": {"fit": False},
    "not_compiled.keras": {"fit": False, "compile": False},
}
MISMATCHED = ("fit_freeze_save.keras", "fit_freeze_batchnorm_save.keras", "sgd_momentum_fit_freeze_save.keras")


@pytest.fixture(scope="module")
def saved(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple[bool, int | None]]]:
    """Each case saved by Keras 3, and what Keras 3 does with its optimizer state on load."""
    folder = tmp_path_factory.mktemp("optimizer_state")
    made = {}
    for name, options in CASES.items():
        momentum = options.get("optimizer") == "sgd_momentum"
        path = _save(keras3, folder / name, **{**options, **(
            {"optimizer": keras3.optimizers.SGD(momentum=0.9)} if momentum else {})})
        made[name] = (path, keras3_restores(keras3, path))
    return made


@pytest.mark.keras
@pytest.mark.parametrize("name", MISMATCHED)
def test_freezing_after_fitting_is_flagged_and_keras_skips_the_state(saved: dict, name: str) -> None:
    path, (skipped, iterations) = saved[name]
    assert skipped and iterations == 0
    (message,) = findings(path)
    assert "training resumes with a fresh optimizer" in message


@pytest.mark.keras
def test_the_message_gives_both_counts(saved: dict) -> None:
    path, _ = saved["fit_freeze_save.keras"]
    (message,) = findings(path)
    assert "holds 14 optimizer arrays" in message and "has 10 (2 + 2 per trainable weight, 4 trainable" in message


@pytest.mark.keras
@pytest.mark.parametrize("name", ["fit_save.keras", "sgd_momentum_fit_save.keras"])
def test_fitting_and_saving_is_silent_and_keras_restores_the_state(saved: dict, name: str) -> None:
    path, (skipped, iterations) = saved[name]
    assert not skipped and iterations == 1
    assert findings(path) == []


@pytest.mark.keras
def test_a_model_saved_without_an_optimizer_is_silent(saved: dict) -> None:
    path, (skipped, iterations) = saved["not_compiled.keras"]
    assert not skipped and iterations is None
    assert findings(path) == []


@pytest.mark.keras
def test_a_never_fitted_optimizer_is_silent_though_keras_warns(saved: dict) -> None:
    """Keras warns (its saved optimizer has no slots yet), but there is no state to lose."""
    path, (skipped, iterations) = saved["compiled_never_fitted.keras"]
    assert skipped and iterations == 0
    assert findings(path) == []


@pytest.mark.keras
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.keras")), ids=lambda path: path.name)
def test_sample_models_verdict_matches_keras_3(keras3: Any, path: Path) -> None:
    """A finding only where Keras 3 skips the state; a skip without one only for a never-fitted optimizer."""
    report = inspect(str(path))
    if report.file.keras_generation != 3 or path.name == "subclassed.keras":
        pytest.skip("Keras 3 loads neither a tf_keras archive nor an unregistered subclass")
    skipped, _ = keras3_restores(keras3, path)
    found = findings(path)
    assert bool(found) == (skipped and len(report.file.weights.optimizer) > 2), (skipped, found)
