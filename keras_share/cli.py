"""The ``keras-share`` command: options to settings, ``keras_share.pipeline`` to reports, a renderer to the
output, and exit codes."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from keras_share.render import OutputFormat
from keras_share.version import __version__
from keras_share.vocabulary import FailOn

if TYPE_CHECKING:
    from keras_share.analysis.report import ModelReport, RuleInfo
    from keras_share.errors import ReadError
    from keras_share.read.detect import ModelRead
    from keras_share.render.base import Formatter

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3
EXIT_UNWRITABLE = 4

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 a new finding (not in --baseline) at or above --fail-on; 2 usage error (a --baseline "
    "that is not a keras-share JSON report of this schema version included); 3 at least one input could not "
    "be read (the others are still reported; 3 wins over 1); 4 the report could not be written (closed or full output)."
)


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        click.echo(f"keras-share {__version__}")
        ctx.exit(EXIT_OK)


@click.group(help="Inspect weight sharing in saved Keras models, statically (no TensorFlow needed).\n\n"
             + EXIT_CODES_HELP, context_settings={"max_content_width": 120})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print the version and exit.")
def app() -> None:
    """Inspect weight sharing in saved Keras models."""


def _use_color() -> bool:
    """Colour on a terminal, or wherever ``FORCE_COLOR`` asks for it; never under ``NO_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or (sys.stdout is not None and sys.stdout.isatty())


PIPED_WIDTH = 80
"""Columns of a terminal report that goes to a pipe or a file when ``COLUMNS`` does not say."""


def _width(to_terminal: bool) -> int:
    """The terminal's width (rich asks it, ``COLUMNS`` first); elsewhere ``COLUMNS``, else ``PIPED_WIDTH``."""
    if to_terminal:
        from rich.console import Console

        return Console().width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


@dataclass(frozen=True)
class Output:
    """One report of a run: its format and the file it goes to (None: standard output)."""

    format: OutputFormat
    path: Path | None = None

    @classmethod
    def parse(cls, value: str) -> Output:
        """``FORMAT`` or ``FORMAT:PATH`` (split at the first colon: formats have none, paths may)."""
        name, colon, path = value.partition(":")
        try:
            output_format = OutputFormat(name)
        except ValueError:
            choices = ", ".join(map(str, OutputFormat))
            raise click.BadParameter(f"{name!r} is not one of {choices} (FORMAT or FORMAT:PATH)",
                                     param_hint="'--format' / '-f'") from None
        if colon and not path:
            raise click.BadParameter(f"{value!r} names no file after the colon (FORMAT:PATH)",
                                     param_hint="'--format' / '-f'")
        return cls(output_format, Path(path) if colon else None)


def _outputs(formats: list[str], output: Path | None) -> list[Output]:
    """The outputs ``--format`` (repeatable) and ``-o`` ask for: rich on standard output by default, at most one
    on standard output, no file twice."""
    outputs = [Output.parse(value) for value in formats] or [Output(OutputFormat.RICH)]
    if output is not None:
        if len(outputs) > 1 or outputs[0].path is not None:
            raise _usage_error("-o/--output names the file of a single --format; "
                               "with several, give each its file: --format FORMAT:PATH")
        outputs = [Output(outputs[0].format, output)]
    to_stdout = [str(each.format) for each in outputs if each.path is None]
    if len(to_stdout) > 1:
        raise _usage_error(f"--format {to_stdout[0]} and --format {to_stdout[1]} both go to standard output: "
                           f"give all but one a file, as in --format {to_stdout[1]}:PATH")
    files = [os.path.abspath(each.path) for each in outputs if each.path is not None]
    repeated = next((path for path in files if files.count(path) > 1), None)
    if repeated is not None:
        raise _usage_error(f"two formats would write {repeated}: give each --format its own file")
    return outputs


def _formatters(outputs: list[Output], statistics: bool, quiet: bool, all_layers: bool,
                rules: list[RuleInfo], expand: bool = False) -> list[tuple[Path | None, Formatter]]:
    """Each output's formatter and file (None: standard output). ``--statistics`` replaces the report on standard
    output (or adds itself there); ``--quiet`` leaves standard output empty."""
    from keras_share.render import formatter
    from keras_share.render.summary import StatisticsFormatter

    if quiet and statistics:
        raise _usage_error("--quiet prints nothing on standard output: drop --quiet or --statistics")
    chosen: list[tuple[Path | None, Formatter]] = []
    for each in outputs:
        if each.path is not None:
            chosen.append((each.path, formatter(each.format, rules, all_layers, width=_width(to_terminal=False),
                                                   expand=expand)))
        elif statistics:
            if each.format not in (OutputFormat.RICH, OutputFormat.JSON):
                raise _usage_error(f"--statistics prints a table, or JSON with --format json, instead of the report "
                                   f"on standard output: give --format {each.format} a file "
                                   f"(--format {each.format}:PATH)")
            chosen.append((None, StatisticsFormatter(as_json=each.format is OutputFormat.JSON)))
        elif not quiet:
            color = _use_color()
            to_terminal = sys.stdout is not None and sys.stdout.isatty()
            chosen.append((None, formatter(each.format, rules, all_layers, color, _width(to_terminal), expand)))
    if statistics and all(path is not None for path, _ in chosen):
        chosen.append((None, StatisticsFormatter()))
    return chosen


def _write_all(stream: TextIO, text: str) -> None:
    """Write ``text`` whole to ``stream`` or raise OSError.

    An unbuffered stream (``python -u``, ``PYTHONUNBUFFERED``) hands a pipe's short write back to its text
    layer, which drops the rest silently: when the stream has a file descriptor, the bytes go to it whole
    (``write_all``).
    """
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor (io.StringIO, a test capture)
        stream.write(text)
        stream.flush()
        return
    from keras_share.read.deadline import write_all

    stream.flush()
    write_all(descriptor, text.encode(stream.encoding or "utf-8", "backslashreplace"))


def _write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file beside it, renamed over it), with the
    permissions a new file gets; raise OSError."""
    import tempfile

    folder = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(descriptor, 0o666 & ~umask)
        with open(descriptor, "w", encoding="utf-8", errors="backslashreplace", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _write_report(text: str, path: Path | None) -> bool:
    """The report on standard output or in the file ``path``; whether it was written.

    A reader that went away (``| head``) is let go quietly, as any Unix filter does; a closed or full output
    or a file that cannot be written gets one line on stderr.
    """
    from keras_share.render.escape import visible

    try:
        if path is not None:
            _write_file(path, text)
        elif sys.stdout is None:
            raise OSError("standard output is closed")
        else:
            _write_all(sys.stdout, text)
    except OSError as error:
        if not isinstance(error, BrokenPipeError):
            where = "" if path is None else f" to {visible(str(path))}"
            click.echo(f"keras-share: error: cannot write the report{where} ({error.strerror or error})", err=True)
        return False
    return True


def _rendered(formatter: Formatter, reports: list[ModelReport], errors: list[ReadError]) -> str | None:
    """The text of ``formatter``'s report, or None (and a line on stderr) when it could not be made."""
    from keras_share.render.base import RenderError
    from keras_share.render.escape import visible

    try:
        return formatter.format(reports, errors)
    except RenderError as error:
        click.echo(f"keras-share: error: cannot make the report: {visible(str(error))}", err=True)
        return None


def _needs_dot(outputs: list[Output]) -> None:
    """A usage error when a format drawn by Graphviz is asked for and its ``dot`` program is not installed."""
    if any(each.format is OutputFormat.SVG for each in outputs):
        from keras_share.render.dot import DOT_MISSING, dot_program

        if dot_program() is None:
            raise _usage_error(DOT_MISSING)


def _keras_installed() -> bool:
    """Whether Keras 3 or tf_keras can be imported here (looked up, not imported)."""
    from importlib.util import find_spec

    return any(find_spec(name) is not None for name in ("keras", "tf_keras"))


def _usage_error(message: str) -> click.exceptions.Exit:
    from keras_share.render.escape import visible

    click.echo(f"keras-share: usage error: {visible(message)}", err=True)
    return click.exceptions.Exit(EXIT_USAGE)


def _format_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """What shell completion offers for ``--format``: the format names."""
    return [str(name) for name in OutputFormat if str(name).startswith(incomplete)]


@app.command(help="Report the layers applied more than once, weight identity, trainability and call shapes, "
             "and flag weight-sharing pitfalls. PATHS are model files (.keras, .h5, SavedModel folders, KerasHub "
             "presets) or folders of them; always read as paths.\n\n" + EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, metavar="[PATHS]...",
                type=click.Path(path_type=Path, readable=False))  # an unreadable input is reported with the others
@click.option("--format", "-f", "formats", multiple=True, metavar="FORMAT[:PATH]", shell_complete=_format_names,
              help=f"Output format ({', '.join(map(str, OutputFormat))}; default rich), to standard output or with "
                   ":PATH to a file; repeatable, one read for every output (at most one on standard output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, readable=False, path_type=Path),
              help="Write the report (of the one --format) to this file instead.")
@click.option("--statistics", is_flag=True, help="Print the findings per rule (count, code, name) instead of the "
              "report on standard output (as JSON with --format json).")
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing on standard output and no total: only errors, files and the exit code.")
@click.option("--all-layers", is_flag=True, help="Also show every layer as a nesting tree.")
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Worker processes reading inputs in parallel (default: the CPU count).")
@click.option("--fail-on", type=click.Choice([str(level) for level in FailOn]),
              help="Exit 1 when a finding at or above this severity exists [default: error].")
@click.option("--select", multiple=True, help="Only these rules (code, code prefix or name), comma-separated or "
              "repeated; replaces the config's select and extend-select.")
@click.option("--extend-select", multiple=True, help="Add these rules to the selection (comma-separated or repeated).")
@click.option("--ignore", multiple=True, help="Skip these rules (code, code prefix or name), comma-separated or "
              "repeated; replaces the config's ignore and extend-ignore.")
@click.option("--extend-ignore", multiple=True, help="Also skip these rules (comma-separated or repeated).")
@click.option("--suppress", multiple=True, help="Drop findings of RULE on layers matching a glob: RULE:LAYER-GLOB "
              "('KS201:*' for every layer); repeatable, added to the config's.")
@click.option("--exclude", multiple=True, help="Skip files matching this path glob, named or found in a folder; "
              "repeatable, added to the config's.")
@click.option("--show-settings", is_flag=True,
              help="Print the resolved settings and the config file used, then exit (reads no model).")
@click.option("--base", type=click.Path(path_type=Path, readable=False),
              help="Base model of a transfer: report layers whose weights came from it.")
@click.option("--config", type=click.Path(path_type=Path),
              help="pyproject.toml to read [tool.keras-share] from (default: nearest).")
@click.option("--live", is_flag=True, help="Also load each file with Keras and report where it disagrees with the file.")
@click.option("--unsafe", is_flag=True, help="With --live: load with safe_mode=False (runs Lambda bytecode!).")
@click.option("--call", multiple=True, metavar="package.module:function", help=(
    "IMPORTS AND RUNS CODE: import package.module (the working directory is importable), call function() "
    "and inspect the live Keras model(s) it returns; repeatable. Only for code you trust."))
@click.option("--weights", type=click.Path(path_type=Path, readable=False),
              help="A weights file (.weights.h5, .weights.json, a save_weights .h5): report where load_weights would "
                   "not fit it into each model (rule weights-mismatch).")
@click.option("--weights-by-name", is_flag=True, help="With --weights: as load_weights(by_name=True) (legacy .h5 files).")
@click.option("--baseline", type=click.Path(path_type=Path, readable=False),
              help="The --format json report of an earlier run: its findings are not new, are counted apart and do "
                   "not count for --fail-on (exit 2 when it is not such a report). Replaces the config's baseline.")
@click.option("--write-baseline", type=click.Path(dir_okay=False, readable=False, path_type=Path),
              help="Also write this run's findings, as a JSON report to use with --baseline.")
@click.option("--expand", is_flag=True, help="Draw every layer in the graph formats (mermaid, dot, svg, html, "
              "markdown): no chain of plain layers collapsed into one box.")
def inspect(
    paths: tuple[Path, ...],
    formats: tuple[str, ...],
    output: Path | None,
    statistics: bool,
    quiet: bool,
    all_layers: bool,
    jobs: int | None,
    fail_on: str | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_ignore: tuple[str, ...],
    suppress: tuple[str, ...],
    exclude: tuple[str, ...],
    show_settings: bool,
    base: Path | None,
    config: Path | None,
    live: bool,
    unsafe: bool,
    call: tuple[str, ...],
    weights: Path | None,
    weights_by_name: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    expand: bool,
) -> None:
    """Inspect each input and print one report per model."""
    started = None if live or call or show_settings else _read_ahead(paths)
    if started is not None:
        click.get_current_context().call_on_close(started.cancel)
    from keras_share.errors import ReadError
    from keras_share.pipeline import Pipeline, fails, read_base
    from keras_share.render.escape import error_line
    from keras_share.rules import RULE_IDS
    from keras_share.settings import SettingsError, load_settings

    if not paths and not call and not show_settings:
        raise click.BadParameter("give at least one model path, or --call package.module:function", param_hint="'PATHS...'")
    if live and not _keras_installed():
        raise _usage_error("--live loads each file with Keras, which is not installed: "
                           "pip install 'keras-share[tensorflow]'")
    outputs = _outputs(list(formats), output)
    _needs_dot(outputs)
    try:
        settings = load_settings(config, RULE_IDS).with_options(
            RULE_IDS, select=list(select) or None, ignore=list(ignore) or None, extend_select=list(extend_select),
            extend_ignore=list(extend_ignore), suppress=list(suppress), exclude=list(exclude),
            fail_on=FailOn(fail_on) if fail_on else None)
        pipeline = Pipeline(settings)
    except (SettingsError, ValueError) as error:
        raise _usage_error(str(error)) from None
    pipeline.started = started
    if show_settings:
        from keras_share.render.escape import visible

        described = settings.describe([(rule.code, rule.name) for rule in pipeline.rules])
        shown = _write_report("".join(visible(line) + "\n" for line in described.splitlines()), None)
        raise click.exceptions.Exit(EXIT_OK if shown else EXIT_UNWRITABLE)
    if base is not None:
        try:
            pipeline.base = read_base(base)
        except ReadError as error:
            click.echo(error_line(f"--base {error.path}", error.problem), err=True)
            raise click.exceptions.Exit(EXIT_UNREADABLE) from None
    if weights_by_name and weights is None:
        raise _usage_error("--weights-by-name applies to a --weights file: add --weights PATH")
    if weights is not None:
        from keras_share.pipeline import read_weights

        try:
            pipeline.weights = read_weights(weights, weights_by_name)
        except ReadError as error:
            click.echo(error_line(f"--weights {error.path}", error.problem), err=True)
            raise click.exceptions.Exit(EXIT_UNREADABLE) from None
    if baseline is None and settings.baseline is not None:
        baseline = settings.baseline
        baseline_label = f"{settings.source} [tool.keras-share] baseline"
    else:
        baseline_label = "--baseline"
    if baseline is not None:
        from keras_share.baseline import BaselineError, read_baseline

        try:
            pipeline.baseline = read_baseline(baseline)
        except BaselineError as error:
            raise _usage_error(f"{baseline_label} {error}") from None
    formatters = _formatters(outputs, statistics, quiet, all_layers, [rule.info for rule in pipeline.rules],
                             expand)
    for _, chosen in formatters:
        chosen.compared_to_baseline = baseline is not None
    reports: list[ModelReport] = []
    errors: list[ReadError] = []
    for result in pipeline.inputs(list(paths), jobs if jobs is not None else os.cpu_count() or 1, live, unsafe,
                                  list(call)):
        if isinstance(result, ReadError):
            errors.append(result)
        else:
            reports.append(result)
    for failure in errors:
        click.echo(error_line(failure.path, failure.problem), err=True)
    texts = [(path, _rendered(formatter, reports, errors)) for path, formatter in formatters]
    _kept_until_exit(reports, texts)
    written = [text is not None and _write_report(text, path) for path, text in texts]
    if write_baseline is not None:
        from keras_share.baseline import baseline_text

        written.append(_write_report(baseline_text(reports), write_baseline))
    if not all(written):
        raise click.exceptions.Exit(EXIT_UNWRITABLE)
    if paths and not call and not reports and not errors and not quiet:
        click.echo("keras-share: note: every input matched an exclude pattern (--exclude or the config's exclude): "
                   "nothing was checked", err=True)
    if any(formatter.for_people for _, formatter in formatters):
        from keras_share.render.summary import run_total

        click.echo(run_total(reports, errors), err=True)
    if errors:
        raise click.exceptions.Exit(EXIT_UNREADABLE)
    raise click.exceptions.Exit(EXIT_FINDINGS if fails(reports, settings.fail_on) else EXIT_OK)


def _read_ahead(paths: tuple[Path, ...]) -> ModelRead | None:
    """The read of a run's one input file, begun before the rest of the pipeline is imported and set up: its
    reader child reads the weights meanwhile. None for any other run, and when the file cannot be read (it is
    read again in its turn, and the error reported there)."""
    if len(paths) != 1 or not os.path.isfile(paths[0]):
        return None
    from keras_share.errors import ReadError
    from keras_share.read.detect import start_read

    try:
        return start_read(paths[0])
    except ReadError:
        return None


DIFF_EXIT_CODES_HELP = (
    "Exit codes: 0 nothing that matters changed; 1 something did (docs/diff.md says which changes matter); 2 usage "
    "error; 3 an input could not be read (one line each on stderr); 4 the report could not be written."
)


@app.command("diff", help="Compare two saved models, OLD (before) and NEW (after), in any formats inspect reads: layers added, "
             "removed or renamed, calls and wiring, sharing, trainability as loaded, weights (content hashes) and "
             "parameters.\n\n" + DIFF_EXIT_CODES_HELP)
@click.argument("old", metavar="OLD", type=click.Path(path_type=Path, readable=False))
@click.argument("new", metavar="NEW", type=click.Path(path_type=Path, readable=False))
@click.option("--format", "-f", "output_format", metavar="FORMAT", default="rich",
              shell_complete=lambda ctx, param, incomplete: [name for name in ("rich", "json", "markdown")
                                                             if name.startswith(incomplete)],
              help="rich (default), json or markdown (for a pull-request comment).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, readable=False, path_type=Path),
              help="Write the report to this file instead of standard output.")
def diff(old: Path, new: Path, output_format: str, output: Path | None) -> None:
    """Print what changed from OLD to NEW."""
    from keras_share.pipeline import diff_files
    from keras_share.render.diff import DIFF_FORMATS, diff_formatter
    from keras_share.render.escape import error_line

    chosen = next((each for each in DIFF_FORMATS if str(each) == output_format), None)
    if chosen is None:
        raise _usage_error(f"--format {output_format} is not one of {', '.join(map(str, DIFF_FORMATS))} for diff")
    result = diff_files(old, new)
    if isinstance(result, list):
        for failure in result:
            click.echo(error_line(failure.path, failure.problem), err=True)
        raise click.exceptions.Exit(EXIT_UNREADABLE)
    to_terminal = output is None and sys.stdout is not None and sys.stdout.isatty()
    formatter = diff_formatter(chosen, color=output is None and _use_color(), width=_width(to_terminal))
    if not _write_report(formatter.format(result), output):
        raise click.exceptions.Exit(EXIT_UNWRITABLE)
    raise click.exceptions.Exit(EXIT_FINDINGS if result.changed else EXIT_OK)


@app.command("rules", help="List every rule: code, name, severity and what it flags.")
def list_rules() -> None:
    """Print the rule table."""
    from keras_share.rules import ALL_RULES

    width = max(len(rule.name) for rule in ALL_RULES)
    for rule in ALL_RULES:
        click.echo(f"{rule.code}  {rule.name:<{width}}  {rule.severity:<7}  {rule.summary}")


@app.command("rule", help="Print a rule's documentation: what it flags, why, how to fix it, an example. "
             "NAME is a rule code (KS201) or name (shared-batchnorm).")
@click.argument("name")
def show_rule(name: str) -> None:
    """Print one rule's docs."""
    from keras_share.rules import find_rule

    rule = find_rule(name)
    if rule is None:
        raise _usage_error(f"unknown rule {name!r} (see `keras-share rules`)")
    click.echo(rule.docs())


@app.command("completion", help="Print the shell completion script for SHELL (bash, zsh or fish), to add to "
             "the shell's startup file: eval \"$(keras-share completion bash)\" in ~/.bashrc.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script of ``shell`` for this command, as click writes it."""
    from click.shell_completion import get_completion_class

    script = get_completion_class(shell)
    assert script is not None  # every choice has a class
    click.echo(script(app, {}, PROGRAM, COMPLETE_VARIABLE).source())


PROGRAM = "keras-share"
COMPLETE_VARIABLE = "_KERAS_SHARE_COMPLETE"
"""The environment variable that asks for completions (click's default for ``PROGRAM``)."""

GC_THRESHOLDS = (100_000, 50, 100)
"""A model config is millions of small long-lived objects: the young generation is collected every 100,000
allocations instead of Python's 700, which would scan them again and again and free nothing."""


def file_names_stay_paths(args: list[str]) -> list[str]:
    """``inspect``'s ``args`` with each one before ``--`` that starts with ``-`` but names an existing file, folder
    or symlink moved after ``--``: a file name is read as a path, never as an option (``$(git ls-files)`` can
    list a file named ``--call=evil:x.keras`` or ``--unsafe``). ``diff``'s such arguments become ``./NAME`` in
    place (OLD and NEW keep their order)."""
    if args[:1] not in (["inspect"], ["diff"]):
        return args
    end = args.index("--") if "--" in args else len(args)
    named = [arg for arg in args[1:end] if arg.startswith("-") and os.path.lexists(arg)]
    if not named:
        return args
    if args[0] == "diff":
        return ["diff", *(f"./{arg}" if arg in named else arg for arg in args[1:end]), *args[end:]]
    options = [arg for arg in args[1:end] if arg not in named]
    return ["inspect", *options, "--", *named, *args[end + 1:]]


def _kept_until_exit(*values: object) -> None:
    """Hold ``values`` (a run's reports and their texts) in the list ``main`` hands ``run``, so the process ends
    before they are freed object by object; nothing is held when ``run`` is called without one (tests, embedding)."""
    kept = click.get_current_context().find_object(list)
    if kept is not None:
        kept.extend(values)


def run(args: list[str] | None = None, keep: list[object] | None = None) -> int:
    """Run the command line (``args``, default ``sys.argv[1:]``) in this process; return its exit status. ``keep``
    receives what the process should not spend time freeing before it ends (``main``)."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        app(file_names_stay_paths(sys.argv[1:] if args is None else list(args)), prog_name=PROGRAM,
            complete_var=COMPLETE_VARIABLE, obj=keep)
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    return 0


def main() -> None:
    """Console-script entry point: ``run``, flush the output, and end the process at once.

    The interpreter's teardown would free a large report's millions of small objects one by one
    (docs/performance.md says what that costs), and so would the command's return: the reports are held in
    ``kept`` until the end. Nothing is left to clean up by then (files are closed, worker pools shut down,
    temporary folders removed where they were made).
    """
    kept: list[object] = []
    status = run(keep=kept)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed, full or abandoned: what was to be said has been tried
            status = status or EXIT_UNWRITABLE
    os._exit(status)
