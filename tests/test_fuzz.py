"""Mutated sample files (byte flips, truncation, structural config edits) give a report or a ReadError."""

from __future__ import annotations

import copy
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_share import fuzzing
from keras_share.analysis.report import ModelReport
from keras_share.api import inspect_file
from keras_share.errors import ReadError
from keras_share.fuzzing import (
    FOLDER_MEMBERS,
    FUZZ_TIMEOUT_SECONDS,
    LAYOUTS,
    MEMBER_SEPARATOR,
    OUTPUTS,
    InjectedOutput,
    encode_input,
    fuzz_one_input,
    inspect_bytes,
    inspect_folder_bytes,
)
from keras_share.render.base import Formatter
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
    inspect_bytes(bytes(original), Path(sample).suffix, data.draw(st.sampled_from(sorted(OUTPUTS))))


@pytest.mark.parametrize("sample", KERAS_SAMPLES + H5_SAMPLES)
@given(data=st.data())
def test_truncated_files_give_a_report_or_a_read_error(sample: str, data: st.DataObject) -> None:
    original = (SAMPLES / sample).read_bytes()
    inspect_bytes(original[: data.draw(st.integers(0, len(original) - 1))], Path(sample).suffix,
                  data.draw(st.sampled_from(sorted(OUTPUTS))))


@pytest.mark.parametrize("sample", KERAS_SAMPLES)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_edited_keras_configs_give_a_report_or_a_read_error(sample: str, data: st.DataObject) -> None:
    original = (SAMPLES / sample).read_bytes()
    config = data.draw(config_edits(zipfile.ZipFile(io.BytesIO(original)).read("config.json").decode()))
    inspect_bytes(_rewrite_keras_config(original, config), ".keras", data.draw(st.sampled_from(sorted(OUTPUTS))))


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
def test_mutated_savedmodel_metadata_gives_a_report_or_a_read_error(data: st.DataObject, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("savedmodel")
    original = bytearray((SAMPLES / "k2_savedmodel" / "keras_metadata.pb").read_bytes())
    if data.draw(st.booleans()):
        for _ in range(data.draw(st.integers(1, 16))):
            original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
    else:
        original = original[: data.draw(st.integers(0, len(original) - 1))]
    (folder / "saved_model.pb").write_bytes(b"")
    shutil.copytree(SAMPLES / "k2_savedmodel" / "variables", folder / "variables")
    (folder / "keras_metadata.pb").write_bytes(bytes(original))
    _assert_report_or_read_error(folder)


# ---------------------------------------------------------------- the atheris target


def _folder_form(sample: str) -> bytes:
    with zipfile.ZipFile(SAMPLES / sample) as archive:
        return MEMBER_SEPARATOR.join(archive.read(member) for member in FOLDER_MEMBERS)


def _sample_input(layout: str) -> bytes:
    return _folder_form("shared_dense.keras") if layout == "folder" else (SAMPLES / f"shared_dense{layout}").read_bytes()


HOSTILE_NAMES = ("\n::error file=x::pwned", "\n::add-mask::x", "a\rb", "\x1b]0;title\x07", "\u2028", "\u202e",
                 "[bold red]x[/]", "<img src=x onerror=alert(1)>", "a|b", "`x`")


def _hostile_keras() -> bytes:
    """A .keras whose model name, shared BatchNormalization names, class names and keras_version are hostile."""
    def tensor(layer: str) -> dict[str, Any]:
        return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "keras_history": [layer, 0, 0]}}
    layers: list[dict[str, Any]] = [{"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
                                     "config": {"batch_shape": [None, 4], "name": "in"}}]
    for number, name in enumerate(HOSTILE_NAMES):
        for class_name, layer in (("BatchNormalization", f"bn{number}{name}"), (f"C{name}", f"c{number}{name}")):
            layers.append({"class_name": class_name, "name": layer, "config": {"name": layer},
                           "inbound_nodes": [{"args": [tensor("in")], "kwargs": {}}] * 2})
    config = {"class_name": "Functional", "config": {"name": f"m{HOSTILE_NAMES[0]}", "layers": layers,
                                                     "input_layers": [["in", 0, 0]], "output_layers": [["in", 0, 0]]}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": f"3{HOSTILE_NAMES[1]}"}))
    return buffer.getvalue()


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_fuzz_target_renders_a_sample_in_every_layout_and_format(layout: str, output: str) -> None:
    fuzz_one_input(encode_input(layout, output, _sample_input(layout)))


def test_the_folder_form_input_is_read_as_an_unzipped_keras_folder() -> None:
    model = json.loads(inspect_folder_bytes(_folder_form("shared_dense.keras"), "json"))["models"][0]
    assert model["format"] == "keras-dir" and model["summary"]["shared_layers"] == 1


def test_a_folder_form_input_without_separators_is_a_lone_config_json() -> None:
    model = json.loads(inspect_folder_bytes(_folder_form("shared_dense.keras").split(MEMBER_SEPARATOR)[0]))["models"][0]
    assert model["format"] == "keras-dir" and model["summary"]["unique_params"] == 0


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_the_fuzz_target_renders_unreadable_input_as_an_error(output: str) -> None:
    text = inspect_folder_bytes(b"{not json" + MEMBER_SEPARATOR + b"\x1b[2J", output)
    assert "is not valid JSON" in text or output.startswith("rich")


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_the_fuzz_target_accepts_hostile_names_escaped_in_every_format(output: str) -> None:
    for layout, archive_bytes in ((".keras", _hostile_keras()), ("folder", _hostile_keras())):
        payload = archive_bytes
        if layout == "folder":
            with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
                payload = MEMBER_SEPARATOR.join(archive.read(member) for member in FOLDER_MEMBERS[:2])
        fuzz_one_input(encode_input(layout, output, payload))


class _RawNames(Formatter):
    """A renderer that forgets to escape: each layer name on a line of its own."""

    def format(self, reports: list[ModelReport], errors: list[ReadError]) -> str:
        return "".join(layer.layer.name + "\n" for report in reports for layer in report.layers)


def test_the_fuzz_target_fails_when_a_renderer_prints_a_name_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fuzzing.OUTPUTS, "markdown", _RawNames)
    with pytest.raises(InjectedOutput, match="::error file=x::pwned"):
        fuzz_one_input(encode_input(".keras", "markdown", _hostile_keras()))


def test_a_name_shaped_like_an_annotation_is_injected_outside_the_github_format() -> None:
    assert fuzzing.injected_lines("ok\n::error file=x::pwned") == ["::error file=x::pwned"]


def test_the_github_format_own_annotations_are_not_injected_lines() -> None:
    line = "::warning file=a%2Cb.keras,title=KS201 shared-batchnorm::bn%0A::error file=x::pwned: message"
    assert fuzzing.injected_lines(line, own_annotations=True) == []


def test_an_annotation_with_unescaped_properties_is_injected_even_in_the_github_format() -> None:
    assert fuzzing.injected_lines("::error file=x::pwned", own_annotations=True) == ["::error file=x::pwned"]


def test_inputs_shorter_than_the_two_choice_bytes_are_skipped() -> None:
    assert fuzz_one_input(b"\x00") is None
