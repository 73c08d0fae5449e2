"""Parse a config's JSON text within the bounds of ``keras_share.limits``, with the same verdict in any process.

The size is checked before parsing (a count of the bytes that open or separate JSON values, at C speed), so
that what the parse builds is bounded; the nesting is checked on what was parsed, without recursion. Python's
own parser stops at the recursion limit, which the caller's stack and other code can move: it is only a
ceiling far above ``MAX_JSON_DEPTH``, and a file is accepted exactly when it nests no deeper than that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from keras_share.errors import ReadError, describe
from keras_share.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_VALUES


class JsonRefused(ValueError):
    """JSON text over a bound of ``keras_share.limits``; the message says which, for after the member's name."""


def json_tokens(text: bytes | str) -> int:
    """How many ``{``, ``[``, ``,`` and ``:`` the text holds: at least its objects, arrays and their items."""
    if isinstance(text, str):
        return sum(text.count(mark) for mark in "{[,:")
    return sum(text.count(mark) for mark in (b"{", b"[", b",", b":"))


def deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value`` (a parsed JSON value), found one
    level at a time without recursion."""
    level, current = 0, [value]
    while current:
        level += 1
        if level > limit:
            return True
        following: list[Any] = []
        keep = following.append
        for item in current:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    keep(child)
        current = following
    return False


def too_deep() -> JsonRefused:
    """The refusal of a value nested deeper than ``MAX_JSON_DEPTH``."""
    return JsonRefused(f"is nested too deeply: more than {MAX_JSON_DEPTH} levels (the limit)")


def load_json(text: bytes | str, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """``json.loads`` of config text (bytes are UTF-8), or JsonRefused when it holds more than ``MAX_JSON_VALUES``
    tokens or nests deeper than ``MAX_JSON_DEPTH`` levels; ValueError (UnicodeDecodeError included) when it is
    not JSON."""
    tokens = json_tokens(text)
    if tokens > MAX_JSON_VALUES:
        raise JsonRefused(f"is too large: {tokens:,} JSON values (limit {MAX_JSON_VALUES:,})")
    try:
        value = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text, object_hook=object_hook)
    except RecursionError:
        raise too_deep() from None
    if isinstance(value, (dict, list)) and deeper_than(value, MAX_JSON_DEPTH):
        raise too_deep()
    return value


def read_json_text(stream: IO[bytes], label: str, what: str) -> bytes:
    """At most ``MAX_JSON_BYTES`` of ``stream``, whatever a header claims; a ReadError naming ``what`` (a member
    or attribute of the file ``label``) when it holds more or cannot be read."""
    try:
        data = stream.read(MAX_JSON_BYTES + 1)
    except OSError as error:
        raise ReadError(label, f"cannot read {what} ({error.strerror or error})") from None
    if len(data) > MAX_JSON_BYTES:
        raise ReadError(label, f"{what} is larger than {MAX_JSON_BYTES >> 20} MiB; refusing to read it")
    return data


def parse_json(text: bytes | str, label: str, what: str) -> Any:
    """``load_json`` of ``what`` in the file ``label``: its refusal, or text that is not JSON, as a ReadError."""
    try:
        return load_json(text)
    except JsonRefused as error:
        raise ReadError(label, f"{what} {error}") from None
    except ValueError as error:
        raise ReadError(label, f"{what} is not valid JSON ({describe(error)})") from None
