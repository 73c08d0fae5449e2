"""Shell completion: ``keras-share --show-completion``/``--install-completion`` and the completions themselves,
under the program's own name whether it runs as ``keras-share`` or ``python -m keras_share``.

Each run is a fresh process: completion is answered by the command line before any command runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def keras_share(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keras_share", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, **env})


def complete_bash(words: str) -> list[str]:
    """What bash completion offers for the last of ``words`` (a command line being typed)."""
    proc = keras_share(_KERAS_SHARE_COMPLETE="complete_bash", COMP_WORDS=words,
                       COMP_CWORD=str(len(words.split()) - 1))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_help_offers_completion_install() -> None:
    help_text = keras_share("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


def test_show_completion_prints_a_script_for_keras_share() -> None:
    proc = keras_share("--show-completion", "bash")
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _keras_share_completion keras-share" in proc.stdout
    assert "_KERAS_SHARE_COMPLETE=complete_bash" in proc.stdout


def test_completion_offers_commands() -> None:
    assert complete_bash("keras-share ins") == ["inspect"]


def test_completion_offers_inspect_options() -> None:
    assert sorted(complete_bash("keras-share inspect --extend-")) == ["--extend-ignore", "--extend-select"]


def test_completion_offers_format_choices() -> None:
    assert "sarif" in complete_bash("keras-share inspect --format s")
