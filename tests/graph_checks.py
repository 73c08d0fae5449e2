"""Checks of the graph formats the tests share: Mermaid statement by statement, DOT by Graphviz itself."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

MERMAID_STATEMENT = re.compile(
    r'\s*(flowchart TB|end'
    r'|subgraph m\d+(n\d+)?\["[^"\[\]|`<>%]*"\]'
    r'|m\d+(n\d+|note)\["[^"\[\]|`%]*"\]'
    r'|m\d+n\d+ -->(\|"call \d+( #8594; call \d+)?"\|)? m\d+n\d+'
    r'|m\d+n\d+ -\.-\|"(same layer|tied variable)"\| m\d+n\d+'
    r'|class m\d+n\d+ (shared|frozen|input|finding_(info|warning|error))'
    r'|classDef \w+ [\w#:,.\- ]+)'
)
"""Every statement the Mermaid writer makes; a name in a label is entity-encoded, so it matches ``[^"...]``."""


def assert_valid_mermaid(text: str) -> None:
    """``text`` is one flowchart of statements the writer makes, every subgraph closed, every edge between
    defined boxes."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    bad = [line for line in lines if not MERMAID_STATEMENT.fullmatch(line)]
    assert not bad, bad[:5]
    assert sum(line.strip().startswith("subgraph ") for line in lines) == sum(line.strip() == "end" for line in lines)
    defined = {match.group(1) for match in re.finditer(r"^\s*(?:subgraph )?(m\d+(?:n\d+|note)?)\[", text, re.M)}
    linked = set(re.findall(r"^\s*(m\d+n\d+) -", text, re.M)) | set(re.findall(r"\| (m\d+n\d+)$", text, re.M))
    linked |= set(re.findall(r"--> (m\d+n\d+)$", text, re.M))
    assert linked <= defined


def dot_parses(text: str) -> None:
    """Graphviz reads ``text`` without a complaint (skipped without Graphviz)."""
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    done = subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
