"""The Python API on saved files: public names, lazy import, ``to_dict``/``to_json``, short reprs.

Static path only: no TensorFlow/Keras import here (live models: tests/test_live_api.py).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_command import keras_share_command

import keras_share
from keras_share.analysis.report import ModelReport
from keras_share.testing import assert_no_findings
from keras_share.vocabulary import Severity

REPO = Path(__file__).resolve().parents[1]
NESTED = "sample_models/nested_encoder.keras"
"""A triplet net: a nested encoder called 3 times, one ``shared-batchnorm`` finding on ``encoder/enc_bn``."""


@pytest.fixture(scope="module")
def report() -> ModelReport:
    return keras_share.inspect(str(REPO / NESTED))


def test_every_public_name_resolves() -> None:
    assert {"inspect", "inspect_file", "testing", "to_dict", "to_json"} <= set(keras_share.__all__)
    for name in keras_share.__all__:
        assert getattr(keras_share, name) is not None, name


def test_importing_the_package_loads_no_api() -> None:
    code = "import sys, keras_share; print(sorted(m for m in sys.modules if m.startswith('keras_share.')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.stdout.strip() == "['keras_share.version']", proc.stderr


def test_to_dict_is_the_entry_format_json_writes(report: ModelReport) -> None:
    proc = subprocess.run([*keras_share_command(), "inspect", "--fail-on", "never", "--format", "json",
                           str(REPO / NESTED)], capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout)["models"] == [keras_share.to_dict(report)]


def test_to_json_is_to_dict_as_text(report: ModelReport) -> None:
    assert json.loads(keras_share.to_json(report)) == keras_share.to_dict(report)


def test_to_json_writes_one_line_per_layer(report: ModelReport) -> None:
    lines = keras_share.to_json(report).splitlines()
    assert [json.loads(line.strip().rstrip(","))["path"] for line in lines if line.lstrip().startswith('{"path"')] \
        == [layer.layer.path for layer in report.layers]


def test_model_report_repr_counts_layers_sharing_and_findings(report: ModelReport) -> None:
    assert repr(report) == f"<ModelReport {str(REPO / NESTED)!r} (keras): 5 layers, 4 shared, 1 finding>"


def test_layer_report_repr_says_calls_sharing_and_trainability(report: ModelReport) -> None:
    layer = next(layer for layer in report.layers if layer.layer.path == "encoder/enc_bn")
    assert repr(layer) == "<LayerReport 'encoder/enc_bn' BatchNormalization: 3 effective calls, shared, trainable>"


def test_finding_repr_names_rule_severity_and_layer(report: ModelReport) -> None:
    assert repr(report.findings) == "[<Finding KS201 shared-batchnorm info on 'encoder' (covers 1 layer)>]"


def test_repr_escapes_names_from_the_file(report: ModelReport) -> None:
    hostile = "enc\x1b[2J\nbn\u202e"
    layer = report.layers[-1]
    renamed = dataclasses.replace(layer, layer=dataclasses.replace(layer.layer, path=hostile, class_name=hostile))
    finding = dataclasses.replace(report.findings[0], layer=hostile)
    for text in (repr(renamed), repr(finding)):
        assert text.isprintable(), text
        assert "\\x1b[2J\\nbn\\u202e" in text


def test_assert_no_findings_takes_a_severity_member() -> None:
    with pytest.raises(AssertionError, match="1 finding at or above 'info':"):
        assert_no_findings(str(REPO / NESTED), fail_on=Severity.INFO)
