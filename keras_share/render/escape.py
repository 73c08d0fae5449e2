"""How every string that comes from a file (names, class names, messages quoting them, file names) is written.

A model file, and the name it was saved under, belong to whoever wrote them. Nothing they hold may reach the
output raw: a newline could start a CI workflow command (``::error``, ``::add-mask::``) on a line of its own,
an escape sequence drives the terminal, a bidi override reorders what a reviewer reads ("Trojan Source"), and
markup would be interpreted by rich, Markdown or a code-scanning dashboard. ``visible`` is the base of every
format; each format adds its own on top (``markdown_code``, ``markdown_text``, ``workflow_data``,
``workflow_property``, ``sarif_text``). JSON alone keeps the exact string: json encodes it.
"""

from __future__ import annotations

import re

_BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
"""Arabic letter mark, left-to-right and right-to-left marks, embeddings, overrides and isolates."""
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_code(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_VISIBLE = {
    code: _escape_code(code)
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *_BIDI_CONTROLS, *range(0xD800, 0xE000))
}
"""C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, bidi controls, and lone
surrogates (a file name that is not UTF-8), each mapped to the text of its escape."""
_VISIBLE_BUT_LINE_BREAKS = {code: escape for code, escape in _VISIBLE.items() if chr(code) not in "\r\n"}


def visible(text: str) -> str:
    """``text`` with every control, line-breaking, bidi and surrogate character shown as its escape
    (``\\n``, ``\\x1b``, ``\\u202e``): one line, nothing a terminal or a reader's eye executes."""
    if text.isascii() and text.isprintable():
        return text
    return text.translate(_VISIBLE)


def markdown_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span: literal whatever it holds (no link, image, HTML, emphasis, mention).

    The fence is one backtick longer than the longest run inside; in a table cell ``|`` is escaped, as GFM
    requires even inside a code span, and a newline is shown as ``<br>`` (literal text in a code span).
    """
    text = visible(text.replace("\n", "<br>") if in_table else text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]<>()#+!|~&:@$])|(?<=www)\.", re.IGNORECASE)
"""Characters that open an inline construct in GitHub Markdown: code, emphasis, links and images, HTML and
entities, tables, strikethrough, math, emoji shortcodes, autolinks (``www.``, ``scheme:``, ``a@b``)."""


def markdown_text(text: str) -> str:
    """``text`` for running Markdown: each special character backslash-escaped, so it renders as written."""
    return _MARKDOWN_SPECIALS.sub(lambda match: "\\" + match.group(0), visible(text))


def workflow_data(text: str) -> str:
    """The message of a GitHub Actions workflow command (after ``::``): CR, LF and ``%`` escaped as the runner
    documents (``%0D``, ``%0A``, ``%25``; it shows them as line breaks in the annotation), every other control
    character as in ``visible``."""
    escaped = text.translate(_VISIBLE_BUT_LINE_BREAKS)
    return escaped.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of a workflow command (``file=``, ``title=``): data escaping plus ``:`` and ``,``."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


def sarif_text(text: str) -> str:
    """A SARIF ``message.text``: visible, with ``\\``, ``[`` and ``]`` backslash-escaped as SARIF 2.1.0 (3.11.6)
    asks, so no embedded link is formed."""
    return re.sub(r"([\\\[\]])", r"\\\1", visible(text))


def error_line(path: str, problem: str) -> str:
    """The one stderr line for an input that could not be read: ``keras-share: error: PATH: problem``."""
    return f"keras-share: error: {visible(path)}: {visible(problem)}"


_MERMAID_PLAIN = re.compile(r"[A-Za-z0-9 _.,:()/+=-]")


def mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label (``n0["..."]``): visible, and every character but letters, digits and
    ``_.,:()/+=-`` and spaces written as a Mermaid entity code (``#35;``), so no quote, bracket, pipe, ``%%``
    directive, backtick fence, HTML tag or markdown string can form."""
    return "".join(char if _MERMAID_PLAIN.fullmatch(char) else f"#{ord(char)};" for char in visible(text))


def dot_text(text: str) -> str:
    """Text for a Graphviz double-quoted string (``label="..."``): visible, ``\\`` and ``"`` backslash-escaped, so
    the string cannot end early or hold an escape sequence of Graphviz's own (``\\N``, ``\\G``, ``\\l``)."""
    return visible(text).replace("\\", "\\\\").replace('"', '\\"')


def html_text(text: str) -> str:
    """Text for HTML and SVG, in an element or a quoted attribute: visible, with ``& < > " '`` as references."""
    import html

    return html.escape(visible(text), quote=True)
