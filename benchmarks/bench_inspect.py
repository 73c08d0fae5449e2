"""Benchmark: ``keras-share inspect`` (static) against ``keras.models.load_model`` + ``summary()``.

Run ``python benchmarks/bench_inspect.py`` (needs the ``tensorflow`` extra for building and for the Keras
side; ``--help`` lists the options). It builds, with Keras 3, into ``benchmarks/_work/`` (gitignored; models
are reused between runs, ``--rebuild`` forces new ones):

* ``layers_100``, ``layers_1000``, ``layers_10000``: Functional models of small ``Dense(8)`` layers with
  sharing and nesting. A nested sub-model ``block`` (Input -> Dense -> Dense) is called twice, at the start
  and at the end; between them run parallel branches of at most 100 chained Dense layers each, and one
  ``shared`` Dense layer is called after every 10th layer of every branch (1,000 call sites in the
  10,000-layer model); an ``Add`` merges the branches. The models are built *wide* (10,000 layers = 100
  branches x 100) rather than 10,000 deep: parts of Keras walk the graph recursively and hit Python's
  recursion limit on chains of about a thousand layers (the builder also raises the limit, as a fallback).
* ``weights_1gb`` (skip with ``--skip-large``): 4 Dense layers with 8192 x 8192 float32 kernels, 1.07 GB of
  weights; built only when the disk has 4 GB free.

Then, in the same run, each model is measured as ``keras-share inspect --format json MODEL`` (end to end, run
as ``python -m keras_share`` with this checkout first on ``PYTHONPATH``) and as ``python -c 'keras.models.load_model(MODEL); model.summary()'``, each
run in a fresh process: wall time is taken around the process, peak RSS is the ``ru_maxrss`` that
``os.wait4`` returns for it (on Linux the largest of it and the children it reaped, such as keras-share's
reader child). keras-share gets one untimed warm-up run and ``--repeat`` timed runs,
Keras ``--keras-repeat`` runs within ``--keras-budget`` seconds; medians are reported. keras-share's end-to-end
runs take turns with its in-process-timed runs and the floor's, so that the three see the same phases of a
machine whose speed drifts over minutes. A second table splits
each side into imports and work with in-process timers, next to the *floor* of each layers model: one process
that only starts Python, imports click and h5py, and has libhdf5 open every dataset once (what a reader
doing everything in one process cannot go below).
Last come ``keras-share --version``, a folder of 16 copies of the smallest
model with ``--jobs 1`` and ``--jobs <CPU count>``, the log-log scaling exponent from 100 to 10,000 layers,
and the issue's targets, printed as met / MISSED, never asserted.

The measured commands run with ``PYTHONDONTWRITEBYTECODE`` cleared (``--no-bytecode-cache`` keeps it), so
that they start from cached bytecode as an installed package does. ``--hog`` keeps a busy loop running on the
last CPU while anything is timed.

``--preset`` (opt-in) measures only a KerasHub preset of about 2 GB: a ``GPT2Backbone`` with a vocabulary of 1,000
and 10 layers 2,048 wide (``PRESET_SPEC``), saved with ``save_to_preset(max_shard_size=0.25)`` into
``benchmarks/_work/preset_2gb/`` (built once, by ``--hub-python``, a Python with keras-hub; default this one). It
runs ``keras-share inspect --format json --ignore weight-copy PRESET`` (no content hashing) and the same with every
rule (``weight-copy`` hashes every array that has a same-shape twin), each in a fresh process: wall time, peak RSS,
and the bytes the process and its reader children read (``rchar`` of ``/proc/self/io`` at exit, reaped children
included, imports too), against the preset's size; then keras-hub's ``Backbone.from_preset`` (config, then
``load_weights``) in ``--hub-python``, its time and peak RSS beside them.

``--compare-rev REV`` measures only what this code gains or loses against git revision ``REV``: it checks
``REV`` out into a temporary ``git worktree`` under ``benchmarks/_work/`` and runs ``python -m keras_share inspect
--format json MODEL`` of each (``PYTHONPATH`` and the working folder set to its tree) in ``--pairs`` interleaved
pairs, the order inside a pair alternating, for each ``--sizes`` model (default: 1,000 layers), once on the
machine as it is and once with the busy loop on the other CPU. It prints the median times, the median paired
difference, that difference as a share of this code's time, how many pairs ``REV`` won, and the median
paired difference of CPU time (user + system of the process and its reader child; less disturbed by other load).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
SPEC_VERSION = 1
"""Bump when the models the builder makes change, so cached models get rebuilt."""

SIZES = (100, 1000, 10000)
BRANCH_DEPTH = 100
WIDTH = 8
LARGE_UNITS = 8192
LARGE_LAYERS = 4
FOLDER_COPIES = 16
LARGE_FREE_BYTES = 4 * 1024**3
"""Free disk required before building the 1 GB model (file, plus Keras's temporary copy while saving)."""

QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "KERAS_BACKEND": "tensorflow",
            "PYTHONWARNINGS": "ignore"}

KERAS_SNIPPET = """\
import sys, time, json
t0 = time.perf_counter()
import keras
t1 = time.perf_counter()
model = keras.models.load_model(sys.argv[1])
model.summary()
t2 = time.perf_counter()
with open(sys.argv[2], "w") as out:
    json.dump({"import": t1 - t0, "work": t2 - t1}, out)
"""

STATIC_SNIPPET = """\
import sys, time, json
t0 = time.perf_counter()
model, report = sys.argv[1:3]
args = ["inspect", "--format", "json", model]
from keras_share.cli import run
import keras_share.batch, keras_share.read.detect, keras_share.analysis.analyze, keras_share.render.json_format
t1 = time.perf_counter()
run(args)
t2 = time.perf_counter()
with open(report, "w") as out:
    json.dump({"import": t1 - t0, "work": t2 - t1}, out)
"""

FLOOR_SNIPPET = """\
import os, sys, zipfile
import click, h5py
with zipfile.ZipFile(sys.argv[1]) as archive:
    image = archive.read("model.weights.h5")
weights = h5py.File(h5py.h5f.open_file_image(image))
def describe(name, info):
    if info.type == h5py.h5o.TYPE_DATASET:
        dataset = h5py.h5d.open(weights.id, name)
        dataset.get_type(), dataset.get_space().get_simple_extent_dims()
h5py.h5o.visit(weights.id, describe, info=True)
os._exit(0)
"""
"""The floor under any click + h5py reader of a ``.keras`` file: start Python, import click and h5py, and
have libhdf5 open every dataset once for its shape and dtype; no config, no analysis, no output."""


# ----------------------------------------------------------------------------------------------- building


def build_layers_model(layers: int, path: Path) -> None:
    """A Functional model of about ``layers`` layers with a shared layer and a nested model called twice."""
    import keras

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))  # belt and braces; the model is wide
    block_in = keras.Input(shape=(WIDTH,), name="block_in")
    hidden = keras.layers.Dense(WIDTH, name="block_hidden")(block_in)
    block = keras.Model(block_in, keras.layers.Dense(WIDTH, name="block_out")(hidden), name="block")
    shared = keras.layers.Dense(WIDTH, name="shared")

    inputs = keras.Input(shape=(WIDTH,), name="x")
    chain = max(1, layers - 5)  # input, block, shared, merge and the nested model's 2 Dense make up the rest
    depth = min(BRANCH_DEPTH, chain)
    branches = max(1, round(chain / depth))
    start = block(inputs)
    ends = []
    for branch in range(branches):
        tensor = start
        for step in range(depth):
            tensor = keras.layers.Dense(WIDTH, name=f"b{branch}_d{step}")(tensor)
            if step % 10 == 9:
                tensor = shared(tensor)
        ends.append(tensor)
    merged = keras.layers.Add(name="merge")(ends) if len(ends) > 1 else ends[0]
    model = keras.Model(inputs, block(merged), name=f"bench_{layers}")
    model.save(path)


def build_large_model(path: Path) -> None:
    """About 1 GB of float32 weights in a few huge Dense kernels."""
    import keras

    inputs = keras.Input(shape=(LARGE_UNITS,), name="x")
    tensor = inputs
    for index in range(LARGE_LAYERS):
        tensor = keras.layers.Dense(LARGE_UNITS, name=f"huge_{index}")(tensor)
    keras.Model(inputs, tensor, name="weights_1gb").save(path)


@dataclass
class Case:
    name: str
    path: Path
    layers: int | None
    spec: dict[str, object] = field(default_factory=dict)


def ensure_built(case: Case, rebuild: bool) -> float | None:
    """Build the model in a subprocess unless a matching one is cached; return the build time (None = cached)."""
    marker = case.path.with_suffix(".json")
    spec = {"spec_version": SPEC_VERSION, **case.spec}
    if not rebuild and case.path.is_file() and marker.is_file():
        try:
            if json.loads(marker.read_text()) == spec:
                return None
        except ValueError:
            pass
    case.path.unlink(missing_ok=True)
    start = time.perf_counter()
    print(f"building {case.name} -> {case.path.relative_to(HERE.parent)} ...", file=sys.stderr, flush=True)
    built = subprocess.run([sys.executable, __file__, "_build", case.name, str(case.path)], env={**os.environ, **QUIET_TF},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if built.returncode != 0:
        sys.exit(f"building {case.name} failed:\n{built.stderr[-3000:]}")
    marker.write_text(json.dumps(spec))
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- measuring


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    inner: dict[str, float]
    error: str | None = None
    stdout: bytes = b""


def run_once(command: list[str], env: dict[str, str], report: bool = False, keep_stdout: bool = False,
             cwd: Path | None = None) -> Run:
    """Run ``command``: wall time, CPU time and peak RSS of the child and its reaped descendants, and its own
    timing report.

    ``os.wait4`` returns the child's rusage; on Linux its ``ru_maxrss`` (KiB) covers the process and the
    children it waited for (keras-share reads each file in a forked child, Keras does not fork).
    """
    with tempfile.TemporaryDirectory() as scratch:
        report_path = os.path.join(scratch, "report.json")
        out_path = os.path.join(scratch, "stdout")
        full = command + [report_path] if report else command
        with open(out_path, "wb") if keep_stdout else open(os.devnull, "wb") as out, \
                tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            process = subprocess.Popen(full, stdout=out, stderr=err, env=env, cwd=cwd)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace").strip()
        error = None
        if process.returncode != 0:
            error = f"exit {process.returncode}: " + (stderr.splitlines()[-1] if stderr else "(no message)")
        inner = json.loads(Path(report_path).read_text()) if report and os.path.exists(report_path) else {}
        stdout = Path(out_path).read_bytes() if keep_stdout else b""
    return Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_mb=usage.ru_maxrss / 1024, inner=inner, error=error, stdout=stdout)


@dataclass
class Stats:
    wall: float
    cpu: float
    rss_mb: float
    inner: dict[str, float]
    walls: list[float]
    errors: list[str]

    @property
    def runs(self) -> int:
        return len(self.walls)


def summarize(runs: list[Run]) -> Stats:
    keys = set.intersection(*(set(run.inner) for run in runs)) if runs else set()
    return Stats(
        wall=statistics.median(run.wall for run in runs),
        cpu=statistics.median(run.cpu for run in runs),
        rss_mb=statistics.median(run.rss_mb for run in runs),
        inner={key: statistics.median(run.inner[key] for run in runs) for key in sorted(keys)},
        walls=[run.wall for run in runs],
        errors=sorted({run.error for run in runs if run.error}),
    )


def measure_in_turns(commands: list[tuple[list[str], dict[str, str], bool]], repeat: int) -> list[Stats]:
    """Median of ``repeat`` runs of each ``(command, env, report)``, the commands taking turns run by run."""
    runs: list[list[Run]] = [[] for _ in commands]
    for _ in range(repeat):
        for taken, (command, env, report) in zip(runs, commands):
            taken.append(run_once(command, env, report))
    return [summarize(taken) for taken in runs]


def measure(command: list[str], repeat: int, env: dict[str, str], report: bool = False,
            warmup: bool = True, budget: float | None = None) -> Stats:
    """Median of ``repeat`` runs; with ``budget`` (seconds), stop early once the runs have used it up."""
    if warmup:
        run_once(command, env, report)
    runs: list[Run] = []
    while len(runs) < repeat:
        runs.append(run_once(command, env, report))
        if budget is not None and sum(run.wall for run in runs) >= budget:
            break
    return summarize(runs)


@contextlib.contextmanager
def cpu_hog(active: bool) -> Iterator[None]:
    """While the block runs, a busy loop pinned to the last CPU (where the system lets us pin); nothing when not
    ``active``."""
    if not active:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) > 1:
            os.sched_setaffinity(hog.pid, {cpus[-1]})
        time.sleep(0.2)  # let it start spinning
        yield
    finally:
        hog.kill()
        hog.wait()


def static_facts(run: Run) -> dict[str, object]:
    """Layer counts and sharing as keras-share reported them (a sanity check of the built model)."""
    try:
        models = json.loads(run.stdout)["models"]
    except ValueError:
        models = []
    if not models:
        return {}
    model = models[0]
    most = max((layer["effective_calls"] for layer in model["layers"]), default=0)
    return {"layers": model["summary"]["layers"], "shared": model["summary"]["shared_layers"],
            "params": model["summary"]["unique_params"], "max_calls": most,
            "rules": sorted({finding["rule"] for finding in model.get("findings", [])})}


# ----------------------------------------------------------------------------------------------- reporting


def fmt_time(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def fmt_size(size: int) -> str:
    return f"{size / 1024**2:.1f} MB" if size < 1024**3 else f"{size / 1024**3:.2f} GB"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, rows)])


@dataclass
class Result:
    case: Case
    size: int
    facts: dict[str, object]
    static: Stats
    static_inner: Stats
    keras: Stats | None
    floor: Stats | None


def slope(small: float, big: float, n_small: int, n_big: int) -> float:
    return math.log(big / small) / math.log(n_big / n_small)


# ----------------------------------------------------------------------------------------------- comparing


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@contextlib.contextmanager
def checked_out(rev: str) -> Iterator[Path]:
    """A temporary ``git worktree`` of ``rev`` under WORK, removed afterwards."""
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    tree = WORK / f"rev_{sha[:12]}"
    if tree.exists():
        _git("worktree", "remove", "--force", str(tree))
    _git("worktree", "add", "--detach", str(tree), sha)
    try:
        yield tree
    finally:
        _git("worktree", "remove", "--force", str(tree))


def imported_from(tree: Path, env: dict[str, str]) -> Path:
    """Where ``python -m keras_share`` run as ``compare_command`` does would import keras_share from."""
    code = "import keras_share; print(keras_share.__file__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree, check=True)
    return Path(done.stdout.strip()).resolve().parent.parent


@dataclass
class Comparison:
    load: str
    this: Stats
    other: Stats
    differences: list[float]
    """Per pair: the other revision's wall time minus this code's."""
    cpu_differences: list[float]
    """Per pair: the same for CPU time (user + system, the reader child's included)."""


def compare_in_pairs(trees: tuple[Path, Path], model: Path, env: dict[str, str], pairs: int, hog: bool) -> Comparison:
    """``pairs`` runs of ``inspect --format json model`` from each tree (this code's first), interleaved, the
    order inside a pair alternating; with ``hog``, a busy loop occupies the last CPU meanwhile."""
    command = [sys.executable, "-m", "keras_share", "inspect", "--format", "json", str(model)]
    envs = [{**env, "PYTHONPATH": str(tree)} for tree in trees]
    runs: tuple[list[Run], list[Run]] = ([], [])
    with cpu_hog(hog):
        for side in (0, 1):
            run_once(command, envs[side], cwd=trees[side])  # warm-up, and the bytecode cache
        for pair in range(pairs):
            for side in ((0, 1) if pair % 2 == 0 else (1, 0)):
                runs[side].append(run_once(command, envs[side], cwd=trees[side]))
    return Comparison("CPU hog on the other CPU" if hog else "as it is", summarize(runs[0]), summarize(runs[1]),
                      [other.wall - this.wall for this, other in zip(*runs)],
                      [other.cpu - this.cpu for this, other in zip(*runs)])


def run_comparison(args: argparse.Namespace, env: dict[str, str]) -> None:
    """``--compare-rev``: this code against another revision, on the machine as it is and with a CPU hog."""
    sizes = args.sizes if args.sizes_given else (1000,)
    cases = [Case(f"layers_{n}", WORK / f"layers_{n}.keras", n, {"layers": n, "depth": BRANCH_DEPTH}) for n in sizes]
    for case in cases:
        ensure_built(case, args.rebuild)
    env = {**env, "NO_COLOR": "1"}
    load_before = os.getloadavg()[0]
    this_tree = HERE.parent
    subject = _git("log", "-1", "--format=%h %s", args.compare_rev)[:72]
    with checked_out(args.compare_rev) as other_tree:
        for tree in (this_tree, other_tree):
            found = imported_from(tree, {**env, "PYTHONPATH": str(tree)})
            if found != tree.resolve():
                sys.exit(f"python -m keras_share in {tree} imports keras_share from {found}")
        results = []
        for case in cases:
            for hog in (False, True):
                print(f"comparing on {case.name}{' with a CPU hog' if hog else ''} ...", file=sys.stderr, flush=True)
                results.append((case, compare_in_pairs((this_tree, other_tree), case.path, env, args.pairs, hog)))
    print(f"this code ({_git('log', '-1', '--format=%h')}{' + uncommitted changes' if _git('status', '--porcelain', '--untracked-files=no') else ''}) "
          f"against {args.compare_rev} ({subject}); {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"`python -m keras_share inspect --format json MODEL`, {args.pairs} interleaved pairs per row after a "
          "warm-up run of each; medians")
    print()
    rows = []
    for case, result in results:
        difference = statistics.median(result.differences)
        quartiles = statistics.quantiles(result.differences, n=4) if len(result.differences) > 1 else [difference] * 3
        wins = sum(1 for value in result.differences if value < 0)
        rows.append([case.name, result.load, fmt_time(result.this.wall), fmt_time(result.other.wall),
                     f"{difference * 1000:+.0f} ms ({quartiles[0] * 1000:+.0f} .. {quartiles[2] * 1000:+.0f})",
                     f"{difference / result.this.wall * 100:+.1f} %", f"{wins} of {len(result.differences)}",
                     f"{statistics.median(result.cpu_differences) / result.this.cpu * 100:+.1f} % of {fmt_time(result.this.cpu)}",
                     f"{result.this.rss_mb:.0f} / {result.other.rss_mb:.0f} MB"
                     + (" FAILED" if result.this.errors or result.other.errors else "")])
    print(table(["model", "machine", "this code", args.compare_rev, f"{args.compare_rev} - this code (quartiles)",
                 "of this code's time", f"pairs {args.compare_rev} was faster", "CPU time difference",
                 "peak RSS this / other"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--skip-large", action="store_true", help="leave out the 1 GB-weights model")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of keras-share per model (default 7)")
    parser.add_argument("--keras-repeat", type=int, default=3,
                        help="timed runs of Keras load+summary per model (default 3)")
    parser.add_argument("--keras-budget", type=float, default=300.0,
                        help="stop repeating Keras runs of one model once they took this many seconds (default 300; "
                             "one Keras load of the 10,000-layer model takes minutes)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE as set (by default it is cleared for the measured "
                             "commands, so they run from cached bytecode as an installed package does)")
    parser.add_argument("--sizes", type=lambda text: tuple(int(s) for s in text.split(",")), default=None,
                        help="layer counts, comma-separated (default 100,1000,10000; with --compare-rev 1000)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the models even if cached")
    parser.add_argument("--no-keras", action="store_true", help="measure keras-share only")
    parser.add_argument("--hog", action="store_true", help="keep a busy loop running on the last CPU while timing")
    parser.add_argument("--compare-rev", metavar="REV",
                        help="only compare this code with git revision REV, on the machine as it is and with a CPU hog")
    parser.add_argument("--pairs", type=int, default=30, help="interleaved pairs of runs for --compare-rev (default 30)")
    parser.add_argument("--preset", action="store_true",
                        help="only measure the sharded KerasHub preset of about 2 GB (built once with --hub-python)")
    parser.add_argument("--hub-python", default=sys.executable,
                        help="a Python with keras-hub installed, to build the preset and load it (default: this one)")
    args = parser.parse_args()
    args.sizes_given = args.sizes is not None
    args.sizes = args.sizes or SIZES

    WORK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.compare_rev:
        run_comparison(args, env)
        return
    if args.preset:
        run_preset(args, env)
        return
    cases = [Case(f"layers_{n}", WORK / f"layers_{n}.keras", n, {"layers": n, "depth": BRANCH_DEPTH})
             for n in args.sizes]
    if not args.skip_large:
        large = Case("weights_1gb", WORK / "weights_1gb.keras", None, {"units": LARGE_UNITS, "layers": LARGE_LAYERS})
        free = shutil.disk_usage(WORK).free
        if large.path.is_file() or free >= LARGE_FREE_BYTES:
            cases.append(large)
        else:
            print(f"skipping weights_1gb: {fmt_size(free)} free in {WORK}, need {fmt_size(LARGE_FREE_BYTES)}",
                  file=sys.stderr)

    builds = {case.name: ensure_built(case, args.rebuild) for case in cases}
    script = [sys.executable, "-m", "keras_share"]
    static_env = {**env, "NO_COLOR": "1", "PYTHONPATH": str(HERE.parent)}
    keras_env = {**env, **QUIET_TF}

    with cpu_hog(args.hog):
        version = measure(script + ["--version"], max(args.repeat, 10), static_env)
        startup = measure([sys.executable, "-c", "pass"], max(args.repeat, 10), env)

        results: list[Result] = []
        for case in cases:
            print(f"measuring {case.name} ...", file=sys.stderr, flush=True)
            command = script + ["inspect", "--format", "json", str(case.path)]
            warm = run_once(command, static_env, keep_stdout=True)  # warm-up run, also the source of the facts
            repeat = 1 if warm.error else args.repeat  # a failing read is not worth repeating (it may be a timeout)
            turns = [(command, static_env, False), ([sys.executable, "-c", STATIC_SNIPPET, str(case.path)], static_env, True)]
            if case.layers:
                turns.append(([sys.executable, "-c", FLOOR_SNIPPET, str(case.path)], static_env, False))
            static, inner, *floors = measure_in_turns(turns, repeat)
            floor = floors[0] if floors else None
            keras_stats = None
            if not args.no_keras:
                keras_stats = measure([sys.executable, "-c", KERAS_SNIPPET, str(case.path)], args.keras_repeat,
                                      keras_env, report=True, warmup=False, budget=args.keras_budget)
            results.append(Result(case, case.path.stat().st_size, static_facts(warm), static, inner, keras_stats, floor))

        folder = measure_folder(script, static_env, args, cases)
    keras_version = subprocess.run([sys.executable, "-c", "import keras; print(keras.__version__)"],
                                   capture_output=True, text=True, env=keras_env, check=False).stdout.strip() or "?"
    print_report(args, results, version, startup, script, keras_version, builds, folder)


PRESET_DIR = WORK / "preset_2gb"
PRESET_SPEC = {"vocabulary_size": 1000, "num_layers": 10, "num_heads": 16, "hidden_dim": 2048,
               "intermediate_dim": 8192, "max_sequence_length": 128}
"""A small vocabulary and wide layers: 504 M float32 parameters, about 2 GB, nearly all in the layers' kernels."""
PRESET_SHARD_GB = 0.25
PRESET_MARKER = "bench_spec.json"

PRESET_BUILD_SNIPPET = """\
import json, sys
import keras_hub
spec, folder, shard = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
keras_hub.models.GPT2Backbone(**spec).save_to_preset(folder, max_shard_size=shard)
"""

PRESET_STATIC_SNIPPET = """\
import sys, time, json
t0 = time.perf_counter()
from keras_share.cli import run
t1 = time.perf_counter()
run(sys.argv[1:-1])
t2 = time.perf_counter()
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
with open(sys.argv[-1], "w") as out:
    json.dump({"import": t1 - t0, "work": t2 - t1, "rchar": int(io["rchar"]), "read_bytes": int(io["read_bytes"])}, out)
"""
"""keras-share's command line in this process; at its end the bytes read by it and its reaped reader children."""

PRESET_KERAS_SNIPPET = """\
import sys, time, json
t0 = time.perf_counter()
import keras_hub
t1 = time.perf_counter()
backbone = keras_hub.models.Backbone.from_preset(sys.argv[1])
t2 = time.perf_counter()
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
with open(sys.argv[2], "w") as out:
    json.dump({"import": t1 - t0, "work": t2 - t1, "rchar": int(io["rchar"]), "params": backbone.count_params()}, out)
"""


def ensure_preset(args: argparse.Namespace) -> bool:
    """Build the benchmark preset with ``--hub-python`` unless the one there has the current spec; False when
    it cannot be built (keras-hub missing: said on stderr)."""
    spec = {**PRESET_SPEC, "max_shard_size": PRESET_SHARD_GB}
    marker = PRESET_DIR / PRESET_MARKER
    if not args.rebuild and marker.is_file() and json.loads(marker.read_text()) == spec:
        return True
    shutil.rmtree(PRESET_DIR, ignore_errors=True)
    print(f"building {PRESET_DIR} with {args.hub_python} ...", file=sys.stderr, flush=True)
    built = subprocess.run([args.hub_python, "-c", PRESET_BUILD_SNIPPET, json.dumps(PRESET_SPEC), str(PRESET_DIR),
                            str(PRESET_SHARD_GB)], env={**os.environ, **QUIET_TF}, capture_output=True, text=True,
                           check=False)
    if built.returncode != 0:
        print(f"cannot build the preset (needs keras-hub in {args.hub_python}): "
              f"{(built.stderr.strip().splitlines() or ['?'])[-1]}", file=sys.stderr)
        return False
    marker.write_text(json.dumps(spec))
    return True


def run_preset(args: argparse.Namespace, env: dict[str, str]) -> None:
    """The sharded-preset measurements (``--preset``), printed with the issue's targets as met / MISSED."""
    if not ensure_preset(args):
        return
    size = sum(path.stat().st_size for path in PRESET_DIR.iterdir() if path.name != PRESET_MARKER)
    static_env = {**env, "NO_COLOR": "1", "PYTHONPATH": str(HERE.parent)}
    load_before = os.getloadavg()[0]
    inspect = [sys.executable, "-c", PRESET_STATIC_SNIPPET, "inspect", "--format", "json", "--fail-on", "never"]
    runs = {}
    with cpu_hog(args.hog):
        for label, extra in (("no hashing (--ignore weight-copy)", ["--ignore", "weight-copy"]),
                             ("weight-copy hashing (every rule)", [])):
            print(f"measuring keras-share, {label} ...", file=sys.stderr, flush=True)
            runs[label] = measure(inspect + extra + [str(PRESET_DIR)], args.repeat, static_env, report=True)
        keras_stats = None
        if not args.no_keras:
            print("measuring keras-hub from_preset ...", file=sys.stderr, flush=True)
            keras_stats = measure([args.hub_python, "-c", PRESET_KERAS_SNIPPET, str(PRESET_DIR)], args.keras_repeat,
                                  {**env, **QUIET_TF}, report=True, warmup=False, budget=args.keras_budget)
    shards = sum(1 for path in PRESET_DIR.glob("model_*.weights.h5"))
    print(f"\nKerasHub preset {PRESET_DIR.name}: GPT2Backbone {PRESET_SPEC}, {fmt_size(size)} in {shards} shards; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 CPUs)")
    rows = []
    for label, stats in runs.items():
        read = stats.inner.get("rchar", 0)
        rows.append([f"keras-share, {label}", fmt_time(stats.wall), f"{stats.rss_mb:.0f} MB",
                     f"{fmt_size(int(read))} ({100 * read / size:.2f} %)", str(stats.runs), "; ".join(stats.errors)])
    if keras_stats is not None:
        read = keras_stats.inner.get("rchar", 0)
        rows.append(["keras-hub Backbone.from_preset", fmt_time(keras_stats.wall), f"{keras_stats.rss_mb:.0f} MB",
                     f"{fmt_size(int(read))} ({100 * read / size:.2f} %)", str(keras_stats.runs),
                     "; ".join(keras_stats.errors)])
    print(table(["run", "wall (median)", "peak RSS", "bytes read (share of preset)", "runs", "errors"], rows))
    plain, hashing = runs.values()
    targets = [
        ("no hashing reads under 1 % of the preset", plain.inner.get("rchar", size) < size / 100),
        ("no hashing under 1.5 s end to end", plain.wall < 1.5),
        ("no hashing under 150 MB peak", plain.rss_mb < 150),
        ("weight-copy hashing under 200 MB peak", hashing.rss_mb < 200),
    ]
    for text, met in targets:
        print(f"  {'met   ' if met else 'MISSED'} {text}")


def measure_folder(script: list[str], env: dict[str, str], args: argparse.Namespace,
                   cases: list[Case]) -> dict[int, Stats]:
    """``inspect DIR --jobs N`` on a folder of FOLDER_COPIES copies of the smallest layers model."""
    source = next((case.path for case in cases if case.layers), None)
    if source is None:
        return {}
    folder = WORK / "folder"
    folder.mkdir(exist_ok=True)
    for index in range(FOLDER_COPIES):
        target = folder / f"model_{index:02d}.keras"
        if not target.is_file() or target.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, target)
    print(f"measuring a folder of {FOLDER_COPIES} models ...", file=sys.stderr, flush=True)
    jobs = sorted({1, os.cpu_count() or 1})
    return {count: measure(script + ["inspect", "--format", "json", "--jobs", str(count), str(folder)],
                           args.repeat, env) for count in jobs}


def print_report(args: argparse.Namespace, results: list[Result], version: Stats, startup: Stats,
                 script: list[str], keras_version: str, builds: dict[str, float | None],
                 folder: dict[int, Stats]) -> None:
    notes: list[str] = []
    rows = []
    for result in results:
        static, keras_stats = result.static, result.keras
        failed = bool(static.errors)
        if failed:
            notes.append(f"{result.case.name}: keras-share failed ({'; '.join(static.errors)})")
        keras_runs = f" (n={keras_stats.runs})" if keras_stats and keras_stats.runs != args.keras_repeat else ""
        rows.append([
            result.case.name,
            str(result.facts.get("layers", f"~{result.case.layers}" if result.case.layers else "?")),
            fmt_size(result.size),
            fmt_time(static.wall) + (" FAILED" if failed else ""),
            f"{static.rss_mb:.0f} MB",
            fmt_time(keras_stats.wall) + keras_runs if keras_stats else "-",
            f"{keras_stats.rss_mb:.0f} MB" if keras_stats else "-",
            ratio(keras_stats.wall / static.wall) if keras_stats and not failed else "-",
            ratio(keras_stats.rss_mb / static.rss_mb) if keras_stats and not failed else "-",
        ])
    print(f"keras-share {__import__('keras_share').__version__} vs Keras {keras_version} load_model + summary "
          f"(TensorFlow backend, CPU); {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}")
    print(f"median of {args.repeat} runs after a warm-up run (Keras: up to {args.keras_repeat} runs, "
          f"no warm-up, stopping after {args.keras_budget:g} s); every run is a fresh process, wall time "
          f"includes interpreter start and imports" + ("; a busy loop ran on the last CPU throughout" if args.hog else ""))
    print()
    print(table(["model", "layers", "file", "keras-share", "keras-share peak RSS", "Keras load+summary",
                 "Keras peak RSS", "speed-up", "memory ratio"], rows))
    print()
    detail = []
    for result in results:
        inner, keras_stats, facts = result.static_inner.inner, result.keras, result.facts
        detail.append([
            result.case.name, str(facts.get("shared", "?")), str(facts.get("max_calls", "?")),
            f"{facts['params']:,}" if "params" in facts else "?",
            fmt_time(result.floor.wall) if result.floor and not result.floor.errors else "-",
            fmt_time(inner["import"]) if "import" in inner else "-",
            fmt_time(inner["work"]) if "work" in inner else "-",
            fmt_time(keras_stats.inner["import"]) if keras_stats and "import" in keras_stats.inner else "-",
            fmt_time(keras_stats.inner["work"]) if keras_stats and "work" in keras_stats.inner else "-",
        ])
    print("where the time goes (in-process timers, medians):")
    print()
    print(table(["model", "shared layers", "most calls", "params", "floor (python, click, h5py, libhdf5 walk)",
                 "keras-share imports",
                 "keras-share read+analyse+rules+JSON", "Keras import", "Keras load+summary"], detail))
    print()
    print(f"keras-share --version: {fmt_time(version.wall)} (bare `python -c pass`: {fmt_time(startup.wall)})")
    if folder:
        serial = folder.get(1)
        print(f"folder of {FOLDER_COPIES} x layers_{min(args.sizes)}: " + ", ".join(
            f"--jobs {count} {fmt_time(stats.wall)}" + (f" ({serial.wall / stats.wall:.1f}x)" if serial and count > 1 else "")
            + (" FAILED" if stats.errors else "")
            for count, stats in folder.items()))

    by_name = {result.case.name: result for result in results}
    small, mid, big = by_name.get("layers_100"), by_name.get("layers_1000"), by_name.get("layers_10000")
    if small and big:
        bound = ">= " if big.static.errors else ""
        line = (f"scaling exponent 100 -> 10,000 layers (log-log slope): keras-share "
                f"{bound}{slope(small.static.wall, big.static.wall, 100, 10000):.2f} end to end")
        if "work" in small.static_inner.inner and "work" in big.static_inner.inner:
            line += (f", {bound}{slope(small.static_inner.inner['work'], big.static_inner.inner['work'], 100, 10000):.2f}"
                     " for read+analyse+rules+JSON alone")
        if small.keras and big.keras:
            line += f"; Keras load+summary {slope(small.keras.wall, big.keras.wall, 100, 10000):.2f}"
        print(line)
    targets: list[tuple[str, bool]] = []
    if mid:
        ok = not mid.static.errors
        floor = f" (floor {fmt_time(mid.floor.wall)})" if mid.floor and not mid.floor.errors else ""
        targets.append((f"1,000 layers end to end < 0.5 s: {fmt_time(mid.static.wall)}{floor}", ok and mid.static.wall < 0.5))
        if mid.keras:
            speedup = mid.keras.wall / mid.static.wall
            memory = mid.keras.rss_mb / mid.static.rss_mb
            targets.append((f"1,000 layers >= 30x faster than Keras load+summary: {ratio(speedup)}", ok and speedup >= 30))
            targets.append((f"1,000 layers peak memory >= 8x lower: {memory:.2f}x", ok and memory >= 8))
    if mid and big:
        growth = big.static.wall / mid.static.wall
        bound = ">= " if big.static.errors else ""  # a failed read stopped early: its time is a lower bound
        targets.append((f"10,000 layers within 12x the 1,000-layer time: {bound}{growth:.1f}x",
                        not big.static.errors and not mid.static.errors and growth <= 12))
    large = by_name.get("weights_1gb")
    if large:
        import importlib.util

        hashing = importlib.util.find_spec("keras_share.rules.weight_copy") is not None
        targets.append((f"1 GB-weights model peak RSS < 200 MB: {large.static.rss_mb:.0f} MB "
                        + ("(default rules, weight-copy hashing included)" if hashing else "(no weight-copy rule)"),
                        not large.static.errors and large.static.rss_mb < 200))
    targets.append((f"keras-share --version < 0.25 s: {fmt_time(version.wall)}", version.wall < 0.25))
    print()
    print("targets:")
    for text, ok in targets:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    for note in notes:
        print(f"note: {note}")
    built = {name: seconds for name, seconds in builds.items() if seconds is not None}
    if built:
        print("built this run (Keras build + save): " + ", ".join(f"{n} {s:.0f} s" for n, s in built.items()))


def _build_entry(name: str, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if name == "weights_1gb":
        build_large_model(target)
    else:
        build_layers_model(int(name.split("_")[1]), target)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_build":
        _build_entry(sys.argv[2], sys.argv[3])
    else:
        main()
