"""Shell completion: ``keras-share completion SHELL`` and the completions themselves,
under the program's own name whether it runs as ``keras-share`` or ``python -m keras_share``.

Each run is a fresh process: completion is answered by the command line before any command runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def keras_share(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keras_share", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, **env})


def complete_bash(words: str) -> list[str]:
    """What bash completion offers for the last of ``words`` (a command line being typed)."""
    proc = keras_share(_KERAS_SHARE_COMPLETE="bash_complete", COMP_WORDS=words,
                       COMP_CWORD=str(len(words.split()) - 1))
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]  # click's bash lines: "type,value"


def test_help_lists_the_completion_command() -> None:
    assert "completion" in keras_share("--help").stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_keras_share(shell: str) -> None:
    proc = keras_share("completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert "_KERAS_SHARE_COMPLETE" in proc.stdout and "keras-share" in proc.stdout


def test_bash_script_registers_keras_share() -> None:
    assert "complete -o nosort -F _keras_share_completion keras-share" in keras_share("completion", "bash").stdout


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    assert keras_share("completion", "tcsh").returncode == 2


def test_completion_offers_commands() -> None:
    assert complete_bash("keras-share ins") == ["inspect"]


def test_completion_offers_inspect_options() -> None:
    assert sorted(complete_bash("keras-share inspect --extend-")) == ["--extend-ignore", "--extend-select"]


def test_completion_offers_format_choices() -> None:
    assert "sarif" in complete_bash("keras-share inspect --format s")
