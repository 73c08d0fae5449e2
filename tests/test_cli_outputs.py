"""Where a run's reports go (issue 16, items 6, 7 and 9): several formats from one read, files written whole,
the run's total on stderr, ``--statistics``, ``--quiet``, and ``COLUMNS``/``FORCE_COLOR`` on piped output.

Runs the real command in a subprocess, as tests/test_cli.py does. Static path only: no TensorFlow/Keras import.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_command import clean_env, run_cli

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
CLEAN = SAMPLES / "shared_dense.keras"
"""No findings."""
FINDS = SAMPLES / "nested_encoder.keras"
"""One finding: KS201 shared-batchnorm, info (a shared encoder whose calls all take one input signature)."""
MIXED = SAMPLES / "frozen_encoder.keras"
"""Two info findings (KS201, KS301) and a warning (KS211: its optimizer was fitted before the freeze)."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


_env = clean_env
run = run_cli


def _usage_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("keras-share: usage error: ")
    return proc.stderr


# ---------------------------------------------------------------- several outputs (item 6)


def test_format_with_a_path_writes_the_file_and_nothing_on_stdout(tmp_path: Path) -> None:
    proc = run("inspect", "--format", f"json:{tmp_path / 'report.json'}", FINDS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert json.loads((tmp_path / "report.json").read_text())["models"][0]["file"] == str(FINDS)


def test_each_output_of_one_run_is_what_that_format_alone_prints(tmp_path: Path) -> None:
    proc = run("inspect", "--format", f"sarif:{tmp_path / 'out.sarif'}", "--format", "github",
               "-f", f"json:{tmp_path / 'out.json'}", FINDS, MIXED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run("inspect", "--format", "github", FINDS, MIXED).stdout
    assert (tmp_path / "out.sarif").read_text() == run("inspect", "--format", "sarif", FINDS, MIXED).stdout
    assert (tmp_path / "out.json").read_text() == run("inspect", "--format", "json", FINDS, MIXED).stdout


@pytest.mark.usefixtures("capsys")  # keeps the report out of the test log
def test_several_outputs_read_each_model_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras_share.pipeline  # noqa: F401 - bind start_read where the run will look it up
    from keras_share.cli import run as run_in_process
    from keras_share.read import detect

    log = tmp_path / "reads.txt"
    original = detect.start_read

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        with open(log, "a", encoding="utf-8") as out:  # a file: forked reader children write here too
            out.write(f"{Path(path).name}\n")
        return original(path, *args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "start_read", None) is original:
            monkeypatch.setattr(module, "start_read", counted)
    status = run_in_process(["inspect", "--jobs", "1", "-f", f"sarif:{tmp_path / 'a.sarif'}", "-f", "github",
                             "-f", f"markdown:{tmp_path / 'a.md'}", "-f", f"json:{tmp_path / 'a.json'}",
                             str(FINDS), str(CLEAN)])
    assert status == 0
    assert sorted(log.read_text(encoding="utf-8").split()) == sorted([FINDS.name, CLEAN.name])


def test_output_option_writes_the_one_format_to_that_file(tmp_path: Path) -> None:
    proc = run("inspect", "--format", "sarif", "-o", tmp_path / "keras-share.sarif", FINDS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert json.loads((tmp_path / "keras-share.sarif").read_text())["version"] == "2.1.0"


def test_output_option_without_a_format_writes_the_plain_terminal_report(tmp_path: Path) -> None:
    proc = run("inspect", "--output", tmp_path / "report.txt", FINDS, env=_env(FORCE_COLOR="1"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report.txt").read_text()
    assert "encoder (3 layers)" in text and "\x1b" not in text


def test_two_formats_on_stdout_is_a_usage_error_naming_the_fix() -> None:
    line = _usage_line(run("inspect", "--format", "sarif", "--format", "github", FINDS))
    assert "--format github:PATH" in line


def test_output_option_with_several_formats_is_a_usage_error(tmp_path: Path) -> None:
    line = _usage_line(run("inspect", "-f", "json", "-f", f"sarif:{tmp_path / 'a.sarif'}", "-o", tmp_path / "b",
                           FINDS))
    assert "--format FORMAT:PATH" in line
    assert list(tmp_path.iterdir()) == []


def test_two_formats_to_one_file_is_a_usage_error(tmp_path: Path) -> None:
    line = _usage_line(run("inspect", "-f", f"json:{tmp_path / 'out'}", "-f", f"sarif:{tmp_path / 'out'}", FINDS))
    assert str(tmp_path / "out") in line
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_with_a_path_is_a_usage_error() -> None:
    proc = run("inspect", "--format", "xml:report.xml", FINDS)
    assert proc.returncode == 2
    assert "'xml' is not one of rich, json, sarif, github, markdown" in proc.stderr


def test_a_file_that_cannot_be_written_is_one_line_and_exit_4(tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "report.sarif"
    proc = run("inspect", "--format", f"sarif:{target}", FINDS)
    assert proc.returncode == 4
    assert proc.stderr == f"keras-share: error: cannot write the report to {target} (No such file or directory)\n"


def test_a_failed_write_leaves_no_partial_or_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()  # the rename over it fails after the report was written beside it
    proc = run("inspect", "--format", f"json:{tmp_path / 'report.json'}", FINDS)
    assert proc.returncode == 4
    assert proc.stderr.count("\n") == 1 and "Is a directory" in proc.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]
    assert list((tmp_path / "report.json").iterdir()) == []


def test_the_other_outputs_are_written_when_one_file_fails(tmp_path: Path) -> None:
    proc = run("inspect", "-f", f"json:{tmp_path / 'missing' / 'a.json'}", "-f", f"sarif:{tmp_path / 'b.sarif'}",
               "-f", "github", FINDS)
    assert proc.returncode == 4
    assert "::notice" in proc.stdout
    assert json.loads((tmp_path / "b.sarif").read_text())["version"] == "2.1.0"


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("x" * 1_000_000)
    proc = run("inspect", "-o", target, "--format", "json", CLEAN)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(target.read_text())["models"][0]["file"] == str(CLEAN)


def test_a_written_file_gets_the_permissions_of_a_new_file(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        proc = run("inspect", "-o", tmp_path / "report.json", "--format", "json", CLEAN)
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o640


# ---------------------------------------------------------------- the run's total (item 7)


def test_the_terminal_report_ends_with_the_run_total_on_stderr() -> None:
    proc = run("inspect", CLEAN, FINDS, MIXED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "3 files, 2 with findings: 1 warning, 4 info\n"


def test_the_total_of_a_clean_run_says_no_findings() -> None:
    proc = run("inspect", CLEAN)
    assert proc.stderr == "1 file, no findings\n"


def test_the_total_counts_unreadable_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    proc = run("inspect", FINDS, bad)
    assert proc.returncode == 3
    assert proc.stderr.splitlines()[-1] == "2 files, 1 unreadable, 1 with findings: 1 info"


def test_markdown_to_a_file_prints_the_total(tmp_path: Path) -> None:
    proc = run("inspect", "--format", f"markdown:{tmp_path / 'summary.md'}", FINDS)
    assert proc.stderr == "1 file, 1 with findings: 1 info\n"


@pytest.mark.parametrize("output_format", ["json", "sarif", "github"])
def test_machine_formats_print_no_total(output_format: str) -> None:
    proc = run("inspect", "--format", output_format, FINDS)
    assert proc.returncode == 0
    assert proc.stderr == ""


def test_statistics_replace_the_report_with_counts_per_rule() -> None:
    proc = run("inspect", "--statistics", FINDS, MIXED, SAMPLES / "mha_keywords.keras")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("2  KS201  shared-batchnorm\n"
                           "2  KS202  varying-input-shapes\n"
                           "1  KS210  batchnorm-fine-tuning-mode\n"
                           "1  KS211  optimizer-state-mismatch\n"
                           "1  KS301  trainable-in-frozen-parent\n")


def test_statistics_with_format_json_are_json() -> None:
    proc = run("inspect", "--statistics", "--format", "json", FINDS, MIXED)
    assert json.loads(proc.stdout) == [{"code": "KS201", "name": "shared-batchnorm", "count": 2},
                                       {"code": "KS210", "name": "batchnorm-fine-tuning-mode", "count": 1},
                                       {"code": "KS211", "name": "optimizer-state-mismatch", "count": 1},
                                       {"code": "KS301", "name": "trainable-in-frozen-parent", "count": 1}]
    assert proc.stderr == ""


def test_statistics_go_to_stdout_beside_the_files(tmp_path: Path) -> None:
    proc = run("inspect", "--statistics", "--format", f"sarif:{tmp_path / 'a.sarif'}", FINDS)
    assert proc.stdout == "1  KS201  shared-batchnorm\n"
    assert json.loads((tmp_path / "a.sarif").read_text())["version"] == "2.1.0"


def test_statistics_instead_of_a_machine_format_on_stdout_is_a_usage_error() -> None:
    line = _usage_line(run("inspect", "--statistics", "--format", "sarif", FINDS))
    assert "--format sarif:PATH" in line


def test_quiet_prints_nothing_and_keeps_the_exit_code() -> None:
    proc = run("inspect", "--quiet", "--fail-on", "info", FINDS)
    assert proc.returncode == 1
    assert proc.stdout == "" and proc.stderr == ""


def test_quiet_still_reports_unreadable_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    proc = run("inspect", "-q", FINDS, bad)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("keras-share: error: ")


def test_quiet_still_writes_the_files_it_is_given(tmp_path: Path) -> None:
    proc = run("inspect", "-q", "--format", f"sarif:{tmp_path / 'a.sarif'}", FINDS)
    assert proc.returncode == 0
    assert proc.stdout == "" and proc.stderr == ""
    assert json.loads((tmp_path / "a.sarif").read_text())["version"] == "2.1.0"


def test_quiet_with_statistics_is_a_usage_error() -> None:
    assert "drop --quiet or --statistics" in _usage_line(run("inspect", "-q", "--statistics", FINDS))


# ---------------------------------------------------------------- piped terminal output (item 9)


def test_piped_output_takes_its_width_from_columns() -> None:
    proc = run("inspect", SAMPLES / "mha_keywords.keras", env=_env(COLUMNS="200"))
    assert proc.returncode == 0
    assert 80 < max(len(line) for line in proc.stdout.splitlines()) <= 200


def test_force_color_colours_piped_output() -> None:
    proc = run("inspect", CLEAN, env=_env(FORCE_COLOR="1"))
    assert proc.returncode == 0
    assert ANSI.search(proc.stdout)


def test_no_color_wins_over_force_color() -> None:
    proc = run("inspect", CLEAN, env=_env(FORCE_COLOR="1", NO_COLOR="1"))
    assert proc.returncode == 0
    assert "shared_dense" in proc.stdout and "\x1b" not in proc.stdout
