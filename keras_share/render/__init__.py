"""Output formats, one module each behind the ``Formatter`` interface."""

from __future__ import annotations

FORMATS = ("rich", "json", "sarif", "github", "markdown")
