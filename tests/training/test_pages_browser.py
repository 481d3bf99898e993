"""`basketry explore`'s page and `basketry profile --html`'s page in a real headless Chromium that
can resolve no host: each renders from its file alone, with no console error and no request
for anything but the file; the figures drawn are the ones asked for (labels on hover, the
graph's slider filters). Screenshots go to the test's tmp dir (and to ``$BASKETRY_SCREENSHOTS``
when set).

Needs Debian's Chromium and its driver and selenium, like ``tests/serving/test_docs_browser.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import sample_path
from tests.serving.test_dashboard_browser import _chrome, _errors, _open, _screenshot
from tests.training.test_explore import mined_model

pytest.importorskip("plotly", reason="the monitor extra (plotly) is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pages")
    model = mined_model(folder / "model")
    rules, profile = folder / "rules.html", folder / "profile.html"
    done = runner.invoke(app, ["explore", str(model), "--out", str(rules), "--top", "200"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["profile", str(sample_path()), "--html", str(profile)])
    assert done.exit_code == 0, done.output
    return {"rules": rules, "profile": profile}


def _figures(browser: Any) -> dict[str, Any]:
    """Each chart's traces as drawn (plotly's data on the element) and what its SVG holds."""
    return browser.execute_script("""
        const out = {};
        document.querySelectorAll(".chart").forEach(el => {
          out[el.id] = {
            traces: (el.data || []).map(t => ({name: t.name, type: t.type,
              visible: t.visible === undefined || t.visible === true,
              n: (t.x || []).filter(v => v !== null).length, text: t.text || null,
              customdata: t.customdata || null})),
            points: el.querySelectorAll(".scatterlayer .points path, .barlayer .point").length,
            empty: el.querySelector(".nochart") ? el.textContent : null};
        });
        out.overflow = document.documentElement.scrollWidth - window.innerWidth;
        out.resources = performance.getEntriesByType("resource").map(e => e.name);
        return out;""")


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    chrome = _chrome(tmp_path)
    try:
        yield chrome
    finally:
        chrome.quit()


def test_the_rules_page_renders_offline_with_labels_and_filters_the_graph(
        pages: dict[str, Path], browser: Any, tmp_path: Path) -> None:
    _open(browser, pages["rules"].as_uri(), 1280)
    assert _errors(browser) == []
    shown = _figures(browser)
    # nothing fetched: plotly.js and the data are in the file (a request would be listed,
    # and would fail on this closed network with a console error)
    assert shown["resources"] == []
    assert shown["overflow"] <= 0
    scatter = shown["scatter"]["traces"]
    assert len(scatter) == 1 and scatter[0]["n"] == 200
    assert shown["scatter"]["points"] == 200  # every rule is drawn
    assert any("WHITE HANGING HEART" in t or "CHRISTMAS" in t for t in scatter[0]["text"])
    assert shown["items"]["points"] == 30
    assert shown["sizes"]["points"] > 5
    assert shown["matrix"]["points"] > 0
    graph = shown["graph"]["traces"]
    arrows = sum(t["n"] for t in graph if t["name"].startswith("rule arrows"))
    assert arrows > 0
    _screenshot(browser, tmp_path / "rules-1280.png", 1280)

    # the slider's last step: only the rules of the highest lift class stay
    moved = browser.execute_script("""
        const el = document.getElementById("graph");
        const steps = el.layout.sliders[0].steps;
        return Plotly.restyle(el, steps[steps.length - 1].args[0]).then(() => steps.length);""")
    assert moved >= 2
    graph = _figures(browser)["graph"]["traces"]
    visible = sum(t["n"] for t in graph if t["name"].startswith("rule arrows") and t["visible"])
    assert 0 < visible < arrows
    assert browser.execute_script(  # the lift scale stays
        "return document.querySelectorAll('#graph .colorbar').length") == 1
    assert _errors(browser) == []
    _screenshot(browser, tmp_path / "rules-graph-filtered.png", 1280)
    _open(browser, pages["rules"].as_uri(), 390)  # a phone: nothing wider than the screen
    assert _figures(browser)["overflow"] <= 0
    _screenshot(browser, tmp_path / "rules-390.png", 390)


def test_the_profile_page_renders_offline(pages: dict[str, Path], browser: Any,
                                          tmp_path: Path) -> None:
    _open(browser, pages["profile"].as_uri(), 1280)
    assert _errors(browser) == []
    shown = _figures(browser)
    assert shown["resources"] == []
    assert shown["overflow"] <= 0
    assert shown["items"]["points"] == 30
    labels = [row[0] for row in shown["items"]["traces"][0]["customdata"]]
    assert "WHITE HANGING HEART T-LIGHT HOLDER" in labels
    assert shown["tail"]["traces"][0]["n"] > 50
    # the sample spans 2011-08-09 to 2011-12-09: one bar a day
    assert shown["time"]["traces"][0]["n"] == 123
    assert "no basket" not in browser.find_element("tag name", "main").text
    _screenshot(browser, tmp_path / "profile-1280.png", 1280)
