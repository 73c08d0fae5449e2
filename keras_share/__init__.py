"""keras-share: which layers of a saved Keras model share weights, are they frozen, and is this file what you think it is."""

from __future__ import annotations

from keras_share.version import __version__

__all__ = ["__version__", "inspect_file"]


def __getattr__(name: str) -> object:
    # Lazy: ``keras-share --version`` and ``import keras_share`` stay cheap.
    if name == "inspect_file":
        from keras_share.api import inspect_file

        return inspect_file
    if name == "inspect":
        from keras_share.api import inspect

        return inspect
    if name == "testing":
        import importlib

        return importlib.import_module("keras_share.testing")
    raise AttributeError(name)
