""""Nothing checked" must not look like a clean pass: a count the file does not give (a subclassed model or a
weights-only file has no layer graph) is unknown, not 0, in every format, and each model's notes (what could not
be read or checked) reach every format: terminal, JSON, Markdown here; SARIF (tool execution notifications) in
tests/test_sarif.py; GitHub (notices) in tests/test_github_format.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from keras_share.analysis.report import ModelReport
from keras_share.pipeline import inspect_file
from keras_share.render.json_format import JsonFormatter
from keras_share.render.markdown import MarkdownFormatter
from keras_share.render.terminal import TerminalFormatter

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


@pytest.fixture(scope="module")
def subclassed() -> ModelReport:
    """A subclassed model: its weights are stored, its layer graph is Python code."""
    return inspect_file(SAMPLES / "subclassed.keras")


@pytest.fixture(scope="module")
def functional() -> ModelReport:
    return inspect_file(SAMPLES / "nested_encoder.keras")


def test_counts_of_a_model_without_a_layer_graph_are_unknown(subclassed: ModelReport) -> None:
    summary = subclassed.summary
    assert (summary.layers, summary.shared_layers, summary.naive_params) == (None, None, None)
    assert summary.unique_params == 81


def test_counts_of_a_weights_only_file_are_unknown() -> None:
    summary = inspect_file(SAMPLES / "k2_weights_only.h5").summary
    assert (summary.layers, summary.shared_layers, summary.naive_params) == (None, None, None)


def test_counts_of_a_model_with_a_layer_graph_are_known(functional: ModelReport) -> None:
    summary = functional.summary
    assert (summary.layers, summary.shared_layers, summary.unique_params, summary.naive_params) == (5, 4, 73, 219)


def test_terminal_shows_unknown_counts_as_unknown(subclassed: ModelReport) -> None:
    text = TerminalFormatter(width=200).format([subclassed], [])
    assert "layers: unknown, shared: unknown, 81 unique params (calls unknown)" in text
    assert "0 layers" not in text and "0 shared" not in text


def test_markdown_shows_unknown_counts_as_unknown(subclassed: ModelReport) -> None:
    text = MarkdownFormatter().format([subclassed], [])
    assert "layers: unknown, shared: unknown, 81 unique params (calls unknown)" in text
    assert "0 layers" not in text


def test_markdown_lists_each_models_notes(subclassed: ModelReport, functional: ModelReport) -> None:
    text = MarkdownFormatter().format([subclassed, functional], [])
    section = text[: text.index("## `", text.index("## `") + 1)]
    lines = section.splitlines()
    notes = lines[lines.index("**Notes** (what could not be read or checked)") + 2:]
    assert any(note.startswith("- Scorer is a subclassed model\\: its architecture lives in Python code")
               for note in notes[:notes.index("")])
    assert text.count("**Notes**") == 1


def test_markdown_notes_are_escaped(functional: ModelReport) -> None:
    report = dataclasses.replace(functional, file=dataclasses.replace(functional.file, notes=["<img src=x> [a](b)"]))
    assert "- \\<img src=x\\> \\[a\\]\\(b\\)" in MarkdownFormatter().format([report], []).splitlines()


def test_json_names_the_unknown_counts_and_writes_them_as_version_1_did(subclassed: ModelReport) -> None:
    model = json.loads(JsonFormatter().format([subclassed], []))["models"][0]
    assert model["summary"] == {"layers": 0, "shared_layers": 0, "unique_params": 81, "naive_params": 81,
                                "optimizer_arrays": 0, "unknown": ["layers", "shared_layers", "naive_params"],
                                "tied_embeddings": None, "in_baseline": 0,
                                "trainable_params": None, "non_trainable_params": None}
    assert any("subclassed model" in note for note in model["notes"])


def test_json_of_a_model_with_a_layer_graph_has_no_unknown_count(functional: ModelReport) -> None:
    assert json.loads(JsonFormatter().format([functional], []))["models"][0]["summary"]["unknown"] == []
