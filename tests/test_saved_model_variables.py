"""A tf_keras SavedModel's weights, read from its ``variables/`` bundle without TensorFlow.

Truth comes from Keras and TensorFlow: each model is saved by tf_keras (``save_format="tf"``), loaded back
with tf_keras, and keras-share's report is compared field by field with the live model (tests/live_truth.py:
layers, calls, trainability, every variable's shape, values and sharing, params); the bundle reader is compared
with TensorFlow's own checkpoint reader. Hand-written bytes (tests/bundle_bytes.py) check that truncated and
hostile bundles are refused in one line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bundle_bytes import (
    block,
    entry,
    header,
    object_graph,
    string_tensor,
    table,
    write_bundle,
)
from cli_command import keras_share_command, without_run_total
from hypothesis import given, settings
from hypothesis import strategies as st
from live_truth import assert_static_matches_live, load_model

from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.pipeline import Pipeline, read_base
from keras_share.read.arrays import array_digests
from keras_share.read.detect import read_model
from keras_share.read.digest import value_digest
from keras_share.read.saved_model_variables import EAGER_DIGEST_BYTES
from keras_share.read.tf_bundle import (
    OBJECT_GRAPH_KEY,
    BundleError,
    read_index,
    read_object_graph,
    string_scalar,
    table_entries,
)
from keras_share.settings import LintSettings

SAMPLE = Path(__file__).resolve().parent.parent / "sample_models" / "k2_savedmodel"


# --------------------------------------------------------------------------
# Models saved by tf_keras, once per module.
# --------------------------------------------------------------------------


def _fit(K: Any, model: Any, inputs: int) -> None:
    import numpy as np

    model.compile(optimizer="adam", loss="mse")
    rng = np.random.RandomState(0)
    x = [rng.rand(8, 4).astype("float32") for _ in range(inputs)]
    model.fit(x if inputs > 1 else x[0], rng.rand(8, *model.output_shape[1:]).astype("float32"), epochs=1, verbose=0)


def build_sequential(K: Any) -> Any:
    """A Sequential: a frozen Dense, a BatchNormalization (its moving statistics non-trainable)
    and two wide Dense (a kernel over EAGER_DIGEST_BYTES), trained once so the optimizer holds state."""
    model = K.Sequential([K.Input((4,)), K.layers.Dense(5, name="frozen_d"), K.layers.BatchNormalization(name="bn"),
                          K.layers.Dense(600, name="wide"), K.layers.Dense(600, name="head")], name="seq")
    model.get_layer("frozen_d").trainable = False
    _fit(K, model, 1)
    return model


def build_functional(K: Any) -> Any:
    """A Dense shared by two inputs, a nested encoder (with BatchNormalization) called twice, a frozen Dense."""
    e_in = K.Input((4,), name="enc_in")
    e = K.layers.BatchNormalization(name="enc_bn")(K.layers.Dense(5, name="enc_dense")(e_in))
    encoder = K.Model(e_in, K.layers.Dense(3, name="enc_out")(e), name="encoder")
    a, b = K.Input((4,), name="a"), K.Input((4,), name="b")
    shared = K.layers.Dense(4, name="shared_d")
    frozen = K.layers.Dense(3, name="frozen_d")
    model = K.Model([a, b], frozen(K.layers.Add(name="add")([encoder(shared(a)), encoder(shared(b))])), name="top")
    frozen.trainable = False
    _fit(K, model, 2)
    return model


def build_tied(K: Any) -> Any:
    """A layer that uses another layer's variables (it tracks that layer): one variable object, two layers."""
    import tensorflow as tf

    class TiedDense(K.layers.Layer):
        def __init__(self, source: Any = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.source = source

        def build(self, input_shape: Any) -> None:
            self.kernel = self.source.kernel

        def call(self, x: Any) -> Any:
            return tf.matmul(x, self.kernel, transpose_b=True)

    x = K.Input((4,), name="x")
    encoder = K.layers.Dense(3, name="enc")
    return K.Model(x, TiedDense(encoder, name="dec")(encoder(x)), name="tied")


def build_normalization(K: Any) -> Any:
    """An adapted Normalization layer: all its variables are non-trainable, so it never trains."""
    import numpy as np

    norm = K.layers.Normalization(name="norm")
    norm.adapt(np.random.RandomState(0).rand(8, 4).astype("float32"))
    x = K.Input((4,), name="x")
    return K.Model(x, K.layers.Dense(2, name="d")(norm(x)), name="normed")


def build_copied(K: Any) -> Any:
    """Two Dense layers, the second given the first one's values: a copy, not a share."""
    x = K.Input((4,), name="x")
    first, second = K.layers.Dense(4, name="first"), K.layers.Dense(4, name="second")
    model = K.Model(x, second(first(x)), name="copied")
    second.set_weights(first.get_weights())
    return model


BUILDERS = {"sequential": build_sequential, "functional": build_functional, "tied": build_tied,
            "normalization": build_normalization, "copied": build_copied}


@pytest.fixture(scope="module")
def saved(tf_keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every case of BUILDERS saved by tf_keras as a SavedModel folder."""
    root = tmp_path_factory.mktemp("savedmodel_variables")
    folders = {}
    for name, builder in BUILDERS.items():
        tf_keras.backend.clear_session()
        tf_keras.utils.set_random_seed(0)
        folders[name] = root / name
        builder(tf_keras).save(str(folders[name]), save_format="tf")
    return folders


def _layer(report: dict[str, Any], path: str) -> dict[str, Any]:
    return next(layer for layer in report["layers"] if layer["path"] == path)


# --------------------------------------------------------------------------
# Every field against the live tf_keras model.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(BUILDERS))
def test_savedmodel_weights_match_the_live_model(saved: dict[str, Path], case: str) -> None:
    report = assert_static_matches_live(saved[case], load_model(saved[case], 2), 2)
    assert report["summary"]["unique_params"] > 0


def test_params_are_the_live_count_and_optimizer_state_is_kept_apart(saved: dict[str, Path]) -> None:
    report = inspect_file(saved["functional"], timeout=None)
    assert report.summary.unique_params == load_model(saved["functional"], 2).count_params() == 95
    assert report.summary.optimizer_arrays > 0


def test_a_variable_used_by_two_layers_is_one_location_under_both(saved: dict[str, Path]) -> None:
    model = read_model(saved["tied"], timeout=None)
    encoder, decoder = model.weights.by_layer[("enc",)], model.weights.by_layer[("dec",)]
    assert {array.location for array in decoder} == {array.location for array in encoder}
    assert inspect_file(saved["tied"], timeout=None).summary.unique_params == 15


def test_a_nested_model_called_twice_lists_its_layers_arrays_once(saved: dict[str, Path]) -> None:
    model = read_model(saved["functional"], timeout=None)
    assert [array.name for array in model.weights.by_layer[("encoder", "enc_bn")]] == [
        "gamma", "beta", "moving_mean", "moving_variance"]
    assert model.weights.by_layer[("encoder",)] == []


def test_each_variable_carries_its_own_trainable_flag(saved: dict[str, Path]) -> None:
    model = read_model(saved["sequential"], timeout=None)
    assert [array.trainable for array in model.weights.by_layer[("bn",)]] == [True, True, False, False]
    assert [array.trainable for array in model.weights.by_layer[("frozen_d",)]] == [True, True]


def test_a_layer_whose_variables_are_all_non_trainable_does_not_train(saved: dict[str, Path]) -> None:
    report = inspect_file(saved["normalization"], timeout=None)
    assert not next(layer for layer in report.layers if layer.layer.path == "norm").trainable


def test_copied_weights_are_found_from_the_bundle_contents(saved: dict[str, Path]) -> None:
    report = Pipeline(LintSettings(), timeout=None).finish(inspect_file(saved["copied"], timeout=None))
    assert [(finding.name, finding.layer) for finding in report.findings
            if finding.name != "keras3-incompatible"]  # a SavedModel: Keras 3 cannot load it == [("weight-copy", "second")]


# --------------------------------------------------------------------------
# The bundle reader against TensorFlow's checkpoint reader.
# --------------------------------------------------------------------------


def test_index_entries_agree_with_tensorflow_list_variables(saved: dict[str, Path]) -> None:
    import tensorflow as tf

    for folder in saved.values():
        prefix = str(folder / "variables" / "variables")
        dtypes = tf.train.load_checkpoint(prefix).get_variable_to_dtype_map()
        truth = {name: (tuple(shape), dtypes[name].name) for name, shape in tf.train.list_variables(prefix)}
        bundle = read_index((folder / "variables" / "variables.index").read_bytes())
        ours = {key: (entry.shape, "string" if entry.dtype == 7 else entry.dtype_name)
                for key, entry in bundle.entries.items()}
        assert ours == truth


def test_object_graph_agrees_with_tensorflow(saved: dict[str, Path]) -> None:
    import tensorflow as tf
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    folder = saved["functional"]
    raw = tf.train.load_checkpoint(str(folder / "variables" / "variables")).get_tensor(OBJECT_GRAPH_KEY)
    truth = trackable_object_graph_pb2.TrackableObjectGraph.FromString(raw)
    bundle = read_index((folder / "variables" / "variables.index").read_bytes())
    graph_entry = bundle.entries[OBJECT_GRAPH_KEY]
    data = (folder / "variables" / "variables.data-00000-of-00001").read_bytes()
    nodes = read_object_graph(string_scalar(data[graph_entry.offset:graph_entry.offset + graph_entry.size]))
    assert [node.children for node in nodes] == [
        tuple((child.local_name, child.node_id) for child in node.children) for node in truth.nodes]
    assert [node.checkpoint_key for node in nodes] == [
        next((a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"), None) for node in truth.nodes]


def test_digests_are_those_of_the_values_tensorflow_reads(saved: dict[str, Path]) -> None:
    import tensorflow as tf

    folder = saved["sequential"]
    model = read_model(folder, timeout=None)
    reader = tf.train.load_checkpoint(str(folder / "variables" / "variables"))
    arrays = [array for arrays in model.weights.by_layer.values() for array in arrays]
    large = [array for array in arrays if array.size * 4 > EAGER_DIGEST_BYTES]
    assert large and all(array.location not in model.weights.digests for array in large)
    digests = {**model.weights.digests, **array_digests(model, large, timeout=None)}
    for array in arrays:
        assert digests[array.location] == value_digest(reader.get_tensor(array.location))


# --------------------------------------------------------------------------
# Missing, truncated and hostile files: one line, exit 3.
# --------------------------------------------------------------------------


def _cli_error(folder: Path) -> str:
    result = subprocess.run([*keras_share_command(), "inspect", str(folder)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    [line] = without_run_total(result.stderr).strip().splitlines()
    assert line.startswith(f"keras-share: error: {folder}: ")
    return line


def test_a_savedmodel_without_variables_is_refused(tmp_path: Path) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path / "sm")
    shutil.rmtree(folder / "variables")
    assert "without variables/variables.index" in _cli_error(folder)


def test_a_truncated_data_shard_is_refused(tmp_path: Path) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path / "sm")
    shard = folder / "variables" / "variables.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:-10])
    assert "truncated" in _cli_error(folder)


def test_a_missing_data_shard_is_refused(tmp_path: Path) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path / "sm")
    (folder / "variables" / "variables.data-00000-of-00001").unlink()
    assert "variables.data-00000-of-00001: no such file" in _cli_error(folder)


def test_a_truncated_index_is_refused(tmp_path: Path) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path / "sm")
    index = folder / "variables" / "variables.index"
    index.write_bytes(index.read_bytes()[:-1])
    assert "variables/variables.index: " in _cli_error(folder)


def test_a_variable_the_index_lacks_is_refused(tmp_path: Path) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path / "sm")
    variables = folder / "variables"
    data = (variables / "variables.data-00000-of-00001").read_bytes()
    bundle = read_index((variables / "variables.index").read_bytes())
    graph = bundle.entries[OBJECT_GRAPH_KEY]
    raw = data[graph.offset:graph.offset + graph.size]
    (variables / "variables.index").write_bytes(table([(b"", header()), (OBJECT_GRAPH_KEY.encode(),
                                                       entry(7, (), 0, len(raw)))]))
    (variables / "variables.data-00000-of-00001").write_bytes(raw)
    assert "has no entry" in _cli_error(folder)


def test_every_truncation_of_an_index_is_a_bundle_error() -> None:
    data = (SAMPLE / "variables" / "variables.index").read_bytes()
    for end in range(len(data)):
        with pytest.raises(BundleError):
            read_index(data[:end])


def test_a_snappy_compressed_index_is_refused_by_name() -> None:
    with pytest.raises(BundleError, match="snappy-compressed"):
        read_index(table([(b"", header())], compression=1))


@pytest.mark.parametrize(("data", "problem"), [
    (table([(b"", header(0))]), "0 data shards"),
    (table([(b"", header(1 << 40))]), "data shards"),
    (table([(b"", header()), (b"k", entry(1, (2, 3), 0, 4))]), "4 bytes stored for a float32 tensor of shape [2, 3]"),
    (table([(b"", header()), (b"k", entry(1, (2,), 0, 8, shard=3))]), "in shard 3"),
    (table([(b"k", entry(1, (2,), 0, 8))]), "no header"),
    (table([(b"", header())])[:-8] + b"\0" * 8, "no table magic"),
    (block([]) + b"\0" * 5 + (b"\x00\x00\x00\xff\xff\xff\xff\x0f").ljust(40, b"\0")
     + (0xDB4775248B80FB57).to_bytes(8, "little"), "runs past the end"),
], ids=["no-shards", "too-many-shards", "size-and-shape-disagree", "shard-out-of-range", "no-header", "no-magic",
        "block-past-the-end"])
def test_an_inconsistent_index_is_a_one_line_bundle_error(data: bytes, problem: str) -> None:
    with pytest.raises(BundleError, match=problem.replace("[", r"\[").replace("]", r"\]")) as raised:
        read_index(data)
    assert "\n" not in str(raised.value)


def test_a_block_declaring_more_restart_points_than_it_holds_is_refused() -> None:
    data = table([(b"", header())])
    bad = bytearray(data)
    bad[len(block([(b"", header())])) - 4] = 0xFF  # the data block's restart count, its first byte
    with pytest.raises(BundleError, match="restart points"):
        list(table_entries(bytes(bad)))


def test_an_object_graph_child_beyond_its_nodes_is_refused() -> None:
    with pytest.raises(BundleError, match="beyond its 1 nodes"):
        read_object_graph(object_graph([([("layer-0", 7)], None)]))


def test_a_string_tensor_whose_length_disagrees_with_its_size_is_refused() -> None:
    with pytest.raises(BundleError, match="string tensor"):
        string_scalar(string_tensor(b"abc")[:-1])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_index_bytes_give_a_bundle_or_a_bundle_error(data: st.DataObject) -> None:
    original = bytearray((SAMPLE / "variables" / "variables.index").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    try:
        read_index(bytes(original))
    except BundleError as error:
        assert "\n" not in str(error)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_mutated_object_graph_bytes_give_nodes_or_a_bundle_error(data: st.DataObject) -> None:
    graph = bytearray(object_graph([([("layer-0", 1), ("variables", 2)], None), ([("kernel", 3)], None),
                                    ([("0", 3)], None), ([], ("d/kernel", "layer-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"))]))
    for _ in range(data.draw(st.integers(1, 8))):
        graph[data.draw(st.integers(0, len(graph) - 1))] = data.draw(st.integers(0, 255))
    try:
        read_object_graph(bytes(graph))
    except BundleError as error:
        assert "\n" not in str(error)


def test_layers_the_object_graph_lacks_are_marked_missing_and_named_in_a_note(tmp_path: Path) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path / "sm")
    shutil.rmtree(folder / "variables")
    write_bundle(folder)  # an object graph of the root alone
    model = read_model(folder, timeout=None)
    assert not model.weights.by_layer
    assert any("have no object in the SavedModel's object graph" in note for note in model.notes)
    assert model.weights.missing


def test_keys_that_grow_by_their_shared_prefix_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each entry repeats the whole key before it and adds a byte: the bytes of keys rebuilt are counted."""
    from bundle_bytes import varint

    from keras_share.read import tf_bundle

    monkeypatch.setattr(tf_bundle, "MAX_CHECKPOINT_KEY_BYTES", 100_000)
    body = b"".join(varint(index) + varint(1) + varint(0) + b"k" for index in range(2_000))
    data_block = body + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")
    index_block = block([(b"z", varint(0) + varint(len(data_block)))])
    index_at = len(data_block) + 5
    footer = (varint(0) + varint(0) + varint(index_at) + varint(len(index_block))).ljust(40, b"\0")
    data = data_block + b"\0" * 5 + index_block + b"\0" * 5 + footer + (0xDB4775248B80FB57).to_bytes(8, "little")
    with pytest.raises(BundleError, match="bytes of keys"):
        read_index(data)


def test_live_cross_check_of_a_savedmodel_compares_its_weights_and_finds_no_difference(saved: dict[str, Path]) -> None:
    from keras_share.pipeline import live_file_report

    report = live_file_report(str(saved["functional"]))
    assert report.live is not None and report.live.load_error is None
    assert report.live.mismatches == []


def test_a_layer_transferred_from_an_h5_base_is_found_in_a_savedmodel(tf_keras: Any, tmp_path: Path) -> None:
    """``--base`` compares content digests across formats: the SavedModel's are of the same form as the .h5's."""
    from conftest import build_trained_base, build_transfer

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(0)
    base = build_trained_base(tf_keras)
    base.save(str(tmp_path / "base.h5"))
    build_transfer(tf_keras, base).save(str(tmp_path / "transfer"), save_format="tf")
    pipeline = Pipeline(LintSettings(), base=read_base(tmp_path / "base.h5", timeout=None), timeout=None)
    report = pipeline.finish(inspect_file(tmp_path / "transfer", timeout=None))
    assert [(finding.name, finding.layer) for finding in report.findings
            if finding.name != "keras3-incompatible"]  # a SavedModel: Keras 3 cannot load it == [("transferred-layer-trainable", "feature")]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_mutated_variables_give_a_model_or_a_one_line_read_error(data: st.DataObject, tmp_path_factory: Any) -> None:
    folder = shutil.copytree(SAMPLE, tmp_path_factory.mktemp("mutated") / "sm")
    member = folder / "variables" / data.draw(st.sampled_from(["variables.index", "variables.data-00000-of-00001"]))
    original = bytearray(member.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    member.write_bytes(bytes(original))
    try:
        read_model(folder, timeout=None)
    except ReadError as error:
        assert "\n" not in str(error)
