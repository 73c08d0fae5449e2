"""KS201 shared-batchnorm on shared sub-models: one finding per sub-model naming its BatchNormalization layers,
info when every call takes one input signature (a siamese/triplet encoder), a warning otherwise; and the
false-positive rate on the real files of ../shared/real_models that the rule's docs state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ModelStore

from keras_share.analysis.report import Finding, ModelReport
from keras_share.api import inspect
from keras_share.vocabulary import Severity

REAL = next((folder for folder in (Path(__file__).resolve().parents[level] / "shared" / "real_models"
                                   for level in (2, 3)) if folder.is_dir()), None)
"""../shared/real_models from the repository (or from a worktree one folder further down)."""
real_models = pytest.mark.skipif(REAL is None, reason="../shared/real_models is not available")


def report_of(path: Path) -> ModelReport:
    report = inspect(str(path))
    assert isinstance(report, ModelReport)
    return report


def batchnorm_findings(path: Path) -> list[Finding]:
    return [finding for finding in report_of(path).findings if finding.rule == "KS201"]


# --------------------------------------------------------------------------
# Models built with Keras
# --------------------------------------------------------------------------


@pytest.mark.keras
@pytest.mark.parametrize("generation, fmt", [(3, "keras"), (3, "h5"), (2, "keras"), (2, "h5")])
def test_triplet_encoder_gives_one_info_finding_naming_its_batchnorm(
        model_store: ModelStore, request: pytest.FixtureRequest, generation: int, fmt: str) -> None:
    request.getfixturevalue("keras3" if generation == 3 else "tf_keras")
    [finding] = batchnorm_findings(model_store.path("nested_encoder", generation, fmt))
    assert (finding.layer, finding.severity, finding.layers) == ("encoder", Severity.INFO, ("encoder/enc_bn",))
    assert "enc_bn" in finding.message and "runs 3 times" in finding.message


def _encoder_on_two_lengths(K: Any) -> Any:
    """An encoder with two BatchNormalization layers, shared by a sequence of 3 steps and one of 5 steps."""
    inner = K.Input((None, 4), name="enc_in")
    hidden = K.layers.BatchNormalization(name="bn_a")(K.layers.Dense(4, name="enc_dense")(inner))
    encoder = K.Model(inner, K.layers.BatchNormalization(name="bn_b")(hidden), name="encoder")
    short, long = K.Input((3, 4), name="short"), K.Input((5, 4), name="long")
    pooled = [K.layers.GlobalAveragePooling1D(name=f"pool_{name}")(encoder(x)) for name, x in
              (("short", short), ("long", long))]
    return K.Model([short, long], K.layers.Concatenate(name="joined")(pooled), name="two_lengths")


@pytest.fixture(scope="module")
def two_lengths_file(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras3.backend.clear_session()
    path = tmp_path_factory.mktemp("two_lengths") / "two_lengths.keras"
    _encoder_on_two_lengths(keras3).save(str(path))
    return path


@pytest.mark.keras
def test_encoder_on_inputs_of_different_shapes_gives_one_warning_naming_every_batchnorm(
        two_lengths_file: Path) -> None:
    [finding] = batchnorm_findings(two_lengths_file)
    assert (finding.layer, finding.severity, finding.layers) == (
        "encoder", Severity.WARNING, ("encoder/bn_a", "encoder/bn_b"))
    assert "2 BatchNormalization layers (bn_a, bn_b)" in finding.message


@pytest.mark.keras
def test_layers_inside_a_shared_encoder_are_shared_via_it(two_lengths_file: Path) -> None:
    by_path = {layer.layer.path: layer for layer in report_of(two_lengths_file).layers}
    assert [path for path, layer in by_path.items() if layer.shared_via == "encoder"] == [
        "encoder/enc_dense", "encoder/bn_a", "encoder/bn_b"]
    assert by_path["encoder"].shared and by_path["encoder"].shared_via is None


# --------------------------------------------------------------------------
# The real files: the false-positive rate the rule's docs state
# --------------------------------------------------------------------------


@real_models
def test_real_triplet_gives_one_info_finding_for_its_nine_batchnorms() -> None:
    assert REAL is not None
    [finding] = batchnorm_findings(REAL / "birdsong_triplet.h5")
    assert (finding.layer, finding.severity) == ("model", Severity.INFO)
    assert finding.layers == tuple(f"model/batch_normalization{suffix}"
                                   for suffix in ("", *(f"_{number}" for number in range(1, 9))))


@real_models
def test_no_other_real_file_has_a_shared_batchnorm_finding() -> None:
    assert REAL is not None
    files = sorted(path for path in [*REAL.glob("*"), *REAL.glob("extra/*")] if path.suffix in (".h5", ".keras"))
    assert len(files) == 18  # the count the rule's docs give
    flagged = {path.name: [(finding.layer, finding.severity) for finding in batchnorm_findings(path)]
               for path in files}
    assert {name: found for name, found in flagged.items() if found} == {
        "birdsong_triplet.h5": [("model", Severity.INFO)]}


def _encoder_reusing_a_batchnorm(K: Any) -> Any:
    """A siamese encoder holding one BatchNormalization called once per run and one called twice per run."""
    inner = K.Input((4,), name="enc_in")
    twice = K.layers.BatchNormalization(name="bn_twice")
    hidden = K.layers.BatchNormalization(name="bn_once")(twice(twice(inner)))
    encoder = K.Model(inner, hidden, name="encoder")
    left, right = K.Input((4,), name="left"), K.Input((4,), name="right")
    return K.Model([left, right], K.layers.Add(name="add")([encoder(left), encoder(right)]), name="siamese")


@pytest.mark.keras
def test_batchnorm_also_shared_inside_the_encoder_keeps_its_own_warning(
        keras3: Any, tmp_path: Path) -> None:
    keras3.backend.clear_session()
    path = tmp_path / "reused.keras"
    _encoder_reusing_a_batchnorm(keras3).save(str(path))
    findings = {finding.layer: (finding.severity, finding.layers) for finding in batchnorm_findings(path)}
    assert findings == {"encoder/bn_twice": (Severity.WARNING, ()),
                        "encoder": (Severity.INFO, ("encoder/bn_once",))}
