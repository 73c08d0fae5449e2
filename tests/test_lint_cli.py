"""The lint step in CI: exit codes (--fail-on), rule selection, pyproject settings, suppressions,
--base errors, and the github and markdown formats.

Static only (no TensorFlow): the models are committed samples, copied into a temporary folder,
and files crafted from them with zipfile and h5py. Most runs call the Typer app in this process
(``--jobs 1``); the pyproject lookup from the working directory also runs the real command in a
subprocess.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cli_command import assert_usage_error
from click.testing import CliRunner

from keras_share.cli import app

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"

# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _rewrite_archive(source: Path, target: Path, config: Any = None, weights: Any = None) -> None:
    """Copy a .keras archive, passing config.json through ``config`` and model.weights.h5 through ``weights``."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            if item.filename == "model.weights.h5" and weights is not None:
                data = weights(data)
            zout.writestr(item, data)


def _edit_h5(data: bytes, edit: Any) -> bytes:
    import h5py

    buffer = io.BytesIO(data)
    with h5py.File(buffer, "a") as h5:
        edit(h5)
    return buffer.getvalue()


def _drop_score_weights(h5: Any) -> None:
    [group] = [name for name in h5["layers"] if h5[f"layers/{name}/vars"].attrs.get("name") == "score"]
    del h5[f"layers/{group}"]


WEIRD_LAYER = "enc%bn,a:b\nc"


def _rename_value(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {key: _rename_value(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename_value(item, old, new) for item in value]
    return new if value == old else value


def _rename_bn_attr(h5: Any) -> None:
    def visit(name: str, item: Any) -> None:
        if name.endswith("vars") and item.attrs.get("name") == "enc_bn":
            item.attrs["name"] = WEIRD_LAYER

    h5.visititems(visit)


SECOND_DTYPE = "float16"


def _negative_in_another_dtype(value: Any) -> Any:
    """A triplet config whose ``negative`` input is float16: the shared encoder's calls differ in input signature,
    so its shared BatchNormalization is a warning (on identical inputs it is info)."""
    if isinstance(value, list):
        return [_negative_in_another_dtype(item) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: _negative_in_another_dtype(item) for key, item in value.items()}
    config = value.get("config")
    if isinstance(config, dict) and (
            (value.get("class_name") == "InputLayer" and config.get("name") == "negative")
            or (value.get("class_name") == "__keras_tensor__" and config.get("keras_history", [None])[0] == "negative")):
        value["config"] = {**config, "dtype": SECOND_DTYPE}
    return value


def _uncompiled(config: Any) -> Any:
    """The config without its compile_config: Keras loads no optimizer, so frozen_encoder's optimizer state, saved
    before the freeze (optimizer-state-mismatch), stays out of these runs."""
    return {key: value for key, value in config.items() if key != "compile_config"}


def _h5_negative_in_another_dtype(source: Path, target: Path) -> None:
    import h5py

    shutil.copy(source, target)
    with h5py.File(target, "a") as h5:
        raw = h5.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        h5.attrs["model_config"] = json.dumps(_negative_in_another_dtype(config))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs by what they produce: no findings, only info, a warning, an error, unreadable."""
    root = tmp_path_factory.mktemp("lint_models")
    files = {
        "none": SAMPLES / "independent_dense.keras",
        "info": SAMPLES / "mha_keywords.keras",  # KS202 x2
        "warning": SAMPLES / "nested_encoder.keras",  # KS201, once its inputs differ (below)
        "warning_h5": SAMPLES / "nested_encoder.h5",  # KS201, once its inputs differ (below)
        "mixed": SAMPLES / "frozen_encoder.keras",  # KS201 (inputs differing, below) + KS301
        "base": SAMPLES / "transfer_base.keras",
        "unfrozen": SAMPLES / "transfer_unfrozen.keras",
    }
    files = {key: Path(shutil.copy(path, root / path.name)) for key, path in files.items()}
    for key in ("warning", "mixed"):
        original = files[key].with_name(f"same_inputs_{files[key].name}")
        files[key].rename(original)
        _rewrite_archive(original, files[key], config=lambda config: _negative_in_another_dtype(_uncompiled(config)))
    original = files["warning_h5"].with_name(f"same_inputs_{files['warning_h5'].name}")
    files["warning_h5"].rename(original)
    _h5_negative_in_another_dtype(original, files["warning_h5"])
    files["error"] = root / "missing_score.keras"  # KS102 on `score`
    _rewrite_archive(files["none"], files["error"], weights=lambda data: _edit_h5(data, _drop_score_weights))
    files["unreadable"] = root / "broken.keras"
    files["unreadable"].write_bytes(b"PK\x03\x04 this is not a zip archive")
    files["weird_layer"] = root / "weird_layer.keras"
    _rewrite_archive(files["warning"], files["weird_layer"],
                     config=lambda config: _rename_value(config, "enc_bn", WEIRD_LAYER),
                     weights=lambda data: _edit_h5(data, _rename_bn_attr))
    return files


# --------------------------------------------------------------------------
# Running the command
# --------------------------------------------------------------------------


def run(*args: Any) -> Any:
    """``keras-share inspect --jobs 1 ARGS`` in this process."""
    return CliRunner().invoke(app, ["inspect", "--jobs", "1", *map(str, args)])


def run_json(*args: Any) -> tuple[int, dict[str, Any]]:
    result = run("--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


NOT_SHOWN = "KS210"
"""The frozen encoder's batchnorm-fine-tuning-mode finding: left out of ``findings``, which shows how options and
the config select findings on KS201 and KS301 (KS210's own tests: test_rule_batchnorm_fine_tuning_mode.py)."""


def findings(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((f["rule"], f["layer"]) for model in document["models"] for f in model["findings"]
                  if f["rule"] != NOT_SHOWN)


def subprocess_run(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "keras_share", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)




def test_the_inputs_give_the_findings_the_matrix_assumes(models: dict[str, Path]) -> None:
    severities = {}
    for kind in ("none", "info", "warning", "error"):
        code, document = run_json("--fail-on", "never", models[kind])
        assert code == 0
        severities[kind] = {f["severity"] for f in document["models"][0]["findings"]}
    assert severities == {"none": set(), "info": {"info"}, "warning": {"warning"}, "error": {"error"}}


# --------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------

EXIT_MATRIX = {
    # fail-on: exit code for a model with no findings, only info, a warning, an error
    "error": {"none": 0, "info": 0, "warning": 0, "error": 1},
    "warning": {"none": 0, "info": 0, "warning": 1, "error": 1},
    "info": {"none": 0, "info": 1, "warning": 1, "error": 1},
    "never": {"none": 0, "info": 0, "warning": 0, "error": 0},
    None: {"none": 0, "info": 0, "warning": 0, "error": 1},  # the default is error
}


@pytest.mark.parametrize("fail_on", list(EXIT_MATRIX), ids=lambda value: value or "default")
@pytest.mark.parametrize("kind", ["none", "info", "warning", "error"])
def test_fail_on_exit_code_matrix(models: dict[str, Path], fail_on: str | None, kind: str) -> None:
    args = ["--fail-on", fail_on] if fail_on else []
    for output in ("json", "github"):
        assert run("--format", output, *args, models[kind]).exit_code == EXIT_MATRIX[fail_on][kind]


@pytest.mark.parametrize("fail_on", ["error", "warning", "info", "never"])
def test_fail_on_uses_the_worst_finding_of_all_models(models: dict[str, Path], fail_on: str) -> None:
    result = run("--format", "json", "--fail-on", fail_on, models["none"], models["info"], models["error"])
    assert result.exit_code == (0 if fail_on == "never" else 1)


@pytest.mark.parametrize("fail_on", ["error", "warning", "info", "never"])
@pytest.mark.parametrize("other", ["none", "warning", "error"])
def test_unreadable_input_exits_3_over_findings(models: dict[str, Path], fail_on: str, other: str) -> None:
    result = run("--format", "json", "--fail-on", fail_on, models[other], models["unreadable"])
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert [model["file"] for model in document["models"]] == [str(models[other])]
    assert [error["file"] for error in document["errors"]] == [str(models["unreadable"])]
    assert str(models["unreadable"]) in result.stderr


def test_invalid_fail_on_value_is_a_usage_error(models: dict[str, Path]) -> None:
    assert run("--fail-on", "sometimes", models["none"]).exit_code == 2


# --------------------------------------------------------------------------
# --select / --ignore
# --------------------------------------------------------------------------


@pytest.mark.parametrize("args, expected", [
    ([], [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    (["--select", "KS201"], [("KS201", "encoder")]),
    (["--select", "ks201"], [("KS201", "encoder")]),
    (["--select", "KS2"], [("KS201", "encoder")]),
    (["--select", "KS"], [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    (["--select", "trainable-in-frozen-parent"], [("KS301", "encoder/enc_out")]),
    (["--select", "KS2", "--select", "KS3"], [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    (["--ignore", "KS201"], [("KS301", "encoder/enc_out")]),
    (["--ignore", "KS3"], [("KS201", "encoder")]),
    (["--ignore", "shared-batchnorm"], [("KS301", "encoder/enc_out")]),
    (["--ignore", "KS201", "--ignore", "KS301"], []),
    (["--select", "KS2", "--ignore", "shared-batchnorm"], []),
    (["--select", "KS101"], []),
])
def test_select_and_ignore(models: dict[str, Path], args: list[str], expected: list) -> None:
    code, document = run_json("--fail-on", "never", *args, models["mixed"])
    assert code == 0
    assert findings(document) == expected


def test_ignored_rule_no_longer_fails_the_run(models: dict[str, Path]) -> None:
    assert run("--fail-on", "warning", models["warning"]).exit_code == 1
    assert run("--fail-on", "warning", "--ignore", "KS201", models["warning"]).exit_code == 0
    assert run("--fail-on", "error", "--ignore", "missing-weights", models["error"]).exit_code == 0


@pytest.mark.parametrize("option, value", [
    ("--select", "KS999"), ("--select", "no-such-rule"), ("--ignore", "KS9"), ("--ignore", "shared-batch"),
])
def test_unknown_rule_is_a_usage_error(models: dict[str, Path], option: str, value: str) -> None:
    assert_usage_error(run(option, value, models["warning"]), "unknown rule", value)


# --------------------------------------------------------------------------
# --suppress RULE:LAYER-GLOB
# --------------------------------------------------------------------------


@pytest.mark.parametrize("suppress, expected", [
    (["KS201:encoder/*"], [("KS301", "encoder/enc_out")]),
    (["shared-batchnorm:encoder/enc_*"], [("KS301", "encoder/enc_out")]),
    (["KS2:encoder/enc_bn"], [("KS301", "encoder/enc_out")]),
    (["KS201:decoder/*"], [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    (["KS301:encoder/*"], [("KS201", "encoder")]),
    (["KS201:encoder/*", "KS301:encoder/enc_out"], []),
    (["KS201:ENCODER/*"], [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),  # layer globs: exact case
])
def test_suppress_option(models: dict[str, Path], suppress: list[str], expected: list) -> None:
    args = [arg for entry in suppress for arg in ("--suppress", entry)]
    assert findings(run_json("--fail-on", "never", *args, models["mixed"])[1]) == expected


def test_suppressed_finding_no_longer_fails_the_run(models: dict[str, Path]) -> None:
    assert run("--suppress", "KS102:score", models["error"]).exit_code == 0
    assert run("--suppress", "KS102:other", models["error"]).exit_code == 1


# --------------------------------------------------------------------------
# [tool.keras-share] in pyproject.toml
# --------------------------------------------------------------------------


def write_pyproject(folder: Path, table: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = '[project]\nname = "demo"\n'
    if table is not None:
        text += "\n[tool.keras-share]\n" + table
    path = folder / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder; the working directory is ``project/sub/deeper``."""
    deeper = tmp_path / "project" / "sub" / "deeper"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    return tmp_path / "project"


def test_pyproject_found_from_the_working_directory_upward_subprocess(
        models: dict[str, Path], project: Path) -> None:
    write_pyproject(project, 'fail-on = "warning"\nselect = ["KS2"]\n')
    write_pyproject(project / "sub", None)  # nearer, but without a [tool.keras-share] table: skipped
    proc = subprocess_run("inspect", "--format", "json", models["mixed"], cwd=project / "sub" / "deeper")
    assert proc.returncode == 1, proc.stderr
    assert findings(json.loads(proc.stdout)) == [("KS201", "encoder")]
    # The same folder without the table above: defaults (fail-on error, every rule).
    (project / "pyproject.toml").unlink()
    proc = subprocess_run("inspect", "--format", "json", models["mixed"], cwd=project / "sub" / "deeper")
    assert proc.returncode == 0, proc.stderr
    assert findings(json.loads(proc.stdout)) == [("KS201", "encoder"), ("KS301", "encoder/enc_out")]


def test_nearest_table_wins(models: dict[str, Path], project: Path) -> None:
    write_pyproject(project, 'select = ["KS3"]\n')
    write_pyproject(project / "sub", 'select = ["KS2"]\n')
    assert findings(run_json("--fail-on", "never", models["mixed"])[1]) == [("KS201", "encoder")]


def test_config_file_option(models: dict[str, Path], project: Path, tmp_path: Path) -> None:
    write_pyproject(project, 'select = ["KS2"]\n')
    elsewhere = write_pyproject(tmp_path / "elsewhere", 'select = ["KS3"]\n')
    assert findings(run_json("--fail-on", "never", models["mixed"])[1]) == [("KS201", "encoder")]
    assert findings(run_json("--fail-on", "never", "--config", elsewhere, models["mixed"])[1]) == [
        ("KS301", "encoder/enc_out")]


def test_missing_config_file_is_a_usage_error(models: dict[str, Path], project: Path, tmp_path: Path) -> None:
    result = run("--config", tmp_path / "nowhere" / "pyproject.toml", models["warning"])
    assert_usage_error(result, "nowhere")


@pytest.mark.parametrize("table, args, code, expected", [
    # config fail-on warning; the CLI says never
    ('fail-on = "warning"\n', ["--fail-on", "never"], 0, [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    ('fail-on = "warning"\n', [], 1, [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    ('fail-on = "never"\n', ["--fail-on", "info"], 1, [("KS201", "encoder"), ("KS301", "encoder/enc_out")]),
    # config select KS3; the CLI selects KS201
    ('select = ["KS3"]\n', [], 0, [("KS301", "encoder/enc_out")]),
    ('select = ["KS3"]\n', ["--select", "KS201"], 0, [("KS201", "encoder")]),
    # config ignore; the CLI ignore replaces it
    ('ignore = ["KS201"]\n', [], 0, [("KS301", "encoder/enc_out")]),
    ('ignore = ["KS201"]\n', ["--ignore", "KS301"], 0, [("KS201", "encoder")]),
    # config suppress and CLI suppress add up
    ('suppress = ["KS201:encoder/*"]\n', [], 0, [("KS301", "encoder/enc_out")]),
    ('suppress = ["KS201:encoder/*"]\n', ["--suppress", "KS301:*"], 0, []),
])
def test_cli_options_override_config(models: dict[str, Path], project: Path, table: str, args: list[str],
                                     code: int, expected: list) -> None:
    write_pyproject(project, table)
    result = run("--format", "json", *args, models["mixed"])
    assert result.exit_code == code, result.stderr
    assert findings(json.loads(result.stdout)) == expected


def test_per_file_ignores_by_file_name_glob(models: dict[str, Path], project: Path) -> None:
    write_pyproject(project, '[tool.keras-share.per-file-ignores]\n"*.keras" = ["shared-batchnorm"]\n')
    code, document = run_json("--fail-on", "warning", models["warning"], models["warning_h5"])
    assert code == 1  # the .h5 copy still has its warning
    assert {model["file"]: findings({"models": [model]}) for model in document["models"]} == {
        str(models["warning"]): [],
        str(models["warning_h5"]): [("KS201", "encoder"), ("KS304", "encoder")],  # its legacy weight order: info
    }


def test_per_file_ignores_by_path_glob(models: dict[str, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / "models" / "legacy").mkdir(parents=True)
    shutil.copy(models["mixed"], root / "models" / "legacy" / "frozen.keras")
    shutil.copy(models["mixed"], root / "models" / "frozen.keras")
    write_pyproject(root, '[tool.keras-share.per-file-ignores]\n"models/legacy/*" = ["KS2", "KS301"]\n')
    monkeypatch.chdir(root)
    document = run_json("--fail-on", "never", "models/legacy/frozen.keras", "models/frozen.keras")[1]
    assert [findings({"models": [model]}) for model in document["models"]] == [
        [], [("KS201", "encoder"), ("KS301", "encoder/enc_out")]]


def test_per_file_ignores_are_relative_to_the_pyproject_folder(models: dict[str, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / "models" / "legacy").mkdir(parents=True)
    (root / "scripts").mkdir()
    shutil.copy(models["mixed"], root / "models" / "legacy" / "frozen.keras")
    write_pyproject(root, '[tool.keras-share.per-file-ignores]\n"models/legacy/*" = ["KS2", "KS301"]\n')
    monkeypatch.chdir(root / "scripts")
    assert findings(run_json("--fail-on", "never", "../models/legacy/frozen.keras")[1]) == []


@pytest.mark.parametrize("table, fragment", [
    ('fail-on = "sometimes"\n', "fail-on"),
    ('fail-on = 1\n', "fail-on"),
    ('select = "KS201"\n', "select"),
    ('ignore = [1, 2]\n', "ignore"),
    ('suppress = "KS201:*"\n', "suppress"),
    ('select = ["KS999"]\n', "KS999"),
    ('ignore = ["no-such-rule"]\n', "no-such-rule"),
    ('per-file-ignores = ["*.keras"]\n', "per-file-ignores"),
    ('[tool.keras-share.per-file-ignores]\n"*.keras" = "KS201"\n', "*.keras"),
    ('select = [\n', "pyproject.toml"),  # not TOML at all
])
def test_invalid_config_value_is_a_one_line_usage_error(models: dict[str, Path], project: Path, table: str,
                                                        fragment: str) -> None:
    write_pyproject(project, table)
    assert_usage_error(run(models["warning"]), fragment)


# --------------------------------------------------------------------------
# --base
# --------------------------------------------------------------------------


def test_base_flags_the_transferred_trainable_layer(models: dict[str, Path]) -> None:
    code, document = run_json("--fail-on", "warning", "--base", models["base"], models["unfrozen"])
    assert code == 1
    assert findings(document) == [("KS205", "feature")]


@pytest.mark.parametrize("base", ["unreadable", "missing"])
def test_unreadable_base_exits_3(models: dict[str, Path], tmp_path: Path, base: str) -> None:
    path = models["unreadable"] if base == "unreadable" else tmp_path / "no_such_base.keras"
    result = run("--format", "json", "--base", path, models["warning"])
    assert result.exit_code == 3
    assert "--base" in result.stderr and str(path) in result.stderr


# --------------------------------------------------------------------------
# --format github
# --------------------------------------------------------------------------

GITHUB_LINE = re.compile(r"^::(error|warning|notice) (?:file=([^,:]*),)?title=([^,:]*)::(.*)$")


def run_github(workspace: Path, *args: Any) -> Any:
    """``keras-share inspect --format github ARGS`` in a checkout at ``workspace`` (``GITHUB_WORKSPACE``)."""
    return CliRunner().invoke(app, ["inspect", "--jobs", "1", "--format", "github", *map(str, args)],
                              env={"GITHUB_WORKSPACE": str(workspace)})


def unescape(text: str) -> str:
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


def github_lines(output: str) -> list[tuple[str, str, str, str]]:
    """Each annotation but the total line first: (command, file, title, message), unescaped."""
    lines = output.splitlines()
    parsed = []
    for line in lines:
        match = GITHUB_LINE.match(line)
        assert match, line
        command, file, title, text = match.groups()
        assert "\n" not in text and "\r" not in text
        assert re.fullmatch(r"([^%]|%25|%0D|%0A)*", text), text  # only these escapes in data
        parsed.append((command, unescape(file or ""), unescape(title), unescape(text)))
    assert parsed[0][:3] == ("notice", "", "keras-share")
    return parsed[1:]


def test_github_lines_match_the_json_findings_one_per_file_and_rule(models: dict[str, Path]) -> None:
    inputs = [models[kind] for kind in ("none", "info", "warning", "error", "mixed", "weird_layer")]
    output = run_github(models["none"].parent, "--fail-on", "never", *inputs).stdout
    document = run_json("--fail-on", "never", *inputs)[1]
    commands = {"error": "error", "warning": "warning", "info": "notice"}
    expected = []
    for model in document["models"]:
        by_rule: dict[str, list[dict[str, Any]]] = {}
        for f in model["findings"]:
            by_rule.setdefault(f["rule"], []).append(f)
        for rule, found in by_rule.items():
            [command] = {commands[f["severity"]] for f in found}
            expected.append((command, Path(model["file"]).name, f"{rule} {found[0]['name']}", found))
    parsed = github_lines(output)
    assert [line[:3] for line in parsed] == [line[:3] for line in expected]
    for (_, _, _, message), (_, _, _, found) in zip(parsed, expected):
        first = f"{found[0]['layer']}: {found[0]['message']}" if found[0]["layer"] else found[0]["message"]
        if len(found) == 1:
            assert message == first
        else:
            assert message.startswith(f"{len(found)} findings. {first}. Also on: ")
            assert all(f["layer"] in message for f in found)
    assert len(expected) == 1 + 1 + 1 + 3 + 1  # info (two folded), warning, error, mixed (KS201, KS210, KS301), weird_layer


def test_github_escapes_layer_names(models: dict[str, Path]) -> None:
    output = run_github(models["none"].parent, models["weird_layer"]).stdout
    assert output.count("\n") == 2
    line = output.splitlines()[1]
    assert line.startswith(f"::warning file={models['weird_layer'].name},title=KS201 shared-batchnorm::")
    assert "::encoder: the shared sub-model runs 3 times" in line
    assert "(enc%25bn,a:b%0Ac) keeps one moving mean" in line
    assert f"({WEIRD_LAYER}) keeps" in github_lines(output)[0][3]


def test_github_escapes_file_names(models: dict[str, Path], tmp_path: Path) -> None:
    weird = tmp_path / "a,b:c%d\ne.keras"
    shutil.copy(models["warning"], weird)
    output = run_github(tmp_path, "--fail-on", "never", weird).stdout
    assert output.count("\n") == 2
    assert "::warning file=a%2Cb%3Ac%25d%0Ae.keras,title=KS201 shared-batchnorm::" in output
    assert github_lines(output)[0][1] == weird.name


def test_github_reports_unreadable_inputs(models: dict[str, Path]) -> None:
    result = run_github(models["none"].parent, models["warning"], models["unreadable"])
    assert result.exit_code == 3
    parsed = github_lines(result.stdout)
    assert [(command, file) for command, file, _, _ in parsed] == [
        ("warning", models["warning"].name), ("error", models["unreadable"].name)]
    assert parsed[1][2] == "unreadable model"


def test_github_no_findings_prints_nothing(models: dict[str, Path]) -> None:
    result = run("--format", "github", models["none"])
    assert result.exit_code == 0
    assert result.stdout == ""


# --------------------------------------------------------------------------
# --format markdown
# --------------------------------------------------------------------------


def test_markdown_report(models: dict[str, Path]) -> None:
    result = run("--format", "markdown", models["warning"], models["none"], models["unreadable"])
    assert result.exit_code == 3
    text = result.stdout
    assert text.startswith("# keras-share report\n")
    warning, clean = text.index(f"## `{models['warning']}`"), text.index(f"## `{models['none']}`")
    section = text[warning:clean]
    lines = section.splitlines()
    header = lines.index("| layer | class | calls | effective | trains | input shapes per call |")
    rows = [line for line in lines[header + 2:] if line.startswith("| ")]
    assert rows == [("| `encoder` (3 layers) | Functional sub-model | 3 | 3 | yes | "
                     "#0: (None, 6); #1: (None, 6); #2: (None, 6) |")]
    assert "**Findings**" in section
    assert re.search(r"^- .* \*\*KS201 shared-batchnorm\*\* \(warning\) `encoder`: the shared sub-model runs 3",
                     section, re.MULTILINE)
    assert "No findings." in text[clean:]
    assert "## Unreadable inputs" in text and f"- `{models['unreadable']}`: " in text


def test_markdown_escapes_table_cells(models: dict[str, Path], tmp_path: Path) -> None:
    weird_model = tmp_path / "weird_model.keras"
    _rewrite_archive(models["warning"], weird_model, config=lambda config: _rename_value(config, "encoder", WEIRD_LAYER))
    text = run("--format", "markdown", "--fail-on", "never", weird_model).stdout
    table = [line for line in text.splitlines() if line.startswith("| `enc")]
    assert table[0].startswith("| `enc%bn,a:b<br>c` (3 layers) | Functional sub-model |")
