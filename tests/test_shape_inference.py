"""Shapes inferred statically (keras_share/analysis/shapes.py) against the shapes Keras computes.

One model per Keras layout holds every case of ``CASES`` (each layer fed by its own Inputs and made a model
output, so no file stores its output shape): it is built once per session, saved, read statically, and each
layer's inferred output shapes are compared with the live layer's. Conv and pooling configs are also drawn by
hypothesis and compared with ``compute_output_shape``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ModelStore
from hypothesis import given
from hypothesis import strategies as st
from live_truth import load_model
from shape_truth import live_output_shapes, shape_mismatches

from keras_share.analysis.layer_shapes import SHAPE_FUNCTIONS, output_shapes
from keras_share.analysis.report import ModelReport
from keras_share.pipeline import inspect_file


@dataclass(frozen=True)
class Case:
    """A layer built by ``make(K)`` and called on Inputs of ``inputs`` shapes (batch left out)."""

    name: str
    inputs: tuple[tuple[int | None, ...], ...]
    make: Callable[[Any], Any]
    dtype: str = "float32"
    keras3_only: bool = False


def _cases() -> list[Case]:
    L = "layers"

    def layer(cls: str, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        return lambda K: getattr(getattr(K, L), cls)(*args, **kwargs)

    def wrapped(wrapper: str, inner: Callable[[Any], Any], **kwargs: Any) -> Callable[[Any], Any]:
        return lambda K: getattr(K.layers, wrapper)(inner(K), **kwargs)

    cases = [
        Case("dense", ((4,),), layer("Dense", 3)),
        Case("dense_rank3", ((5, 4),), layer("Dense", 3)),
        Case("dense_none_time", ((None, 4),), layer("Dense", 2)),
        Case("einsum_dense", ((3,),), layer("EinsumDense", "ab,bc->ac", output_shape=4)),
        Case("einsum_dense_rank3", ((5, 3),), layer("EinsumDense", "abc,cd->abd", output_shape=(5, 6))),
        Case("einsum_dense_none_dim", ((None, 3),), layer("EinsumDense", "abc,cde->abde", output_shape=(None, 2, 4))),
        Case("conv1d_same_stride2", ((10, 3),), layer("Conv1D", 2, 3, strides=2, padding="same")),
        Case("conv1d_valid_dilation2", ((11, 3),), layer("Conv1D", 2, 3, dilation_rate=2)),
        Case("conv1d_causal", ((9, 2),), layer("Conv1D", 4, 3, padding="causal")),
        Case("conv1d_none_length", ((None, 2),), layer("Conv1D", 4, 3, strides=2)),
        Case("conv1d_channels_first", ((3, 10),), layer("Conv1D", 2, 3, data_format="channels_first")),
        Case("conv2d_same_stride2", ((7, 9, 3),), layer("Conv2D", 2, 3, strides=2, padding="same")),
        Case("conv2d_valid_strides_2_3", ((10, 11, 2),), layer("Conv2D", 5, (3, 2), strides=(2, 3))),
        Case("conv2d_channels_first", ((3, 8, 9),), layer("Conv2D", 4, 3, data_format="channels_first")),
        Case("conv2d_none_spatial", ((None, None, 3),), layer("Conv2D", 4, 3, padding="same")),
        Case("conv2d_dilated", ((12, 12, 1),), layer("Conv2D", 1, 3, dilation_rate=2)),
        Case("conv3d_same_stride2", ((6, 7, 8, 2),), layer("Conv3D", 3, 3, strides=2, padding="same")),
        Case("conv3d_valid", ((6, 7, 8, 2),), layer("Conv3D", 3, (2, 3, 1))),
        Case("conv1d_transpose", ((5, 3),), layer("Conv1DTranspose", 2, 3, strides=2)),
        Case("conv2d_transpose_valid", ((5, 6, 3),), layer("Conv2DTranspose", 2, 3, strides=2)),
        Case("conv2d_transpose_same", ((5, 6, 3),), layer("Conv2DTranspose", 2, 3, strides=2, padding="same")),
        Case("conv2d_transpose_output_padding", ((5, 6, 3),),
             layer("Conv2DTranspose", 2, 3, strides=2, output_padding=1)),
        Case("conv2d_transpose_channels_first", ((3, 5, 6),),
             layer("Conv2DTranspose", 2, 3, strides=2, data_format="channels_first")),
        Case("conv3d_transpose", ((3, 4, 5, 2),), layer("Conv3DTranspose", 2, 2, strides=2)),
        Case("separable_conv1d", ((10, 3),), layer("SeparableConv1D", 4, 3, strides=2, padding="same")),
        Case("separable_conv2d", ((9, 9, 3),), layer("SeparableConv2D", 4, 3, depth_multiplier=2)),
        Case("depthwise_conv2d", ((9, 9, 3),), layer("DepthwiseConv2D", 3, depth_multiplier=2, strides=2)),
        Case("depthwise_conv1d", ((9, 3),), layer("DepthwiseConv1D", 3, depth_multiplier=2, padding="same")),
        Case("max_pooling1d", ((9, 3),), layer("MaxPooling1D", 2)),
        Case("max_pooling1d_same_stride1", ((9, 3),), layer("MaxPooling1D", 3, strides=1, padding="same")),
        Case("max_pooling2d", ((9, 10, 3),), layer("MaxPooling2D", (2, 3))),
        Case("average_pooling2d_same", ((9, 10, 3),), layer("AveragePooling2D", 3, strides=2, padding="same")),
        Case("max_pooling2d_channels_first", ((3, 9, 10),), layer("MaxPooling2D", 2, data_format="channels_first")),
        Case("average_pooling3d", ((4, 5, 6, 2),), layer("AveragePooling3D", 2)),
        Case("global_average_pooling1d", ((9, 3),), layer("GlobalAveragePooling1D")),
        Case("global_max_pooling2d", ((9, 10, 3),), layer("GlobalMaxPooling2D")),
        Case("global_max_pooling2d_keepdims", ((9, 10, 3),), layer("GlobalMaxPooling2D", keepdims=True)),
        Case("global_average_pooling2d_channels_first", ((3, 9, 10),),
             layer("GlobalAveragePooling2D", data_format="channels_first")),
        Case("global_average_pooling3d", ((4, 5, 6, 2),), layer("GlobalAveragePooling3D")),
        Case("flatten", ((3, 4, 5),), layer("Flatten")),
        Case("flatten_none", ((None, 4),), layer("Flatten")),
        Case("reshape", ((12,),), layer("Reshape", (3, 4))),
        Case("reshape_minus_one", ((3, 4),), layer("Reshape", (-1, 2))),
        Case("reshape_none_input", ((None, 4),), layer("Reshape", (-1, 2))),
        Case("permute", ((3, 4),), layer("Permute", (2, 1))),
        Case("permute_rank3", ((2, 3, 4),), layer("Permute", (3, 1, 2))),
        Case("repeat_vector", ((4,),), layer("RepeatVector", 3)),
        Case("dropout", ((4,),), layer("Dropout", 0.5)),
        Case("spatial_dropout1d", ((5, 4),), layer("SpatialDropout1D", 0.5)),
        Case("activation", ((5, 4),), layer("Activation", "relu")),
        Case("batch_normalization", ((6, 4),), layer("BatchNormalization")),
        Case("layer_normalization", ((6, 4),), layer("LayerNormalization")),
        Case("relu", ((4,),), layer("ReLU")),
        Case("leaky_relu", ((4,),), layer("LeakyReLU")),
        Case("prelu", ((4,),), layer("PReLU")),
        Case("softmax", ((4,),), layer("Softmax")),
        Case("gaussian_noise", ((4,),), layer("GaussianNoise", 0.1)),
        Case("embedding", ((5,),), layer("Embedding", 10, 8), dtype="int32"),
        Case("embedding_none_length", ((None,),), layer("Embedding", 10, 8), dtype="int32"),
        Case("simple_rnn", ((6, 3),), layer("SimpleRNN", 4)),
        Case("simple_rnn_sequences", ((6, 3),), layer("SimpleRNN", 4, return_sequences=True)),
        Case("lstm_state", ((6, 3),), layer("LSTM", 4, return_state=True)),
        Case("lstm_sequences_state", ((None, 3),), layer("LSTM", 4, return_sequences=True, return_state=True)),
        Case("gru", ((6, 3),), layer("GRU", 4)),
        Case("gru_state", ((6, 3),), layer("GRU", 4, return_sequences=True, return_state=True)),
        Case("bidirectional_concat", ((6, 3),), wrapped("Bidirectional", layer("LSTM", 4))),
        Case("bidirectional_sum_sequences", ((6, 3),),
             wrapped("Bidirectional", layer("GRU", 4, return_sequences=True), merge_mode="sum")),
        Case("bidirectional_ave", ((6, 3),), wrapped("Bidirectional", layer("SimpleRNN", 4), merge_mode="ave")),
        Case("bidirectional_none_merge", ((6, 3),), wrapped("Bidirectional", layer("LSTM", 4), merge_mode=None)),
        Case("bidirectional_state", ((6, 3),), wrapped("Bidirectional", layer("LSTM", 4, return_state=True))),
        Case("time_distributed_dense", ((5, 4),), wrapped("TimeDistributed", layer("Dense", 3))),
        Case("time_distributed_conv2d", ((4, 8, 8, 3),), wrapped("TimeDistributed", layer("Conv2D", 2, 3))),
        Case("add", ((4,), (4,)), layer("Add")),
        Case("add_three_rank3", ((3, 4), (3, 4), (3, 4)), layer("Add")),
        Case("add_broadcast", ((1, 4), (3, 4)), layer("Add")),
        Case("multiply", ((4,), (4,)), layer("Multiply")),
        Case("average", ((4,), (4,)), layer("Average")),
        Case("maximum", ((4,), (4,)), layer("Maximum")),
        Case("minimum", ((4,), (4,)), layer("Minimum")),
        Case("subtract", ((4,), (4,)), layer("Subtract")),
        Case("concatenate", ((4,), (3,)), layer("Concatenate")),
        Case("concatenate_axis1", ((2, 4), (3, 4)), layer("Concatenate", axis=1)),
        Case("concatenate_none", ((None, 4), (3, 4)), layer("Concatenate", axis=1)),
        Case("dot", ((4,), (4,)), layer("Dot", axes=1)),
        Case("dot_axes_2_2", ((3, 4), (5, 4)), layer("Dot", axes=(2, 2))),
        Case("zero_padding1d", ((5, 3),), layer("ZeroPadding1D", (1, 2))),
        Case("zero_padding2d", ((5, 6, 3),), layer("ZeroPadding2D", ((1, 2), (3, 4)))),
        Case("zero_padding2d_channels_first", ((3, 5, 6),), layer("ZeroPadding2D", 1, data_format="channels_first")),
        Case("zero_padding3d", ((3, 4, 5, 2),), layer("ZeroPadding3D", 1)),
        Case("cropping1d", ((7, 3),), layer("Cropping1D", (1, 2))),
        Case("cropping2d", ((7, 8, 3),), layer("Cropping2D", ((1, 2), (0, 3)))),
        Case("cropping2d_channels_first", ((3, 7, 8),), layer("Cropping2D", 1, data_format="channels_first")),
        Case("cropping3d", ((5, 6, 7, 2),), layer("Cropping3D", 1)),
        Case("upsampling1d", ((5, 3),), layer("UpSampling1D", 3)),
        Case("upsampling2d", ((5, 6, 3),), layer("UpSampling2D", (2, 3))),
        Case("upsampling2d_channels_first", ((3, 5, 6),), layer("UpSampling2D", 2, data_format="channels_first")),
        Case("upsampling3d", ((2, 3, 4, 2),), layer("UpSampling3D", 2)),
    ]
    return cases


CASES = _cases()
LAYOUTS = ("keras3.keras", "keras3.h5", "tf_keras.h5")


@dataclass
class Built:
    """A saved model of every case that this Keras can build, the live model, and keras-share's report."""

    model: Any
    report: ModelReport
    live: dict[str, list[list[tuple[int | None, ...]]]]
    skipped: dict[str, str]


def _model_of_cases(K: Any) -> tuple[Any, dict[str, str]]:
    """The model of every case this Keras can build, and why each other case was left out."""
    K.backend.clear_session()
    inputs, outputs, skipped = [], [], {}
    for case in CASES:
        case_inputs = [K.Input(shape, name=f"{case.name}_in{i}", dtype=case.dtype) for i, shape in enumerate(case.inputs)]
        try:
            layer = case.make(K)
            named = type(layer).from_config({**layer.get_config(), "name": case.name})
            result = named(case_inputs if len(case_inputs) > 1 else case_inputs[0])
        except (TypeError, ValueError, AttributeError, NotImplementedError) as error:
            skipped[case.name] = f"{type(error).__name__}: {error}"
            continue
        inputs.extend(case_inputs)
        outputs.extend(result if isinstance(result, (list, tuple)) else [result])
    return K.Model(inputs, outputs, name="cases"), skipped


@pytest.fixture(scope="session")
def built_cases(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Built]:
    """The model of every case, built once per Keras (on first use) and saved in each layout."""
    directory = tmp_path_factory.mktemp("shape_cases")
    models: dict[int, tuple[Any, dict[str, str]]] = {}
    cache: dict[str, Built] = {}

    def get(layout: str) -> Built:
        if layout not in cache:
            generation = 3 if layout.startswith("keras3") else 2
            if generation not in models:
                models[generation] = _model_of_cases(pytest.importorskip("keras" if generation == 3 else "tf_keras"))
            model, skipped = models[generation]
            path = directory / layout.replace("keras3", "k3").replace("tf_keras", "k2")
            model.save(str(path))
            cache[layout] = Built(model, inspect_file(path, timeout=None), live_output_shapes(model, generation),
                                  skipped)
        return cache[layout]

    return get


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_inferred_output_shapes_equal_keras(case: Case, layout: str, built_cases: Callable[[str], Built]) -> None:
    built = built_cases(layout)
    if case.name in built.skipped:
        pytest.skip(f"{layout} cannot build it: {built.skipped[case.name]}")
    layer = next(report for report in built.report.layers if report.layer.path == case.name)
    shapes = layer.call_shapes[0]
    assert shapes is not None and shapes.outputs is not None, f"{case.name}: output shapes unknown"
    assert [tuple(shape) for shape in shapes.outputs if shape is not None] == built.live[case.name][0]
    assert shapes.output_sources == ["inferred"] * len(shapes.outputs)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_input_shapes_of_every_case_are_known(layout: str, built_cases: Callable[[str], Built]) -> None:
    built = built_cases(layout)
    unknown = [report.layer.path for report in built.report.layers if report.layer.kind == "layer"
               for shapes in report.call_shapes if shapes is None or None in shapes.inputs]
    assert unknown == []


def test_every_case_class_is_in_the_table() -> None:
    missing = {type(case.make(pytest.importorskip("keras"))).__name__ for case in CASES} - set(SHAPE_FUNCTIONS)
    assert missing == set()


# ---------------------------------------------------------------- propagation through graphs


def _conv_net(K: Any) -> Any:
    """A Keras-2-style CNN: shapes flow through a chain and a nested, shared Sequential called on two inputs."""
    tower = K.Sequential([K.Input((12, 12, 1)), K.layers.Conv2D(4, 3, strides=2, padding="same"),
                          K.layers.BatchNormalization(), K.layers.MaxPooling2D(), K.layers.Flatten(),
                          K.layers.Dense(6)], name="tower")
    a, b = K.Input((12, 12, 1), name="a"), K.Input((12, 12, 1), name="b")
    merged = K.layers.Concatenate(name="joined")([tower(a), tower(b)])
    return K.Model([a, b], K.layers.Dense(1, name="head")(K.layers.Dropout(0.1, name="drop")(merged)), name="net")


def _encoder_on_two_shapes(K: Any) -> Any:
    """A nested encoder without a fixed length, called on sequences of two lengths."""
    x = K.Input((None, 3), name="seq")
    h = K.layers.Conv1D(4, 3, padding="same", name="conv")(x)
    encoder = K.Model(x, K.layers.GlobalMaxPooling1D(name="pool")(h), name="encoder")
    short, long = K.Input((10, 3), name="short"), K.Input((20, 3), name="long")
    return K.Model([short, long], K.layers.Add(name="sum")([encoder(short), encoder(long)]), name="two_lengths")


@pytest.mark.parametrize("build", [_conv_net, _encoder_on_two_shapes], ids=["conv_net", "encoder_on_two_shapes"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_shapes_propagate_through_nested_models_as_keras_computes(
        build: Callable[[Any], Any], layout: str, tmp_path: Path) -> None:
    K = pytest.importorskip("keras" if layout.startswith("keras3") else "tf_keras")
    K.backend.clear_session()
    model = build(K)
    path = tmp_path / layout.replace("keras3", "k3").replace("tf_keras", "k2")
    model.save(str(path))
    problems = shape_mismatches(inspect_file(path, timeout=None), model, 3 if layout.startswith("keras3") else 2,
                                must_know=frozenset(SHAPE_FUNCTIONS) | {"Functional", "Sequential", "InputLayer"})
    assert problems == []


def test_nested_model_called_on_other_shapes_gets_each_calls_shape(tmp_path: Path) -> None:
    K = pytest.importorskip("tf_keras")
    K.backend.clear_session()
    path = tmp_path / "two_lengths.h5"
    _encoder_on_two_shapes(K).save(str(path))
    encoder = next(layer for layer in inspect_file(path, timeout=None).layers if layer.layer.path == "encoder")
    assert [shapes.inputs if shapes else None for shapes in encoder.call_shapes] == [[(None, 10, 3)], [(None, 20, 3)]]


def test_unknown_class_output_stays_unknown_downstream(tmp_path: Path) -> None:
    K = pytest.importorskip("tf_keras")
    K.backend.clear_session()
    x = K.Input((4,), name="x")
    y = K.layers.Lambda(lambda t: t * 2, name="double")(x)
    model = K.Model(x, K.layers.Dense(2, name="after")(y))
    path = tmp_path / "lambda.h5"
    model.save(str(path))
    layers = {layer.layer.path: layer for layer in inspect_file(path, timeout=None).layers}
    assert layers["double"].call_shapes[0] is not None and layers["double"].call_shapes[0].outputs is None
    assert layers["after"].call_shapes[0] is not None and layers["after"].call_shapes[0].outputs is None


def test_unknown_class_is_not_guessed() -> None:
    assert output_shapes("MyCustomLayer", {"units": 3}, [(None, 4)]) is None


def test_hostile_config_gives_unknown_not_an_error() -> None:
    assert output_shapes("Conv2D", {"filters": "many", "kernel_size": [3, 3]}, [(None, 8, 8, 3)]) is None
    assert output_shapes("Dense", {"units": 2**80}, [(None, 4)]) is None
    assert output_shapes("Reshape", {"target_shape": [-1, -1]}, [(None, 4)]) is None


# ---------------------------------------------------------------- configs drawn by hypothesis

_conv_configs = st.fixed_dictionaries({
    "rank": st.sampled_from([1, 2]),
    "kernel": st.integers(1, 4),
    "stride": st.integers(1, 3),
    "dilation": st.integers(1, 2),
    "padding": st.sampled_from(["valid", "same"]),
    "length": st.one_of(st.none(), st.integers(8, 16)),
    "channels_first": st.booleans(),
    "kind": st.sampled_from(["Conv", "ConvTranspose", "MaxPooling", "AveragePooling"]),
})


@given(_conv_configs)
def test_conv_and_pooling_configs_match_compute_output_shape(keras3: Any, drawn: dict[str, Any]) -> None:
    K, rank = keras3, drawn["rank"]
    data_format = "channels_first" if drawn["channels_first"] else "channels_last"
    if drawn["kind"].endswith("Pooling"):
        layer = getattr(K.layers, f"{drawn['kind']}{rank}D")(drawn["kernel"], strides=drawn["stride"],
                                                             padding=drawn["padding"], data_format=data_format)
    else:
        cls = getattr(K.layers, f"Conv{rank}D" + ("Transpose" if drawn["kind"] == "ConvTranspose" else ""))
        stride, dilation = drawn["stride"], drawn["dilation"]
        if stride > 1 and dilation > 1:
            dilation = 1  # Keras refuses strides and dilation both above 1
        layer = cls(3, drawn["kernel"], strides=stride, padding=drawn["padding"], dilation_rate=dilation,
                    data_format=data_format)
    spatial = (drawn["length"],) * rank
    shape = (None, 2, *spatial) if drawn["channels_first"] else (None, *spatial, 2)
    try:
        expected = tuple(layer.compute_output_shape(shape))
    except ValueError:
        return  # Keras refuses the config (an input shorter than the window)
    assert output_shapes(type(layer).__name__, layer.get_config(), [shape]) == [expected]


STORE_CASES = ("conv1d_two_lengths", "sequential_twice", "three_levels", "mha_keywords", "nested_model_in_two_models")
STORE_LAYOUTS = [(2, "h5"), (3, "h5")]


@pytest.mark.parametrize(("generation", "fmt"), STORE_LAYOUTS, ids=[f"k{g}-{f}" for g, f in STORE_LAYOUTS])
@pytest.mark.parametrize("case", STORE_CASES)
def test_each_call_of_a_shared_layer_gets_the_shapes_keras_computes(
        case: str, generation: int, fmt: str, model_store: ModelStore) -> None:
    pytest.importorskip("keras" if generation == 3 else "tf_keras")
    path = model_store.path(case, generation, fmt)
    try:
        model = load_model(path, generation)
    except ValueError as error:  # Keras 3 cannot load some of its own .h5 files (a nested Sequential's weights)
        pytest.skip(f"Keras cannot load it: {str(error)[:120]}")
    known = frozenset(SHAPE_FUNCTIONS) | {"Functional", "Sequential", "InputLayer"}
    assert shape_mismatches(inspect_file(path, timeout=None), model, generation, must_know=known) == []
