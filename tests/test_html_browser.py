"""``--format html`` in a real browser (issue 18): Debian's Chromium, headless, driven by playwright.

The page loads with no console error and no request beyond itself, shows every shared layer (in the table and in
the graph), highlights a shared layer's call sites together on hover, folds a nested model on a click of its
title, and the page of the 10,000-layer benchmark model opens and answers a hover. Screenshots are kept in
tests/artifacts/ (ignored by git; the path is printed). Mermaid's own parser, when .ci/run has fetched it
(``.ci/mermaid/mermaid.min.js``, or ``MERMAID_JS``), reads every sample model's flowchart in the same browser.
Everything is skipped, with the reason, where no browser or no playwright is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_command import clean_env, keras_share_command
from layers_model import write_layers_model

from keras_share.analysis.report import ModelReport
from keras_share.api import inspect
from keras_share.render.mermaid import mermaid
from keras_share.render.picture import picture

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_models"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PAGE_MODELS = [SAMPLES / "k2_shared.h5", SAMPLES / "nested_encoder.keras", SAMPLES / "transfer_frozen.keras"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
MERMAID_JS = Path(os.environ.get("MERMAID_JS", REPO / ".ci" / "mermaid" / "mermaid.min.js"))
BIG_MODEL_LAYERS = 10_000
BIG_PAGE_SECONDS = 30
"""Generous bounds for the 10,000-layer page on a loaded CI machine: it loads in about a second here."""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh headless Chromium profile (playwright's ``executable_path``: the system's browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    with sync_api.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=executable, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


KEPT: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def kept_screenshots(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print where the screenshots of this module were kept once it is done."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and KEPT:
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for path in KEPT:
                reporter.write_line(f"screenshot kept: {path}")


class Visit:
    """A page opened from a file, with what it said on the console and what it asked the network for."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        started = time.perf_counter()
        self.page.goto(path.as_uri(), wait_until="load")
        self.seconds = time.perf_counter() - started

    def keep(self, name: str, full_page: bool = False) -> Path:
        """A screenshot in tests/artifacts/ (its path printed)."""
        ARTIFACTS.mkdir(exist_ok=True)
        target = ARTIFACTS / name
        self.page.screenshot(path=str(target), full_page=full_page)
        KEPT.append(target)
        return target


def _page(folder: Path, models: list[Path], *options: str) -> Path:
    target = folder / "report.html"
    done = subprocess.run([*keras_share_command(), "inspect", "--fail-on", "never", *options, "--format",
                           f"html:{target}", *map(str, models)], capture_output=True, text=True, timeout=300,
                          env=clean_env())
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _page(tmp_path_factory.mktemp("html"), PAGE_MODELS)


@pytest.fixture
def visit(browser: Any, report_page: Path) -> Iterator[Visit]:
    opened = Visit(browser, report_page)
    yield opened
    opened.page.close()


def _reports() -> list[ModelReport]:
    found = [inspect(str(path)) for path in PAGE_MODELS]
    return [report for report in found if isinstance(report, ModelReport)]


def test_the_page_loads_with_no_console_error_and_fetches_nothing(visit: Visit, report_page: Path) -> None:
    assert visit.errors == []
    assert visit.requests == [report_page.as_uri()]
    visit.keep("html-report.png", full_page=True)


def test_the_page_shows_every_shared_layer_in_the_table_and_the_graph(visit: Visit) -> None:
    for number, report in enumerate(_reports()):
        drawn = picture(report, f"m{number}")
        section = visit.page.locator(f"#model-{number}")
        for row in report.shared_rows:
            assert section.locator("tr.shared-row code", has_text=row.layer.path).first.is_visible()
            box = visit.page.locator(f"#{drawn.ids[row.layer.path]}")
            box.scroll_into_view_if_needed()
            assert box.is_visible(), row.layer.path


def test_hovering_a_shared_layer_highlights_every_one_of_its_call_sites(visit: Visit) -> None:
    report = _reports()[0]
    drawn = picture(report, "m0")
    shared = drawn.ids["shared_dense"]
    call_sites = [edge for edge in drawn.edges if shared in edge.groups]
    visit.page.locator(f"#{shared}").hover()
    highlighted = visit.page.locator(f"#model-0 path.edge.hl[data-g~='{shared}']")
    assert highlighted.count() == len(call_sites) == report.graph.layers["shared_dense"].calls * 2
    assert visit.page.locator(f"#{shared}.hl").count() == 1
    assert visit.page.locator("#model-0 tr.shared-row.hl").count() >= 1
    visit.keep("html-hover.png")


def test_clicking_a_nested_model_title_folds_it(visit: Visit) -> None:
    drawn = picture(_reports()[1], "m1")
    (encoder,) = drawn.clusters
    inside = visit.page.locator(f"#{encoder} > .inside")
    assert inside.is_visible()
    title = visit.page.locator(f"#{encoder} > .ctitle")
    title.click(position={"x": 12, "y": 8})  # its left end: the edges into the model cross its middle
    assert not inside.is_visible()
    title.click(position={"x": 12, "y": 8})
    assert inside.is_visible()


def test_the_page_of_a_10000_layer_model_opens_and_answers_a_hover(browser: Any, tmp_path: Path) -> None:
    model = write_layers_model(BIG_MODEL_LAYERS, tmp_path / "layers_10000.keras")
    page = _page(tmp_path, [model])
    opened = Visit(browser, page)
    assert opened.errors == [] and opened.seconds < BIG_PAGE_SECONDS
    highlighted, milliseconds = opened.page.evaluate(
        "() => new Promise(done => { const started = performance.now();"
        " document.querySelector('.node.shared').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
        " requestAnimationFrame(() => done([document.querySelectorAll('path.edge.hl').length,"
        " performance.now() - started])); })")
    assert highlighted == 2 * 1000  # the shared layer's 1,000 calls, an edge in and an edge out each
    assert milliseconds < BIG_PAGE_SECONDS * 1000
    print(f"10,000-layer page: {page.stat().st_size:,} bytes, loaded in {opened.seconds:.2f} s, "
          f"hover drawn in {milliseconds:.0f} ms")
    opened.keep("html-10000-layers.png")
    opened.page.close()


@pytest.mark.skipif(not MERMAID_JS.is_file(), reason=f"Mermaid's parser is not at {MERMAID_JS} (.ci/run fetches it)")
def test_mermaids_own_parser_reads_every_sample_models_flowchart(browser: Any) -> None:
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(path=str(MERMAID_JS))
    page.evaluate("mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})")
    samples = sorted(path for path in SAMPLES.iterdir() if path.suffix in (".keras", ".h5"))
    for path in samples:
        report = inspect(str(path))
        assert isinstance(report, ModelReport)
        chart = mermaid([picture(report, "m0")])
        answer = page.evaluate("async (chart) => { try { await mermaid.parse(chart); "
                               "return (await mermaid.render('check', chart)).svg.length > 0 ? 'drawn' : 'empty'; }"
                               " catch (error) { return String(error.message || error); } }", chart)
        assert answer == "drawn", f"{path.name}: {answer}"
    page.close()
