"""The affinity graph's page in a real headless Chromium that can resolve no host: it renders
from its file alone with no console error, draws a point per product, and its menu shows one
aisle. Screenshots go to the test's tmp dir (and to ``$BASKETRY_SCREENSHOTS`` when set).

Needs Debian's Chromium and its driver and selenium, like ``tests/serving/test_docs_browser.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from basketry.layout.pictures import write_affinity_graph
from tests.layout.plans import make_plan
from tests.serving.test_dashboard_browser import _chrome, _errors, _open, _screenshot

pytest.importorskip("networkx", reason="the layout extra is not installed")


def _drawn(browser: Any) -> dict[str, Any]:
    """What the page drew: the points of each visible aisle trace, counted in the SVG."""
    return browser.execute_script("""
        const el = document.getElementById("graph");
        const traces = el.data.map((t, i) => ({name: t.name, mode: t.mode,
          visible: t.visible === undefined || t.visible === true,
          n: t.mode === "markers" ? t.x.length : 0}));
        return {traces: traces,
                points: el.querySelectorAll(".scatterlayer .trace .points path").length,
                title: document.querySelector("h1").textContent,
                overflow: document.documentElement.scrollWidth - window.innerWidth};""")


@pytest.mark.parametrize("n_aisles", [5, 60])
def test_the_graph_renders_offline_and_filters_an_aisle(tmp_path: Path, n_aisles: int) -> None:
    plan = make_plan(n_aisles)
    page = tmp_path / f"graph-{n_aisles}.html"
    write_affinity_graph(plan, page)
    browser = _chrome(tmp_path)
    try:
        _open(browser, page.as_uri(), 1280)
        assert _errors(browser) == []
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert loaded == []  # everything is in the file
        drawn = _drawn(browser)
        assert f"{plan.n_items} products in {n_aisles} aisles" in drawn["title"]
        points = [t for t in drawn["traces"] if t["mode"] == "markers"]
        assert sum(t["n"] for t in points) == plan.n_items
        assert drawn["points"] == plan.n_items  # every product is drawn
        assert drawn["overflow"] <= 0
        _screenshot(browser, tmp_path / f"graph-{n_aisles}-all.png", 1280)

        # the menu: open it and choose aisle 3 (plotly draws it in SVG, with d3's handlers)
        chosen = browser.execute_script("""
            const click = (el) => el.dispatchEvent(new MouseEvent("click", {bubbles: true}));
            click(document.querySelector(".updatemenu-header"));
            const button = [...document.querySelectorAll(".updatemenu-dropdown-button")].find(
              b => b.textContent.trim() === "Aisle 3");
            if (!button) return false;
            click(button);
            return true;""")
        assert chosen
        drawn = _drawn(browser)
        visible = [t["name"] for t in drawn["traces"] if t["visible"] and t["mode"] == "markers"]
        assert visible == ["aisle 3"]
        assert drawn["points"] == len(plan.aisles[2].items)
        assert _errors(browser) == []
        _screenshot(browser, tmp_path / f"graph-{n_aisles}-aisle3.png", 1280)
    finally:
        browser.quit()
