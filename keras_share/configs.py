"""Small, format-independent facts about Keras config entries (plain JSON dicts)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from keras_share.vocabulary import LayerKind

_OPS_MODULE_PREFIXES = ("keras.src.ops", "keras.ops")

WEIGHTED_CLASSES = frozenset({
    "Dense", "EinsumDense", "Embedding", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "BatchNormalization", "LayerNormalization", "MultiHeadAttention", "LSTM", "GRU", "SimpleRNN",
    "Bidirectional", "PReLU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
})
"""Classes that always create variables once built."""

_KERNEL_BIAS = ("kernel", "bias")
_VARIABLE_NAMES: dict[str, tuple[str, ...]] = {
    "Dense": _KERNEL_BIAS,
    "EinsumDense": _KERNEL_BIAS,
    "Conv1D": _KERNEL_BIAS,
    "Conv2D": _KERNEL_BIAS,
    "Conv3D": _KERNEL_BIAS,
    "Conv1DTranspose": _KERNEL_BIAS,
    "Conv2DTranspose": _KERNEL_BIAS,
    "Conv3DTranspose": _KERNEL_BIAS,
    "DepthwiseConv1D": ("depthwise_kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "SeparableConv1D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "Embedding": ("embeddings",),
    "PReLU": ("alpha",),
    "LayerNormalization": ("gamma", "beta"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def expected_variable_names(class_name: str, config: dict[str, Any]) -> list[str] | None:
    """The variables a built layer of a known class creates, in ``save_own_variables`` order, from its inner
    ``config``; None for a class whose variables keras-share does not know."""
    if class_name not in _VARIABLE_NAMES:
        return None
    names = list(_VARIABLE_NAMES[class_name])
    if class_name == "BatchNormalization":
        if config.get("scale") is False:
            names.remove("gamma")
        if config.get("center") is False:
            names.remove("beta")
    elif "bias" in names and config.get("use_bias") is False:
        names.remove("bias")
    return names


def entry_config(entry: Any) -> dict[str, Any]:
    """The inner ``config`` dict of a serialized object, or an empty dict."""
    if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
        return entry["config"]
    return {}


def entry_name(entry: Any) -> str:
    """A layer entry's name: the graph-level ``name`` key, else the config's ``name``."""
    if isinstance(entry, dict):
        name = entry.get("name")
        if isinstance(name, str):
            return name
    name = entry_config(entry).get("name")
    return name if isinstance(name, str) else ""


def class_name(entry: Any) -> str:
    """The entry's ``class_name`` (empty when absent or not a string)."""
    name = entry.get("class_name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) else ""


def layer_entries(entry: Any) -> list[dict[str, Any]] | None:
    """The ``layers`` list of a Functional or Sequential config, or None for any other entry.

    Keras before 2.2 wrote a Sequential config as the bare list of its layers.
    """
    raw = entry.get("config") if isinstance(entry, dict) else None
    layers = raw if isinstance(raw, list) else entry_config(entry).get("layers")
    if isinstance(layers, list) and all(isinstance(item, dict) and "class_name" in item for item in layers):
        return layers
    return None


def model_kind(entry: Any) -> LayerKind | None:
    """``FUNCTIONAL`` or ``SEQUENTIAL`` when the entry holds a layer graph, else None."""
    if layer_entries(entry) is None:
        return None
    config = entry_config(entry)
    if "input_layers" in config or "output_layers" in config:
        return LayerKind.FUNCTIONAL
    return LayerKind.SEQUENTIAL


def is_op(entry: Any) -> bool:
    """True for raw ops (``x + y``, ``keras.ops.*``) that Keras 3 puts in a graph: no weights."""
    module = entry.get("module") if isinstance(entry, dict) else None
    return isinstance(module, str) and module.startswith(_OPS_MODULE_PREFIXES)


def is_input_layer(entry: Any) -> bool:
    """True for ``InputLayer`` entries."""
    return class_name(entry) == "InputLayer"


def trainable_flag(entry: Any) -> bool:
    """The entry's own recorded ``trainable`` flag (True when absent)."""
    flag = entry_config(entry).get("trainable", True)
    return flag if isinstance(flag, bool) else True


LAMBDA_CLASS_NAME = "__lambda__"
"""Keras 3's (and tf_keras's new format's) class name for a serialized lambda: its config holds marshalled code."""
MAX_BYTECODE_SITES = 100
"""Places listed per config; one is enough to refuse loading a file."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _location(parents: list[int], keys: list[Any], index: int, last: str | None) -> str:
    """The keys from the nearest layer config (or the top) down to container ``index``, then ``last``."""
    path: list[Any] = [] if last is None else [last]
    while index >= 0 and keys[index] is not None:
        path.append(keys[index])
        index = parents[index]
    path.reverse()
    if len(path) > 16:
        path = path[:6] + [...] + path[-8:]
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif key is ...:
            text += "..."
        else:
            shown = key if _IDENTIFIER.fullmatch(str(key)) else json.dumps(str(key))
            text += f".{shown}" if text and not text.endswith("...") else shown
    return text


def text_may_hold_bytecode(text: str | bytes) -> bool:
    """False only when the JSON ``text`` cannot decode to a config holding a serialized function: it has no
    ``lambda`` (in ``"lambda"`` and ``"__lambda__"``), no ``"function"`` and no ``\\u`` escape (the one way to
    spell those otherwise)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return b"lambda" in data or b'"function"' in data or b"\\u" in data


def _walk(value: Any, owners: Mapping[int, str], owner_key: Callable[[Any], int], top: str,
          ) -> Iterator[tuple[Any, str, Callable[[str | None], str]]]:
    """Every dict and list in a config's JSON ``value``, in document order, with the layer that holds it and its
    location: a function of the key below it (``_location``). A node is a layer's when ``owners`` maps its
    ``owner_key`` to a path (``top`` outside every one); locations start there. Iterative: each value once."""
    parents: list[int] = []
    keys: list[Any] = []
    stack: list[tuple[Any, int, Any, str]] = [(value, -1, None, top)]
    while stack:
        node, parent, key, layer = stack.pop()
        here = len(parents)
        owner = owners.get(owner_key(node))
        if owner is not None:
            layer, parent, key = owner, -1, None
        parents.append(parent)
        keys.append(key)
        yield node, layer, functools.partial(_location, parents, keys, here)
        if isinstance(node, dict):
            children = [(item, here, name, layer) for name, item in node.items() if isinstance(item, (dict, list))]
        elif isinstance(node, list):
            children = [(item, here, index, layer) for index, item in enumerate(node) if isinstance(item, (dict, list))]
        else:
            children = []
        children.reverse()
        stack.extend(children)


def _config_of(node: Any) -> int:
    """``id()`` of a layer entry's ``config`` (0 for anything else): how ``module_references`` finds owners."""
    return id(node.get("config")) if isinstance(node, dict) else 0


def bytecode_sites(value: Any, layer_of: Mapping[int, str] | None = None, top: str = "",
                   limit: int = MAX_BYTECODE_SITES) -> list[tuple[str, str]]:
    """``(layer, location)`` of each serialized Python function in a config's JSON ``value``, at any depth, in
    document order; at most ``limit``.

    Found by how Keras serializes a function, whatever class holds it (a Lambda, a wrapper's inner layer, a
    nested model, a cell wrapper): a ``{"class_name": "__lambda__"}`` object (Keras 3, tf_keras's new format),
    an ``X_type: "lambda"`` key beside ``X`` (tf_keras's ``func_dump``: base64 text or a
    ``[code, defaults, closure]`` list), and a ``function`` list starting with a string (which Keras 3 turns
    into a ``__lambda__`` when it loads a legacy Lambda). Nothing is decoded.

    ``layer_of`` maps ``id()`` of each layer's config dict to the layer's path: a site belongs to the innermost
    layer config around it (``top`` outside every one), and its location is the keys from that dict down.
    The walk is iterative and visits each value once.
    """
    found: list[tuple[str, str]] = []
    for node, layer, location in _walk(value, layer_of or {}, id, top):
        if len(found) >= limit:
            break
        if not isinstance(node, dict):
            continue
        kind = node.get("class_name")
        if isinstance(kind, str) and kind == LAMBDA_CLASS_NAME:
            found.append((layer, location(None)))
        named: list[str] = []
        for name, item in node.items():
            if (isinstance(item, str) and item == "lambda" and isinstance(name, str) and name.endswith("_type")
                    and name[:-5] not in named):
                named.append(name[:-5])
            elif (name == "function" and isinstance(item, list) and item and isinstance(item[0], str)
                    and name not in named):
                named.append(name)
        found.extend((layer, location(name)) for name in named)
    return found[:limit]


@functools.lru_cache(maxsize=1024)
def to_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: the group name ``.keras`` derives from a class name (cached: a model
    names a few classes many times)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


KERAS_PACKAGES = frozenset({"keras", "keras_hub", "keras_nlp", "keras_cv", "tf_keras", "tensorflow", "tf"})
"""Top-level packages of the Keras and TensorFlow namespaces: what Keras itself writes as a ``module``."""
BUILTINS_MODULES = frozenset({"builtins", "__builtin__"})
"""Where Keras says a function saved by its name lives (``{"module": "builtins", "class_name": "function",
"config": "relu"}``): Keras looks the name up among its own functions, then (before 3.9) in Python's builtins."""
UNSAFE_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "breakpoint", "input", "exit", "quit", "help",
})
"""Python builtins that run code, reach any object or touch files or the terminal."""
UNSAFE_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "importlib", "imp", "pkgutil", "runpy", "code", "codeop", "pickle",
    "_pickle", "cPickle", "shelve", "marshal", "dill", "cloudpickle", "joblib", "ctypes", "multiprocessing", "pty",
    "shutil", "socket", "http", "urllib", "urllib3", "requests", "ftplib", "smtplib", "telnetlib", "webbrowser",
    "tempfile", "io", "pathlib", "glob", "platform", "commands", "popen2", "asyncio", "pdb", "bdb", "operator",
    "functools", "gc", "atexit", "site", "zipimport", "timeit", "trace", "cProfile", "profile",
})
"""Top-level modules whose import or whose functions run commands or code, import or unpickle other code, or
reach files or the network: no model config has a reason to name them."""
UNSAFE_KERAS_FUNCTIONS = frozenset({
    "enable_unsafe_deserialization", "get_file", "load_model", "model_from_json", "load_weights", "save_model",
    "save_weights", "save_img", "deserialize_keras_object", "register_keras_serializable",
})
"""Keras functions that are not modelling code (Keras's ``NON_MODELING_APIS``): they turn safe mode off, fetch
or write files, or load other models. Keras 3.12+ refuses them in a config; earlier versions call them."""
MAX_MODULE_REFERENCES = 100
"""Unsafe or custom references listed per config; one unsafe one is enough to refuse a file."""
_NAME_KEYS = ("class_name", "registered_name", "spec_name")
"""Keys naming the object a ``module`` key's module is searched for (``_retrieve_class_or_fn``)."""
_DOTTED_KEYS = ("class_name", "registered_name", "fn")
"""Keys whose string value, written as ``package.module.name``, would name an object by its module. (A
``function`` string is not one: a Lambda looks it up by name, a TFOpLambda in the TensorFlow namespace.)"""
_LAMBDA_MODULE_KEYS = (("output_shape_module", "output_shape"), ("mask_module", "mask"))
"""A tf_keras Lambda's other ``X_module`` keys, beside ``module``: the module whose globals ``X`` sees."""


_MODULE_VALUE = re.compile(rb'"module"\s*:\s*(null|"[^"]*")')


@functools.cache
def _suspect_values() -> tuple[re.Pattern[bytes], ...]:
    """A dotted name under ``_DOTTED_KEYS``, or an unsafe builtin or Keras function given as the name beside a
    ``module``: one pattern per key, each with a literal prefix (which ``re`` searches for quickly). Compiled on
    first use: the reader child, which never checks a config, does not pay for them."""
    unsafe_names = b"|".join(name.encode() for name in sorted(UNSAFE_BUILTINS | UNSAFE_KERAS_FUNCTIONS))
    return tuple(
        re.compile(b'"' + key.encode() + rb'"\s*:\s*"(?:' + b"|".join(
            ([rb'[^"]*\.'] if key in _DOTTED_KEYS else []) + ([b"(?:" + unsafe_names + b')"'] if key != "fn" else [])
        ) + b")")
        for key in ("config", "function", *_NAME_KEYS, "fn"))


def text_may_name_module(text: str | bytes) -> bool:
    """False only when the JSON ``text`` cannot decode to a config in which ``module_references`` finds anything:
    every ``module`` value is a plain string in Keras's namespaces or ``builtins``, and the text has no dotted
    ``class_name``, ``registered_name`` or ``fn``, no ``X_module`` key, no unsafe builtin or Keras function name
    as a string, and no ``\\u`` escape (the one way to spell any of these otherwise). Substring and
    literal-prefixed searches, much cheaper than walking the parsed config."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b'_module"' in data or b"\\u" in data:
        return True
    if any(pattern.search(data) for pattern in _suspect_values()):
        return True
    for value in set(_MODULE_VALUE.findall(data)):
        top = value[1:-1].split(b".", 1)[0].decode("utf-8", "replace")
        if value == b"null" or b"\\" in value or top not in KERAS_PACKAGES | BUILTINS_MODULES:
            return True
    return False


def reference_kind(module: str, name: str) -> str | None:
    """``"unsafe"`` for a reference to a module (and object) that can run code on import or call, ``"custom"`` for
    one outside the Keras and TensorFlow namespaces (a user's package, ``__main__``), None for Keras's own."""
    top = module.split(".", 1)[0]
    if top in UNSAFE_MODULES or (top in BUILTINS_MODULES and name in UNSAFE_BUILTINS):
        return "unsafe"
    if top in KERAS_PACKAGES:
        return "unsafe" if name in UNSAFE_KERAS_FUNCTIONS else None
    return None if top in BUILTINS_MODULES else "custom"


def _references_of(node: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, module, name)`` of each reference a config dict makes: its ``module`` with the names beside it (or
    a Lambda's ``function``), a Lambda's other ``X_module`` keys with ``X``, and dotted names under
    ``_DOTTED_KEYS`` that point into an unsafe module."""
    found: list[tuple[str, str, str]] = []
    module = node.get("module")
    if isinstance(module, str):
        inner, function = node.get("config"), node.get("function")
        names = [inner] if node.get("class_name") == "function" and isinstance(inner, str) else []
        names += [function] if isinstance(function, str) else []
        names += [value for key in _NAME_KEYS if isinstance(value := node.get(key), str) and ">" not in value]
        unsafe = [name for name in names if reference_kind(module, name) == "unsafe"]
        found.append(("module", module, (unsafe or names or [""])[0]))
    elif "module" in node and module is None and isinstance(node.get("class_name"), str):
        registered = node.get("registered_name")  # a registered custom object: looked up, never imported
        found.append(("module", "", registered if isinstance(registered, str) else node["class_name"]))
    for key, named in _LAMBDA_MODULE_KEYS:
        value = node.get(key)
        if isinstance(value, str):
            target = node.get(named)
            found.append((key, value, target if isinstance(target, str) else ""))
    for key in _DOTTED_KEYS:
        value = node.get(key)
        if isinstance(value, str) and "." in value.strip("."):
            dotted, _, name = value.rpartition(".")
            if reference_kind(dotted, name) == "unsafe":
                found.append((key, dotted, name))
    return found


def module_references(value: Any, layer_of: Mapping[int, str] | None = None, top: str = "",
                      limit: int = MAX_MODULE_REFERENCES) -> list[tuple[str, str, str, str, str]]:
    """``(kind, layer, location, module, name)`` of each reference in a config's JSON ``value`` to a Python object
    by its module that is not Keras's own (``reference_kind``: ``unsafe`` or ``custom``), at any depth, in document
    order; at most ``limit``. Only class and function references count as custom (not a Lambda's ``module``).

    Keras resolves ``module`` with ``class_name``, ``registered_name`` or (for ``class_name: "function"``) the
    ``config`` string by importing the module and taking the name from it (Keras 3 before 3.9 for any module, even
    in safe mode: CVE-2025-1550; tf_keras's ``.keras`` loader still does). A Lambda's ``module`` and
    ``X_module`` keys name the module whose globals its function sees. Nothing named is imported.

    ``layer_of`` maps ``id()`` of each layer's config dict to the layer's path: a reference belongs to the layer
    whose entry (the dict holding that config) or config holds it, innermost first (``top`` outside every one);
    its location is the keys from that layer's entry down. The walk is iterative and visits each value once.
    """
    found: list[tuple[str, str, str, str, str]] = []
    for node, layer, location in _walk(value, layer_of or {}, _config_of, top):
        if len(found) >= limit:
            break
        if isinstance(node, dict):
            for name, module, target in _references_of(node):
                kind = reference_kind(module, target)
                if kind == "unsafe" or (kind == "custom" and name == "module" and "function" not in node):
                    found.append((kind, layer, location(name), module, target))
    return found[:limit]
