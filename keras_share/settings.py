"""Lint settings: which rules run, which findings are suppressed, which files are skipped, and when the run fails.

They come from a ``[tool.keras-share]`` table in the nearest pyproject.toml (searched from the working
directory upward), overridden by command-line options::

    [tool.keras-share]
    select = ["KS1", "shared-batchnorm"]     # codes, code prefixes or names; default: every rule
    extend-select = ["KS301"]                # added to select
    ignore = ["varying-input-shapes"]
    extend-ignore = ["KS204"]                # added to ignore
    fail-on = "warning"                      # error (default), warning, info or never
    suppress = ["KS201:encoder/*"]           # RULE:LAYER-GLOB, by layer path ("KS201:*" for every layer)
    exclude = ["models/legacy/*"]            # files not inspected, also when named on the command line
    baseline = "keras-share-baseline.json"   # --baseline, relative to this file
    [tool.keras-share.per-file-ignores]
    "models/legacy/*.h5" = ["unsafe-lambda"]

Every key, rule and suppression is checked: a mistake is a ``SettingsError`` that suggests the nearest
valid spelling. ``--select``/``--ignore`` replace the table's ``select``/``extend-select`` and
``ignore``/``extend-ignore``; ``--extend-select``, ``--extend-ignore``, ``--suppress`` and ``--exclude`` add to it;
``--baseline`` replaces ``baseline``.
"""

from __future__ import annotations

import difflib
import fnmatch
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keras_share.vocabulary import FailOn

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RuleIds = Sequence[tuple[str, str]]
"""The rules a selector may name, as ``(code, name)`` pairs."""

LIST_KEYS = ("select", "extend-select", "ignore", "extend-ignore", "suppress", "exclude")
TABLE_KEYS = frozenset({*LIST_KEYS, "fail-on", "per-file-ignores", "baseline"})
"""Every key of ``[tool.keras-share]``."""


def rule_matches(pattern: str, code: str, name: str) -> bool:
    """A selector matches a rule by code, code prefix (``KS2``) or name, case-insensitively."""
    pattern = pattern.strip().lower()
    return bool(pattern) and (code.lower().startswith(pattern) or pattern == name)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice nearest to ``word``, or an empty string when none is near."""
    by_lower = {choice.lower(): choice for choice in choices}
    near = difflib.get_close_matches(word.strip().lower(), list(by_lower), n=1)
    return f" (did you mean {by_lower[near[0]]!r}?)" if near else ""


def unknown_rule_problem(selector: str, rules: RuleIds) -> str | None:
    """Why ``selector`` matches no rule in ``rules`` (with the nearest code or name), or None when it matches."""
    if any(rule_matches(selector, code, name) for code, name in rules):
        return None
    hint = did_you_mean(selector, [word for rule in rules for word in rule]) or " (see `keras-share rules`)"
    return f"unknown rule {selector!r}{hint}"


def suppression_problem(entry: str, rules: RuleIds) -> str | None:
    """Why ``entry`` is not a ``RULE:LAYER-GLOB`` suppression of a known rule, or None when it is one."""
    rule, colon, layers = entry.partition(":")
    if not colon or not layers:
        return (f"suppression {entry!r} names no layers: write RULE:LAYER-GLOB, "
                f"e.g. '{rule or 'KS201'}:*' for every layer")
    return unknown_rule_problem(rule, rules)


def split_commas(values: Iterable[str]) -> list[str]:
    """Command-line rule lists: each value may hold several, comma-separated (``--select KS201,KS204``)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


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
    extend_select: list[str] = field(default_factory=list)
    extend_ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    """Path globs of files not inspected, whether found in a folder or named as inputs."""
    baseline: Path | None = None
    """The ``--baseline`` report (the table's ``baseline``, relative to the pyproject.toml): its findings are not
    new."""

    @property
    def selected(self) -> list[str]:
        """The selectors of the rules that run: ``select`` plus ``extend-select``; empty means every rule."""
        return [*self.select, *self.extend_select] if self.select else []

    @property
    def ignored(self) -> list[str]:
        """The selectors of the rules that do not run: ``ignore`` plus ``extend-ignore``."""
        return [*self.ignore, *self.extend_ignore]

    def check_rules(self, rules: RuleIds, where: str = "", option_names: bool = False) -> None:
        """Raise SettingsError for a selector, suppression or per-file ignore that names no rule in ``rules``.

        Messages start with ``where`` and name each value by its ``--option`` (``option_names``) or table key.
        """
        def label(key: str) -> str:
            return f"--{key}" if option_names else key

        for key in ("select", "extend-select", "ignore", "extend-ignore"):
            for selector in getattr(self, key.replace("-", "_")):
                problem = unknown_rule_problem(selector, rules)
                if problem:
                    raise SettingsError(f"{where}{label(key)}: {problem}")
        for entry in self.suppress:
            problem = suppression_problem(entry, rules)
            if problem:
                raise SettingsError(f"{where}{label('suppress')}: {problem}")
        for pattern, selectors in self.per_file_ignores.items():
            for selector in selectors:
                problem = unknown_rule_problem(selector, rules)
                if problem:
                    raise SettingsError(f"{where}per-file-ignores {pattern!r}: {problem}")

    def with_options(self, rules: RuleIds, *, select: list[str] | None = None, ignore: list[str] | None = None,
                     extend_select: Sequence[str] = (), extend_ignore: Sequence[str] = (),
                     suppress: Sequence[str] = (), exclude: Sequence[str] = (),
                     fail_on: FailOn | None = None) -> LintSettings:
        """These settings overridden by command-line options (rule lists may be comma-separated), each checked
        against ``rules``: ``select``/``ignore`` replace, the others add."""
        given = LintSettings(select=split_commas(select or ()), ignore=split_commas(ignore or ()),
                             extend_select=split_commas(extend_select), extend_ignore=split_commas(extend_ignore),
                             suppress=list(suppress))
        given.check_rules(rules, option_names=True)
        merged = replace(self, suppress=self.suppress + given.suppress, exclude=self.exclude + list(exclude),
                         fail_on=fail_on if fail_on is not None else self.fail_on)
        if select is not None:
            merged.select, merged.extend_select = given.select, []
        if ignore is not None:
            merged.ignore, merged.extend_ignore = given.ignore, []
        merged.extend_select = merged.extend_select + given.extend_select
        merged.extend_ignore = merged.extend_ignore + given.extend_ignore
        return merged

    def _path_forms(self, path: Path) -> set[str]:
        """``path`` as given, its name, and relative to the folder of the pyproject.toml (when under it)."""
        forms = {path.as_posix(), path.name}
        if self.source is not None:
            try:
                forms.add(path.resolve().relative_to(Path(self.source).resolve().parent).as_posix())
            except (ValueError, OSError):
                pass
        return forms

    def is_excluded(self, path: Path) -> bool:
        """True when an ``exclude`` glob matches ``path`` or a folder it is in (as given, by name, or relative
        to the pyproject.toml's folder)."""
        if not self.exclude:
            return False
        return any(fnmatch.fnmatch(form, pattern)
                   for folder in [path, *path.parents] if folder.name
                   for form in self._path_forms(folder) for pattern in self.exclude)

    def is_suppressed(self, file: str, code: str, name: str, layer: str) -> bool:
        """True when a per-file ignore or a ``RULE:LAYER-GLOB`` suppression covers this finding.

        Per-file globs match the path as given, its file name, or the path relative to the folder of the
        pyproject.toml the settings came from (as ruff and flake8 do).
        """
        forms = self._path_forms(Path(file))
        for pattern, rules in self.per_file_ignores.items():
            if (any(fnmatch.fnmatch(form, pattern) for form in forms)
                    and any(rule_matches(rule, code, name) for rule in rules)):
                return True
        for entry in self.suppress:
            rule, _, layers = entry.partition(":")
            if rule_matches(rule, code, name) and fnmatch.fnmatchcase(layer, layers):
                return True
        return False

    def describe(self, rules: RuleIds) -> str:
        """``--show-settings``: the config file used, every setting, and the rules that run, one per line."""
        def words(values: Iterable[str]) -> str:
            return ", ".join(values) or "(none)"

        lines = [
            f"config file: {self.source or 'none'}",
            f"select: {words(self.select) if self.select else '(every rule)'}",
            f"extend-select: {words(self.extend_select)}",
            f"ignore: {words(self.ignore)}",
            f"extend-ignore: {words(self.extend_ignore)}",
            f"fail-on: {self.fail_on.value}",
            f"suppress: {words(self.suppress)}",
            f"exclude: {words(self.exclude)}",
            f"baseline: {self.baseline or '(none)'}",
            "per-file-ignores:" + ("" if self.per_file_ignores else " (none)"),
            *(f"  {pattern}: {words(selectors)}" for pattern, selectors in self.per_file_ignores.items()),
            f"rules that run ({len(rules)}):",
            *(f"  {code}  {name}" for code, name in rules),
        ]
        return "\n".join(lines) + "\n"


def _string_list(table: dict[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(f"{where}: {key} must be a list of strings")
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"{path}: cannot read ({error})") from None


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml from ``start`` upward that has a ``[tool.keras-share]`` table."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            data = _read_toml(candidate)
            if isinstance(data.get("tool"), dict) and "keras-share" in data["tool"]:
                return candidate
    return None


def load_settings(config_file: Path | None = None, rules: RuleIds | None = None) -> LintSettings:
    """Settings from ``config_file``, else from the nearest pyproject.toml with a ``[tool.keras-share]`` table.

    Without either, the defaults. An unknown key, a wrong type, or (given ``rules``) a rule that does not exist
    raises SettingsError.
    """
    if config_file is not None:
        data = _read_toml(config_file)
        if not (isinstance(data.get("tool"), dict) and "keras-share" in data["tool"]):
            raise SettingsError(f"{config_file}: no [tool.keras-share] table")
        path = config_file
    else:
        found = find_pyproject(Path.cwd())
        if found is None:
            return LintSettings()
        path = found
        data = _read_toml(path)
    table = data["tool"]["keras-share"]
    where = f"{path} [tool.keras-share]"
    if not isinstance(table, dict):
        raise SettingsError(f"{where} must be a table")
    for key in table:
        if key not in TABLE_KEYS:
            raise SettingsError(f"{where}: unknown key {key!r}{did_you_mean(key, sorted(TABLE_KEYS))}")
    fail_on = table.get("fail-on", FailOn.ERROR.value)
    if fail_on not in {choice.value for choice in FailOn}:
        raise SettingsError(f"{where}: fail-on must be one of {', '.join(FailOn)}")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise SettingsError(f"{where}: per-file-ignores must be a table")
    lists = {key: _string_list(table, key, where) for key in LIST_KEYS}
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise SettingsError(f"{where}: baseline must be a string (the path of a JSON report)")
    settings = LintSettings(
        select=lists["select"],
        extend_select=lists["extend-select"],
        ignore=lists["ignore"],
        extend_ignore=lists["extend-ignore"],
        fail_on=FailOn(fail_on),
        suppress=lists["suppress"],
        exclude=lists["exclude"],
        per_file_ignores={pattern: _string_list(per_file, pattern, where) for pattern in per_file},
        source=str(path),
        baseline=path.parent / baseline if baseline is not None else None,
    )
    if rules is not None:
        settings.check_rules(rules, f"{where}: ")
    return settings
