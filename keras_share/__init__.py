"""keras-share: which layers of a saved Keras model share weights, are they frozen, and is this file what you think it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keras_share.version import __version__

if TYPE_CHECKING:  # type checkers see the real functions; at runtime they load on first use (below)
    from keras_share import testing
    from keras_share.api import diff, inspect, inspect_file, to_dict, to_json

__all__ = ["__version__", "diff", "inspect", "inspect_file", "testing", "to_dict", "to_json"]

_API = frozenset({"diff", "inspect", "inspect_file", "to_dict", "to_json"})


def __getattr__(name: str) -> object:
    # Lazy: ``keras-share --version`` and ``import keras_share`` stay cheap.
    if name in _API:
        from keras_share import api

        return getattr(api, name)
    if name == "testing":
        import importlib

        return importlib.import_module("keras_share.testing")
    raise AttributeError(f"module 'keras_share' has no attribute {name!r}")
