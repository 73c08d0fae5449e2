"""The pitfall rules (KS101 ... KS301): for each rule a model built here that triggers it and a
near-identical one that must not, both saved and inspected from the file.

Truth comes from Keras: where a rule claims what Keras will do with the file (fail to load it,
reload two independent layers, train or not train a layer), the test loads the file with the Keras
that wrote it and checks the claim. Models are tiny and built once per module.
"""

from __future__ import annotations

import io
import json
import marshal
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import build_trained_base, build_transfer

from keras_share.analysis.report import ModelReport
from keras_share.api import inspect_file
from keras_share.cli import app
from keras_share.pipeline import Pipeline, read_base
from keras_share.rules import ALL_RULES
from keras_share.settings import LintSettings

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real_models"
BUGGED_NOWEIGHTS = REAL / "extra" / "keras_pr_bugged_noweights.keras"

RULE_CONTRACT = {
    # name from the issue: (code, allowed severities)
    "cross-model-sharing": ("KS101", {"error"}),
    "missing-weights": ("KS102", {"error"}),
    "shared-batchnorm": ("KS201", {"warning"}),
    "varying-input-shapes": ("KS202", {"info", "warning"}),
    "weight-copy": ("KS203", {"warning"}),
    "unsafe-lambda": ("KS204", {"warning"}),
    "transferred-layer-trainable": ("KS205", {"warning"}),
    "trainable-in-frozen-parent": ("KS301", {"info"}),
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

KERAS2_FILE_RULES = ["keras3-incompatible", "legacy-weight-order"]
"""Ignored where a test of another rule uses a Keras 2 file (tests/test_keras3_incompatible.py and
tests/test_legacy_weight_order.py test these)."""


def lint(path: Path | str, base: str | None = None, **settings: Any) -> ModelReport:
    """Inspect a saved file statically and run every rule on it (against the ``base`` file, if given)."""
    return Pipeline(LintSettings(**settings), base=read_base(base) if base else None).finish(inspect_file(path))


def found(path: Path | str, **settings: Any) -> list[tuple[str, str]]:
    """The (rule code, layer path) of every finding, sorted."""
    return sorted((finding.rule, finding.layer) for finding in lint(path, **settings).findings)


def message(path: Path | str, code: str, layer: str, **settings: Any) -> str:
    [text] = [f.message for f in lint(path, **settings).findings if f.rule == code and f.layer == layer]
    return text


def cli(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def cli_json(*args: Any) -> dict[str, Any]:
    result = cli("inspect", "--format", "json", "--jobs", "1", "--fail-on", "never", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def reset(K: Any) -> None:
    K.backend.clear_session()
    K.utils.set_random_seed(0)


def save(model: Any, path: Path, **kwargs: Any) -> Path:
    model.save(str(path), **kwargs)
    return path


def zip_weights(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("model.weights.h5")


# --------------------------------------------------------------------------
# Rule metadata and docs
# --------------------------------------------------------------------------


def test_rules_match_the_contract_of_the_issue() -> None:
    """The issue's rule names keep their codes and severities (more rules may exist)."""
    by_name = {rule.name: rule for rule in ALL_RULES}
    for name, (code, severities) in RULE_CONTRACT.items():
        assert name in by_name, name
        assert by_name[name].code == code
        assert by_name[name].severity in severities, name
    assert len({rule.code for rule in ALL_RULES}) == len(ALL_RULES)
    assert len({rule.name for rule in ALL_RULES}) == len(ALL_RULES)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.code)
def test_rule_docs_are_complete_and_printed_by_the_cli(rule: Any) -> None:
    for part in (rule.summary, rule.why, rule.fix, rule.example):
        assert part.strip()
    for key in (rule.name, rule.code, rule.code.lower()):
        result = cli("rule", key)
        assert result.exit_code == 0, result.output
        for part in (rule.summary, rule.why, rule.fix, rule.example.strip()):
            assert part in result.stdout
        assert rule.code in result.stdout and rule.name in result.stdout and rule.severity in result.stdout


def test_rules_command_lists_every_rule() -> None:
    result = cli("rules")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(ALL_RULES)
    for rule, line in zip(ALL_RULES, lines):
        assert line.split()[:3] == [rule.code, rule.name, rule.severity]


def test_unknown_rule_docs_is_a_usage_error() -> None:
    result = cli("rule", "no-such-rule")
    assert result.exit_code == 2
    assert "unknown rule" in result.stderr


# --------------------------------------------------------------------------
# KS101 cross-model-sharing
# --------------------------------------------------------------------------


def _cross_model(K: Any, shared: bool) -> Any:
    """Two nested functional sub-models; with ``shared`` both hold one Dense object."""
    reset(K)
    dense = K.layers.Dense(3, name="shared_d")

    def sub(name: str) -> Any:
        inp = K.Input((4,), name=f"{name}_in")
        layer = dense if shared else K.layers.Dense(3, name=f"{name}_d")
        return K.Model(inp, layer(inp), name=name)

    sub1, sub2 = sub("sub1"), sub("sub2")
    a, b = K.Input((4,), name="a"), K.Input((4,), name="b")
    return K.Model([a, b], K.layers.Add(name="add")([sub1(a), sub2(b)]), name="top")


@pytest.fixture(scope="module")
def cross_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[bool, str], Path]:
    root = tmp_path_factory.mktemp("cross_model")
    files = {}
    for shared in (True, False):
        model = _cross_model(keras3, shared)
        for ext in ("keras", "h5"):
            files[shared, ext] = save(model, root / f"{'shared' if shared else 'own'}.{ext}")
    return files


@pytest.mark.keras
def test_cross_model_sharing_keras_format_fails_to_load(keras3: Any, cross_files: dict) -> None:
    path = cross_files[True, "keras"]
    with pytest.raises(ValueError, match="expected 2 variables, but received 0"):
        keras3.models.load_model(path)
    assert found(path) == [("KS101", "sub2/shared_d")]
    text = message(path, "KS101", "sub2/shared_d")
    assert "'sub1'" in text and "'sub2'" in text and "fails to load" in text


@pytest.mark.keras
def test_cross_model_sharing_h5_reloads_two_independent_layers(keras3: Any, cross_files: dict) -> None:
    path = cross_files[True, "h5"]
    model = keras3.models.load_model(path, compile=False)
    first = model.get_layer("sub1").get_layer("shared_d")
    second = model.get_layer("sub2").get_layer("shared_d")
    assert first is not second and first.kernel is not second.kernel
    before = second.kernel.numpy()
    first.kernel.assign(np.zeros(first.kernel.shape, "float32"))
    assert np.array_equal(second.kernel.numpy(), before)  # independent: the sharing is gone
    assert found(path) == [("KS101", "sub2/shared_d")]
    assert "two independent layers" in message(path, "KS101", "sub2/shared_d")


@pytest.mark.keras
@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_cross_model_control_each_sub_model_owns_its_dense(keras3: Any, cross_files: dict, ext: str) -> None:
    path = cross_files[False, ext]
    model = keras3.models.load_model(path, compile=False)
    assert len(model.weights) == 4
    assert found(path) == []


@pytest.mark.keras
def test_cross_model_sharing_of_a_nested_model(keras3: Any, model_store: Any) -> None:
    """Nested model ``sub`` called at the top and inside ``mid``: both its entries are flagged."""
    path = model_store.path("nested_model_in_two_models", 3, "keras")
    with pytest.raises(ValueError, match="could not be loaded"):
        keras3.models.load_model(path)
    assert found(path) == [("KS101", "sub"), ("KS101", "sub/sub_d")]


@pytest.mark.keras
def test_cross_model_sharing_of_a_weightless_layer_does_not_claim_a_load_failure(
        keras3: Any, model_store: Any) -> None:
    path = model_store.path("weightless_in_two_models", 3, "keras")
    model = keras3.models.load_model(path)  # Keras loads it
    assert model.get_layer("sub1").get_layer("shared_act") is not model.get_layer("sub2").get_layer("shared_act")
    assert [f for f in lint(path).findings if f.rule == "KS101" and "fail" in f.message] == []


# --------------------------------------------------------------------------
# KS102 missing-weights
# --------------------------------------------------------------------------


def _drop_weights_group(source: Path, target: Path, kernel_shape: tuple[int, ...]) -> str:
    """Copy a .keras archive, deleting the weights group whose kernel has ``kernel_shape``."""
    import h5py

    buffer = io.BytesIO(zip_weights(source))
    with h5py.File(buffer, "a") as weights:
        [group] = [name for name in weights["layers"]
                   if "0" in weights[f"layers/{name}/vars"]
                   and weights[f"layers/{name}/vars/0"].shape == kernel_shape]
        del weights[f"layers/{group}"]
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = buffer.getvalue() if item.filename == "model.weights.h5" else zin.read(item.filename)
            zout.writestr(item, data)
    return group


@pytest.fixture(scope="module")
def missing_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("missing_weights")
    K = keras3
    reset(K)
    x = K.Input((4,), name="x")
    model = K.Model(x, K.layers.Dense(2, name="head")(K.layers.Dense(3, name="body")(x)), name="two_dense")
    intact = save(model, root / "intact.keras")
    stripped = root / "stripped.keras"
    _drop_weights_group(intact, stripped, (3, 2))
    return {"intact": intact, "stripped": stripped}


@pytest.mark.keras
def test_missing_weights_of_a_dense_group(keras3: Any, missing_files: dict) -> None:
    path = missing_files["stripped"]
    with pytest.raises(ValueError, match="'head' expected 2 variables, but received 0"):
        keras3.models.load_model(path)
    assert found(path) == [("KS102", "head")]


@pytest.mark.keras
def test_missing_weights_control_unmodified_file(keras3: Any, missing_files: dict) -> None:
    path = missing_files["intact"]
    keras3.models.load_model(path)
    assert found(path) == []


@pytest.mark.skipif(not BUGGED_NOWEIGHTS.exists(), reason="../shared/real_models/extra is not available")
def test_missing_weights_real_keras_bug_file_is_a_model_level_finding() -> None:
    assert found(BUGGED_NOWEIGHTS) == [("KS102", "")]
    assert "never written" in message(BUGGED_NOWEIGHTS, "KS102", "")


# --------------------------------------------------------------------------
# KS201 shared-batchnorm
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batchnorm_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    root = tmp_path_factory.mktemp("shared_bn")
    K = keras3
    files = {}
    for shared in (True, False):
        reset(K)
        a, b = K.Input((4,), name="a"), K.Input((4,), name="b")
        left = K.layers.BatchNormalization(name="bn")
        right = left if shared else K.layers.BatchNormalization(name="bn_right")
        model = K.Model([a, b], K.layers.Add(name="add")([left(a), right(b)]), name="branches")
        files[shared] = save(model, root / f"bn_{shared}.keras")
    return files


@pytest.mark.keras
@pytest.mark.parametrize("shared, expected", [(True, [("KS201", "bn")]), (False, [])])
def test_shared_batchnorm(keras3: Any, batchnorm_files: dict, shared: bool, expected: list) -> None:
    path = batchnorm_files[shared]
    model = keras3.models.load_model(path)
    batchnorms = [layer for layer in model.layers if isinstance(layer, keras3.layers.BatchNormalization)]
    assert len(batchnorms) == (1 if shared else 2)  # one set of moving statistics for both branches
    assert found(path) == expected


# --------------------------------------------------------------------------
# KS202 varying-input-shapes
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shape_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shapes")
    K = keras3
    files = {}
    for second in (20, 10):
        reset(K)
        short, other = K.Input((10, 3), name="short"), K.Input((second, 3), name="other")
        conv = K.layers.Conv1D(2, 3, name="conv")
        pool = K.layers.GlobalAveragePooling1D(name="pool")
        model = K.Model([short, other], K.layers.Add(name="add")([pool(conv(short)), pool(conv(other))]))
        files[f"conv_{second}"] = save(model, root / f"conv_{second}.keras")
    for value_length in (7, 5):
        reset(K)
        q, v = K.Input((5, 4), name="q"), K.Input((value_length, 4), name="v")
        mha = K.layers.MultiHeadAttention(num_heads=1, key_dim=2, name="mha")
        model = K.Model([q, v], K.layers.Add(name="add")([mha(query=q, value=v), mha(query=q, value=q)]))
        files[f"mha_{value_length}"] = save(model, root / f"mha_{value_length}.keras")
    return files


@pytest.mark.keras
def test_varying_input_shapes_conv1d_lengths_10_and_20(shape_files: dict) -> None:
    path = shape_files["conv_20"]
    assert found(path) == [("KS202", "conv"), ("KS202", "pool")]
    text = message(path, "KS202", "conv")
    assert "(None, 10, 3)" in text and "(None, 20, 3)" in text


@pytest.mark.keras
def test_varying_input_shapes_control_equal_lengths(shape_files: dict) -> None:
    assert found(shape_files["conv_10"]) == []


@pytest.mark.keras
def test_varying_input_shapes_mha_keyword_tensors(shape_files: dict) -> None:
    path = shape_files["mha_7"]
    assert found(path) == [("KS202", "mha")]
    text = message(path, "KS202", "mha")
    assert "'value'" in text and "(None, 7, 4)" in text and "(None, 5, 4)" in text


@pytest.mark.keras
def test_varying_input_shapes_mha_control_same_lengths(shape_files: dict) -> None:
    assert found(shape_files["mha_5"]) == []


# --------------------------------------------------------------------------
# KS203 weight-copy
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two Dense layers: a set_weights copy, independent, or both zero-initialised.

    Each model has an Adam optimizer with EMA; after one training step the file holds optimizer
    arrays that are byte-identical copies of the layer weights: they must not count.
    """
    root = tmp_path_factory.mktemp("weight_copy")
    K = keras3
    files = {}
    for kind in ("copy", "independent", "zeros"):
        reset(K)
        init = "zeros" if kind == "zeros" else "glorot_uniform"
        a, b = K.Input((4,), name="a"), K.Input((4,), name="b")
        left = K.layers.Dense(3, name="left", kernel_initializer=init)
        right = K.layers.Dense(3, name="right", kernel_initializer=init)
        model = K.Model([a, b], K.layers.Add(name="add")([left(a), right(b)]), name=kind)
        if kind == "copy":
            right.set_weights(left.get_weights())
        model.compile(optimizer=K.optimizers.Adam(use_ema=True), loss="mse")
        if kind == "zeros":
            model.optimizer.build(model.trainable_variables)  # training would move the zeros
        else:
            # One step on the same data for both branches: a copy stays a copy, and the EMA arrays of the
            # first step equal the weights.
            data = np.random.RandomState(0).rand(4, 4).astype("float32")
            model.fit([data, data], np.ones((4, 3), "float32"), batch_size=4, epochs=1, verbose=0)
        files[kind] = save(model, root / f"{kind}.keras")
    return files


def _optimizer_arrays(path: Path) -> list[np.ndarray]:
    import h5py

    arrays: list[np.ndarray] = []
    with h5py.File(io.BytesIO(zip_weights(path)), "r") as weights:
        weights["optimizer"].visititems(
            lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.keras
def test_weight_copy_set_weights(keras3: Any, copy_files: dict) -> None:
    path = copy_files["copy"]
    model = keras3.models.load_model(path)
    left, right = model.get_layer("left"), model.get_layer("right")
    assert left.kernel is not right.kernel
    assert np.array_equal(left.kernel.numpy(), right.kernel.numpy())
    assert found(path) == [("KS203", "right")]
    assert "'left'" in message(path, "KS203", "right")


@pytest.mark.keras
def test_weight_copy_of_arrays_too_large_to_hash_while_reading(
    keras3: Any, copy_files: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keras_share.read import h5tree

    monkeypatch.setattr(h5tree, "EAGER_DIGEST_BYTES", 0)
    path = copy_files["copy"]
    assert inspect_file(path).file.weights.digests == {}
    assert found(path) == [("KS203", "right")]


@pytest.mark.keras
def test_weight_copy_control_independent_init_with_optimizer_copies(keras3: Any, copy_files: dict) -> None:
    path = copy_files["independent"]
    model = keras3.models.load_model(path)
    kernel = model.get_layer("left").kernel.numpy()
    assert not np.array_equal(kernel, model.get_layer("right").kernel.numpy())
    # The optimizer's EMA arrays are byte-identical to the layer weights: a trap the rule must skip.
    assert any(array.shape == kernel.shape and array.tobytes() == kernel.tobytes()
               for array in _optimizer_arrays(path))
    assert found(path) == []


@pytest.mark.keras
def test_weight_copy_ignores_zero_initialised_twins(keras3: Any, copy_files: dict) -> None:
    path = copy_files["zeros"]
    model = keras3.models.load_model(path)
    for name in ("left", "right"):
        assert not np.any(model.get_layer(name).kernel.numpy())
    assert found(path) == []


# --------------------------------------------------------------------------
# KS204 unsafe-lambda
# --------------------------------------------------------------------------


def _lambda_model(K: Any, marker: Path, with_lambda: bool) -> Any:
    """A Lambda at the top and one nested two models deep (top -> mid -> inner -> Lambda).

    The lambda's body creates ``marker``: if the file appears, the bytecode ran.
    """
    reset(K)

    def layer(name: str) -> Any:
        if with_lambda:
            function = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")
            return K.layers.Lambda(function, name=name)
        return K.layers.Activation("linear", name=name)

    i2 = K.Input((4,), name="i2")
    inner = K.Model(i2, layer("deep_lambda")(K.layers.Dense(4, name="d2")(i2)), name="inner")
    i1 = K.Input((4,), name="i1")
    mid = K.Model(i1, inner(i1), name="mid")
    x = K.Input((4,), name="x")
    return K.Model(x, layer("top_lambda")(mid(x)), name="top")


@pytest.fixture(scope="module")
def lambda_files(keras3: Any, tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lambda")
    files: dict[str, Path] = {"marker": root / "bytecode_ran"}
    for K, generation, ext in ((keras3, 3, "keras"), (tf_keras, 2, "h5")):
        for with_lambda in (True, False):
            model = _lambda_model(K, files["marker"], with_lambda)
            name = f"k{generation}_{'lambda' if with_lambda else 'plain'}"
            files[name] = save(model, root / f"{name}.{ext}")
    files["marker"].unlink(missing_ok=True)  # building the model called the lambda
    return files


@pytest.mark.keras
@pytest.mark.parametrize("generation", [3, 2])
def test_unsafe_lambda_at_every_depth_without_running_it(
        lambda_files: dict, generation: int, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = lambda_files["marker"]
    marker.unlink(missing_ok=True)

    original = marshal.loads

    def guarded(data: Any, *args: Any, **kwargs: Any) -> Any:
        if str(marker).encode() in bytes(data):  # the lambda's code object (imports of .pyc files pass)
            raise AssertionError("keras-share unmarshalled the Lambda's bytecode")
        return original(data, *args, **kwargs)

    monkeypatch.setattr(marshal, "loads", guarded)  # the forked reader inherits this
    assert found(lambda_files[f"k{generation}_lambda"], ignore=KERAS2_FILE_RULES) == [
        ("KS204", "mid/inner/deep_lambda"), ("KS204", "top_lambda")]
    assert not marker.exists()


@pytest.mark.keras
@pytest.mark.parametrize("generation", [3, 2])
def test_unsafe_lambda_control_no_lambda(lambda_files: dict, generation: int) -> None:
    assert found(lambda_files[f"k{generation}_plain"], ignore=KERAS2_FILE_RULES) == []


@pytest.mark.keras
def test_unsafe_lambda_bytecode_would_run_on_load(keras3: Any, tf_keras: Any, lambda_files: dict) -> None:
    """The premise of the rule and of the marker check: loading runs the bytecode."""
    marker = lambda_files["marker"]
    marker.unlink(missing_ok=True)
    with pytest.raises(ValueError):
        keras3.models.load_model(lambda_files["k3_lambda"])  # safe_mode=True refuses
    assert not marker.exists()
    keras3.models.load_model(lambda_files["k3_lambda"], safe_mode=False)
    assert marker.exists()
    marker.unlink()
    tf_keras.models.load_model(lambda_files["k2_lambda"], compile=False)
    assert marker.exists()
    marker.unlink()


# --------------------------------------------------------------------------
# KS205 transferred-layer-trainable (--base)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transfer_files(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seed example: a trained base model, its ``feature`` layer reused under a new head."""
    root = tmp_path_factory.mktemp("transfer")
    reset(keras3)
    base = build_trained_base(keras3)
    files = {"base": save(base, root / "base.keras")}
    new = build_transfer(keras3, base)
    files["unfrozen"] = save(new, root / "unfrozen.keras")
    base.get_layer("feature").trainable = False
    files["frozen"] = save(new, root / "frozen.keras")
    return files


def _transferred(document: dict[str, Any]) -> dict[str, str | None]:
    [model] = document["models"]
    return {layer["path"]: layer["transferred_from"] for layer in model["layers"]}


@pytest.mark.keras
def test_transferred_layer_left_trainable_is_flagged_with_base(keras3: Any, transfer_files: dict) -> None:
    base = keras3.models.load_model(transfer_files["base"])
    new = keras3.models.load_model(transfer_files["unfrozen"])
    feature = new.get_layer("feature")
    assert np.array_equal(feature.kernel.numpy(), base.get_layer("feature").kernel.numpy())
    assert any(weight is feature.kernel for weight in new.trainable_weights)  # it will train
    path, base_path = transfer_files["unfrozen"], str(transfer_files["base"])
    assert found(path, base=base_path) == [("KS205", "feature")]
    text = message(path, "KS205", "feature", base=base_path)
    assert base_path in text and "freeze" in text


@pytest.mark.keras
def test_frozen_transferred_layer_is_reported_not_flagged(keras3: Any, transfer_files: dict) -> None:
    new = keras3.models.load_model(transfer_files["frozen"])
    assert [w.path for w in new.trainable_weights] == ["new_head/kernel", "new_head/bias"]
    assert found(transfer_files["frozen"], base=str(transfer_files["base"])) == []
    document = cli_json("--base", transfer_files["base"], transfer_files["frozen"])
    assert document["models"][0]["findings"] == []
    assert _transferred(document) == {"transfer_x": None, "feature": "feature", "new_head": None}


@pytest.mark.keras
@pytest.mark.parametrize("variant", ["unfrozen", "frozen"])
def test_transfer_without_base_reports_nothing(transfer_files: dict, variant: str) -> None:
    assert found(transfer_files[variant]) == []
    document = cli_json(transfer_files[variant])
    assert document["models"][0]["findings"] == []
    assert set(_transferred(document).values()) == {None}


# --------------------------------------------------------------------------
# KS301 trainable-in-frozen-parent
# --------------------------------------------------------------------------


def _frozen_encoder(K: Any, reenable: bool) -> Any:
    """``enc.trainable = False``, then (with ``reenable``) ``enc.get_layer("x").trainable = True``."""
    reset(K)
    enc_in = K.Input((4,), name="enc_in")
    hidden = K.layers.Dense(5, name="enc_dense")(enc_in)
    enc = K.Model(enc_in, K.layers.Dense(3, name="x")(hidden), name="enc")
    a = K.Input((4,), name="a")
    model = K.Model(a, K.layers.Dense(1, name="head")(enc(a)), name="top")
    enc.trainable = False
    if reenable:
        enc.get_layer("x").trainable = True
    return model


@pytest.fixture(scope="module")
def frozen_files(keras3: Any, tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("frozen_parent")
    files = {}
    for reenable in (True, False):
        tag = "reenabled" if reenable else "all_frozen"
        files[f"k3_{tag}"] = save(_frozen_encoder(keras3, reenable), root / f"k3_{tag}.keras")
        model = _frozen_encoder(tf_keras, reenable)
        files[f"k2h5_{tag}"] = save(model, root / f"k2_{tag}.h5")
        files[f"k2sm_{tag}"] = save(model, root / f"k2_{tag}_savedmodel", save_format="tf")
    return files


def _trainable_layers(model: Any) -> set[str]:
    """Names of the layers whose weights the loaded model would train."""
    return {(getattr(w, "path", None) or w.name).split("/")[0] for w in model.trainable_weights}


@pytest.mark.keras
def test_trainable_in_frozen_parent_keras3_says_it_trains(keras3: Any, frozen_files: dict) -> None:
    path = frozen_files["k3_reenabled"]
    assert _trainable_layers(keras3.models.load_model(path)) == {"x", "head"}
    assert found(path) == [("KS301", "enc/x")]
    text = message(path, "KS301", "enc/x")
    assert "trains" in text and "will not train" not in text


@pytest.mark.keras
def test_trainable_in_frozen_parent_tf_keras_h5_says_it_trains_after_reload(
        tf_keras: Any, frozen_files: dict) -> None:
    path = frozen_files["k2h5_reenabled"]
    assert _trainable_layers(tf_keras.models.load_model(path)) == {"x", "head"}
    assert found(path, ignore=KERAS2_FILE_RULES) == [("KS301", "enc/x")]
    assert "trains after a reload" in message(path, "KS301", "enc/x")


@pytest.mark.keras
def test_trainable_in_frozen_parent_savedmodel_says_it_will_not_train(tf_keras: Any, frozen_files: dict) -> None:
    path = frozen_files["k2sm_reenabled"]
    assert _trainable_layers(tf_keras.models.load_model(path)) == {"head"}
    assert "will not train" in message(path, "KS301", "enc/x")




@pytest.mark.keras
def test_trainable_in_frozen_parent_savedmodel_exact_findings(frozen_files: dict) -> None:
    assert found(frozen_files["k2sm_reenabled"], ignore=KERAS2_FILE_RULES) == [("KS301", "enc/x")]


@pytest.mark.keras
@pytest.mark.parametrize("fmt", ["k3", "k2h5"])
def test_trainable_in_frozen_parent_control_all_frozen(
        keras3: Any, tf_keras: Any, frozen_files: dict, fmt: str) -> None:
    path = frozen_files[f"{fmt}_all_frozen"]
    K = keras3 if fmt == "k3" else tf_keras
    assert _trainable_layers(K.models.load_model(path)) == {"head"}
    assert found(path, ignore=KERAS2_FILE_RULES) == []


@pytest.mark.keras
def test_trainable_in_frozen_parent_control_all_frozen_savedmodel(tf_keras: Any, frozen_files: dict) -> None:
    path = frozen_files["k2sm_all_frozen"]
    assert _trainable_layers(tf_keras.models.load_model(path)) == {"head"}
    assert found(path, ignore=KERAS2_FILE_RULES) == []


@pytest.mark.keras
def test_trainable_in_frozen_top_model_keras3_will_not_train(keras3: Any, model_store: Any) -> None:
    path = model_store.path("frozen_top_reenabled", 3, "keras")
    assert keras3.models.load_model(path).trainable_weights == []  # the frozen top model wins
    assert found(path) == [("KS301", "head")]
    assert "will not train" in message(path, "KS301", "head")


@pytest.mark.keras
def test_trainable_in_frozen_top_model_keras3_message_names_the_right_reason(model_store: Any) -> None:
    path = model_store.path("frozen_top_reenabled", 3, "keras")
    assert "SavedModel" not in message(path, "KS301", "head")


# --------------------------------------------------------------------------
# Every finding names the file and the layer, and says what to do
# --------------------------------------------------------------------------

ACTION = re.compile(r"\b(freeze|unfreeze|give|call|replace|use|move|keep|re-?save|set|check|reshape|pad|"
                    r"restructure|rename|remove|split|share|ignore|suppress)\b", re.IGNORECASE)



def _trigger(request: pytest.FixtureRequest, code: str) -> tuple[Path, list[str]]:
    """A file that triggers ``code`` and the extra CLI arguments it needs."""
    value = request.getfixturevalue
    if code == "KS101":
        return value("cross_files")[True, "keras"], []
    if code == "KS102":
        return value("missing_files")["stripped"], []
    if code == "KS201":
        return value("batchnorm_files")[True], []
    if code == "KS202":
        return value("shape_files")["conv_20"], []
    if code == "KS203":
        return value("copy_files")["copy"], []
    if code == "KS204":
        return value("lambda_files")["k3_lambda"], []
    if code == "KS205":
        files = value("transfer_files")
        return files["unfrozen"], ["--base", str(files["base"])]
    return value("frozen_files")["k3_reenabled"], []


@pytest.mark.keras
@pytest.mark.parametrize("code", [code for code, _ in RULE_CONTRACT.values()])
def test_every_finding_names_file_and_layer_and_says_what_to_do(request: pytest.FixtureRequest, code: str) -> None:
    path, extra = _trigger(request, code)
    document = cli_json(*extra, path)
    [model] = document["models"]
    assert model["file"] == str(path)
    paths = {layer["path"] for layer in model["layers"]}
    findings = [f for f in model["findings"] if f["rule"] == code]
    assert findings
    for finding in findings:
        assert finding["layer"] in paths
        assert finding["name"] == next(name for name, (rule, _) in RULE_CONTRACT.items() if rule == code)
        assert ACTION.search(finding["message"]), finding["message"]


# --------------------------------------------------------------------------
# No rule fires on clean samples; the samples with a real pitfall give exactly it
# --------------------------------------------------------------------------

SAMPLE_FINDINGS: dict[str, list[tuple[str, str]]] = {
    "shared_dense.keras": [],
    "shared_dense.h5": [],
    "shared_dense.weights.h5": [],
    "independent_dense.keras": [],
    "subclassed.keras": [],
    # Keras 2 files Keras 3 cannot load (a nested model numbered from node 1, tf_keras's module, a SavedModel).
    "k2_shared.h5": [("KS209", "tower")],
    "k2_shared.keras": [("KS209", "")],
    "k2_savedmodel": [("KS209", "")],
    "k2_weights_only.h5": [],
    "transfer_base.keras": [],
    "transfer_frozen.keras": [],
    "transfer_unfrozen.keras": [],  # without --base nothing says the layer was transferred
    # A triplet encoder with one BatchNormalization called on anchor, positive and negative.
    "nested_encoder.keras": [("KS201", "encoder")],
    # ... whose legacy .h5 stores the encoder's moving statistics after enc_out's weights.
    "nested_encoder.h5": [("KS201", "encoder"), ("KS304", "encoder")],
    # One MultiHeadAttention and one Dense called on (5, 4) and (7, 4) tensors.
    "mha_keywords.keras": [("KS202", "proj"), ("KS202", "shared_mha")],
    # nested_encoder with encoder frozen and enc_out re-enabled; the frozen encoder holds a BatchNormalization and
    # is called without training=False (KS210, info: it bites at the next unfreeze). Its Adam was fitted before the
    # freeze: Keras 3 skips the saved optimizer state (KS211).
    "frozen_encoder.keras": [("KS201", "encoder"), ("KS210", "encoder"), ("KS211", ""), ("KS301", "encoder/enc_out")],
}


def test_sample_list_is_complete(sample_dir: Path) -> None:
    present = {p.name for p in sample_dir.iterdir() if p.suffix in (".keras", ".h5") or p.is_dir()}
    present -= {"__pycache__"}
    assert present == set(SAMPLE_FINDINGS)


@pytest.mark.parametrize("name", sorted(SAMPLE_FINDINGS))
def test_samples_give_exactly_the_expected_findings(sample_dir: Path, name: str) -> None:
    assert found(sample_dir / name) == SAMPLE_FINDINGS[name]


@pytest.mark.parametrize("name, expected", [
    ("transfer_unfrozen.keras", [("KS205", "feature")]),
    ("transfer_frozen.keras", []),
])
def test_sample_transfer_with_base(sample_dir: Path, name: str, expected: list) -> None:
    assert found(sample_dir / name, base=str(sample_dir / "transfer_base.keras")) == expected


REAL_NEGATIVE_CONTROLS = ["onlinesig_siamese.h5", "fml_seq_cnn_k231.h5", "birdsong_encoder.h5", "tabtl_baseline.h5"]
KERAS3_CANNOT_LOAD = {"onlinesig_siamese.h5", "fml_seq_cnn_k231.h5"}
"""Keras 2 files Keras 3 fails to load (``time_major`` on LSTM; ``batch_input_shape`` on a Conv2D): their only
findings are keras3-incompatible (KS209), checked against Keras 3 in test_keras3_incompatible.py."""


@pytest.mark.parametrize("name", REAL_NEGATIVE_CONTROLS)
def test_real_negative_controls_have_no_sharing_findings(name: str) -> None:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    rules = {rule for rule, _ in found(path)}
    assert rules == ({"KS209"} if name in KERAS3_CANNOT_LOAD else set())
