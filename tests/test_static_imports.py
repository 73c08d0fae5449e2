"""The static path never imports TensorFlow or Keras (checked in fresh subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
FORBIDDEN = ("tensorflow", "keras", "tf_keras")
INPUTS = [
    SAMPLES / "shared_dense.keras",
    SAMPLES / "shared_dense.h5",
    SAMPLES / "k2_shared.h5",
    SAMPLES / "shared_dense.weights.h5",
    SAMPLES / "k2_savedmodel",
]
IDS = [path.name for path in INPUTS]


def _forbidden(modules: list[str]) -> list[str]:
    return sorted({name for name in modules if name.split(".")[0] in FORBIDDEN})


def _imported_modules(importtime_stderr: str) -> list[str]:
    """Module names from ``-X importtime`` lines ``import time: self | cumulative | module``."""
    modules = []
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:"):
            parts = line.split("|")
            if len(parts) == 3:
                name = parts[2].strip()
                if name and name != "imported package":
                    modules.append(name)
    return modules


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=180, cwd=REPO,
                          **kwargs)  # type: ignore[call-overload]


def test_importtime_parser_sees_imports() -> None:
    """Sanity: the importtime parser sees a real import (so an empty result means something)."""
    proc = _run(["-X", "importtime", "-c", "import json"])
    assert "json" in _imported_modules(proc.stderr)


@pytest.mark.parametrize("output_format", ["rich", "json"])
@pytest.mark.parametrize("path", INPUTS, ids=IDS)
def test_cli_imports_no_tensorflow(path: Path, output_format: str) -> None:
    code = "import sys, keras_share.cli; sys.argv = ['keras-share']; keras_share.cli.app(%r)" % (
        ["inspect", "--format", output_format, "--all-layers", str(path)],)
    proc = _run(["-X", "importtime", "-c", code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = _imported_modules(proc.stderr)
    assert "keras_share.cli" in modules and "h5py" in modules
    assert _forbidden(modules) == []


def test_cli_batch_with_workers_imports_no_tensorflow() -> None:
    """Several inputs (possibly read in worker processes): neither parent nor workers import TF."""
    code = textwrap.dedent(f"""
        import sys, json, atexit, keras_share.cli
        sys.argv = ['keras-share']
        try:
            keras_share.cli.app(['inspect', '--format', 'json', *{[str(p) for p in INPUTS]!r}])
        except SystemExit as exit:
            code = exit.code
        bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})
        print(json.dumps({{"exit": code, "forbidden": bad}}), file=sys.stderr)
    """)
    proc = _run(["-X", "importtime", "-c", code])
    last = json.loads(proc.stderr.strip().splitlines()[-1])
    assert last == {"exit": 0, "forbidden": []}
    # worker processes write their own importtime lines to the same stderr
    assert _forbidden(_imported_modules(proc.stderr)) == []


@pytest.mark.parametrize("path", INPUTS, ids=IDS)
def test_python_m_keras_share_imports_no_tensorflow(path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("keras_share.__main__") is None:
        pytest.skip("no keras_share/__main__.py")
    proc = _run(["-X", "importtime", "-m", "keras_share", "inspect", "--format", "json", str(path)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _forbidden(_imported_modules(proc.stderr)) == []


@pytest.mark.parametrize("path", INPUTS, ids=IDS)
def test_api_inspect_file_imports_no_tensorflow(path: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        import keras_share
        from keras_share.api import inspect_file
        report = inspect_file({str(path)!r})
        lazy = keras_share.inspect_file({str(path)!r})
        print(json.dumps({{
            "forbidden": sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}),
            "layers": len(report.layers),
            "same": len(lazy.layers) == len(report.layers),
        }}))
    """)
    proc = _run(["-c", code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["forbidden"] == []
    assert result["same"] is True


def test_version_is_cheap() -> None:
    """``keras-share --version`` does not even load the readers."""
    proc = _run(["-X", "importtime", "-c",
                 "import sys, keras_share.cli; sys.argv = ['keras-share']; keras_share.cli.app(['--version'])"])
    assert proc.returncode == 0
    modules = _imported_modules(proc.stderr)
    assert _forbidden(modules) == []
    assert "h5py" not in modules


def test_the_command_process_leaves_h5py_and_numpy_to_its_reader_child() -> None:
    """The reader child imports them; the process that renders never does."""
    path = SAMPLES / "shared_dense.keras"
    code = textwrap.dedent(f"""
        import json, sys
        import keras_share.cli as cli
        command_line = cli.run
        def run(args=None, **options):
            status = command_line(args, **options)
            here = sorted(name for name in sys.modules if name.split(".")[0] in ("h5py", "numpy"))
            print(json.dumps({{"status": status, "imported here": here}}), file=sys.stderr)
            return status
        cli.run = run
        sys.argv = ["keras-share", "inspect", "--format", "json", {str(path)!r}]
        cli.main()
    """)
    proc = _run(["-X", "importtime", "-c", code])
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    assert result == {"status": 0, "imported here": []}
    assert json.loads(proc.stdout)["models"][0]["summary"]["shared_layers"] == 1
    modules = _imported_modules(proc.stderr)  # the reader child's lines come to the same stderr
    assert "h5py" in modules and _forbidden(modules) == []


def _h5py_imports(importtime_stderr: str) -> int:
    """How many processes imported h5py (each writes its own importtime line for it)."""
    return _imported_modules(importtime_stderr).count("h5py")


@pytest.mark.parametrize(("jobs", "importers"), [(1, 1), (2, 2)], ids=["serial", "pool of two workers"])
def test_a_batch_imports_h5py_once_in_each_process_that_forks_reader_children(jobs: int, importers: int) -> None:
    files = [str(path) for path in INPUTS if path.suffix] * 2
    code = "import keras_share.cli; keras_share.cli.run(%r)" % (["inspect", "--format", "json", "--jobs", str(jobs), *files],)
    proc = _run(["-X", "importtime", "-c", code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads(proc.stdout)["models"]) == len(files)
    assert _h5py_imports(proc.stderr) == importers


def test_repeated_api_calls_import_h5py_once() -> None:
    code = textwrap.dedent(f"""
        from keras_share import inspect_file
        for path in {[str(path) for path in INPUTS]!r}:
            inspect_file(path)
    """)
    proc = _run(["-X", "importtime", "-c", code])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _h5py_imports(proc.stderr) == 1


def test_the_process_reporting_on_a_keras_archive_never_loads_h5py_or_numpy() -> None:
    """Its reader child reads the weights (libhdf5 runs only there); the configs are read, and matched to the
    weights, here."""
    code = textwrap.dedent(f"""
        import sys, io, contextlib
        import keras_share.cli
        with contextlib.redirect_stdout(io.StringIO()) as report:
            status = keras_share.cli.run(["inspect", "--format", "json", {str(SAMPLES / "shared_dense.keras")!r}])
        print(status in (0, 1), '"weights"' in report.getvalue(), sorted(n for n in ("h5py", "numpy") if n in sys.modules))
    """)
    proc = _run(["-c", code])
    assert proc.stdout.split() == ["True", "True", "[]"], proc.stdout + proc.stderr[-2000:]


def test_diff_imports_no_tensorflow() -> None:
    code = "import sys, keras_share.cli; sys.argv = ['keras-share']; keras_share.cli.app(%r)" % (
        ["diff", "--format", "json", str(SAMPLES / "shared_dense.keras"), str(SAMPLES / "shared_dense.h5")],)
    proc = _run(["-X", "importtime", "-c", code])
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    modules = _imported_modules(proc.stderr)
    assert "keras_share.analysis.diff" in modules and _forbidden(modules) == []
