"""Output shapes of the common Keras layers, from a layer's config and its input shapes: one small function per
class, as Keras computes them (``compute_output_shape``). A class not in the table, or a config or input that
does not determine the result, gives None: unknown, never a guess."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from keras_share.graph.model import Shape

Dim = int | None
MAX_DIMENSION = 2**62
"""A dimension larger than this is treated as unknown (a hostile config's huge numbers stay bounded)."""
MAX_RANK = 64
"""Shapes of more dimensions than this are not inferred."""
MAX_WRAPPER_DEPTH = 8
"""Wrappers inside wrappers (TimeDistributed of Bidirectional of ...) followed this deep."""


class Unknown(Exception):
    """The config or the inputs do not determine the output shape."""


ShapeFunction = Callable[[dict[str, Any], list[Shape | None], int], list[Shape]]
"""``(config, positional input shapes, wrapper depth) -> output shapes`` (one per output tensor), or raises
``Unknown``."""


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DIMENSION:
        raise Unknown
    return value


def _ints(value: Any, count: int) -> tuple[int, ...]:
    """An int or a list of ``count`` ints (Keras' ``standardize_tuple``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (_int(value),) * count
    if isinstance(value, (list, tuple)) and len(value) == count:
        return tuple(_int(item) for item in value)
    raise Unknown


def _pairs(value: Any, count: int) -> tuple[tuple[int, int], ...]:
    """Padding or cropping as Keras accepts it: an int, ``count`` ints, or ``count`` pairs of ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ((_int(value), _int(value)),) * count
    if isinstance(value, (list, tuple)) and len(value) == 2 and count == 1:
        return ((_int(value[0]), _int(value[1])),)
    if isinstance(value, (list, tuple)) and len(value) == count:
        pairs = []
        for item in value:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((_int(item[0]), _int(item[1])))
            else:
                pairs.append((_int(item), _int(item)))
        return tuple(pairs)
    raise Unknown


def _one(inputs: list[Shape | None]) -> Shape:
    """The single input's shape."""
    if len(inputs) != 1 or inputs[0] is None:
        raise Unknown
    return inputs[0]


def _all(inputs: list[Shape | None], at_least: int = 1) -> list[Shape]:
    if len(inputs) < at_least or any(shape is None for shape in inputs):
        raise Unknown
    return [shape for shape in inputs if shape is not None]


def _rank(shape: Shape, rank: int) -> Shape:
    if len(shape) != rank:
        raise Unknown
    return shape


def _channels_first(config: dict[str, Any]) -> bool:
    data_format = config.get("data_format", "channels_last")
    if data_format in (None, "channels_last"):
        return False
    if data_format == "channels_first":
        return True
    raise Unknown


def _padding(config: dict[str, Any], allowed: Sequence[str] = ("valid", "same")) -> str:
    padding = config.get("padding", "valid")
    if not isinstance(padding, str) or padding.lower() not in allowed:
        raise Unknown
    return padding.lower()


def _sliding(length: Dim, window: int, stride: int, padding: str, dilation: int = 1) -> Dim:
    """A convolution's or pooling's output length (``compute_conv_output_shape``)."""
    if length is None:
        return None
    if stride < 1 or window < 1 or dilation < 1:
        raise Unknown
    if padding == "valid":
        out = (length - ((window - 1) * dilation + 1)) // stride + 1
    else:
        out = (length - 1) // stride + 1
    if out < 0:
        raise Unknown
    return out


def _transposed(length: Dim, window: int, stride: int, padding: str, output_padding: int | None,
                dilation: int) -> Dim:
    """A transposed convolution's output length (``deconv_output_length``)."""
    if length is None:
        return None
    window = window + (window - 1) * (dilation - 1)
    if output_padding is None:
        return length * stride + max(window - stride, 0) if padding == "valid" else length * stride
    pad = window // 2 if padding == "same" else 0
    return (length - 1) * stride + window - 2 * pad + output_padding


def _spatial(shape: Shape, rank: int, channels_first: bool) -> tuple[Dim, list[Dim], Dim]:
    """``(batch, spatial dims, channels)`` of an input of ``rank`` spatial dimensions."""
    _rank(shape, rank + 2)
    if channels_first:
        return shape[0], list(shape[2:]), shape[1]
    return shape[0], list(shape[1:-1]), shape[-1]


def _assemble(batch: Dim, spatial: Sequence[Dim], channels: Dim, channels_first: bool) -> Shape:
    return (batch, channels, *spatial) if channels_first else (batch, *spatial, channels)


def _conv(rank: int, kind: str = "conv") -> ShapeFunction:
    """Conv, SeparableConv, DepthwiseConv and ConvTranspose of ``rank`` spatial dimensions."""

    def output(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
        first = _channels_first(config)
        batch, spatial, channels = _spatial(_one(inputs), rank, first)
        kernel = _ints(config.get("kernel_size"), rank)
        strides = _ints(config.get("strides", 1), rank)
        dilation = _ints(config.get("dilation_rate", 1), rank)
        if kind == "transpose":
            padding = _padding(config)
            found = config.get("output_padding")
            output_padding = (None,) * rank if found is None else _ints(found, rank)
            lengths = [_transposed(length, kernel[axis], strides[axis], padding, output_padding[axis], dilation[axis])
                       for axis, length in enumerate(spatial)]
        else:
            padding = _padding(config, ("valid", "same", "causal") if rank == 1 else ("valid", "same"))
            lengths = [_sliding(length, kernel[axis], strides[axis], padding, dilation[axis])
                       for axis, length in enumerate(spatial)]
        if kind == "depthwise":
            multiplier = _int(config.get("depth_multiplier", 1))
            out_channels = None if channels is None else channels * multiplier
        else:
            out_channels = _int(config.get("filters"))
        return [_assemble(batch, lengths, out_channels, first)]

    return output


def _pooling(rank: int) -> ShapeFunction:
    def output(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
        first = _channels_first(config)
        batch, spatial, channels = _spatial(_one(inputs), rank, first)
        pool = _ints(config.get("pool_size", 2), rank)
        found = config.get("strides")
        strides = pool if found is None else _ints(found, rank)
        padding = _padding(config)
        lengths = [_sliding(length, pool[axis], strides[axis], padding) for axis, length in enumerate(spatial)]
        return [_assemble(batch, lengths, channels, first)]

    return output


def _global_pooling(rank: int) -> ShapeFunction:
    def output(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
        first = _channels_first(config)
        batch, spatial, channels = _spatial(_one(inputs), rank, first)
        keepdims = config.get("keepdims", False)
        if keepdims is True:
            return [_assemble(batch, [1] * len(spatial), channels, first)]
        if keepdims is not False:
            raise Unknown
        return [(batch, channels)]

    return output


def _padding_layer(rank: int, crop: bool) -> ShapeFunction:
    """ZeroPadding and Cropping of ``rank`` spatial dimensions (1D has no data_format: channels last)."""

    def output(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
        first = _channels_first(config) if rank > 1 else False
        batch, spatial, channels = _spatial(_one(inputs), rank, first)
        amounts = _pairs(config.get("cropping" if crop else "padding", 1), rank)
        lengths: list[Dim] = []
        for length, (before, after) in zip(spatial, amounts):
            if length is None:
                lengths.append(None)
            elif crop:
                if before + after >= length:
                    raise Unknown
                lengths.append(length - before - after)
            else:
                lengths.append(length + before + after)
        return [_assemble(batch, lengths, channels, first)]

    return output


def _upsampling(rank: int) -> ShapeFunction:
    def output(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
        first = _channels_first(config) if rank > 1 else False
        batch, spatial, channels = _spatial(_one(inputs), rank, first)
        size = _ints(config.get("size", 2), rank)
        lengths = [None if length is None else length * size[axis] for axis, length in enumerate(spatial)]
        return [_assemble(batch, lengths, channels, first)]

    return output


def _same(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    first = _all(inputs[:1])
    return first


def _dense(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shape = _one(inputs)
    if not shape:
        raise Unknown
    return [(*shape[:-1], _int(config.get("units")))]


def _flatten(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shape = _one(inputs)
    if not shape:
        raise Unknown
    rest = shape[1:]
    if not rest:
        return [(shape[0], 1)]
    if any(dim is None for dim in rest):
        return [(shape[0], None)]
    return [(shape[0], math.prod(dim for dim in rest if dim is not None))]


def _reshape(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shape = _one(inputs)
    target = config.get("target_shape")
    if not shape or not isinstance(target, (list, tuple)) or len(target) > MAX_RANK:
        raise Unknown
    wanted = [-1 if dim == -1 else _int(dim) for dim in target]
    rest = shape[1:]
    if wanted.count(-1) > 1:
        raise Unknown
    if None in rest:
        return [(shape[0], *(None if dim == -1 else dim for dim in wanted))]
    size = math.prod(dim for dim in rest if dim is not None)
    known = math.prod(dim for dim in wanted if dim != -1)
    if -1 not in wanted:
        if known != size:
            raise Unknown
        return [(shape[0], *wanted)]
    if known == 0 or size % known:
        raise Unknown
    return [(shape[0], *(size // known if dim == -1 else dim for dim in wanted))]


def _permute(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shape = _one(inputs)
    dims = config.get("dims")
    if not isinstance(dims, (list, tuple)) or sorted(_int(dim) for dim in dims) != list(range(1, len(shape))):
        raise Unknown
    return [(shape[0], *(shape[dim] for dim in dims))]


def _repeat_vector(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shape = _rank(_one(inputs), 2)
    return [(shape[0], _int(config.get("n")), shape[1])]


def _embedding(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    return [(*_one(inputs), _int(config.get("output_dim")))]


def _recurrent(states: int) -> ShapeFunction:
    """SimpleRNN, GRU (one state) and LSTM (two states): Keras' ``RNN.compute_output_shape``."""

    def output(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
        shape = _rank(_all(inputs[:1])[0], 3)
        units = _int(config.get("units"))
        sequences, state = config.get("return_sequences", False), config.get("return_state", False)
        if not isinstance(sequences, bool) or not isinstance(state, bool):
            raise Unknown
        out: Shape = (shape[0], shape[1], units) if sequences else (shape[0], units)
        return [out, *[(shape[0], units)] * states] if state else [out]

    return output


def _wrapped(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The class and config of the layer a wrapper holds."""
    inner = config.get("layer")
    if not isinstance(inner, dict) or not isinstance(inner.get("class_name"), str):
        raise Unknown
    inner_config = inner.get("config")
    if not isinstance(inner_config, dict):
        raise Unknown
    return inner["class_name"], inner_config


def _bidirectional(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    class_name, inner = _wrapped(config)
    forward = _apply(class_name, inner, inputs[:1], depth + 1)
    output, states = forward[0], forward[1:]
    merge = config.get("merge_mode", "concat")
    if merge == "concat":
        if not output or output[-1] is None:
            merged: list[Shape] = [(*output[:-1], None)] if output else []
            if not merged:
                raise Unknown
        else:
            merged = [(*output[:-1], output[-1] * 2)]
    elif merge in ("sum", "mul", "ave"):
        merged = [output]
    elif merge is None:
        merged = [output, output]
    else:
        raise Unknown
    return [*merged, *states, *states]


def _time_distributed(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shape = _one(inputs)
    if len(shape) < 3:
        raise Unknown
    class_name, inner = _wrapped(config)
    outputs = _apply(class_name, inner, [(shape[0], *shape[2:])], depth + 1)
    if len(outputs) != 1 or not outputs[0]:
        raise Unknown
    return [(outputs[0][0], shape[1], *outputs[0][1:])]


def _broadcast(first: Shape | None, second: Shape | None) -> Shape | None:
    """Keras' ``Merge._compute_elemwise_op_output_shape`` (shapes without their batch dimension)."""
    if first is None or second is None:
        return None
    if len(first) < len(second):
        first, second = second, first
    if not second:
        return first
    out = list(first[: len(first) - len(second)])
    for left, right in zip(first[len(first) - len(second):], second):
        if left is None or right is None:
            out.append(None)
        elif left == 1:
            out.append(right)
        elif right == 1 or left == right:
            out.append(left)
        else:
            raise Unknown
    return tuple(out)


def _elementwise(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shapes = _all(inputs, 2)
    if any(not shape for shape in shapes):
        raise Unknown
    merged: Shape | None = shapes[0][1:]
    for shape in shapes[1:]:
        merged = _broadcast(merged, shape[1:])
    if merged is None:
        raise Unknown
    batches = {shape[0] for shape in shapes} - {None}
    return [((batches.pop() if len(batches) == 1 else None), *merged)]


def _subtract(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    if len(inputs) != 2:
        raise Unknown
    return _elementwise(config, inputs, depth)


def _concatenate(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shapes = _all(inputs, 1)
    axis = config.get("axis", -1)
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise Unknown
    rank = len(shapes[0])
    if any(len(shape) != rank for shape in shapes) or not -rank <= axis < rank:
        raise Unknown
    out = list(shapes[0])
    for shape in shapes[1:]:
        if out[axis] is None or shape[axis] is None:
            out[axis] = None
            break
        out[axis] = (out[axis] or 0) + (shape[axis] or 0)
    return [tuple(out)]


def _dot(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    shapes = _all(inputs, 2)
    if len(shapes) != 2:
        raise Unknown
    first, second = list(shapes[0]), list(shapes[1])
    axes = config.get("axes")
    if isinstance(axes, int) and not isinstance(axes, bool):
        pair = [axes % len(first), axes % len(second)] if axes < 0 else [axes, axes]
    elif isinstance(axes, (list, tuple)) and len(axes) == 2 and all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        pair = list(axes)
    else:
        raise Unknown
    if not first or len(second) < 2 or not all(0 <= a < len(s) for a, s in zip(pair, (first, second))):
        raise Unknown
    first.pop(pair[0])
    second.pop(pair[1])
    second.pop(0)
    out = first + second
    return [tuple(out + [1] if len(out) == 1 else out)]


_EINSUM = re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)")


def _einsum_dense(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    """EinsumDense without an ellipsis: the batch dimension, then ``output_shape`` as configured."""
    shape = _one(inputs)
    equation = config.get("equation")
    match = _EINSUM.fullmatch(equation) if isinstance(equation, str) else None
    if match is None or len(match.group(1)) != len(shape) or not shape:
        raise Unknown
    wanted = config.get("output_shape")
    dims = [wanted] if isinstance(wanted, int) and not isinstance(wanted, bool) else wanted
    if not isinstance(dims, (list, tuple)) or len(dims) + 1 != len(match.group(3)):
        raise Unknown
    return [(shape[0], *(None if dim is None else _int(dim) for dim in dims))]


def _multi_head_attention(config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    query = _all(inputs[:1])[0]
    if not query:
        raise Unknown
    wanted = config.get("output_shape")
    if wanted is None:
        return [query]
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        return [(*query[:-1], _int(wanted))]
    if isinstance(wanted, (list, tuple)):
        return [(*query[:-1], *(_int(dim) for dim in wanted))]
    raise Unknown


SHAPE_PRESERVING = (
    "Activation", "ActivityRegularization", "AlphaDropout", "BatchNormalization", "Dropout", "ELU", "GaussianDropout",
    "GaussianNoise", "GroupNormalization", "Identity", "LayerNormalization", "LeakyReLU", "Masking", "Normalization",
    "PReLU", "ReLU", "Rescaling", "Softmax", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "ThresholdedReLU", "UnitNormalization", "SyncBatchNormalization", "RandomFlip", "RandomRotation",
    "RandomContrast", "RandomBrightness", "RandomTranslation", "RandomZoom",
)
"""Classes whose output has the shape of their (first) input."""

SHAPE_FUNCTIONS: dict[str, ShapeFunction] = {
    **dict.fromkeys(SHAPE_PRESERVING, _same),
    "Dense": _dense,
    "EinsumDense": _einsum_dense,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Permute": _permute,
    "RepeatVector": _repeat_vector,
    "Embedding": _embedding,
    "SimpleRNN": _recurrent(1),
    "GRU": _recurrent(1),
    "LSTM": _recurrent(2),
    "CuDNNGRU": _recurrent(1),
    "CuDNNLSTM": _recurrent(2),
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
    "Add": _elementwise,
    "Multiply": _elementwise,
    "Average": _elementwise,
    "Maximum": _elementwise,
    "Minimum": _elementwise,
    "Subtract": _subtract,
    "Concatenate": _concatenate,
    "Dot": _dot,
    "MultiHeadAttention": _multi_head_attention,
    **{f"Conv{rank}D": _conv(rank) for rank in (1, 2, 3)},
    **{f"Convolution{rank}D": _conv(rank) for rank in (1, 2, 3)},
    **{f"Conv{rank}DTranspose": _conv(rank, "transpose") for rank in (1, 2, 3)},
    **{f"Convolution{rank}DTranspose": _conv(rank, "transpose") for rank in (2, 3)},
    **{f"SeparableConv{rank}D": _conv(rank) for rank in (1, 2)},
    **{f"SeparableConvolution{rank}D": _conv(rank) for rank in (1, 2)},
    **{f"DepthwiseConv{rank}D": _conv(rank, "depthwise") for rank in (1, 2)},
    **{f"{kind}Pooling{rank}D": _pooling(rank) for kind in ("Max", "Average") for rank in (1, 2, 3)},
    **{f"{kind}Pool{rank}D": _pooling(rank) for kind in ("Max", "Avg") for rank in (1, 2, 3)},
    **{f"Global{kind}Pooling{rank}D": _global_pooling(rank) for kind in ("Max", "Average") for rank in (1, 2, 3)},
    **{f"Global{kind}Pool{rank}D": _global_pooling(rank) for kind in ("Max", "Avg") for rank in (1, 2, 3)},
    **{f"ZeroPadding{rank}D": _padding_layer(rank, crop=False) for rank in (1, 2, 3)},
    **{f"Cropping{rank}D": _padding_layer(rank, crop=True) for rank in (1, 2, 3)},
    **{f"UpSampling{rank}D": _upsampling(rank) for rank in (1, 2, 3)},
}
"""The output-shape function of each supported class (Keras 2 aliases included)."""


def _apply(class_name: str, config: dict[str, Any], inputs: list[Shape | None], depth: int) -> list[Shape]:
    function = SHAPE_FUNCTIONS.get(class_name)
    if function is None or depth > MAX_WRAPPER_DEPTH:
        raise Unknown
    return function(config, inputs, depth)


def output_shapes(class_name: str, config: dict[str, Any], inputs: list[Shape | None]) -> list[Shape] | None:
    """The shape of each output tensor of a layer of ``class_name`` with ``config`` called on tensors of the
    shapes ``inputs`` (positional, in order), or None when that is unknown."""
    if any(shape is not None and len(shape) > MAX_RANK for shape in inputs):
        return None
    try:
        shapes = _apply(class_name, config, inputs, 0)
    except (Unknown, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, OverflowError):
        return None
    if any(dim is not None and not 0 <= dim <= MAX_DIMENSION for shape in shapes for dim in shape):
        return None
    return shapes
