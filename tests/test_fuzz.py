"""Mutated sample files (byte flips, truncation, structural config edits) give a report or a ReadError."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.fuzzing import FUZZ_TIMEOUT_SECONDS, inspect_bytes
from keras_share.render.json_format import model_to_dict

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
KERAS_SAMPLES = ["shared_dense.keras", "nested_encoder.keras", "k2_shared.keras", "mha_keywords.keras"]
H5_SAMPLES = ["shared_dense.h5", "nested_encoder.h5", "k2_shared.h5", "k2_weights_only.h5"]

REPLACEMENTS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**12), st.text(max_size=5), st.just([]), st.just({}),
    st.just(["a", 0, 0, {}]), st.just([["missing", 7, 0, {}]]), st.just({"class_name": "__keras_tensor__"}),
    st.lists(st.integers(-1, 3), max_size=3),
).map(copy.deepcopy)


def _json_slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a JSON document, without recursion."""
    slots: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        current = stack.pop()
        items = current.items() if isinstance(current, dict) else enumerate(current) if isinstance(current, list) else ()
        for key, child in items:
            slots.append((current, key))
            stack.append(child)
    return slots


@st.composite
def config_edits(draw: st.DrawFn, text: str) -> str:
    """A config JSON with a few values replaced or keys deleted."""
    config = json.loads(text)
    for _ in range(draw(st.integers(1, 6))):
        slots = _json_slots(config)
        if not slots:
            break
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(REPLACEMENTS)
    return json.dumps(config)


def _assert_report_or_read_error(path: Path) -> None:
    try:
        model_to_dict(inspect_file(path, timeout=FUZZ_TIMEOUT_SECONDS))
    except ReadError as error:
        assert "\n" not in str(error)


def _rewrite_keras_config(data: bytes, config: str) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name in source.namelist():
            target.writestr(name, config if name == "config.json" else source.read(name))
    return buffer.getvalue()


@pytest.mark.parametrize("sample", KERAS_SAMPLES + H5_SAMPLES)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_byte_flips_give_a_report_or_a_read_error(sample: str, data: st.DataObject) -> None:
    original = bytearray((SAMPLES / sample).read_bytes())
    for _ in range(data.draw(st.integers(1, 16))):
        original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    inspect_bytes(bytes(original), Path(sample).suffix)


@pytest.mark.parametrize("sample", KERAS_SAMPLES + H5_SAMPLES)
@given(data=st.data())
def test_truncated_files_give_a_report_or_a_read_error(sample: str, data: st.DataObject) -> None:
    original = (SAMPLES / sample).read_bytes()
    inspect_bytes(original[: data.draw(st.integers(0, len(original) - 1))], Path(sample).suffix)


@pytest.mark.parametrize("sample", KERAS_SAMPLES)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_edited_keras_configs_give_a_report_or_a_read_error(sample: str, data: st.DataObject) -> None:
    original = (SAMPLES / sample).read_bytes()
    config = data.draw(config_edits(zipfile.ZipFile(io.BytesIO(original)).read("config.json").decode()))
    inspect_bytes(_rewrite_keras_config(original, config), ".keras")


@pytest.mark.parametrize("sample", ["shared_dense.h5", "nested_encoder.h5", "k2_shared.h5"])
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_edited_h5_configs_give_a_report_or_a_read_error(sample: str, data: st.DataObject, tmp_path: Path) -> None:
    target = tmp_path / sample
    target.write_bytes((SAMPLES / sample).read_bytes())
    with h5py.File(target, "r+") as h5:
        h5.attrs["model_config"] = data.draw(config_edits(h5.attrs["model_config"]))
    _assert_report_or_read_error(target)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_savedmodel_metadata_gives_a_report_or_a_read_error(data: st.DataObject, tmp_path_factory) -> None:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("savedmodel")
    original = bytearray((SAMPLES / "k2_savedmodel" / "keras_metadata.pb").read_bytes())
    if data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 16))):
            original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    else:
        original = original[: data.draw(st.integers(0, len(original) - 1))]
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "keras_metadata.pb").write_bytes(bytes(original))
    _assert_report_or_read_error(folder)
