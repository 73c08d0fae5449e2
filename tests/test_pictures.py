"""The layer graph as a picture (issue 18): ``--format mermaid``, ``dot``, ``svg``, ``html`` and the Mermaid graph
of ``--format markdown``.

Each layer object is one box, its calls numbered on the edges; nested models are clusters; frozen layers, layers
with findings and tied layers are marked; chains of plain layers collapse unless ``--expand``. Every sample
model and every real model of ../shared/real_models renders in each format (DOT parsed by Graphviz when it is
installed; Mermaid checked line by line against the statements the writer may make).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cli_command import clean_env, keras_share_command, run_cli
from conftest import ModelStore
from graph_checks import assert_valid_mermaid, dot_parses
from test_real_models import FILES as REAL_FILES
from test_real_models import IDS as REAL_IDS

from keras_share.analysis.report import ModelReport
from keras_share.api import inspect
from keras_share.graph.model import TensorRef
from keras_share.render import OutputFormat, formatter
from keras_share.render.html import HtmlFormatter
from keras_share.render.mermaid import MAX_EDGES, mermaid
from keras_share.render.picture import Picture, picture

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
SAMPLE_FILES = sorted(path for path in SAMPLES.iterdir() if path.suffix in (".keras", ".h5")
                      or path.name == "k2_savedmodel")
DRAWN = ("mermaid", "dot", "html")



def _report(path: Path) -> ModelReport:
    found = inspect(str(path))
    assert isinstance(found, ModelReport)
    return found


def _names(drawn: Picture) -> dict[str, str]:
    """Each box's name by id (chains as ``first … last``)."""
    return {node.id: node.name for node in drawn.nodes.values()}


def _edges_by_name(drawn: Picture) -> Counter[tuple[str, str, str]]:
    names = _names(drawn)
    return Counter((names[edge.source], names[edge.target], edge.label) for edge in drawn.edges)


# ---------------------------------------------------------------------------------------- what is drawn


def test_a_shared_layer_is_one_box_with_its_calls_numbered_on_its_edges() -> None:
    drawn = picture(_report(SAMPLES / "k2_shared.h5"))
    assert [node.name for node in drawn.nodes.values()].count("shared_dense") == 1
    edges = _edges_by_name(drawn)
    assert edges[("left", "shared_dense", "call 0")] == 1 and edges[("right", "shared_dense", "call 1")] == 1


def test_an_edge_out_of_a_shared_layer_names_the_call_that_made_the_tensor() -> None:
    edges = _edges_by_name(picture(_report(SAMPLES / "k2_shared.h5")))
    assert edges[("shared_dense", "tower_in", "call 0 → call 0")] == 1
    assert edges[("shared_dense", "tower_in", "call 1 → call 1")] == 1


def test_a_nested_model_is_a_cluster_around_its_layers_and_its_calls_enter_its_input() -> None:
    drawn = picture(_report(SAMPLES / "nested_encoder.keras"))
    (encoder,) = drawn.clusters.values()
    assert encoder.name == "encoder" and encoder.shared and encoder.calls == 3
    assert {node.name for node in drawn.members_of(encoder.id)} == {"enc_in", "enc_dense", "enc_bn", "enc_out"}
    edges = _edges_by_name(drawn)
    assert [edges[(source, "enc_in", f"call {index}")] for index, source in
            enumerate(("anchor", "positive", "negative"))] == [1, 1, 1]
    assert [edges[("enc_out", "embeddings", f"call {index}")] for index in range(3)] == [1, 1, 1]


def test_frozen_layers_are_marked_frozen() -> None:
    drawn = picture(_report(SAMPLES / "transfer_frozen.keras"), expand=True)
    report = _report(SAMPLES / "transfer_frozen.keras")
    frozen = {layer.layer.name for layer in report.layers if not layer.trainable}
    assert frozen
    assert {node.name for node in drawn.nodes.values() if node.frozen} == frozen


def test_a_layer_with_a_finding_is_marked_with_its_severity() -> None:
    report = _report(SAMPLES / "nested_encoder.keras")
    drawn = picture(report)
    marked = {node.name: node.severity for node in drawn.nodes.values() if node.severity is not None}
    assert marked == {"enc_bn": report.findings[0].severity}


def test_one_nested_model_placed_in_two_models_is_tied_once_across_them(model_store: ModelStore) -> None:
    drawn = picture(_report(model_store.path("nested_model_in_two_models", 3, "keras")), expand=True)
    paths = {box: path for path, box in drawn.ids.items()}
    assert [(paths[tie.first], paths[tie.second], tie.label) for tie in drawn.ties] == [
        ("mid/sub", "sub", "same layer")]


def test_a_tie_between_nested_models_is_clipped_at_their_clusters_in_dot(model_store: ModelStore) -> None:
    text = formatter(OutputFormat.DOT).format([_report(model_store.path("nested_model_in_two_models", 3, "keras"))], [])
    (line,) = [line for line in text.splitlines() if "same layer" in line]
    assert "ltail=cluster_" in line and "lhead=cluster_" in line
    dot_parses(text)


def test_a_variable_tied_across_two_live_layers_links_them(keras3: Any) -> None:
    class TransposedDecoder(keras3.layers.Layer):
        """Uses the encoder's kernel, transposed: the variable is tied across the two layers."""

        def __init__(self, encoder: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.encoder = lambda: encoder  # behind a function: not tracked as a sublayer

        def build(self, input_shape: Any) -> None:
            self.kernel = self.encoder().kernel

        def call(self, x: Any) -> Any:
            return keras3.ops.matmul(x, keras3.ops.transpose(self.kernel))

    x = keras3.Input((6,), name="x")
    encoder = keras3.layers.Dense(3, name="enc")
    report = inspect(keras3.Model(x, TransposedDecoder(encoder, name="dec")(encoder(x)), name="tied"))
    assert isinstance(report, ModelReport)
    drawn = picture(report)
    paths = {box: path for path, box in drawn.ids.items()}
    assert [(paths[tie.first], paths[tie.second], tie.label) for tie in drawn.ties] == [("enc", "dec", "tied variable")]


def test_a_nested_model_output_naming_a_layer_outside_it_is_not_followed() -> None:
    report = _report(SAMPLES / "nested_encoder.keras")
    report.graph.layers["encoder"].outputs = [TensorRef("encoder", 0, 0)]  # a config that points at itself
    drawn = picture(report, "m0")
    encoder = drawn.ids["encoder"]
    into = [(edge.source, edge.label) for edge in drawn.edges if drawn.nodes[edge.target].name == "embeddings"]
    assert into == [(encoder, f"call {index}") for index in range(3)]
    assert_valid_mermaid(mermaid([drawn]))


def test_a_chain_of_plain_layers_collapses_into_one_box() -> None:
    drawn = picture(_report(SAMPLES / "k2_shared.h5"))
    (chain,) = [node for node in drawn.nodes.values() if node.chain]
    assert chain.members == ["diff", "score"] and chain.name == "diff … score"
    assert drawn.ids["score"] == drawn.ids["diff"] == chain.id


def test_expand_draws_every_layer_in_its_own_box() -> None:
    drawn = picture(_report(SAMPLES / "k2_shared.h5"), expand=True)
    assert not any(node.chain for node in drawn.nodes.values())
    assert {"diff", "score"} <= set(_names(drawn).values())


def test_a_file_without_a_layer_graph_says_so_instead_of_drawing_nothing() -> None:
    drawn = picture(_report(SAMPLES / "subclassed.keras"))
    assert drawn.note is not None and "no layer graph" in drawn.note and not drawn.nodes


# ---------------------------------------------------------------------------------------- the formats


def test_mermaid_has_one_flowchart_with_a_subgraph_per_model_when_several() -> None:
    reports = [_report(SAMPLES / "k2_shared.h5"), _report(SAMPLES / "nested_encoder.keras")]
    text = formatter(OutputFormat.MERMAID).format(reports, [])
    assert_valid_mermaid(text)
    assert text.count("flowchart") == 1
    assert re.findall(r"^  subgraph (m\d+)\[", text, re.M) == ["m0", "m1"]


def test_mermaid_of_a_shared_layer_labels_each_call() -> None:
    text = formatter(OutputFormat.MERMAID).format([_report(SAMPLES / "k2_shared.h5")], [])
    assert '-->|"call 0"|' in text and '-->|"call 1"|' in text


def test_dot_clusters_nested_models_and_parses_with_graphviz() -> None:
    text = formatter(OutputFormat.DOT).format([_report(SAMPLES / "nested_encoder.keras")], [])
    assert "subgraph cluster_m0n3 {" in text and 'label="call 2"' in text
    dot_parses(text)


def test_svg_is_drawn_by_graphviz() -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    done = run_cli("inspect", "--format", "svg", SAMPLES / "k2_shared.h5")
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout and "shared_dense" in done.stdout


def test_svg_without_graphviz_is_a_usage_error_naming_the_package(tmp_path: Path) -> None:
    done = run_cli("inspect", "--format", "svg", SAMPLES / "k2_shared.h5", env=clean_env(PATH=str(tmp_path)))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("keras-share: usage error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "apt-get install graphviz" in done.stderr


def test_markdown_folds_the_mermaid_graph_under_details() -> None:
    text = formatter(OutputFormat.MARKDOWN).format([_report(SAMPLES / "nested_encoder.keras")], [])
    block = text[text.index("<details>"):text.index("</details>")]
    chart = block.split("```mermaid\n")[1].split("\n```")[0]
    assert_valid_mermaid(chart)


def test_markdown_leaves_out_a_graph_mermaid_would_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report(SAMPLES / "k2_shared.h5")
    drawn = picture(report, "m0")
    drawn.edges *= MAX_EDGES  # as many edges as a 10,000-layer model's
    monkeypatch.setattr("keras_share.render.markdown.picture", lambda *_args: drawn)
    text = formatter(OutputFormat.MARKDOWN).format([report], [])
    assert "```mermaid" not in text and "`--format html` draws it" in text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attributes += attrs


def test_html_is_self_contained_with_no_address_to_fetch() -> None:
    reports = [_report(SAMPLES / "nested_encoder.keras"), _report(SAMPLES / "k2_shared.h5")]
    page = HtmlFormatter().format(reports, [])
    assert not re.search(r"https?:|ftp:|//[\w.-]+\.\w|@import", page, re.I)
    tags = _Tags()
    tags.feed(page)
    assert not {"link", "img", "iframe", "object", "embed", "image", "use"} & set(tags.tags)
    assert all(name not in ("src", "href", "xlink:href") or (value or "").startswith("#")
               for name, value in tags.attributes)
    assert all(url.startswith("url(#") for url in re.findall(r"url\([^)]*\)", page))
    assert "default-src 'none'" in page


def test_html_shows_every_shared_layer_and_the_docs_of_each_rule_found() -> None:
    report = _report(SAMPLES / "nested_encoder.keras")
    page = HtmlFormatter().format([report], [])
    assert all(f"<code>{row.layer.path}</code>" in page for row in report.shared_rows)
    info = report.findings[0].rule_info
    assert f"id='rule-{info.anchor}'" in page and "Why is this bad?" in page


def test_the_graph_formats_are_not_imported_on_the_default_path() -> None:
    code = ("import sys, keras_share.cli; keras_share.cli.run(['inspect', %r]); "
            "print(sorted(m for m in sys.modules if m.split('.')[-1] in ('html', 'layout', 'dot', 'mermaid', "
            "'picture') and m.startswith('keras_share')))" % str(SAMPLES / "k2_shared.h5"))
    done = subprocess.run([keras_share_command()[0], "-c", code], capture_output=True, text=True, timeout=120,
                          env=clean_env())
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr


# ------------------------------------------------------------------------ every model renders in every format


_REPORTS: dict[Path, ModelReport] = {}


def _cached(path: Path) -> ModelReport:
    """Each model is read once for every format's test."""
    if path not in _REPORTS:
        _REPORTS[path] = _report(path)
    return _REPORTS[path]


def _renders_valid(path: Path, output: str) -> None:
    text = formatter(OutputFormat(output)).format([_cached(path)], [])
    if output == "mermaid":
        assert_valid_mermaid(text)
    elif output == "dot":
        dot_parses(text)
    else:
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
        assert "<svg" in text or "no layer graph" in text


@pytest.mark.parametrize("output", DRAWN)
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[path.name for path in SAMPLE_FILES])
def test_every_sample_model_renders(path: Path, output: str) -> None:
    _renders_valid(path, output)


@pytest.mark.skipif(not REAL_FILES, reason="../shared/real_models is not available")
@pytest.mark.parametrize("output", DRAWN)
@pytest.mark.parametrize("path", REAL_FILES, ids=REAL_IDS)
def test_every_real_model_renders(path: Path, output: str) -> None:
    _renders_valid(path, output)


@pytest.mark.parametrize("output", DRAWN)
def test_the_command_line_writes_each_graph_format(output: str, tmp_path: Path) -> None:
    target = tmp_path / f"graph.{output}"
    done = run_cli("inspect", "--format", f"{output}:{target}", "--expand", SAMPLES / "k2_shared.h5")
    assert done.returncode == 0, done.stderr
    text = target.read_text(encoding="utf-8")
    assert "score" in text and "2 layers" not in text  # --expand: diff and score in boxes of their own
