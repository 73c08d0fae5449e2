"""Errors raised while reading a model file."""

from __future__ import annotations


class ReadError(Exception):
    """A file that cannot be read as a Keras model: the message is one line for the user."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[ReadError], tuple[str, str]]:
        return (ReadError, (self.path, self.problem))


def describe(error: BaseException) -> str:
    """A short one-line description of a library exception, for inside a ReadError message."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(error).__name__}: {text[:120]}" if text else type(error).__name__
