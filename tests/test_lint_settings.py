"""Configuration that never fails silently: every key, rule and suppression is checked (exit 2, one line, the
nearest valid spelling), rule lists take commas, ``extend-select``/``extend-ignore`` add to the selection,
``exclude`` skips files, and ``--show-settings`` says what a run would use.

Static only: committed sample models, the Typer app run in this process (``--jobs 1``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_command import assert_usage_error
from click.testing import CliRunner

from keras_share.cli import app
from keras_share.rules import ALL_RULES

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
MIXED_FINDINGS = [("KS201", "encoder"), ("KS301", "encoder/enc_out")]
OTHER_FINDINGS = [("KS210", "encoder"), ("KS211", "")]
"""The mixed model's other findings: a frozen encoder with BatchNormalization called without training=False, and
optimizer state saved before the freeze."""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model with a KS201 finding on ``encoder/enc_bn``, a KS301 one on ``encoder/enc_out`` and OTHER_FINDINGS."""
    return Path(shutil.copy(SAMPLES / "frozen_encoder.keras", tmp_path_factory.mktemp("settings")))


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, the working directory."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def write_table(folder: Path, table: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n\n[tool.keras-share]\n' + table, encoding="utf-8")
    return path


def run(*args: Any) -> Any:
    """``keras-share inspect --jobs 1 ARGS`` in this process."""
    return CliRunner().invoke(app, ["inspect", "--jobs", "1", *map(str, args)])


def findings(*args: Any) -> list[tuple[str, str]]:
    result = run("--format", "json", "--fail-on", "never", *args)
    assert result.exit_code == 0, result.stderr
    return sorted((f["rule"], f["layer"]) for model in json.loads(result.stdout)["models"] for f in model["findings"])


def files_inspected(*args: Any) -> list[str]:
    result = run("--format", "json", "--fail-on", "never", *args)
    assert result.exit_code == 0, result.stderr
    return [Path(model["file"]).name for model in json.loads(result.stdout)["models"]]




# --------------------------------------------------------------------------
# Mistakes are usage errors that name the fix
# --------------------------------------------------------------------------


@pytest.mark.parametrize("key, suggestion", [("fail_on", "fail-on"), ("selct", "select"),
                                             ("extend_ignore", "extend-ignore")])
def test_unknown_config_key_is_a_usage_error_suggesting_the_key(mixed: Path, project: Path, key: str,
                                                                 suggestion: str) -> None:
    write_table(project, f'{key} = "warning"\n' if key == "fail_on" else f'{key} = ["KS201"]\n')
    assert_usage_error(run(mixed), f"unknown key {key!r}", f"did you mean {suggestion!r}?")


def test_unknown_config_key_far_from_any_is_a_usage_error(mixed: Path, project: Path) -> None:
    write_table(project, 'colour = "blue"\n')
    assert_usage_error(run(mixed), "unknown key 'colour'")


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select", "--extend-ignore"])
def test_misspelt_rule_name_suggests_the_rule(mixed: Path, option: str) -> None:
    assert_usage_error(run(option, "shared-batchnrom", mixed), "unknown rule 'shared-batchnrom'",
                       "did you mean 'shared-batchnorm'?")


def test_suppress_with_a_misspelt_rule_is_a_usage_error(mixed: Path) -> None:
    assert_usage_error(run("--suppress", "shared-batchnrom:*", mixed), "--suppress",
                       "unknown rule 'shared-batchnrom'", "did you mean 'shared-batchnorm'?")


def test_suppress_with_an_unknown_code_is_a_usage_error(mixed: Path) -> None:
    assert_usage_error(run("--suppress", "KS999:*", mixed), "unknown rule 'KS999'")


@pytest.mark.parametrize("entry", ["KS201", "KS201:"])
def test_suppress_without_a_layer_glob_is_a_usage_error_naming_the_glob(mixed: Path, entry: str) -> None:
    assert_usage_error(run("--suppress", entry, mixed), "RULE:LAYER-GLOB", "'KS201:*'")


def test_config_suppress_with_an_unknown_rule_is_a_usage_error(mixed: Path, project: Path) -> None:
    path = write_table(project, 'suppress = ["shared-batchnrom:*"]\n')
    assert_usage_error(run(mixed), str(path), "suppress", "did you mean 'shared-batchnorm'?")


def test_config_suppress_without_a_layer_glob_is_a_usage_error(mixed: Path, project: Path) -> None:
    write_table(project, 'suppress = ["KS201"]\n')
    assert_usage_error(run(mixed), "suppress", "'KS201:*'")


def test_per_file_ignores_with_an_unknown_rule_is_a_usage_error(mixed: Path, project: Path) -> None:
    write_table(project, '[tool.keras-share.per-file-ignores]\n"*.keras" = ["shared-batchnrom"]\n')
    assert_usage_error(run(mixed), "per-file-ignores '*.keras'", "did you mean 'shared-batchnorm'?")


def test_config_extend_select_with_an_unknown_rule_is_a_usage_error(mixed: Path, project: Path) -> None:
    write_table(project, 'extend-select = ["KS999"]\n')
    assert_usage_error(run(mixed), "extend-select", "unknown rule 'KS999'")


# --------------------------------------------------------------------------
# Comma lists, extend-select and extend-ignore
# --------------------------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    (["--select", "KS201,KS301"], MIXED_FINDINGS),
    (["--select", "KS201, trainable-in-frozen-parent"], MIXED_FINDINGS),
    (["--select", "KS204,KS301"], [("KS301", "encoder/enc_out")]),
    (["--ignore", "KS201,KS301"], OTHER_FINDINGS),
    (["--extend-ignore", "KS201,KS301"], OTHER_FINDINGS),
])
def test_rule_options_take_comma_separated_lists(mixed: Path, args: list[str], expected: list) -> None:
    assert findings(*args, mixed) == expected


def test_extend_select_adds_to_the_selection(mixed: Path) -> None:
    assert findings("--select", "KS201", "--extend-select", "KS301", mixed) == MIXED_FINDINGS


def test_extend_select_without_select_keeps_every_rule(mixed: Path) -> None:
    assert findings("--extend-select", "KS301", mixed) == sorted(MIXED_FINDINGS + OTHER_FINDINGS)


def test_extend_select_option_adds_to_the_config_select(mixed: Path, project: Path) -> None:
    write_table(project, 'select = ["KS201"]\n')
    assert findings("--extend-select", "KS301", mixed) == MIXED_FINDINGS


def test_config_extend_select_adds_to_the_config_select(mixed: Path, project: Path) -> None:
    write_table(project, 'select = ["KS201"]\nextend-select = ["KS301"]\n')
    assert findings(mixed) == MIXED_FINDINGS


def test_select_option_replaces_the_config_select_and_extend_select(mixed: Path, project: Path) -> None:
    write_table(project, 'select = ["KS201"]\nextend-select = ["KS301"]\n')
    assert findings("--select", "KS201", mixed) == [("KS201", "encoder")]


def test_extend_ignore_option_adds_to_the_config_ignore(mixed: Path, project: Path) -> None:
    write_table(project, 'ignore = ["KS201"]\n')
    assert findings("--extend-ignore", "KS301", mixed) == OTHER_FINDINGS


def test_config_extend_ignore_adds_to_the_config_ignore(mixed: Path, project: Path) -> None:
    write_table(project, 'ignore = ["KS201"]\nextend-ignore = ["KS301"]\n')
    assert findings(mixed) == OTHER_FINDINGS


def test_ignore_option_replaces_the_config_ignore_and_extend_ignore(mixed: Path, project: Path) -> None:
    write_table(project, 'ignore = ["KS201"]\nextend-ignore = ["KS301"]\n')
    assert findings("--ignore", "KS301", mixed) == sorted([("KS201", "encoder"), *OTHER_FINDINGS])


# --------------------------------------------------------------------------
# exclude
# --------------------------------------------------------------------------


@pytest.fixture()
def tree(mixed: Path, project: Path) -> Path:
    """``project/models/{a,legacy/b}.keras``: the working directory is ``project``."""
    (project / "models" / "legacy").mkdir(parents=True)
    shutil.copy(mixed, project / "models" / "a.keras")
    shutil.copy(mixed, project / "models" / "legacy" / "b.keras")
    return project


def test_config_exclude_skips_files_found_in_a_folder(tree: Path) -> None:
    write_table(tree, 'exclude = ["models/legacy/*"]\n')
    assert files_inspected("models") == ["a.keras"]


def test_config_exclude_matches_a_folder_name(tree: Path) -> None:
    write_table(tree, 'exclude = ["legacy"]\n')
    assert files_inspected("models") == ["a.keras"]


def test_config_exclude_skips_files_named_on_the_command_line(tree: Path) -> None:
    write_table(tree, 'exclude = ["b.keras"]\n')
    assert files_inspected("models/a.keras", "models/legacy/b.keras") == ["a.keras"]


def test_exclude_option_skips_files(tree: Path) -> None:
    assert files_inspected("--exclude", "*/legacy/*", "models") == ["a.keras"]


def test_exclude_option_adds_to_the_config_exclude(tree: Path) -> None:
    write_table(tree, 'exclude = ["a.keras"]\n')
    assert files_inspected("--exclude", "b.keras", "models") == []


def test_config_exclude_must_be_a_list_of_strings(tree: Path) -> None:
    write_table(tree, 'exclude = "models/legacy/*"\n')
    assert_usage_error(run("models"), "exclude must be a list of strings")


# --------------------------------------------------------------------------
# --show-settings
# --------------------------------------------------------------------------


def test_show_settings_without_a_config_file_says_none(project: Path) -> None:
    result = run("--show-settings")
    assert result.exit_code == 0, result.stderr
    assert "config file: none" in result.stdout.splitlines()


def test_show_settings_names_the_config_file_used(project: Path) -> None:
    path = write_table(project, 'fail-on = "warning"\n')
    result = run("--show-settings")
    assert result.exit_code == 0, result.stderr
    assert f"config file: {path}" in result.stdout.splitlines()
    assert "fail-on: warning" in result.stdout.splitlines()


def test_show_settings_lists_the_rules_that_run(project: Path) -> None:
    write_table(project, 'select = ["KS2"]\nextend-select = ["KS301"]\n')
    lines = run("--show-settings", "--extend-ignore", "KS202,KS203").stdout.splitlines()
    expected = sorted(rule.code for rule in ALL_RULES
                      if (rule.code.startswith("KS2") and rule.code not in ("KS202", "KS203")) or rule.code == "KS301")
    rules = lines[lines.index(f"rules that run ({len(expected)}):") + 1:]
    assert sorted(line.split()[0] for line in rules) == expected


def test_show_settings_reads_no_model(project: Path) -> None:
    broken = project / "broken.keras"
    broken.write_bytes(b"not a zip archive")
    result = run("--show-settings", broken)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "broken.keras" not in result.stdout


def test_show_settings_checks_the_settings(project: Path) -> None:
    write_table(project, 'selct = ["KS2"]\n')
    assert_usage_error(run("--show-settings"), "did you mean 'select'?")


def test_a_run_whose_every_input_is_excluded_says_nothing_was_checked(tree: Path) -> None:
    result = run("--exclude", "*.keras", "models/a.keras")
    assert result.exit_code == 0
    assert "every input matched an exclude pattern" in result.stderr and "nothing was checked" in result.stderr


def test_a_run_that_checks_a_file_does_not_say_nothing_was_checked(tree: Path) -> None:
    result = run("--exclude", "b.keras", "models")
    assert "nothing was checked" not in result.stderr


def test_quiet_keeps_the_nothing_checked_note_off_stderr(tree: Path) -> None:
    assert run("--quiet", "--exclude", "*.keras", "models").stderr == ""
