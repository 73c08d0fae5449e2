"""Random functional graphs built with Keras 3: keras-share's report must match the loaded model.

A hypothesis strategy draws a pure-data description of a model (``ModelSpec``): 1-3 inputs, a
pool of layers (Dense with fixed units, Add and Concatenate over lists, MultiHeadAttention
called with keyword tensors in several styles, nested functional models built from the same
primitives up to 3 levels deep and called 1-3 times), calls that reuse pool layers at random
(sharing), trainable flags (frozen models, frozen layers, layers re-enabled inside a frozen
model), and layer names that either carry their model's prefix or repeat across nested models
(Keras only asks for unique names within one model). The test builds it,
saves it as ``.keras`` (and, for a drawn fraction, ``.h5``), loads the file back with Keras 3 and
runs ``assert_static_matches_live``. ``--hypothesis-show-statistics`` prints how often nesting
depths, reuse, freezing and each format were reached.

Shapes: every tensor is ``(batch, length, 4)``. Dense, MultiHeadAttention and nested models keep
the feature size 4; Concatenate joins along the length axis. Top-level inputs have lengths 2 or
3; a nested model's inputs have length None and its tensor lengths are tracked as multiples of
its input length, so every drawn call is valid for Keras.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config_rewrite import rewrite_keras
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from live_truth import assert_static_matches_live, load_model

FEATURES = 4
TOP_MAX_LENGTH = 12
NESTED_MAX_FACTOR = 3
MAX_DEPTH = 3
"""Nested models below the top model: top -> level 1 -> level 2 -> level 3."""

MHA_STYLES = ("kw", "kw_reversed", "mixed", "positional")


@dataclass(frozen=True)
class LayerSpec:
    kind: str
    """``dense``, ``add``, ``concat``, ``mha`` or ``model``."""
    name: str
    sub: ModelSpec | None = None
    set_trainable: bool | None = None
    """Set on the layer after its model's own flag (None: leave it)."""


@dataclass(frozen=True)
class CallSpec:
    layer: int
    args: tuple[int, ...]
    """Tensor indices: inputs first, then the outputs of earlier calls in order."""
    style: str = "positional"
    """For MultiHeadAttention: how query/value/key are passed."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_lengths: tuple[int | None, ...]
    layers: tuple[LayerSpec, ...]
    calls: tuple[CallSpec, ...]
    outputs: tuple[int, ...]
    output_factors: tuple[int, ...]
    """Output lengths as multiples of the input length (nested models only)."""
    frozen: bool = False
    plain_names: bool = False

    def nested(self) -> list[ModelSpec]:
        return [layer.sub for layer in self.layers if layer.sub is not None]


def _lengths_of_call(spec_layer: LayerSpec, call_args: list[int]) -> list[int]:
    """Output lengths of a call, in the caller's length unit."""
    if spec_layer.kind == "concat":
        return [sum(call_args)]
    if spec_layer.kind == "model":
        assert spec_layer.sub is not None
        return [factor * call_args[0] for factor in spec_layer.sub.output_factors]
    return [call_args[0]]


@st.composite
def model_specs(draw: st.DrawFn, depth: int = 0, prefix: str = "top", plain_names: bool | None = None) -> ModelSpec:
    """One model: the top model at depth 0, a nested model (inputs of unit length) below.

    With ``plain_names`` layers are named ``<kind><index>`` in every model, so names repeat across
    nested models (Keras only requires them unique within one model); otherwise every name
    carries its model's prefix.
    """
    top = depth == 0
    if plain_names is None:
        plain_names = draw(st.booleans())
    n_inputs = draw(st.integers(1, 3))
    input_lengths: tuple[int | None, ...] = (
        tuple(draw(st.lists(st.sampled_from([2, 3]), min_size=n_inputs, max_size=n_inputs))) if top else (None,) * n_inputs
    )
    cap = TOP_MAX_LENGTH if top else NESTED_MAX_FACTOR
    lengths: list[int] = [length or 1 for length in input_lengths]

    n_nested = draw(st.integers(0, 2 if top else 1)) if depth < MAX_DEPTH else 0
    extra = draw(st.lists(st.sampled_from(["dense", "add", "concat", "mha"]), max_size=3))
    pool_kinds = draw(st.permutations(["dense", *extra, *["model"] * n_nested]))
    layers: list[LayerSpec] = []
    for index, kind in enumerate(pool_kinds):
        name = f"{kind}{index}" if plain_names else f"{prefix}_{kind}{index}"
        sub = draw(model_specs(depth + 1, name, plain_names)) if kind == "model" else None
        set_trainable = None if kind == "model" else draw(st.sampled_from([None, None, None, False, True]))
        layers.append(LayerSpec(kind, name, sub, set_trainable))

    calls: list[CallSpec] = []
    # Every pool layer is called at least once (when its inputs can be found), then some again.
    wanted = list(range(len(layers))) + [None] * draw(st.integers(0, 3 if top else 2))
    for want in wanted:
        by_length: dict[int, list[int]] = {}
        for tensor, length in enumerate(lengths):
            by_length.setdefault(length, []).append(tensor)
        feasible = []
        for index, layer in enumerate(layers):
            if layer.kind == "add" and not any(len(group) >= 2 for group in by_length.values()):
                continue
            if layer.kind == "concat" and 2 * min(lengths) > cap:
                continue
            if layer.kind == "model":
                assert layer.sub is not None
                if max(layer.sub.output_factors) * min(lengths) > cap:
                    continue
                if sum(call.layer == index for call in calls) >= 3:
                    continue
            feasible.append(index)
        if want is not None:
            if want not in feasible:
                continue
            feasible = [want]
        index = draw(st.sampled_from(feasible))
        layer = layers[index]
        all_tensors = st.integers(0, len(lengths) - 1)
        style = "positional"
        if layer.kind == "dense":
            args = [draw(all_tensors)]
        elif layer.kind == "add":
            group = draw(st.sampled_from([g for g in by_length.values() if len(g) >= 2]))
            args = draw(st.lists(st.sampled_from(group), min_size=2, max_size=3, unique=True))
        elif layer.kind == "concat":
            args = []
            for _ in range(draw(st.integers(2, 3))):
                room = cap - sum(lengths[a] for a in args)
                choices = [t for t, length in enumerate(lengths) if length <= room]
                if not choices or (len(args) >= 2 and room < min(lengths)):
                    break
                args.append(draw(st.sampled_from(choices)))
            if len(args) < 2:
                args = [args[0], args[0]] if args and 2 * lengths[args[0]] <= cap else [lengths.index(min(lengths))] * 2
        elif layer.kind == "mha":
            query = draw(all_tensors)
            value = draw(all_tensors)
            key = draw(st.none() | st.sampled_from(by_length[lengths[value]]))
            args = [query, value] + ([key] if key is not None else [])
            style = draw(st.sampled_from(MHA_STYLES))
        else:
            assert layer.sub is not None
            biggest = max(layer.sub.output_factors)
            first = draw(st.sampled_from([t for t, length in enumerate(lengths) if biggest * length <= cap]))
            group = by_length[lengths[first]]
            args = [first] + [draw(st.sampled_from(group)) for _ in layer.sub.input_lengths[1:]]
        calls.append(CallSpec(index, tuple(args), style))
        lengths.extend(_lengths_of_call(layer, [lengths[a] for a in args]))

    consumed = {arg for call in calls for arg in call.args}
    outputs = tuple(t for t in range(len(input_lengths), len(lengths)) if t not in consumed)
    return ModelSpec(
        name=prefix,
        plain_names=plain_names,
        input_lengths=input_lengths,
        layers=tuple(layers),
        calls=tuple(calls),
        outputs=outputs,
        output_factors=tuple(lengths[t] for t in outputs),
        frozen=draw(st.sampled_from([False, False, True])),
    )


@dataclass
class Built:
    model: Any
    layers: dict[str, Any] = field(default_factory=dict)


def build(keras: Any, spec: ModelSpec) -> Built:
    """The Keras model a spec describes (flags not applied yet)."""
    built = Built(model=None)
    made: dict[str, Any] = {}
    for layer in spec.layers:
        if layer.kind == "dense":
            made[layer.name] = keras.layers.Dense(FEATURES, name=layer.name)
        elif layer.kind == "add":
            made[layer.name] = keras.layers.Add(name=layer.name)
        elif layer.kind == "concat":
            made[layer.name] = keras.layers.Concatenate(axis=1, name=layer.name)
        elif layer.kind == "mha":
            made[layer.name] = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2, name=layer.name)
        else:
            assert layer.sub is not None
            inner = build(keras, layer.sub)
            made[layer.name] = inner.model
            built.layers.update(inner.layers)
    built.layers.update(made)

    tensors: list[Any] = [
        keras.Input((length, FEATURES), name=f"in{i}" if spec.plain_names else f"{spec.name}_in{i}")
        for i, length in enumerate(spec.input_lengths)
    ]
    for call in spec.calls:
        layer_spec = spec.layers[call.layer]
        layer = made[layer_spec.name]
        args = [tensors[a] for a in call.args]
        if layer_spec.kind == "dense":
            out = layer(args[0])
        elif layer_spec.kind in ("add", "concat"):
            out = layer(args)
        elif layer_spec.kind == "mha":
            out = _call_mha(layer, args, call.style)
        else:
            out = layer(args[0] if len(args) == 1 else args)
        tensors.extend(out if isinstance(out, (list, tuple)) else [out])
    inputs = tensors[: len(spec.input_lengths)]
    outputs = [tensors[t] for t in spec.outputs]
    built.model = keras.Model(
        inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs, name=spec.name
    )
    return built


def _call_mha(mha: Any, args: list[Any], style: str) -> Any:
    query, value, *rest = args
    key = {"key": rest[0]} if rest else {}
    if style == "kw":
        return mha(query=query, value=value, **key)
    if style == "kw_reversed":
        return mha(**key, value=value, query=query)
    if style == "mixed":
        return mha(query, value=value, **key)
    return mha(query, value, *rest)


def apply_flags(built: Built, spec: ModelSpec, model: Any) -> None:
    """The model's own flag first (it propagates), then its layers' flags, then nested models."""
    if spec.frozen:
        model.trainable = False
    for layer in spec.layers:
        if layer.set_trainable is not None:
            built.layers[layer.name].trainable = layer.set_trainable
    for layer in spec.layers:
        if layer.sub is not None:
            apply_flags(built, layer.sub, built.layers[layer.name])


def frozen_inside_nested(keras: Any, model: Any) -> bool:
    """A layer with weights and ``trainable=False`` somewhere inside a nested model."""

    def walk(inner: Any, nested: bool) -> bool:
        for layer in inner.layers:
            if isinstance(layer, keras.Model):
                if walk(layer, True):
                    return True
            elif nested and layer.weights and not layer.trainable:
                return True
        return False

    return walk(model, False)


def _depth(spec: ModelSpec) -> int:
    return 1 + max((_depth(sub) for sub in spec.nested() if _used(spec, sub)), default=0)


def _used(spec: ModelSpec, sub: ModelSpec) -> bool:
    return any(spec.layers[call.layer].sub is sub for call in spec.calls)


def _coverage_events(spec: ModelSpec) -> None:
    """Statistics shown by ``--hypothesis-show-statistics``: is the strategy reaching the cases?"""
    event(f"nesting depth {_depth(spec) - 1}")
    reused = set()
    stack = [spec]
    while stack:
        current = stack.pop()
        counts: dict[int, int] = {}
        for call in current.calls:
            counts[call.layer] = counts.get(call.layer, 0) + 1
        for index, count in counts.items():
            if count > 1:
                reused.add(current.layers[index].kind)
        if current.frozen:
            reused.add("frozen model")
        stack.extend(current.nested())
    for kind in sorted(reused):
        event(f"reused/frozen: {kind}")


def describe(spec: ModelSpec, indent: str = "") -> str:
    """The spec as readable Python-like text, for failure reports."""
    lines = [f"{indent}{spec.name}: inputs {list(spec.input_lengths)} frozen={spec.frozen}"]
    for layer in spec.layers:
        flag = "" if layer.set_trainable is None else f" trainable={layer.set_trainable}"
        lines.append(f"{indent}  {layer.name} ({layer.kind}){flag}")
        if layer.sub is not None:
            lines.append(describe(layer.sub, indent + "    "))
    n_in = len(spec.input_lengths)
    names = [f"in{i}" for i in range(n_in)]
    counter = itertools.count()
    for call in spec.calls:
        layer = spec.layers[call.layer]
        outs = 1 if layer.sub is None else len(layer.sub.outputs)
        new = [f"t{next(counter)}" for _ in range(outs)]
        lines.append(f"{indent}  {', '.join(new)} = {layer.name}({', '.join(names[a] for a in call.args)}) [{call.style}]")
        names.extend(new)
    lines.append(f"{indent}  outputs: {[names[t] for t in spec.outputs]}")
    return "\n".join(lines)


KERAS_H5_FROZEN_NESTED = (
    "Keras 3.15.1 cannot load its own legacy .h5 when a frozen layer inside a nested model changes "
    "the trainable-first weight order between save and load ('Shape mismatch')"
)
KERAS_H5_NAME_CLASH = (
    "Keras 3.15.1 cannot write a legacy .h5 when two layers of one nested-model hierarchy share a "
    "name: their weight paths collide ('name already exists')"
)


def drop_outputs(count: int) -> Callable[[dict[str, Any]], None]:
    """A config edit: the top model's last ``count`` outputs are no longer outputs, so the calls that fed only
    them reach none (the layout a custom layer that does not record all its tensor arguments leaves)."""

    def edit(config: dict[str, Any]) -> None:
        config["config"]["output_layers"] = config["config"]["output_layers"][:-count]

    return edit


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=model_specs(), also_h5=st.sampled_from([False, True, True]), dropped=st.sampled_from([0, 0, 1, 2]))
def test_random_graph_report_matches_loaded_keras3_model(
        keras3: Any, scratch_dir: Path, spec: ModelSpec, also_h5: bool, dropped: int) -> None:
    """With ``dropped``, the .keras file loses some of its top model's outputs after saving (Keras 3 cannot load
    a legacy .h5 whose layers with weights reach no output, so only the .keras file is edited)."""
    _coverage_events(spec)
    dropped = min(dropped, len(spec.outputs) - 1)
    keras3.backend.clear_session()
    built = build(keras3, spec)
    model = built.model
    apply_flags(built, spec, model)
    stem = scratch_dir / uuid.uuid4().hex
    formats = ["keras", "h5"] if also_h5 else ["keras"]
    for fmt in formats:
        path = stem.with_suffix("." + fmt)
        try:
            model.save(str(path))
        except ValueError as error:
            if fmt == "h5" and spec.plain_names and "name already exists" in str(error):
                event(f"skipped .h5: {KERAS_H5_NAME_CLASH}")
                continue
            raise
        if fmt == "keras" and dropped:
            rewrite_keras(path, drop_outputs(dropped))
            event("compared .keras with outputs dropped")
        try:
            loaded = load_model(path, 3)
        except ValueError as error:
            if fmt == "h5" and "Shape mismatch" in str(error) and frozen_inside_nested(keras3, model):
                event(f"skipped .h5: {KERAS_H5_FROZEN_NESTED}")
                continue
            raise
        event(f"compared .{fmt}")
        try:
            assert_static_matches_live(path, loaded, 3)
        except AssertionError as error:
            raise AssertionError(f"{error}\nmodel:\n{describe(spec)}") from None
