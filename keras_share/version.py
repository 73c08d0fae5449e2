"""The version of keras-share (the package metadata reads it from here)."""

__version__ = "0.1.0"
