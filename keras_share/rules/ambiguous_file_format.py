"""KS207 ambiguous-file-format."""

from __future__ import annotations

from collections.abc import Iterator

from keras_share.analysis.report import Finding, ModelReport
from keras_share.rules.base import Rule, RuleContext
from keras_share.vocabulary import Severity


class AmbiguousFileFormat(Rule):
    code = "KS207"
    name = "ambiguous-file-format"
    severity = Severity.WARNING
    security_severity = 6.0
    summary = "The file is two models at once (an HDF5/zip polyglot, or a .keras folder that is also a SavedModel)."
    why = (
        "Keras picks the format by the file name: a .keras name that zipfile accepts loads the zip, anything else "
        "loads as HDF5 (a folder with config.json loads as .keras in Keras 3, as a SavedModel in tf_keras). A file "
        "crafted to be both lets a scanner, a model hub or a reviewer see one model while load_model runs the other, "
        "and a rename switches between them. keras-share reports the model Keras loads under the file's name."
    )
    fix = (
        "Do not use the file: re-save the model from the Python objects that trained it, and find out who made a "
        "file that is two formats at once."
    )
    example = """
hdf5 = open("model.h5", "rb").read()
zipped = open("other.keras", "rb").read()
open("both.keras", "wb").write(hdf5 + zipped)   # KS207: Keras loads the zip, HDF5 tools the other model
"""

    def check(self, report: ModelReport, context: RuleContext) -> Iterator[Finding]:
        if report.file.ambiguity is not None:
            yield self.finding("", report.file.ambiguity)
