"""The pre-commit hook (.pre-commit-hooks.yaml) run as pre-commit runs it: ``entry``, then the hook's ``args``,
then the staged file names. Locally it prints the human report; CI adds ``args: [--format, github]``."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = "sample_models/nested_encoder.keras"  # one KS201 finding (info: a siamese encoder)


def hook_field(name: str) -> str:
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    return next(line.split(":", 1)[1].strip() for line in hooks.splitlines()
                if line.strip().startswith(f"{name}:"))


def run_hook(*args: str) -> subprocess.CompletedProcess[str]:
    """The hook's entry (``keras-share`` as ``python -m keras_share``) with ``args`` and the model, as pre-commit
    runs it: output captured, not a terminal."""
    program, *entry = shlex.split(hook_field("entry"))
    assert program == "keras-share"
    return subprocess.run([sys.executable, "-m", "keras_share", *entry, *args, MODEL], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def test_hook_prints_the_human_report() -> None:
    proc = run_hook()
    assert proc.returncode == 0, proc.stderr  # an info finding does not fail the default --fail-on error
    assert "info KS201 shared-batchnorm encoder:" in proc.stdout
    assert not any(line.startswith("::") for line in proc.stdout.splitlines())


def test_hook_with_ci_args_prints_github_annotations() -> None:
    proc = run_hook("--format", "github")
    assert any(line.startswith(f"::notice file={MODEL},") and "KS201" in line for line in proc.stdout.splitlines())


def test_hook_runs_on_model_files() -> None:
    assert hook_field("files") == r"\.(keras|h5|hdf5)$"
