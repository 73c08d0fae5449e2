"""The pipeline: sources and settings in, reports with findings out.

    read (a reader child per file) -> graph -> analysis (+ provenance against --base) -> rules

Every entry point goes through here: the command line (``cli``), batches (``batch`` runs ``Pipeline.file``
per input, in worker processes or not), the Python API (``api``), the pytest helper (``testing``, through
``api``) and live mode (``--call``, ``--live``, live models given to ``api.inspect``). Rendering is left to
the caller. A source is a path (read statically), a path loaded with Keras too (``--live``), or live Keras
models (``--call``, the API); the ``--base`` model is read once (``read_base``) and handed to every report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from keras_share.analysis.analyze import GraphFacts, analyze, analyze_graph, graph_facts
from keras_share.analysis.diff import ModelDiff, compare
from keras_share.analysis.digests import DigestSource
from keras_share.analysis.provenance import mark_transferred
from keras_share.analysis.report import Finding, ModelReport
from keras_share.batch import Result, expand, inspect_each
from keras_share.errors import ReadError
from keras_share.graph.build import attach_weights, graph_of_config
from keras_share.graph.model import Graph
from keras_share.read.base import ModelFile
from keras_share.read.deadline import DEFAULT_TIMEOUT_SECONDS, allow_deep_pickles
from keras_share.read.detect import ModelRead, import_readers, read_model, start_read
from keras_share.rules import RULE_IDS, Rule, RuleContext, run_rules, select_rules
from keras_share.settings import LintSettings
from keras_share.vocabulary import FailOn

if TYPE_CHECKING:
    from keras_share.analysis.weights_match import WeightsCheck
    from keras_share.baseline import Baseline


def read_and_analyze(source: str | os.PathLike[str] | ModelRead,
                     timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelReport:
    """``analyze(read_model(path, timeout))`` of a path, or of a read already begun (``start_read``), the graph
    built and what it says alone (``graph_facts``) worked out from the configs while the reader child still reads
    the weights (for ``.keras`` archives and folders, whose configs are read first). No findings."""
    allow_deep_pickles()  # the same limit for every file, first or not: nothing depends on what was read before
    early: list[tuple[Graph, GraphFacts]] = []

    def from_configs(configs_only: ModelFile) -> None:
        graph = graph_of_config(configs_only)
        early.append((graph, graph_facts(graph)))

    read = source if isinstance(source, ModelRead) else start_read(source, timeout)
    model_file = read.finish(while_reading=from_configs)
    if not early:
        return analyze(model_file)
    graph, facts = early[0]
    attach_weights(graph, model_file.weights)
    return analyze_graph(model_file, graph, facts)


def inspect_file(path: str | os.PathLike[str], timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelReport:
    """Read one saved model statically and analyse it (no findings); raises ``ReadError`` on bad input.

    The readers (h5py) are imported in this process on the first call: the reader child forked for each
    call inherits them.
    """
    import_readers()
    return read_and_analyze(path, timeout)


def live_file_report(path: str | os.PathLike[str], unsafe: bool = False,
                     timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelReport:
    """The static report of a file, cross-checked against the model Keras loads from it (``--live``; no findings).

    Raises ``ReadError`` as ``inspect_file`` does, and as ``keras_share.live.crosscheck.cross_check`` does
    (a serialized Python function without ``unsafe``, a load that outlasts the deadline).
    """
    from keras_share.live.crosscheck import cross_check

    report = inspect_file(path, timeout)
    cross_check(report, unsafe)
    return report


def digest_source(report: ModelReport, timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> DigestSource:
    """Where ``report``'s array digests come from: a live model's variables, or its file (read in a reader child)."""
    if report.live is not None and report.live.source == "object":
        from keras_share.live.digests import LiveDigests

        return LiveDigests(report.live.values)
    from keras_share.read.arrays import FileDigests

    return FileDigests(report.file, timeout)


@dataclass
class Base:
    """The ``--base`` model of a transfer, read once per run: its report and the source of its array digests."""

    report: ModelReport
    digests: DigestSource


def read_base(source: object, timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> Base:
    """The base model named by a path (read statically; ``ReadError`` when it cannot be) or given as a live model."""
    if isinstance(source, (str, os.PathLike)):
        report = inspect_file(source, timeout)
    else:
        from keras_share.live.report import live_report

        report = live_report(source)
    return Base(report, digest_source(report, timeout))


@dataclass
class Weights:
    """The ``--weights`` file, read once per run, and how ``load_weights`` is asked to pair it (``by_name``)."""

    file: ModelFile
    by_name: bool = False


def read_weights(path: str | os.PathLike[str], by_name: bool = False,
                 timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> Weights:
    """The weights file at ``path`` (read statically, in a reader child; ``ReadError`` when it cannot be). A legacy
    ``.h5`` full model is read as ``load_weights`` reads it: its ``model_weights`` group, a weights-only file."""
    from keras_share.analysis.weights_match import LEGACY_SUFFIXES

    import_readers()
    name = os.fspath(path)
    if name.endswith(LEGACY_SUFFIXES) and not name.endswith(".weights.h5") and os.path.isfile(name):
        from functools import partial

        from keras_share.read.deadline import call_with_deadline
        from keras_share.read.legacy_h5 import read_h5_as_weights

        return Weights(call_with_deadline(partial(read_h5_as_weights, Path(name)), name, timeout), by_name)
    return Weights(read_model(path, timeout), by_name)


class Pipeline:
    """Reports with findings for one run's settings: the selected rules, suppressions and ``--base`` model.

    Picklable (with a ``--base`` read from a file): a batch's worker processes get it once each.
    """

    def __init__(self, settings: LintSettings | None = None, base: Base | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> None:
        """Raises ValueError (a SettingsError) when a selector, suppression or per-file ignore names no rule."""
        self.settings = settings if settings is not None else LintSettings()
        self.settings.check_rules(RULE_IDS)
        self.rules: list[Rule] = select_rules(self.settings.selected, self.settings.ignored)
        self.base = base
        self.timeout = timeout
        self.weights: Weights | None = None
        """The ``--weights`` file every model is checked against (rule ``weights-mismatch``), if any."""
        self.baseline: Baseline | None = None
        """The ``--baseline`` of an earlier run: findings it holds are moved to ``in_baseline``."""
        self.started: ModelRead | None = None
        """A read begun before the pipeline was set up (``start_read``): ``file`` of its path finishes it, and
        ``inputs`` ends it when no input is that file."""

    def finish(self, report: ModelReport) -> ModelReport:
        """Complete an analysed report: provenance against the base (whatever rules are selected), then the
        findings of the selected rules, minus suppressed ones."""
        digests = digest_source(report, self.timeout)
        if self.base is not None:
            mark_transferred(report, self.base.report, digests, self.base.digests)
        weights: WeightsCheck | None = None
        if self.weights is not None:
            from keras_share.analysis.weights_match import check_weights

            weights = check_weights(report, self.weights.file, self.weights.by_name)
        if weights is not None and weights.unchecked is not None:
            report.file.notes.append(f"--weights {weights.weights_path} not checked: {weights.unchecked}")
        context = RuleContext(base=self.base.report if self.base is not None else None, digests=digests,
                              weights=weights)
        report.findings = [
            finding for finding in run_rules(report, self.rules, context)
            if not self._suppressed(report.file.path, finding)
        ]
        if self.baseline is not None:
            report.findings, report.in_baseline = self.baseline.split(report)
        return report

    def _end_started(self) -> None:
        if self.started is not None:
            self.started.cancel()
            self.started = None

    def _suppressed(self, file: str, finding: Finding) -> bool:
        """A suppression covers a finding that matches its layer, or every layer it covers (a shared
        sub-model's finding on ``encoder`` covering ``encoder/bn``: ``KS201:encoder/*`` suppresses it)."""
        def covers(layer: str) -> bool:
            return self.settings.is_suppressed(file, finding.rule, finding.name, layer)
        return covers(finding.layer) or (bool(finding.layers) and all(map(covers, finding.layers)))

    def file(self, path: Path) -> Result:
        """Read, analyse and lint one input; unreadable input becomes a ReadError instead of an exception."""
        source: Path | ModelRead = path
        if self.started is not None and self.started.path == str(path):
            source, self.started = self.started, None
        try:
            return self.finish(read_and_analyze(source, self.timeout))
        except ReadError as error:
            return error
        except (RecursionError, MemoryError) as error:
            return ReadError(str(path), f"model too deeply nested or too large ({type(error).__name__})")

    def paths(self, paths: Sequence[str | os.PathLike[str]], jobs: int = 1) -> list[tuple[Path, Result]]:
        """``file`` on every input (folders expanded), in ``jobs`` worker processes: ``(path, result)`` in order."""
        return inspect_each(paths, self.file, jobs, self.settings.is_excluded)

    def live_models(self, models: Mapping[str, object], source: str | None = None) -> list[ModelReport]:
        """Reports of live models inspected together (``keras_share.live.report.live_reports``), with findings."""
        from keras_share.live.report import live_reports

        return [self.finish(report) for report in live_reports(models, source=source)]

    def inputs(self, paths: Sequence[str | os.PathLike[str]], jobs: int = 1, live: bool = False,
               unsafe: bool = False, calls: Sequence[str] = ()) -> list[Result]:
        """Reports (with findings) or errors for every path, then for the models of every ``calls`` target.

        A path is only ever read as a file or folder, statically, and also loaded with Keras when ``live``.
        Each ``calls`` target, ``package.module:function``, is imported and run (``--call``): its models are
        inspected live.
        """
        results: list[Result] = []
        if self.started is not None and (live or [os.fspath(path) for path in paths] != [self.started.path]):
            self._end_started()  # only a run of that one file finishes it (worker processes never get it)
        if paths and not live:
            try:
                results.extend(result for _, result in self.paths(paths, jobs))
            finally:
                self._end_started()
        elif paths:
            for path, error in expand(paths, self.settings.is_excluded):
                try:
                    if error is not None:
                        raise error
                    results.append(self.finish(live_file_report(path, unsafe, self.timeout)))
                except ReadError as failure:
                    results.append(failure)
        for spec in calls:
            from keras_share.live.targets import target_reports

            try:
                results.extend(self.finish(report) for report in target_reports(spec))
            except ReadError as error:
                results.append(error)
        return results


def fails(reports: Iterable[ModelReport], fail_on: FailOn) -> bool:
    """True when any finding is at or above the ``fail_on`` severity (never with ``never``)."""
    threshold = FailOn(fail_on).threshold
    return threshold is not None and any(
        finding.severity.rank >= threshold.rank for report in reports for finding in report.findings)


def diff_files(old: str | os.PathLike[str], new: str | os.PathLike[str],
               timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> ModelDiff | list[ReadError]:
    """What changed from the saved model ``old`` to ``new`` (``keras-share diff``), both read statically and their
    arrays hashed in reader children; the inputs that could not be read, when any could not."""
    reports: list[ModelReport] = []
    errors: list[ReadError] = []
    for path in (old, new):
        try:
            reports.append(inspect_file(path, timeout))
        except ReadError as error:
            errors.append(error)
        except (RecursionError, MemoryError) as error:
            errors.append(ReadError(str(path), f"model too deeply nested or too large ({type(error).__name__})"))
    if errors:
        return errors
    try:
        return compare(reports[0], reports[1], digest_source(reports[0], timeout), digest_source(reports[1], timeout))
    except ReadError as error:
        return [error]
