"""One entry point shared by the hypothesis fuzz tests and the atheris harness under fuzz/.

Each input is read as a model file (a ``.keras`` zip, an ``.h5`` file, or the unzipped folder form of a
``.keras``), linted, and rendered in one output format, as the command line does. It must give a report
or a ReadError, and neither the output nor the one-line error may hold a line a CI system takes for a
command or a control character: anything else is a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError
from keras_share.pipeline import Pipeline, inspect_file
from keras_share.read.base import CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER
from keras_share.render.base import Formatter
from keras_share.render.escape import error_line
from keras_share.render.github import GithubFormatter
from keras_share.render.json_format import JsonFormatter
from keras_share.render.markdown import MarkdownFormatter
from keras_share.render.sarif import SarifFormatter
from keras_share.render.terminal import TerminalFormatter

FUZZ_TIMEOUT_SECONDS = 10.0

OUTPUTS: dict[str, Callable[[], Formatter]] = {
    "rich": TerminalFormatter,
    "rich-all-layers": lambda: TerminalFormatter(all_layers=True),
    "json": JsonFormatter,
    "sarif": SarifFormatter,
    "github": GithubFormatter,
    "markdown": MarkdownFormatter,
}
"""Every ``--format`` (and ``--all-layers``), as the command line builds it for a pipe."""
LAYOUTS = (".keras", ".h5", "folder")
"""How the bytes are saved: a file with that suffix, or the folder form of a ``.keras``."""
FOLDER_MEMBERS = (CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER)
MEMBER_SEPARATOR = b"\n--keras-share-member--\n"
"""Splits the bytes of a folder-form input into its members, in ``FOLDER_MEMBERS`` order; missing ones are absent."""

WORKFLOW_COMMAND = re.compile(r"^\s*(::[A-Za-z-]+|##\[|##vso\[)")
"""The start of a line that GitHub Actions or Azure Pipelines take for a command."""
OWN_ANNOTATION = re.compile(r"^::(error|warning|notice) (file=[^:,\n]*,)?title=[^:,\n]*::[^\n]*$")
"""An annotation as ``--format github`` writes it: its property values escaped, so no raw ``:`` or ``,``."""


class InjectedOutput(AssertionError):
    """Rendered output that holds a CI command line or a control character: a crash for the fuzzer."""


RAW_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
"""A control character (tab and carriage return too), a line or paragraph separator, a bidi control or a lone
surrogate: never printed raw. Written out here, not taken from ``render.escape``, so the check does not trust
the code it checks."""


def injected_lines(text: str, own_annotations: bool = False) -> list[str]:
    """Lines of ``text`` a CI system would take for a command (but keras-share's own annotations when
    ``own_annotations``, the github format), and lines holding a ``RAW_CHARACTER``."""
    return [line for line in text.split("\n")
            if (WORKFLOW_COMMAND.match(line) and not (own_annotations and OWN_ANNOTATION.match(line)))
            or RAW_CHARACTER.search(line)]


def check_rendered(path: str | os.PathLike[str], output: str) -> str:
    """Inspect ``path``, lint it and render it in ``output``: the rendered text, or InjectedOutput when a line
    of it (or of the one-line error) is injected."""
    reports: list[ModelReport] = []
    errors: list[ReadError] = []
    try:
        report = inspect_file(path, timeout=FUZZ_TIMEOUT_SECONDS)
    except ReadError as error:
        errors.append(error)
    else:
        reports.append(Pipeline(timeout=FUZZ_TIMEOUT_SECONDS).finish(report))
    text = OUTPUTS[output]().format(reports, errors)
    stderr = "\n".join(error_line(error.path, error.problem) for error in errors)
    injected = injected_lines(text, own_annotations=output == "github") + injected_lines(stderr)
    if injected:
        raise InjectedOutput(f"--format {output}: {injected[:3]!r}")
    return text


def inspect_bytes(data: bytes, suffix: str, output: str = "json") -> str:
    """Inspect ``data`` saved as a file with ``suffix`` and render it in ``output`` (``check_rendered``)."""
    handle, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        return check_rendered(path, output)
    finally:
        os.unlink(path)


def inspect_folder_bytes(data: bytes, output: str = "json") -> str:
    """Inspect ``data`` split at ``MEMBER_SEPARATOR`` into the files of an unzipped ``.keras`` folder."""
    folder = Path(tempfile.mkdtemp())
    try:
        for name, member in zip(FOLDER_MEMBERS, data.split(MEMBER_SEPARATOR, len(FOLDER_MEMBERS) - 1)):
            (folder / name).write_bytes(member)
        return check_rendered(folder, output)
    finally:
        shutil.rmtree(folder)


def fuzz_one_input(data: bytes) -> None:
    """The atheris target: the first byte picks the layout (``LAYOUTS``), the second the output format
    (``OUTPUTS``), and the rest is the input."""
    if len(data) < 2:
        return
    layout = LAYOUTS[data[0] % len(LAYOUTS)]
    output = list(OUTPUTS)[data[1] % len(OUTPUTS)]
    if layout == "folder":
        inspect_folder_bytes(data[2:], output)
    else:
        inspect_bytes(data[2:], layout, output)


def encode_input(layout: str, output: str, payload: bytes) -> bytes:
    """The fuzz input that ``fuzz_one_input`` reads as ``payload`` in ``layout``, rendered in ``output``."""
    return bytes([LAYOUTS.index(layout), list(OUTPUTS).index(output)]) + payload
