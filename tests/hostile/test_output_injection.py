"""Output injection (issue 14, item 8): strings from a file reach no output raw, in any format or on stderr.

Every payload is a string an attacker can put in a layer, model, class or weight name, a group name, the
``keras_version`` of metadata.json, or the name of the file itself: a newline that starts a GitHub workflow
command, terminal escapes, a carriage return, a line separator, a bidi override, rich markup, HTML, a table
cell break and backticks. Each format must show them escaped but recognisable; JSON keeps them exactly.
"""

from __future__ import annotations

import html
import io
import json
import os
import random
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from cli_command import without_run_total
from graph_checks import assert_valid_mermaid
from harness import Attack, Outcome, attack, injected_lines, run, run_attack, seeds

from keras_share.baseline import baseline_text
from keras_share.pipeline import Pipeline
from keras_share.render.escape import visible

PAYLOADS = (
    "\n::error file=x::pwned",
    "\n::add-mask::x",
    "a\rb",
    "\x1b]0;title\x07",
    "\x1b[2J",
    "a\u2028b",
    "\u202egnp.exe",
    "[bold red]x[/]",
    "<img src=x onerror=alert(1)>",
    "a|b",
    "`code` ```",
    "\x85\x9b31m",
)
FORMATS = {
    "rich": ["--format", "rich"],
    "rich-all-layers": ["--format", "rich", "--all-layers"],
    "json": ["--format", "json"],
    "sarif": ["--format", "sarif"],
    "github": ["--format", "github"],
    "markdown": ["--format", "markdown"],
    "mermaid": ["--format", "mermaid"],
    "dot": ["--format", "dot"],
    "html": ["--format", "html"],
}
"""``--format svg`` is Graphviz's drawing of the DOT: test_hostile_names_are_the_text_graphviz_draws_from_dot."""


def _name_part(payload: str) -> str:
    """``payload`` as part of a file name or an HDF5 link name (no slash, no NUL)."""
    return payload.replace("/", "_").replace("\0", "_")


def _tensor(layer: str, call: int) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "dtype": "float32", "keras_history": [layer, call, 0]}}


def _keras3_layer(class_name: str, name: str, source: str, module: str = "keras.layers") -> dict[str, Any]:
    """A layer called twice on ``source``'s first call: shared, so it is in every format's report."""
    return {"module": module, "class_name": class_name, "config": {"name": name, "trainable": True},
            "registered_name": None, "name": name,
            "inbound_nodes": [{"args": [_tensor(source, 0)], "kwargs": {}} for _ in range(2)]}


def _assignments(rng: random.Random) -> dict[str, str]:
    """Which payload goes into the model name, the keras_version, the file name and a weight group name."""
    return {field: rng.choice(PAYLOADS) for field in ("model", "version", "file", "group")}


def write_keras(folder: Path, rng: random.Random) -> Path:
    """A Keras 3 .keras file: one shared BatchNormalization and one shared layer of an unknown class per
    payload (names, class names and modules carry it), every call an output (so that Keras keeps it), plus a
    hostile model name, keras_version, weight group and file name."""
    chosen = _assignments(rng)
    layers: list[dict[str, Any]] = [{"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                                     "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"},
                                     "name": "in", "inbound_nodes": []}]
    for number, payload in enumerate(PAYLOADS):
        layers.append(_keras3_layer("BatchNormalization", f"bn{number}{payload}", "in"))
        layers.append(_keras3_layer(f"Custom{payload}", f"custom{number}{payload}", "in", module=f"evil{payload}"))
    config = {"module": "keras.src.models.functional", "class_name": "Functional",
              "config": {"name": f"model{chosen['model']}", "trainable": True, "layers": layers,
                         "input_layers": [["in", 0, 0]],
                         "output_layers": [[layer["name"], call, 0] for layer in layers[1:] for call in (0, 1)]}}
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        group = h5.create_group(f"layers/group{_name_part(chosen['group'])}/vars")
        group.create_dataset("0", data=np.ones(2, "float32"))
    path = folder / f"m{_name_part(chosen['file'])}.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": f"3.1{chosen['version']}"}))
        archive.writestr("model.weights.h5", weights.getvalue())
    return path


def write_h5(folder: Path, rng: random.Random) -> Path:
    """A legacy .h5 model: per payload a shared BatchNormalization whose layer name and weight names (HDF5
    group and dataset names, ``weight_names``) carry it, plus a hostile model name, keras_version and file name."""
    chosen = _assignments(rng)
    layers: list[dict[str, Any]] = [{"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
                                     "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "in"}}]
    names = [f"bn{number}{_name_part(payload)}" for number, payload in enumerate(PAYLOADS)]
    for name in names:
        layers.append({"class_name": "BatchNormalization", "name": name, "config": {"name": name, "trainable": True},
                       "inbound_nodes": [[["in", 0, 0, {}]], [["in", 0, 0, {}]]]})
    config = {"class_name": "Functional", "config": {"name": f"model{chosen['model']}", "layers": layers,
                                                     "input_layers": [["in", 0, 0]],
                                                     "output_layers": [[names[-1], 1, 0]]}}
    path = folder / f"m{_name_part(chosen['file'])}.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["keras_version"] = f"2.1{chosen['version']}"
        weights = h5.create_group("model_weights")
        weights.attrs["layer_names"] = np.array(["in", *names], dtype=h5py.string_dtype())
        weights.create_group("in").attrs["weight_names"] = np.array([], dtype=h5py.string_dtype())
        for name, payload in zip(names, PAYLOADS):
            group = weights.create_group(name)
            weight_names = [f"{name}/gamma{_name_part(payload)}:0", f"{name}/beta:0"]
            group.attrs["weight_names"] = np.array(weight_names, dtype=h5py.string_dtype())
            for weight_name in weight_names:
                group.create_dataset(weight_name, data=np.ones(4, "float32"))
    return path


def _model_attack(write: Callable[[Path, random.Random], Path], output: str) -> Callable[[Path, random.Random], Attack]:
    def build(folder: Path, rng: random.Random) -> Attack:
        path = write(folder, rng)
        return Attack(["inspect", *FORMATS[output], "--fail-on", "never", path.name], cwd=folder)
    return build


@attack("output-injection-keras")
def keras_names(folder: Path, rng: random.Random) -> Attack:
    """Hostile strings in every name of a .keras file and in its file name, one output format per variant."""
    return _model_attack(write_keras, rng.choice(sorted(FORMATS)))(folder, rng)


@attack("output-injection-h5")
def h5_names(folder: Path, rng: random.Random) -> Attack:
    """Hostile strings in every name of a legacy .h5 file and in its file name, one output format per variant."""
    return _model_attack(write_h5, rng.choice(sorted(FORMATS)))(folder, rng)


def write_weights(folder: Path, rng: random.Random) -> Path:
    """A Keras 3 weights file for ``write_keras``'s model, named with a payload, whose group names carry payloads:
    one at no path of the model, one at the model's own group with another shape (both KS107 findings)."""
    path = folder / f"w{_name_part(rng.choice(PAYLOADS))}.weights.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group(f"layers/stray{_name_part(rng.choice(PAYLOADS))}/vars").create_dataset(
            "0", data=np.ones(3, "float32"))
        for name in h5py.File(folder / "model.weights.h5", "r")["layers"]:
            h5.create_group(f"layers/{name}/vars").create_dataset("0", data=np.ones(5, "float32"))
    return path


def _weights_attack(output: str) -> Callable[[Path, random.Random], Attack]:
    def build(folder: Path, rng: random.Random) -> Attack:
        model = write_keras(folder, rng)
        with zipfile.ZipFile(model) as archive:
            (folder / "model.weights.h5").write_bytes(archive.read("model.weights.h5"))
        weights = write_weights(folder, rng)
        return Attack(["inspect", *FORMATS[output], "--fail-on", "never", "--weights", weights.name, model.name],
                      cwd=folder)
    return build


@attack("output-injection-weights")
def weights_names(folder: Path, rng: random.Random) -> Attack:
    """Hostile strings in a --weights file's name and group names, reported by weights-mismatch, one output
    format per variant."""
    return _weights_attack(rng.choice(sorted(FORMATS)))(folder, rng)


def write_preset(folder: Path, rng: random.Random) -> Path:
    """A KerasHub preset folder whose backbone class, keras_hub_version, task class, stored layer name, LoRA file
    name and tokenizer file name carry payloads, with a tied token embedding (every preset line is printed)."""
    chosen = {field: rng.choice(PAYLOADS) for field in ("class", "version", "task", "lora", "file", "group")}
    path = folder / f"preset{_name_part(rng.choice(PAYLOADS))}"
    path.mkdir()
    class_name = f"Evil{chosen['class']}Backbone"
    (path / "config.json").write_text(json.dumps({"module": "keras_hub.src.models.evil", "class_name": class_name,
                                                  "config": {"name": "evil", "trainable": True},
                                                  "registered_name": f"keras_hub>{class_name}"}))
    (path / "metadata.json").write_text(json.dumps({"keras_version": "3.15.1", "parameter_count": 7,
                                                    "keras_hub_version": f"0.3{chosen['version']}"}))
    (path / "task.json").write_text(json.dumps({"class_name": f"Task{chosen['task']}", "config": {}}))
    (path / f"tokenizer{_name_part(chosen['file'])}.json").write_text("{}")
    with h5py.File(path / "model.weights.h5", "w") as h5:
        group = h5.create_group("layers/reversible_embedding/vars")
        group.attrs["name"] = f"token_embedding{chosen['group']}"
        group.create_dataset("0", data=np.ones((4, 2), "float32"))
    with h5py.File(path / f"a{_name_part(chosen['lora'])}.lora.h5", "w") as h5:
        h5.create_dataset("lora/vars/rank", data=2)
        h5.create_dataset("lora/0/vars/lora_kernel_a", data=np.ones((3, 2), "float32"))
        h5.create_dataset("lora/0/vars/lora_kernel_b", data=np.ones((2, 5), "float32"))
    return path


@attack("output-injection-preset")
def preset_names(folder: Path, rng: random.Random) -> Attack:
    """Hostile strings in every name a KerasHub preset's report prints, one output format per variant."""
    return _model_attack(write_preset, rng.choice(sorted(FORMATS)))(folder, rng)


def _baseline_attack(output: str) -> Callable[[Path, random.Random], Attack]:
    """``write_keras``'s model against a baseline that holds its first finding (written in-process, with the paths
    the run will see), so that hostile names are in both ``findings`` and ``in_baseline``."""
    def build(folder: Path, rng: random.Random) -> Attack:
        model = write_keras(folder, rng)
        here = os.getcwd()
        os.chdir(folder)
        try:
            report = Pipeline().file(Path(model.name))
            assert not isinstance(report, Exception), report
            (folder / "base.json").write_text(baseline_text([replace(report, findings=report.findings[:1])]))
        finally:
            os.chdir(here)
        return Attack(["inspect", *FORMATS[output], "--fail-on", "never", "--baseline", "base.json", model.name],
                      cwd=folder)
    return build


def write_unreadable(folder: Path, rng: random.Random) -> None:
    """An unreadable input whose file name carries every payload (in an order ``rng`` picks), and a .h5 whose
    error quotes a hostile layer name."""
    payloads = rng.sample(PAYLOADS, len(PAYLOADS))
    (folder / f"bad{_name_part(''.join(payloads))}.keras").write_bytes(b"PK\x03\x04 not a zip")
    with h5py.File(folder / "layer_name.h5", "w") as h5:
        h5.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"name": "m", "layers": []}})
        weights = h5.create_group("model_weights")
        name = f"x{_name_part(rng.choice(PAYLOADS))}"
        weights.attrs["layer_names"] = np.array([name], dtype=h5py.string_dtype())
        weights.create_group(name).attrs["weight_names"] = np.array([1, 2])


def _unreadable_attack(output: str) -> Callable[[Path, random.Random], Attack]:
    def build(folder: Path, rng: random.Random) -> Attack:
        write_unreadable(folder, rng)
        return Attack(["inspect", *FORMATS[output], "."], cwd=folder, exit_codes=(3,))
    return build


@attack("output-injection-unreadable")
def unreadable_names(folder: Path, rng: random.Random) -> Attack:
    """Unreadable inputs with hostile file names and a hostile layer name in the problem: one stderr line per
    input, nothing injected, in the format the variant picks."""
    return _unreadable_attack(rng.choice(sorted(FORMATS)))(folder, rng)


DIFF_FORMATS = ("rich", "json", "markdown")
"""The formats ``keras-share diff`` writes."""


def _diff_attack(output: str) -> Callable[[Path, random.Random], Attack]:
    def build(folder: Path, rng: random.Random) -> Attack:
        old, new = write_keras(folder, rng), write_h5(folder, rng)
        return Attack(["diff", "--format", output, old.name, new.name], cwd=folder, exit_codes=(1,))
    return build


@attack("output-injection-diff")
def diff_names(folder: Path, rng: random.Random) -> Attack:
    """``keras-share diff`` of a hostile .keras file against a hostile .h5 file (layers removed, weights changed,
    hostile file names and keras_version in the header), one diff format per variant."""
    return _diff_attack(rng.choice(DIFF_FORMATS))(folder, rng)


# --------------------------------------------------------------------------
# Checks beyond the harness's.
# --------------------------------------------------------------------------


def _run_checked(builder: Callable[[Path, random.Random], Attack], folder: Path) -> list[tuple[Attack, Outcome]]:
    """Every seed of ``builder``, each holding the harness's promises: what each run did."""
    runs = []
    for seed in seeds():
        variant = folder / f"variant{seed}"
        variant.mkdir()
        attack_, outcome, broken = run_attack(builder, variant, seed)
        assert not broken, f"seed {seed}: " + "\n".join(broken)
        runs.append((attack_, outcome))
    return runs


def shown(output: str, stdout: str) -> str:
    """What a reader of ``output`` sees: SARIF's result messages (their escapes undone), Mermaid labels with their
    entity codes decoded, DOT strings with their backslashes undone, HTML text with its references decoded, or the
    text itself."""
    if output == "mermaid":
        return re.sub(r"#(\d+);", lambda match: chr(int(match.group(1))), stdout)
    if output == "dot":
        return re.sub(r"\\(.)", r"\1", stdout)
    if output == "html":
        return html.unescape(stdout)
    if output != "sarif":
        return stdout
    results = json.loads(stdout)["runs"][0]["results"]
    return re.sub(r"\\(.)", r"\1", "\n".join(result["message"]["text"] for result in results))


@pytest.mark.parametrize("output", sorted(FORMATS))
def test_names_in_a_keras_file_are_escaped_in_every_format(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_model_attack(write_keras, output), tmp_path):
        assert outcome.status == 0, outcome.stderr
        if output != "json":
            assert "bn4" + visible("\x1b[2J") in shown(output, outcome.stdout)  # escaped, still recognisable


@pytest.mark.parametrize("output", sorted(FORMATS))
def test_names_in_an_h5_file_are_escaped_in_every_format(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_model_attack(write_h5, output), tmp_path):
        assert outcome.status == 0, outcome.stderr
        if output != "json":
            assert "bn4" + visible("\x1b[2J") in shown(output, outcome.stdout)


@pytest.mark.parametrize("output", sorted(FORMATS))
def test_names_in_a_keras_hub_preset_are_escaped_in_every_format(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_model_attack(write_preset, output), tmp_path):
        assert outcome.status == 0, outcome.stderr
        if output in ("rich", "markdown"):
            assert "KerasHub preset" in outcome.stdout and "LoRA a" in outcome.stdout


DRAWINGS = {"mermaid", "dot"}
"""Formats that draw only the graphs: they list no unreadable input (stderr does, as for every format)."""


@pytest.mark.parametrize("output", sorted(set(FORMATS) - DRAWINGS))
def test_unreadable_inputs_with_hostile_names_are_one_stderr_line_each(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_unreadable_attack(output), tmp_path):
        lines = without_run_total(outcome.stderr).splitlines()
        assert len(lines) == 2, outcome.stderr
        assert all(line.startswith("keras-share: error: ") for line in lines), outcome.stderr
        assert all(visible(_name_part(payload)) in outcome.stderr for payload in PAYLOADS)
        assert any(line.startswith("keras-share: error: layer_name.h5: model_weights/x") for line in lines)


@pytest.mark.parametrize("output", ["github", "markdown", "rich"])
def test_names_in_a_weights_file_are_escaped_in_the_formats_people_read(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_weights_attack(output), tmp_path):
        assert outcome.status == 0, outcome.stderr
        assert "KS107" in outcome.stdout
        if output != "github":  # github folds the second finding of a rule into the first's annotation
            assert "layers/stray" in outcome.stdout


def test_rich_markup_in_a_name_is_printed_not_interpreted(tmp_path: Path) -> None:
    outcome = run(["inspect", "--all-layers", write_keras(tmp_path, random.Random(0)).name], tmp_path)
    assert "Custom[bold red]x[/]" in outcome.stdout
    assert "\x1b[" not in outcome.stdout


def test_a_bidi_override_and_a_line_separator_are_shown_as_escapes(tmp_path: Path) -> None:
    outcome = run(["inspect", "--all-layers", write_keras(tmp_path, random.Random(0)).name], tmp_path)
    assert "\\u202egnp.exe" in outcome.stdout and "a\\u2028b" in outcome.stdout
    assert "\u202e" not in outcome.stdout and "\u2028" not in outcome.stdout


def test_markdown_table_rows_keep_their_cells_whatever_the_names_hold(tmp_path: Path) -> None:
    outcome = run(["inspect", "--format", "markdown", write_keras(tmp_path, random.Random(0)).name], tmp_path)
    rows = [line for line in outcome.stdout.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 * len(PAYLOADS)
    assert all(row.replace("\\|", "").count("|") == 7 for row in rows)  # six cells, however names are spelled


def test_github_annotations_escape_percent_and_property_separators(tmp_path: Path) -> None:
    folder = tmp_path / "a,b:c%d"
    folder.mkdir()
    (folder / "bad.keras").write_bytes(b"not a model")
    outcome = run(["inspect", "--format", "github", "."], tmp_path)
    assert "::error file=a%2Cb%3Ac%25d/bad.keras,title=unreadable model::" in outcome.stdout


def test_json_keeps_every_hostile_name_exactly(tmp_path: Path) -> None:
    rng = random.Random(0)
    path = write_keras(tmp_path, rng)
    chosen = _assignments(random.Random(0))
    outcome = run(["inspect", "--format", "json", "--fail-on", "never", path.name], tmp_path)
    assert not injected_lines(outcome.stdout, own_annotations=True)
    model = json.loads(outcome.stdout)["models"][0]
    assert model["file"] == path.name
    assert model["model"]["name"] == f"model{chosen['model']}"
    assert model["keras_version"] == f"3.1{chosen['version']}"
    names = {layer["name"] for layer in model["layers"]}
    classes = {layer["class_name"] for layer in model["layers"]}
    for number, payload in enumerate(PAYLOADS):
        assert f"bn{number}{payload}" in names and f"Custom{payload}" in classes
    assert [group["group"] for group in model["unattached_weights"]] == [f"layers/group{_name_part(chosen['group'])}"]


def test_json_keeps_hostile_weight_names_of_an_h5_file_exactly(tmp_path: Path) -> None:
    path = write_h5(tmp_path, random.Random(0))
    outcome = run(["inspect", "--format", "json", "--fail-on", "never", path.name], tmp_path)
    layers = {layer["name"]: layer for layer in json.loads(outcome.stdout)["models"][0]["layers"]}
    for number, payload in enumerate(PAYLOADS):
        weights = [weight["name"] for weight in layers[f"bn{number}{_name_part(payload)}"]["weights"]]
        assert weights == [f"gamma{_name_part(payload)}", "beta"]


def test_a_file_name_that_is_not_utf8_is_escaped_and_keeps_its_bytes_in_sarif(tmp_path: Path) -> None:
    (tmp_path / "bad\udcff.keras").write_bytes(b"not a model")
    for output in ("rich", "sarif", "markdown", "github", "json"):
        outcome = run(["inspect", "--format", output, "."], tmp_path)
        assert outcome.status == 3 and "Traceback" not in outcome.stderr, outcome.stderr
        assert "bad\\udcff.keras" in outcome.stderr
    sarif = json.loads(run(["inspect", "--format", "sarif", "."], tmp_path).stdout)
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad%FF.keras"


def test_the_harness_takes_a_name_shaped_like_an_annotation_for_an_injection() -> None:
    assert injected_lines("report\n::error file=x::pwned", own_annotations=True) == ["::error file=x::pwned"]
    assert injected_lines("::error file=x,title=y::pwned", own_annotations=False) == ["::error file=x,title=y::pwned"]
    assert injected_lines("::warning file=m%0Ax.keras,title=KS201 shared-batchnorm::bn%0A::error file=x::pwned",
                          own_annotations=True) == []


@pytest.mark.parametrize("character", ["\r", "\x85", "\u2028", "\u202e", "\u2066"])
def test_the_harness_takes_a_raw_carriage_return_separator_or_bidi_control_for_an_injection(character: str) -> None:
    assert injected_lines(f"a{character}b") == [f"a{character}b"]


@pytest.mark.parametrize("output", DIFF_FORMATS)
def test_names_in_both_inputs_of_a_diff_are_escaped_in_every_diff_format(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_diff_attack(output), tmp_path):
        assert outcome.status == 1, outcome.stderr
        if output != "json":
            assert "bn4" + visible("\x1b[2J") in outcome.stdout  # a changed layer: escaped, still recognisable
            assert "custom4" + visible("\x1b[2J") in outcome.stdout  # a removed layer
            assert "Custom" + visible("\x1b[2J") in outcome.stdout  # its class


def test_markdown_diff_rows_keep_their_cells_whatever_the_names_hold(tmp_path: Path) -> None:
    rng = random.Random(0)
    old, new = write_keras(tmp_path, rng), write_h5(tmp_path, rng)
    outcome = run(["diff", "--format", "markdown", old.name, new.name], tmp_path)
    rows = [line for line in outcome.stdout.splitlines() if line.startswith("| ") and not line.startswith("| change ")]
    assert len(rows) >= 2 * len(PAYLOADS)
    assert all(row.replace("\\|", "").count("|") == 5 for row in rows)  # four cells, however names are spelled


def test_json_diff_keeps_every_hostile_name_exactly(tmp_path: Path) -> None:
    rng = random.Random(0)
    old, new = write_keras(tmp_path, rng), write_h5(tmp_path, rng)
    outcome = run(["diff", "--format", "json", old.name, new.name], tmp_path)
    assert not injected_lines(outcome.stdout, own_annotations=True)
    document = json.loads(outcome.stdout)
    assert (document["old"]["file"], document["new"]["file"]) == (old.name, new.name)
    removed = {change["path"]: change["before"]["class_name"] for change in document["changes"]
               if change["kind"] == "layer-removed"}
    for number, payload in enumerate(PAYLOADS):
        assert removed[f"custom{number}{payload}"] == f"Custom{payload}"


def test_unreadable_diff_inputs_with_hostile_names_are_one_stderr_line_each(tmp_path: Path) -> None:
    bad = tmp_path / f"bad{_name_part(''.join(PAYLOADS))}.keras"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    outcome = run(["diff", bad.name, "missing\u202e.h5"], tmp_path)
    assert outcome.status == 3 and outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("keras-share: error: ") for line in lines), outcome.stderr
    assert visible(bad.name) in lines[0] and lines[1] == "keras-share: error: missing\\u202e.h5: no such file or folder"
    assert not injected_lines(outcome.stderr)


@pytest.mark.parametrize("output", ["markdown", "rich", "sarif"])
def test_names_of_findings_in_a_baseline_are_escaped(output: str, tmp_path: Path) -> None:
    for _attack, outcome in _run_checked(_baseline_attack(output), tmp_path):
        assert outcome.status == 0, outcome.stderr
        if output == "sarif":
            results = json.loads(outcome.stdout)["runs"][0]["results"]
            assert "unchanged" in [result["baselineState"] for result in results]
        else:
            assert "1 finding in baseline (not counted)" in outcome.stdout


# --------------------------------------------------------------------------
# The graph formats: a name stays inside its label.
# --------------------------------------------------------------------------


def _graph_of_hostile_names(output: str, folder: Path) -> str:
    outcome = run(["inspect", "--format", output, "--fail-on", "never", "--expand",
                   write_keras(folder, random.Random(0)).name], folder)
    assert outcome.status == 0 and "Traceback" not in outcome.stderr, outcome.stderr
    return outcome.stdout


def test_hostile_names_stay_inside_their_mermaid_labels(tmp_path: Path) -> None:
    chart = _graph_of_hostile_names("mermaid", tmp_path)
    assert_valid_mermaid(chart)  # each line a statement the writer makes: no directive, link or node injected
    labels = shown("mermaid", chart)
    assert all(visible(f"bn{number}{payload}") in labels for number, payload in enumerate(PAYLOADS))


def test_hostile_names_are_the_text_graphviz_draws_from_dot(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    source = _graph_of_hostile_names("dot", tmp_path)
    drawn = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True, timeout=60)
    assert drawn.returncode == 0 and not drawn.stderr, drawn.stderr
    texts = [html.unescape(text) for text in re.findall(r"<text[^>]*>([^<]*)</text>", drawn.stdout)]
    for number, payload in enumerate(PAYLOADS):
        for name in (f"bn{number}{payload}", f"custom{number}{payload}"):
            assert visible(name) in texts, name
    boxes = len(re.findall(r'<g id="node\d+" class="node">', drawn.stdout))
    assert boxes == len(re.findall(r"^\s*m\d+n\d+ \[", source, re.M)) == 1 + 2 * len(PAYLOADS)


class _Elements(HTMLParser):
    """The tags and attributes of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_hostile_names_in_the_html_page_are_text_and_add_no_element(tmp_path: Path) -> None:
    page = _graph_of_hostile_names("html", tmp_path)
    elements = _Elements()
    elements.feed(page)
    assert elements.tags.count("script") == 1 and "img" not in elements.tags
    assert not [name for name in elements.attributes if name.startswith("on")]
    text = "".join(elements.text)
    for number, payload in enumerate(PAYLOADS):
        assert visible(f"bn{number}{payload}") in text and visible(f"Custom{payload}") in text


def test_hostile_names_cannot_close_the_mermaid_fence_of_the_markdown_report(tmp_path: Path) -> None:
    report = _graph_of_hostile_names("markdown", tmp_path)
    graph = report[report.index("<details>"):]
    assert [line for line in graph.splitlines() if line.startswith("```")] == ["```mermaid", "```"]
    assert_valid_mermaid(graph.split("```mermaid\n")[1].split("\n```")[0])
