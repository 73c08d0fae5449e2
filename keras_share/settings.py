"""Lint settings: which rules run, which findings are suppressed, and when the run fails.

They come from a ``[tool.keras-share]`` table in the nearest pyproject.toml (searched from the working
directory upward), overridden by command-line options::

    [tool.keras-share]
    select = ["KS1", "shared-batchnorm"]     # codes, code prefixes or names; default: every rule
    ignore = ["varying-input-shapes"]
    fail-on = "warning"                      # error (default), warning, info or never
    suppress = ["KS201:encoder/*"]           # RULE:LAYER-GLOB, by layer path
    [tool.keras-share.per-file-ignores]
    "models/legacy/*.h5" = ["unsafe-lambda"]
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_share.vocabulary import FailOn

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib



def rule_matches(pattern: str, code: str, name: str) -> bool:
    """A selector matches a rule by code, code prefix (``KS2``) or name, case-insensitively."""
    pattern = pattern.strip().lower()
    return bool(pattern) and (code.lower().startswith(pattern) or pattern == name)


class SettingsError(ValueError):
    """A configuration value that cannot be used (reported as a usage error)."""


@dataclass
class LintSettings:
    """Everything that decides which findings a run reports and whether it fails."""

    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    fail_on: FailOn = FailOn.ERROR
    suppress: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    source: str | None = None
    """The pyproject.toml the settings were read from, if any."""

    def is_suppressed(self, file: str, code: str, name: str, layer: str) -> bool:
        """True when a per-file ignore or a ``RULE:LAYER-GLOB`` suppression covers this finding.

        Per-file globs match the path as given, its file name, or the path relative to the folder of the
        pyproject.toml the settings came from (as ruff and flake8 do).
        """
        names = {Path(file).as_posix(), Path(file).name}
        if self.source is not None:
            try:
                names.add(Path(file).resolve().relative_to(Path(self.source).resolve().parent).as_posix())
            except ValueError:
                pass
        for pattern, rules in self.per_file_ignores.items():
            if (any(fnmatch.fnmatch(name, pattern) for name in names)
                    and any(rule_matches(rule, code, name) for rule in rules)):
                return True
        for entry in self.suppress:
            rule, _, layers = entry.partition(":")
            if rule_matches(rule, code, name) and fnmatch.fnmatchcase(layer, layers or "*"):
                return True
        return False


def _string_list(table: dict[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(f"{where}: {key} must be a list of strings")
    return value


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml from ``start`` upward that has a ``[tool.keras-share]`` table."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
                raise SettingsError(f"{candidate}: cannot read ({error})") from None
            if isinstance(data.get("tool"), dict) and "keras-share" in data["tool"]:
                return candidate
    return None


def load_settings(config_file: Path | None = None) -> LintSettings:
    """Settings from ``config_file``, else from the nearest pyproject.toml with a ``[tool.keras-share]`` table.

    Without either, the defaults.
    """
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SettingsError(f"{config_file}: cannot read ({error})") from None
        if not (isinstance(data.get("tool"), dict) and "keras-share" in data["tool"]):
            raise SettingsError(f"{config_file}: no [tool.keras-share] table")
        path = config_file
    else:
        found = find_pyproject(Path.cwd())
        if found is None:
            return LintSettings()
        path = found
    table = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["keras-share"]
    where = f"{path} [tool.keras-share]"
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table")
    fail_on = table.get("fail-on", FailOn.ERROR.value)
    if fail_on not in {choice.value for choice in FailOn}:
        raise SettingsError(f"{where}: fail-on must be one of {', '.join(FailOn)}")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise SettingsError(f"{where}: per-file-ignores must be a table")
    return LintSettings(
        select=_string_list(table, "select", where),
        ignore=_string_list(table, "ignore", where),
        fail_on=FailOn(fail_on),
        suppress=_string_list(table, "suppress", where),
        per_file_ignores={pattern: _string_list(per_file, pattern, where) for pattern in per_file},
        source=str(path),
    )
