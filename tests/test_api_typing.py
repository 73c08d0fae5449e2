"""The public Python API type-checks in user code under ``mypy --strict``, with precise types.

One mypy run (module fixture) checks a user script against this checkout; each test reads its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

REPO = Path(__file__).resolve().parents[1]
REPORT = "keras_share.analysis.report.ModelReport"

USER_SCRIPT = textwrap.dedent("""
    from pathlib import Path
    from typing import Any

    import keras_share
    from keras_share import inspect_file
    from keras_share.testing import assert_no_findings
    from keras_share.vocabulary import Severity


    def shared_paths(path: str) -> list[str]:
        return [layer.layer.path for layer in inspect_file(path).shared_layers]


    def codes_by_file(paths: list[Path]) -> dict[str, list[str]]:
        return {report.file.path: [finding.rule for finding in report.findings]
                for report in keras_share.inspect(paths)}


    def unique_params(path: str) -> int:
        return keras_share.inspect(path, select=["KS2"], ignore="KS201").summary.unique_params


    def as_json(path: Path) -> tuple[dict[str, Any], str]:
        report = keras_share.inspect(path)
        return keras_share.to_dict(report), keras_share.to_json(report)


    def check(path: str) -> None:
        assert_no_findings(path, fail_on="error", ignore=["shared-batchnorm"])
        keras_share.testing.assert_no_findings([path, path], fail_on=Severity.INFO)
""")

REVEALED = {
    "keras_share.inspect_file('m.keras')": REPORT,
    "keras_share.inspect('m.keras')": REPORT,
    "keras_share.inspect(Path('m.keras'))": REPORT,
    "keras_share.inspect(['a.keras', 'b.keras'])": f"list[{REPORT}]",
    "keras_share.inspect(('a.keras', Path('b.keras')))": f"list[{REPORT}]",
    "keras_share.inspect({'left': 'a.keras'})": f"list[{REPORT}]",
    "keras_share.inspect('m.keras', weights='w.weights.h5', weights_by_name=False, baseline=Path('b.json'))":
        REPORT,
    "keras_share.inspect(['a.keras'], weights=Path('w.h5'), weights_by_name=True, baseline='b.json')":
        f"list[{REPORT}]",
    "keras_share.to_dict(keras_share.inspect('m.keras'))": "dict[str, Any]",
    "keras_share.to_json(keras_share.inspect('m.keras'))": "str",
}


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[int, str]]:
    """mypy --strict on the user script plus one ``reveal_type`` line per entry of REVEALED.

    keras_share is found through MYPYPATH (this checkout) and checked silently, as an installed typed package is.
    Returns the exit code, the output and each REVEALED line number's expression.
    """
    folder = tmp_path_factory.mktemp("user_code")
    lines = USER_SCRIPT.splitlines()
    expressions: dict[int, str] = {}
    for expression in REVEALED:
        lines.append(f"reveal_type({expression})")
        expressions[len(lines)] = expression
    (folder / "user_code.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "mypy.ini").write_text("[mypy]\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--config-file", "mypy.ini",
         "--cache-dir", str(folder / "cache"), "user_code.py"],
        capture_output=True, text=True, timeout=300, cwd=folder, env={**os.environ, "MYPYPATH": str(REPO)},
    )
    return proc.returncode, proc.stdout + proc.stderr, expressions


def test_a_user_script_passes_mypy_strict(mypy_run: tuple[int, str, dict[int, str]]) -> None:
    code, output, _ = mypy_run
    assert [line for line in output.splitlines() if ": error:" in line] == []
    assert code == 0, output


@pytest.mark.parametrize("expression", list(REVEALED))
def test_public_api_has_precise_types(mypy_run: tuple[int, str, dict[int, str]], expression: str) -> None:
    _, output, expressions = mypy_run
    revealed = {expressions[int(line_number)]: kind
                for line_number, kind in re.findall(r'^user_code\.py:(\d+): note: Revealed type is "(.*)"$',
                                                    output, re.MULTILINE)}
    assert revealed.get(expression) == REVEALED[expression], output
