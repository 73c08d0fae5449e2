"""The one interface every output format implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from keras_share.analysis.report import ModelReport
from keras_share.errors import ReadError


class Formatter(ABC):
    """Turns the reports of one run (and the inputs that could not be read) into text."""

    for_people = False
    """Whether people read the output (the command line then prints the run's total on stderr)."""

    @abstractmethod
    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        """The whole output of a run."""
