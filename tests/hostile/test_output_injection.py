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
import random
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from cli_command import without_run_total
from graph_checks import assert_valid_mermaid
from harness import Attack, Outcome, attack, injected_lines, run, run_attack, seeds

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
