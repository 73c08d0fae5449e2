"""How ``--format json`` is laid out: indented down to the layers, then one line per layer.

Static path only: no TensorFlow/Keras import here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from cli_command import keras_share_command
from hypothesis import given
from hypothesis import strategies as st

from keras_share.render.json_format import OUTLINE_DEPTH, dumps_outlined

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


def _json_output(path: Path) -> str:
    proc = subprocess.run([*keras_share_command(), "inspect", "--fail-on", "never", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout


def _depth(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // 2


@given(json_values, st.integers(min_value=0, max_value=5))
def test_outlined_json_reads_back_as_the_same_value(value: Any, depth: int) -> None:
    assert json.loads(dumps_outlined(value, depth)) == value


@given(json_values, st.integers(min_value=0, max_value=5))
def test_outlined_json_is_never_indented_deeper_than_its_depth(value: Any, depth: int) -> None:
    assert all(_depth(line) <= depth for line in dumps_outlined(value, depth).splitlines())


def test_each_layer_of_the_json_report_is_one_line() -> None:
    text = _json_output(SAMPLES / "nested_encoder.keras")
    layers = json.loads(text)["models"][0]["layers"]
    lines = text.splitlines()
    start = lines.index('      "layers": [') + 1
    block = lines[start:lines.index("      ],", start)]
    assert all(_depth(line) == OUTLINE_DEPTH for line in block)
    assert [json.loads(line.strip().rstrip(",")) for line in block] == layers


def test_json_report_is_indented_above_the_layers() -> None:
    lines = _json_output(SAMPLES / "nested_encoder.keras").splitlines()
    assert lines[0] == "{" and lines[1] == '  "schema_version": 1,'
    assert '      "layers": [' in lines
