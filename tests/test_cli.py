"""The ``keras-share`` command line: exit codes, help, version, layout, colour, folder inputs.

Runs the real command in a subprocess (``python -m keras_share`` or the console script).
Static path only: no TensorFlow/Keras import here.
"""

from __future__ import annotations

import errno
import importlib.metadata
import importlib.util
import json
import os
import pty
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cli_command import clean_env, keras_share_command, run_cli

import keras_share

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


_env = clean_env
run = run_cli


def run_json(*paths: Any) -> tuple[int, dict[str, Any], str]:
    proc = run("inspect", "--format", "json", *paths)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def run_in_pty(*args: Any, env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal (stderr piped); return exit code and what the terminal got."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*keras_share_command(), *map(str, args)], stdout=slave, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env)
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError as error:  # EIO once the child has closed the terminal
                if error.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    proc.wait(timeout=120)
    assert proc.stderr is not None
    proc.stderr.close()
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


# ---------------------------------------------------------------- exit codes


def test_good_model_exits_0() -> None:
    proc = run("inspect", SAMPLES / "shared_dense.keras")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "1 file, no findings\n"  # the run's total, nothing else
    assert "shared_dense" in proc.stdout


def test_good_model_json_exits_0() -> None:
    code, document, stderr = run_json(SAMPLES / "shared_dense.h5")
    assert code == 0 and stderr == ""
    assert document["errors"] == []
    assert [layer["path"] for layer in document["models"][0]["layers"] if layer["shared"]] == ["shared_dense"]


def test_output_larger_than_a_pipe_buffer_arrives_whole_before_the_process_ends() -> None:
    proc = run("inspect", "--format", "json", "--fail-on", "never", *[SAMPLES] * 4)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) > 3 * 64 * 1024  # several times what a pipe holds
    models = json.loads(proc.stdout)["models"]
    quarter = len(models) // 4
    assert models == models[:quarter] * 4


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_output_is_one_line_on_stderr_and_exit_4() -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*keras_share_command(), "inspect", str(SAMPLES / "shared_dense.keras")], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=_env(), timeout=120)
    assert proc.returncode == 4
    assert proc.stderr == "keras-share: error: cannot write the report (No space left on device)\n"


def test_closed_output_is_one_line_on_stderr_and_exit_4() -> None:
    proc = subprocess.run([*keras_share_command(), "inspect", str(SAMPLES / "shared_dense.keras")],
                          stderr=subprocess.PIPE, text=True, env=_env(), timeout=120, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 4
    assert proc.stderr == "keras-share: error: cannot write the report (standard output is closed)\n"


def test_reader_going_away_ends_the_run_quietly_with_exit_4() -> None:
    env = {key: value for key, value in _env().items() if key != "PYTHONUNBUFFERED"}  # buffered, as by default
    with subprocess.Popen([*keras_share_command(), "inspect", "--format", "json", *[str(SAMPLES)] * 4],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(10) == b'{\n  "schem'
        proc.stdout.close()
        assert proc.wait(timeout=120) == 4
        assert proc.stderr.read() == b""


def _many_layer_model(folder: Path, layers: int = 3000) -> Path:
    """A .keras zip holding only config.json: a Sequential of ``layers`` ReLU layers with long names."""
    entries = [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "in"}}]
    entries += [{"module": "keras.layers", "class_name": "ReLU", "config": {"name": f"relu_{number:05d}_" + "x" * 40}}
                for number in range(layers)]
    path = folder / "many.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"module": "keras", "class_name": "Sequential",
                                                    "config": {"name": "many", "layers": entries}}))
    return path


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("args", [["--format", "json"], ["--all-layers"]], ids=["json", "rich-all-layers"])
def test_a_reader_that_closes_the_pipe_early_on_a_large_report_ends_the_run_quietly_with_exit_4(
    tmp_path: Path, args: list[str], unbuffered: str
) -> None:
    model = _many_layer_model(tmp_path)
    with subprocess.Popen([*keras_share_command(), "inspect", *args, str(model)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=_env(PYTHONUNBUFFERED=unbuffered)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert len(proc.stdout.read(10)) == 10
        proc.stdout.close()
        assert proc.wait(timeout=120) == 4
        assert proc.stderr.read() == b""


@pytest.mark.parametrize(
    ("args", "status"),
    [
        pytest.param(["inspect", "--fail-on", "never", str(SAMPLES / "shared_dense.keras")], 0, id="ok"),
        pytest.param(["inspect", "--fail-on", "info", str(SAMPLES / "nested_encoder.keras")], 1, id="findings"),
        pytest.param(["inspect", "--bogus"], 2, id="usage"),
        pytest.param(["inspect", "/no/such/model.keras"], 3, id="unreadable"),
    ],
)
@pytest.mark.usefixtures("capsys")  # keeps the reports out of the test log
def test_run_returns_the_exit_status_in_process(args: list[str], status: int) -> None:
    from keras_share.cli import run as run_in_process

    assert run_in_process(args) == status


@pytest.mark.usefixtures("capsys")  # keeps the report out of the test log
def test_run_hands_the_reports_to_keep_until_the_process_ends() -> None:
    from keras_share.analysis.report import ModelReport
    from keras_share.cli import run as run_in_process

    kept: list[object] = []
    assert run_in_process(["inspect", "--format", "json", str(SAMPLES / "shared_dense.keras")], keep=kept) == 0
    reports, texts = kept
    assert isinstance(reports, list) and [type(report) for report in reports] == [ModelReport]
    assert isinstance(texts, list) and json.loads(texts[0][1])["models"][0]["file"].endswith("shared_dense.keras")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["inspect", "--bogus", SAMPLES / "shared_dense.keras"], id="unknown-option"),
        pytest.param(["--bogus"], id="unknown-top-option"),
        pytest.param(["inspect"], id="no-paths"),
        pytest.param(["inspect", "--format", "xml", SAMPLES / "shared_dense.keras"], id="bad-format-value"),
        pytest.param(["frobnicate", SAMPLES / "shared_dense.keras"], id="unknown-command"),
    ],
)
def test_usage_error_exits_2(args: list[Any]) -> None:
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Usage:" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_one_unreadable_input_of_several_exits_3(tmp_path: Path) -> None:
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"garbage, not a zip")
    good_a, good_b = SAMPLES / "shared_dense.keras", SAMPLES / "k2_shared.h5"
    code, document, stderr = run_json(good_a, bad, good_b)
    assert code == 3
    assert [model["file"] for model in document["models"]] == [str(good_a), str(good_b)]
    assert [error["file"] for error in document["errors"]] == [str(bad)]
    assert stderr.count("\n") == 1 and str(bad) in stderr


def test_one_unreadable_input_rich_output_still_reports_the_others(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"")
    proc = run("inspect", SAMPLES / "shared_dense.keras", bad, SAMPLES / "nested_encoder.h5")
    assert proc.returncode == 3
    assert str(SAMPLES / "shared_dense.keras") in proc.stdout
    assert str(SAMPLES / "nested_encoder.h5") in proc.stdout
    assert str(bad) not in proc.stdout
    assert proc.stderr.startswith("keras-share: error: ") and str(bad) in proc.stderr


# ---------------------------------------------------------------- help and version


@pytest.mark.parametrize("args", [["--help"], ["inspect", "--help"]], ids=["top", "inspect"])
def test_help_documents_exit_codes(args: list[str]) -> None:
    proc = run(*args)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Exit codes" in text
    assert "0 success" in text
    assert "2 usage error" in text
    assert "3 at least one input could not be read" in text
    assert "4 the report could not be written" in text


def test_no_arguments_shows_help() -> None:
    proc = run()
    assert proc.returncode in (0, 2)
    assert "Usage:" in proc.stdout + proc.stderr
    assert "inspect" in proc.stdout + proc.stderr


def test_inspect_help_lists_options() -> None:
    text = run("inspect", "--help").stdout
    for option in ("--format", "--all-layers", "rich", "json"):
        assert option in text


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"keras-share {keras_share.__version__}"
    assert keras_share.__version__ == importlib.metadata.version("keras-share")


def test_json_reports_the_tool_version() -> None:
    _, document, _ = run_json(SAMPLES / "shared_dense.keras")
    assert document["tool"] == {"name": "keras-share", "version": keras_share.__version__}


# ---------------------------------------------------------------- --all-layers


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" │├└─"))


def test_all_layers_shows_nested_layers_as_a_tree() -> None:
    proc = run("inspect", "--all-layers", SAMPLES / "nested_encoder.keras")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.search(r"[├└]── \w", proc.stdout)
    root = next(line for line in lines if line.startswith("triplet (Functional)"))
    encoder = next(line for line in lines if re.search(r"[├└]── encoder Functional", line))
    children = [next(line for line in lines if re.search(rf"── {name} {cls}", line))
                for name, cls in (("enc_dense", "Dense"), ("enc_bn", "BatchNormalization"), ("enc_out", "Dense"))]
    assert lines.index(root) < lines.index(encoder) < min(lines.index(child) for child in children)
    assert all(_indent(child) > _indent(encoder) > _indent(root) for child in children)
    # calls in its own graph, effective calls through the nesting
    assert re.search(r"encoder Functional \(3 layers\) ×3\s+-> \(None, 3\)\s+calls 3", encoder)
    assert all("calls 1 (x3)" in child for child in children)
    embeddings = next(line for line in lines if re.search(r"── embeddings Concatenate", line))
    assert _indent(embeddings) == _indent(encoder)


def test_without_all_layers_there_is_no_tree() -> None:
    proc = run("inspect", SAMPLES / "nested_encoder.keras")
    assert proc.returncode == 0
    assert not re.search(r"[├└]── \w", proc.stdout)  # tree branches, not the table's rules
    assert "encoder (3 layers)" in proc.stdout  # the shared table still names the shared encoder


# ---------------------------------------------------------------- layout and colour


@pytest.mark.parametrize("all_layers", [False, True], ids=["default", "all-layers"])
def test_piped_output_fits_80_columns_without_escapes(all_layers: bool) -> None:
    extra = ["--all-layers"] if all_layers else []
    proc = run("inspect", *extra, SAMPLES)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    too_wide = [line for line in proc.stdout.splitlines() if len(line) > 80]
    assert too_wide == []
    assert str(SAMPLES / "mha_keywords.keras") in proc.stdout


def test_terminal_gets_colour() -> None:
    """Control for the NO_COLOR test: on a terminal the report is coloured."""
    code, output = run_in_pty("inspect", SAMPLES / "shared_dense.keras", env=_env(TERM="xterm-256color"))
    assert code == 0
    assert ANSI.search(output)


@pytest.mark.parametrize("value", ["1", "true"])
def test_no_color_is_respected_on_a_terminal(value: str) -> None:
    code, output = run_in_pty("inspect", SAMPLES / "shared_dense.keras", env=_env(TERM="xterm-256color", NO_COLOR=value))
    assert code == 0
    assert "shared_dense" in output
    assert not ANSI.search(output), repr(output[:200])


# ---------------------------------------------------------------- folder inputs


def _copy(source: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if (SAMPLES / source).is_dir():
        shutil.copytree(SAMPLES / source, target)
    else:
        shutil.copyfile(SAMPLES / source, target)
    return target


def test_folder_is_expanded_to_its_model_files_in_sorted_order(tmp_path: Path) -> None:
    for source, name in [("shared_dense.keras", "c_model.keras"), ("k2_shared.h5", "a_model.h5"),
                         ("nested_encoder.keras", "b_model.keras"), ("shared_dense.h5", "d_model.hdf5"),
                         ("mha_keywords.keras", "B_upper.keras")]:
        _copy(source, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "weights.npz").write_bytes(b"PK\x03\x04")
    code, document, stderr = run_json(tmp_path)
    assert code == 0, stderr
    files = [Path(model["file"]).name for model in document["models"]]
    assert files == sorted(files)
    assert files == ["B_upper.keras", "a_model.h5", "b_model.keras", "c_model.keras", "d_model.hdf5"]


def test_folder_recurses_into_subfolders(tmp_path: Path) -> None:
    _copy("shared_dense.keras", tmp_path / "top.keras")
    _copy("k2_shared.h5", tmp_path / "sub" / "deeper" / "inner.h5")
    _copy("shared_dense.h5", tmp_path / "sub" / "mid.h5")
    code, document, _ = run_json(tmp_path)
    assert code == 0
    found = sorted(Path(model["file"]).relative_to(tmp_path).as_posix() for model in document["models"])
    assert found == ["sub/deeper/inner.h5", "sub/mid.h5", "top.keras"]


def test_savedmodel_folder_sorts_among_files(tmp_path: Path) -> None:
    _copy("shared_dense.keras", tmp_path / "a_first.keras")
    _copy("k2_savedmodel", tmp_path / "m_savedmodel")
    _copy("k2_shared.h5", tmp_path / "z_last.h5")
    _, document, _ = run_json(tmp_path)
    assert [Path(model["file"]).name for model in document["models"]] == ["a_first.keras", "m_savedmodel", "z_last.h5"]


def test_savedmodel_folder_counts_as_one_input() -> None:
    code, document, stderr = run_json(SAMPLES / "k2_savedmodel")
    assert code == 0, stderr
    assert len(document["models"]) == 1 and document["errors"] == []
    model = document["models"][0]
    assert model["format"] == "savedmodel"
    assert Path(model["file"]) == SAMPLES / "k2_savedmodel"
    assert model["model"]["has_graph"] is True


def test_savedmodel_folder_inside_a_folder_is_one_input(tmp_path: Path) -> None:
    _copy("k2_savedmodel", tmp_path / "export")
    _copy("shared_dense.keras", tmp_path / "other.keras")
    (tmp_path / "export" / "assets").mkdir(exist_ok=True)
    code, document, stderr = run_json(tmp_path)
    assert code == 0, stderr
    files = sorted(Path(model["file"]).name for model in document["models"])
    assert files == ["export", "other.keras"]
    formats = {Path(model["file"]).name: model["format"] for model in document["models"]}
    assert formats["export"] == "savedmodel"


def test_keras_metadata_file_path_names_its_savedmodel() -> None:
    code, document, _ = run_json(SAMPLES / "k2_savedmodel" / "keras_metadata.pb")
    assert code == 0
    assert [model["format"] for model in document["models"]] == ["savedmodel"]


def test_unzipped_keras_folder_counts_as_one_input(tmp_path: Path) -> None:
    import zipfile

    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(SAMPLES / "shared_dense.keras") as archive:
        archive.extractall(folder)
    code, document, stderr = run_json(folder)
    assert code == 0, stderr
    assert len(document["models"]) == 1
    model = document["models"][0]
    assert model["format"] == "keras-dir"
    assert [layer["path"] for layer in model["layers"] if layer["shared"]] == ["shared_dense"]


def test_same_report_from_relative_paths() -> None:
    proc = run("inspect", "--format", "json", "sample_models/shared_dense.keras", cwd=REPO)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["models"][0]["file"] == "sample_models/shared_dense.keras"


def test_the_pre_commit_hook_prints_the_human_format_and_ci_chooses_its_own() -> None:
    hooks = (Path(__file__).resolve().parents[1] / ".pre-commit-hooks.yaml").read_text()
    entry = next(line.split(":", 1)[1].split() for line in hooks.splitlines() if line.strip().startswith("entry:"))
    assert entry[:2] == ["keras-share", "inspect"]
    assert "--format" not in entry and "-f" not in entry
