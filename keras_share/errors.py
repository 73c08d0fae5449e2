"""Errors raised while reading a model file."""

from __future__ import annotations


class ReadError(Exception):
    """A file that cannot be read as a Keras model: the message is one line for the user."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
