"""keras_share.render.escape: how each format writes a string that comes from a file."""

from __future__ import annotations

import pytest

from keras_share.render.escape import (
    markdown_code,
    markdown_text,
    sarif_text,
    visible,
    workflow_data,
    workflow_property,
)


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", "a\\nb"), ("a\rb", "a\\rb"), ("a\tb", "a\\tb"), ("\x1b[2J", "\\x1b[2J"), ("\x00", "\\x00"),
    ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),
    ("\u202e", "\\u202e"), ("\u2066", "\\u2066"), ("\u2069", "\\u2069"), ("\u200f", "\\u200f"), ("\udcff", "\\udcff"),
])
def test_visible_shows_each_control_character_as_its_escape(raw: str, shown: str) -> None:
    assert visible(raw) == shown


@pytest.mark.parametrize("text", ["dense_1", "model/enc/dense", "Ünïcödé 层 🙂", "C:\\models\\a.keras", "[bold]x[/]"])
def test_visible_keeps_printable_text_as_it_is(text: str) -> None:
    assert visible(text) == text


def test_a_code_span_fence_is_longer_than_any_backtick_run_inside() -> None:
    assert markdown_code("a``b") == "```a``b```"


def test_a_code_span_is_padded_when_the_text_starts_or_ends_with_a_backtick() -> None:
    assert markdown_code("`x`") == "`` `x` ``"


def test_a_code_span_in_a_table_escapes_the_cell_separator() -> None:
    assert markdown_code("a|b", in_table=True) == "`a\\|b`"


def test_a_code_span_shows_a_newline_as_its_escape() -> None:
    assert markdown_code("a\n# b") == "`a\\n# b`"


def test_a_code_span_in_a_table_shows_a_newline_as_a_literal_br() -> None:
    assert markdown_code("a\nb", in_table=True) == "`a<br>b`"


@pytest.mark.parametrize(("raw", "escaped"), [
    ("[x](http://e)", "\\[x\\]\\(http\\://e\\)"), ("![i](u)", "\\!\\[i\\]\\(u\\)"), ("<img src=x>", "\\<img src=x\\>"),
    ("a|b", "a\\|b"), ("`c`", "\\`c\\`"), ("*b* _i_ ~s~", "\\*b\\* \\_i\\_ \\~s\\~"), ("&#10;", "\\&\\#10;"),
    ("www.e.com", "www\\.e.com"), ("@team", "\\@team"), ("$x$", "\\$x\\$"), ("a\\b", "a\\\\b"),
])
def test_markdown_text_escapes_every_character_that_opens_an_inline_construct(raw: str, escaped: str) -> None:
    assert markdown_text(raw) == escaped


def test_markdown_text_shows_control_characters_as_escapes_rendering_their_backslash() -> None:
    assert markdown_text("a\nb") == "a\\\\nb"


def test_workflow_data_escapes_percent_and_line_breaks_as_the_runner_documents() -> None:
    assert workflow_data("50%\n::error::x\r") == "50%25%0A::error::x%0D"


def test_workflow_data_shows_other_control_characters_as_escapes() -> None:
    assert workflow_data("\x1b]0;t\x07\u202e") == "\\x1b]0;t\\x07\\u202e"


def test_workflow_property_also_escapes_colon_and_comma() -> None:
    assert workflow_property("a,b:c%") == "a%2Cb%3Ac%25"


def test_sarif_text_escapes_brackets_and_backslashes_so_no_embedded_link_forms() -> None:
    assert sarif_text("\\[x](1)\n") == "\\\\\\[x\\](1)\\\\n"
