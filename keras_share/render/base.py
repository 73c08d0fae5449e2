"""The one interface every output format implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from keras_share.analysis.report import ModelReport, Summary
from keras_share.errors import ReadError


class Formatter(ABC):
    """Turns the reports of one run (and the inputs that could not be read) into text."""

    for_people = False
    """Whether people read the output (the command line then prints the run's total on stderr)."""

    @abstractmethod
    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        """The whole output of a run."""


def summary_line(summary: Summary) -> str:
    """``5 layers, 3 shared, 61 unique params (117 if every call had its own weights)``, each count the file does
    not give shown as unknown (``layers: unknown``), never as 0."""
    layers = "layers: unknown" if summary.layers is None else f"{summary.layers} layers"
    shared = "shared: unknown" if summary.shared_layers is None else f"{summary.shared_layers} shared"
    naive = ("calls unknown" if summary.naive_params is None
             else f"{summary.naive_params:,} if every call had its own weights")
    return f"{layers}, {shared}, {summary.unique_params:,} unique params ({naive})"
