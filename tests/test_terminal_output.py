"""The human formats in CI logs: a shared sub-model is one row, names wrap at ``/`` and never inside, and long
weight lists are one line (count and total params)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from keras_share.analysis.report import ModelReport
from keras_share.api import inspect
from keras_share.render.markdown import MarkdownFormatter
from keras_share.render.terminal import SHOWN_WEIGHTS, TerminalFormatter, Wrapped

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
REAL = next((folder for folder in (Path(__file__).resolve().parents[level] / "shared" / "real_models"
                                   for level in (2, 3)) if folder.is_dir()), None)


def report_of(path: Path) -> ModelReport:
    report = inspect(str(path))
    assert isinstance(report, ModelReport)
    return report


def rendered(report: ModelReport, width: int = 80, all_layers: bool = False) -> str:
    return TerminalFormatter(all_layers=all_layers, width=width).format([report], [])


def printed(renderable: Any, width: int) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, highlight=False).print(renderable)
    return buffer.getvalue().splitlines()


def table_rows(output: str) -> list[str]:
    """The first line of each body row of the shared-layers table."""
    lines = output.splitlines()
    body = lines[next(number for number, line in enumerate(lines) if line.startswith("┡")) + 1:]
    return [line for number, line in enumerate(body)
            if line.startswith("│") and (number == 0 or body[number - 1].startswith("├"))]


# --------------------------------------------------------------------------
# A shared sub-model is one row
# --------------------------------------------------------------------------


def test_shared_encoder_is_one_row_naming_its_layer_count() -> None:
    rows = table_rows(rendered(report_of(SAMPLES / "nested_encoder.keras")))
    assert len(rows) == 1
    assert rows[0].split("│")[1].strip() == "encoder (3 layers)"


def test_summary_line_counts_shared_sub_models_and_other_shared_layers() -> None:
    assert "5 layers: 1 shared sub-model (3 layers), 0 other shared layers, " in rendered(
        report_of(SAMPLES / "nested_encoder.keras"), width=200)
    assert "5 layers: 1 shared sub-model (1 layer), 1 other shared layer, " in rendered(
        report_of(SAMPLES / "k2_shared.h5"), width=200)


def test_summary_line_without_shared_sub_model_is_unchanged() -> None:
    assert "2 layers, 2 shared, " in rendered(report_of(SAMPLES / "mha_keywords.keras"), width=200)


def test_all_layers_tree_shows_the_layers_inside_the_shared_sub_model() -> None:
    output = rendered(report_of(SAMPLES / "nested_encoder.keras"), width=200, all_layers=True)
    for name in ("enc_dense", "enc_bn", "enc_out"):
        assert any(name in line and "shared via encoder" in line for line in output.splitlines()), name


def test_markdown_table_has_one_row_per_shared_sub_model() -> None:
    text = MarkdownFormatter().format([report_of(SAMPLES / "nested_encoder.keras")], [])
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split(" | ")[:2] for row in rows] == [["| `encoder` (3 layers)", "Functional sub-model"]]
    assert "5 layers: 1 shared sub-model (3 layers), 0 other shared layers, " in text


@pytest.mark.skipif(REAL is None, reason="../shared/real_models is not available")
def test_real_triplet_encoder_is_one_row_and_one_summary_clause() -> None:
    assert REAL is not None
    output = rendered(report_of(REAL / "birdsong_triplet.h5"), width=200)
    assert "22 layers: 1 shared sub-model (20 layers), 0 other shared layers, " in output
    [row] = table_rows(output)
    assert row.split("│")[1].strip() == "model (20 layers)"
    assert "54 arrays, 152,800 params" in row


# --------------------------------------------------------------------------
# Names wrap at "/", never inside
# --------------------------------------------------------------------------


def test_path_wraps_after_a_slash_not_inside_a_name() -> None:
    assert printed(Wrapped(("feature_encoder_block/batch_normalization_one", "")), width=30) == [
        "feature_encoder_block/", "batch_normalization_one"]


def test_name_wider_than_the_cell_is_folded_as_a_last_resort() -> None:
    assert printed(Wrapped(("abcdefghijklmnop/xy", "")), width=10) == ["abcdefghij", "klmnop/xy"]


def test_table_column_is_never_narrower_than_the_longest_name_that_fits() -> None:
    table = Table()
    table.add_column("layer")
    table.add_column("other")
    table.add_row(Wrapped(("encoder/batch_normalization_12", ""), ("BatchNormalization", "")), "x " * 40)
    lines = printed(table, width=60)
    assert any("batch_normalization_12" in line for line in lines)
    assert any("BatchNormalization" in line for line in lines)


def _long_names(K: Any) -> Any:
    """A BatchNormalization called twice inside an encoder called once: shared on its own, at a nested path."""
    inner = K.Input((4,), name="encoder_input_tensor")
    norm = K.layers.BatchNormalization(name="batch_normalization_twice")
    encoder = K.Model(inner, norm(norm(inner)), name="spectrogram_encoder")
    outer = K.Input((4,), name="spectrogram")
    return K.Model(outer, encoder(outer), name="long_names")


@pytest.fixture(scope="module")
def long_names_report(keras3: Any, tmp_path_factory: pytest.TempPathFactory) -> ModelReport:
    keras3.backend.clear_session()
    path = tmp_path_factory.mktemp("long_names") / "long_names.keras"
    _long_names(keras3).save(str(path))
    return report_of(path)


@pytest.mark.keras
@pytest.mark.parametrize("width", [70, 80])
def test_no_layer_name_is_split_in_a_narrow_table(long_names_report: ModelReport, width: int) -> None:
    output = rendered(long_names_report, width=width)
    lines = [line for line in output.splitlines() if line.startswith("│")]
    for name in ("spectrogram_encoder/", "batch_normalization_twice", "BatchNormalization", "moving_variance"):
        assert any(name in line for line in lines), (name, output)


# --------------------------------------------------------------------------
# Long weight lists
# --------------------------------------------------------------------------


def test_weight_list_longer_than_the_limit_is_its_count_and_total() -> None:
    output = rendered(report_of(SAMPLES / "mha_keywords.keras"), width=200)
    assert SHOWN_WEIGHTS < 8
    [mha] = [row for row in table_rows(output) if "shared_mha" in row]
    assert "8 arrays, 288 params" in mha
    assert "query" not in output.split("Shared layers")[1].split("info KS202")[0]
