"""Tensor references inside ``inbound_nodes``, in both schemas (docs/formats.md, "Graph rules the readers share")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from keras_share.graph.model import Shape

CONSTANT_VALUE = "_CONSTANT_VALUE"


@dataclass(frozen=True)
class RawRef:
    """A tensor reference as the file writes it: the node index is not yet normalised."""

    layer: str
    node_index: int
    tensor_index: int
    keyword: str | None
    shape: Shape | None
    dtype: str | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_shape(value: Any) -> Shape | None:
    """A JSON shape (list of ints and nulls) as a tuple, or None when it is not one."""
    if isinstance(value, dict) and isinstance(value.get("items"), list):
        value = value["items"]
    if not isinstance(value, list) or not all(item is None or _is_int(item) for item in value):
        return None
    return tuple(value)


def as_dtype(value: Any) -> str | None:
    """A dtype as a config writes it (``"float32"``, or a ``DTypePolicy`` whose name is one), or None."""
    if isinstance(value, dict):
        inner = value.get("config")
        value = inner.get("name") if isinstance(inner, dict) else None
    return value if isinstance(value, str) else None


def _walk(value: Any) -> Iterator[Any]:
    """Every dict and list inside ``value``, depth first, without recursion."""
    stack = [value]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, dict):
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list):
            stack.extend(reversed(current))


def _keras3_ref(item: dict[str, Any], keyword: str | None) -> RawRef | None:
    """The reference a ``__keras_tensor__`` object makes, or None when its history is malformed."""
    found = item.get("config")
    config: dict[str, Any] = found if isinstance(found, dict) else {}
    history = config.get("keras_history")
    if (
        isinstance(history, list) and len(history) == 3 and isinstance(history[0], str)
        and _is_int(history[1]) and _is_int(history[2])
    ):
        return RawRef(history[0], history[1], history[2], keyword, as_shape(config.get("shape")),
                      as_dtype(config.get("dtype")))
    return None


def _keras3_refs(value: Any, keyword: str | None) -> Iterator[RawRef]:
    """Tensors inside ``value``, depth first; a well-formed tensor's own config is not searched further."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = _keras3_ref(item, keyword) if item.get("class_name") == "__keras_tensor__" else None
            if ref is not None:
                yield ref
            else:
                stack.extend(reversed([child for child in item.values() if isinstance(child, (dict, list))]))
        elif isinstance(item, list):
            stack.extend(reversed([child for child in item if isinstance(child, (dict, list))]))


def _is_keras2_leaf(value: Any) -> bool:
    return (
        isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str)
        and (value[0] == CONSTANT_VALUE or (_is_int(value[1]) and _is_int(value[2])))
        and (len(value) == 3 or isinstance(value[3], dict))
    )


def _keras2_kwarg_refs(kwargs: dict[str, Any]) -> Iterator[RawRef]:
    for keyword, value in kwargs.items():
        for item in _walk(value):
            if _is_keras2_leaf(item) and item[0] != CONSTANT_VALUE:
                yield RawRef(item[0], item[1], item[2], keyword, None)


def _keras2_refs(node: Any) -> Iterator[RawRef]:
    """Leaves ``[name, node, tensor, kwargs]`` of the first argument, then tensors in kwargs."""
    seen_kwargs: dict[RawRef, None] = {}  # an ordered set: each keyword tensor once, in order of appearance
    stack = [node]
    while stack:
        current = stack.pop()
        if _is_keras2_leaf(current):
            if current[0] != CONSTANT_VALUE:
                yield RawRef(current[0], current[1], current[2], None, None)
            if len(current) == 4:
                for ref in _keras2_kwarg_refs(current[3]):
                    seen_kwargs.setdefault(ref, None)
        elif isinstance(current, list):
            stack.extend(reversed(current))
        elif isinstance(current, dict):
            stack.extend(reversed(list(current.values())))
    yield from seen_kwargs


def io_refs(value: Any) -> list[RawRef]:
    """The ``[name, node_index, tensor_index]`` leaves of an ``input_layers``/``output_layers`` structure."""
    return [RawRef(item[0], item[1], item[2], None, None) for item in _walk(value)
            if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)
            and _is_int(item[1]) and _is_int(item[2])]


def node_refs(node: Any) -> list[RawRef]:
    """Tensor references of one inbound node, positional inputs first, then keyword tensors."""
    if isinstance(node, dict) and ("args" in node or "kwargs" in node):
        refs = list(_keras3_refs(node.get("args", []), None))
        kwargs = node.get("kwargs")
        if isinstance(kwargs, dict):
            for keyword, value in kwargs.items():
                refs.extend(_keras3_refs(value, keyword))
        return refs
    return list(_keras2_refs(node))


def node_training(node: Any) -> bool | None:
    """The ``training`` call argument one inbound node records, or None when it records none: in a Keras 3 node's
    ``kwargs``, or in the kwargs dict a Keras 2 node gives each of its input tensors."""
    if isinstance(node, dict):
        kwargs = node.get("kwargs")
        value = kwargs.get("training") if isinstance(kwargs, dict) else None
        return value if isinstance(value, bool) else None
    for item in _walk(node):
        if _is_keras2_leaf(item) and len(item) == 4 and isinstance(item[3].get("training"), bool):
            return bool(item[3]["training"])
    return None
