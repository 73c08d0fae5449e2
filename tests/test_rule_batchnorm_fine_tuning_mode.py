"""KS210 batchnorm-fine-tuning-mode: a pretrained nested model holding BatchNormalization, called so that
fine-tuning moves its statistics.

Files are built with Keras 3 (``.keras``: node ``kwargs``) and tf_keras (``.h5``: the kwargs dict of each input
tensor), the two layouts of a call's arguments. The live check loads a file, unfreezes the nested model and fits
one step: with tf_keras its BatchNormalization's moving mean moves when the call passed no ``training=False`` and
stays put when it did; with Keras 3 it moves either way (a Functional model hands fit's ``training=True`` to every
call it runs), and only a frozen BatchNormalization keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_truth import load_model

from keras_share.analysis.report import Finding
from keras_share.api import inspect_file
from keras_share.pipeline import Pipeline, read_base
from keras_share.settings import LintSettings
from keras_share.vocabulary import Severity

CODE = "KS210"
REAL = Path(__file__).resolve().parents[2] / "shared" / "real_models"
REAL_FILES = sorted(path for pattern in ("*.h5", "*.keras", "extra/*.h5", "extra/*.keras") for path in REAL.glob(pattern))
SAMPLE_FOLDER = Path(__file__).resolve().parents[1] / "sample_models"
SAMPLES = sorted(path for path in SAMPLE_FOLDER.iterdir() if path.suffix in (".h5", ".keras") or path.is_dir())
FORMATS = [pytest.param(3, "keras", id="keras3-keras"), pytest.param(2, "h5", id="tf_keras-h5")]


def findings(path: Path, base: Path | None = None) -> list[Finding]:
    """The KS210 findings on a saved file (against the ``base`` file, if given)."""
    pipeline = Pipeline(LintSettings(select=[CODE]), base=read_base(str(base)) if base else None)
    return [finding for finding in pipeline.finish(inspect_file(path, timeout=None)).findings if finding.rule == CODE]


def _module(generation: int) -> Any:
    return pytest.importorskip("keras" if generation == 3 else "tf_keras")


def _base(K: Any, deep: bool = False) -> Any:
    """The pretrained model: Dense ``feat`` then BatchNormalization ``bn`` (inside a nested ``block`` with
    ``deep``)."""
    norm = K.layers.BatchNormalization(name="bn")
    if deep:
        norm = K.Sequential([K.Input((3,)), norm], name="block")
    return K.Sequential([K.Input((4,)), K.layers.Dense(3, name="feat"), norm], name="base")


def _saved(K: Any, path: Path, *, freeze: str = "feat", training: bool | None = None, sequential: bool = False,
           deep: bool = False) -> Path:
    """The base under a new ``head``; ``freeze``: ``feat`` (its first layer, the top left to fine-tune), ``base``
    (all of it), ``bn`` (its BatchNormalization alone) or ``none``."""
    K.backend.clear_session()
    K.utils.set_random_seed(0)
    base = _base(K, deep)
    if freeze == "base":
        base.trainable = False
    elif freeze in ("feat", "bn"):
        base.get_layer(freeze).trainable = False
    head = K.layers.Dense(1, name="head")
    if sequential:
        model = K.Sequential([K.Input((4,)), base, head], name="top")
    else:
        x = K.Input((4,), name="x")
        kwargs = {} if training is None else {"training": training}
        model = K.Model(x, head(base(x, **kwargs)), name="top")
    model.save(str(path))
    return path


def _moving_mean_moves_when_unfrozen(path: Path, generation: int, unfreeze: bool = True) -> bool:
    """Load the file, unfreeze the nested model and each of its layers (unless not ``unfreeze``; Keras 3.15 does not
    pass ``base.trainable = True`` on to the layers of a loaded nested model), fit one step: whether its
    BatchNormalization's moving mean moved."""
    K = _module(generation)
    model = load_model(path, generation)
    base = model.get_layer("base")
    if unfreeze:
        base.trainable = True
        for layer in base.layers:
            layer.trainable = True
    norm = base.get_layer("bn")
    before = np.array(norm.moving_mean)
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.random((16, 4), dtype=np.float32) * 5, rng.random((16, 1), dtype=np.float32), epochs=1,
              batch_size=16, verbose=0)
    K.backend.clear_session()
    return not np.allclose(before, np.array(norm.moving_mean))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], Path]:
    """Each case saved once per Keras: the base partly frozen and called plainly, or with training=False."""
    folder = tmp_path_factory.mktemp("ks210")
    made: dict[tuple[int, str], Path] = {}
    for generation, suffix in ((3, "keras"), (2, "h5")):
        K = _module(generation)
        made[generation, "plain"] = _saved(K, folder / f"plain{generation}.{suffix}")
        made[generation, "inference"] = _saved(K, folder / f"inference{generation}.{suffix}", training=False)
    return made


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_a_partly_frozen_base_called_plainly_is_a_warning(files: dict[tuple[int, str], Path], generation: int,
                                                          fmt: str) -> None:
    (finding,) = findings(files[generation, "plain"])
    assert (finding.layer, finding.severity, finding.layers) == ("base", Severity.WARNING, ("base/bn",))
    assert "holds 1 BatchNormalization layer (bn) and is called without training=False" in finding.message


def test_training_false_protects_the_base_in_a_tf_keras_file(files: dict[tuple[int, str], Path]) -> None:
    assert findings(files[2, "inference"]) == []
    assert not _moving_mean_moves_when_unfrozen(files[2, "inference"], 2)


def test_keras3_replaces_training_false_so_the_base_is_still_flagged(files: dict[tuple[int, str], Path]) -> None:
    (finding,) = findings(files[3, "inference"])
    assert (finding.layer, finding.severity) == ("base", Severity.WARNING)
    assert "called with training=False, which Keras 3 replaces with fit's training=True" in finding.message
    assert "freeze each BatchNormalization layer" in finding.message
    assert _moving_mean_moves_when_unfrozen(files[3, "inference"], 3)


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_fine_tuning_a_base_called_plainly_moves_the_moving_mean(
        files: dict[tuple[int, str], Path], generation: int, fmt: str) -> None:
    assert _moving_mean_moves_when_unfrozen(files[generation, "plain"], generation)


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_a_base_whose_batchnorm_alone_is_frozen_is_not_flagged(tmp_path: Path, generation: int, fmt: str) -> None:
    path = _saved(_module(generation), tmp_path / f"bn_frozen.{fmt}", freeze="bn")
    assert findings(path) == []
    assert not _moving_mean_moves_when_unfrozen(path, generation, unfreeze=False)


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_a_frozen_base_called_plainly_is_info(tmp_path: Path, generation: int, fmt: str) -> None:
    path = _saved(_module(generation), tmp_path / f"frozen.{fmt}", freeze="base")
    (finding,) = findings(path)
    assert (finding.layer, finding.severity) == ("base", Severity.INFO)
    assert "frozen now, but once it is unfrozen" in finding.message
    assert _moving_mean_moves_when_unfrozen(path, generation)


def test_a_frozen_base_called_with_training_false_is_flagged_only_in_keras3(tmp_path: Path) -> None:
    assert findings(_saved(_module(2), tmp_path / "frozen_inference.h5", freeze="base", training=False)) == []
    (finding,) = findings(_saved(_module(3), tmp_path / "frozen_inference.keras", freeze="base", training=False))
    assert (finding.layer, finding.severity) == ("base", Severity.INFO)


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_a_base_inside_a_sequential_is_flagged_as_called_without_arguments(
        tmp_path: Path, generation: int, fmt: str) -> None:
    (finding,) = findings(_saved(_module(generation), tmp_path / f"sequential.{fmt}", sequential=True))
    assert (finding.layer, finding.severity) == ("base", Severity.WARNING)
    assert "(a Sequential passes no training argument)" in finding.message


@pytest.mark.parametrize(("generation", "fmt"), FORMATS)
def test_batchnorm_nested_deeper_is_found(tmp_path: Path, generation: int, fmt: str) -> None:
    (finding,) = findings(_saved(_module(generation), tmp_path / f"deep.{fmt}", deep=True))
    assert (finding.layer, finding.layers) == ("base", ("base/block/bn",))


def test_training_false_on_the_outer_call_protects_deeper_batchnorm_in_tf_keras(tmp_path: Path) -> None:
    assert findings(_saved(_module(2), tmp_path / "deep_inference.h5", deep=True, training=False)) == []


def test_a_base_trained_from_scratch_with_the_rest_is_not_flagged(keras3: Any, tmp_path: Path) -> None:
    """No frozen layer and no --base: a siamese or triplet encoder whose statistics should follow the data."""
    assert findings(_saved(keras3, tmp_path / "scratch.keras", freeze="none")) == []


def test_a_fully_unfrozen_base_is_a_warning_when_its_arrays_equal_the_base_model(keras3: Any, tmp_path: Path) -> None:
    path = _saved(keras3, tmp_path / "unfrozen.keras", freeze="none")
    pretrained = tmp_path / "pretrained.keras"
    load_model(path, 3).get_layer("base").save(str(pretrained))
    (finding,) = findings(path, base=pretrained)
    assert (finding.layer, finding.severity) == ("base", Severity.WARNING)


def test_the_frozen_encoder_sample_is_the_info_case() -> None:
    """sample_models/frozen_encoder.keras freezes its nested encoder (BatchNormalization ``enc_bn`` inside) and
    calls it plainly: the one sample with this pitfall."""
    (finding,) = findings(SAMPLE_FOLDER / "frozen_encoder.keras")
    assert (finding.layer, finding.severity, finding.layers) == ("encoder", Severity.INFO, ("encoder/enc_bn",))


@pytest.mark.skipif(not REAL_FILES, reason="../shared/real_models is not available")
@pytest.mark.parametrize("path", REAL_FILES, ids=[path.name for path in REAL_FILES])
def test_no_real_model_fine_tunes_batchnorm_in_training_mode(path: Path) -> None:
    """birdsong_triplet's shared encoder holds 9 BatchNormalization layers and is called plainly, but nothing in it
    is frozen: a triplet encoder trained from scratch, not flagged."""
    assert findings(path) == []


@pytest.mark.parametrize("path", [path for path in SAMPLES if path.name != "frozen_encoder.keras"],
                         ids=[path.name for path in SAMPLES if path.name != "frozen_encoder.keras"])
def test_no_other_sample_model_is_flagged(path: Path) -> None:
    assert findings(path) == []
