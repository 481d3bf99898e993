"""The aisle map (SVG, PNG) and the affinity graph's page, drawn from small plans whose content
is known: 5 aisles and 60 aisles, with labels and without."""

from __future__ import annotations

import json
import re
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from basketry.layout.pictures import (
    PictureError,
    check_map_path,
    draw_aisle_map,
    evaluation_line,
    main_products,
    shorten,
    write_affinity_graph,
)
from basketry.model.layout import Aisle, LayoutPlan, Slot
from tests.layout.plans import LONG, item_code, make_plan

pytest.importorskip("matplotlib", reason="the train extra is not installed")

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path: Path) -> list[str]:
    """Every text of an SVG drawn with the fonts as text (``svg.fonttype: none``)."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_main_products_are_the_best_linked_then_the_first_positions() -> None:
    plan = make_plan(4, per_aisle=8)
    top = main_products(plan, 3)
    # the first product of an aisle is linked to every other one: always first
    assert top[2][0].item == item_code(2, 1)
    assert all(len(v) == 3 for v in top.values())
    bare = LayoutPlan(aisles=(Aisle(1, 5, tuple(Slot(f"i{p}", None, 1, p) for p in
                                                 range(1, 5))),))
    assert [s.item for s in main_products(bare, 2)[1]] == ["i1", "i2"]  # no edges: shelf order


def test_labels_are_shortened_with_an_ellipsis() -> None:
    assert shorten("SHORT") == "SHORT"
    cut = shorten(LONG, 20)
    assert len(cut) <= 20 and cut.endswith("…") and LONG.startswith(cut[:-1])


def test_the_evaluation_headline_compares_with_random() -> None:
    plan = make_plan(3)
    line = evaluation_line(plan.evaluation)
    assert line is not None
    assert "42.0%" in line and "random layout 5.0%" in line and "8.4×" in line
    assert evaluation_line(None) is None and evaluation_line({"other": 1}) is None
    full = evaluation_line({"layout": {"same_aisle": 0.3, "same_or_adjacent": 0.5},
                            "random": {"same_aisle": 0.1, "same_aisle_sd": 0.01},
                            "current": {"same_aisle": 0.2}, "test_baskets": 1234})
    assert full == ("same-aisle share of co-purchased pairs 30.0% (random layout 10.0%, 3.0×); "
                    "same or next aisle 50.0%; current layout 20.0% (on 1,234 held-out baskets)")


@pytest.mark.parametrize("n_aisles", [5, 60])
def test_the_svg_map_names_every_aisle_and_its_main_products(tmp_path: Path,
                                                             n_aisles: int) -> None:
    plan = make_plan(n_aisles)
    path = tmp_path / "map.svg"
    draw_aisle_map(plan, path, top=8)  # every product: the long label is one of them
    texts = svg_texts(path)
    joined = "\n".join(texts)
    for a in range(1, n_aisles + 1):
        assert any(t.startswith(f"Aisle {a} ") for t in texts), a
        assert f"1. PRODUCT 1 OF AISLE {a}" in joined  # the best linked, by label
    assert LONG not in joined and f"{LONG[:20]}" in joined  # long labels shortened
    assert "◆ 3. PRODUCT 3 OF AISLE 1" in joined  # a fixed product, marked
    assert f"{plan.n_items} products in {n_aisles} aisles" in joined  # the title
    assert "random layout 5.0%" in joined
    assert "fixed product (does not move)" in joined and "walking order" in joined
    # codes are not shown when the plan has labels
    assert item_code(1, 1) not in joined


def test_without_labels_the_map_shows_codes(tmp_path: Path) -> None:
    path = tmp_path / "map.svg"
    draw_aisle_map(make_plan(5, labels=False, evaluation=False), path, top=2)
    joined = "\n".join(svg_texts(path))
    assert f"1. {item_code(3, 1)}" in joined
    assert "random" not in joined


@pytest.mark.parametrize("n_aisles", [5, 60])
def test_the_png_map_grows_with_the_store(tmp_path: Path, n_aisles: int) -> None:
    path = tmp_path / "map.png"
    draw_aisle_map(make_plan(n_aisles), path)
    width, height = png_size(path)
    assert width >= 900 and height >= 300
    if n_aisles == 60:  # rows of aisles: taller than wide is never needed, but bigger
        small = tmp_path / "small.png"
        draw_aisle_map(make_plan(5), small)
        assert height > 2 * png_size(small)[1]


def test_a_bad_suffix_or_an_empty_plan_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PictureError, match=r"map\.jpg: the aisle map is drawn as \.svg or "
                       r"\.png, not \.jpg"):
        draw_aisle_map(make_plan(2), tmp_path / "map.jpg")
    assert not (tmp_path / "map.jpg").exists()
    assert check_map_path(Path("a/MAP.SVG")) == "svg"
    with pytest.raises(PictureError, match="not a file without a suffix"):
        check_map_path(Path("map"))


def graph_figure(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', text,
                      re.S)
    assert found is not None
    return json.loads(found.group(1))


def test_the_graph_page_is_one_offline_file(tmp_path: Path) -> None:
    pytest.importorskip("networkx", reason="the layout extra is not installed")
    plan = make_plan(5)
    path = tmp_path / "graph.html"
    write_affinity_graph(plan, path)
    text = path.read_text(encoding="utf-8")
    assert "cdn" not in text.lower().split("<script>", 1)[0]  # the head fetches nothing
    assert not re.search(r'<script[^>]+src=', text) and "<link rel=\"stylesheet\"" not in text
    assert len(text) > 1_000_000  # plotly.js is inside
    figure = graph_figure(path)
    points = [t for t in figure["data"] if t["mode"] == "markers"]
    assert [t["name"] for t in points] == [f"aisle {a}" for a in range(1, 6)]
    shown = {item for t in points for item in t["customdata"]}
    assert shown == {s.item for s in plan.slots()}
    hover = "\n".join(h for t in points for h in t["text"])
    assert "PRODUCT 1 OF AISLE 4" in hover and "aisle 4, position 1" in hover
    assert "(fixed)" in hover
    lines = [t for t in figure["data"] if t["mode"] == "lines"]
    assert sum(len(t["x"]) // 3 for t in lines) == len(plan.edges)
    widths = sorted({t["line"]["width"] for t in lines})
    assert len(widths) > 1  # stronger edges are wider
    menu = figure["layout"]["updatemenus"][0]["buttons"]
    assert [b["label"] for b in menu] == ["All aisles"] + [f"Aisle {a}" for a in range(1, 6)]
    aisle3 = menu[3]["args"][0]["visible"]
    assert [t["name"] for t, v in zip(figure["data"], aisle3, strict=True)
            if v and t["mode"] == "markers"] == ["aisle 3"]


def test_the_graph_keeps_the_strongest_edges_and_is_seeded(tmp_path: Path) -> None:
    pytest.importorskip("networkx", reason="the layout extra is not installed")
    plan = make_plan(6)
    write_affinity_graph(plan, tmp_path / "a.html", max_edges=10)
    write_affinity_graph(plan, tmp_path / "b.html", max_edges=10)
    a, b = graph_figure(tmp_path / "a.html"), graph_figure(tmp_path / "b.html")
    assert a == b  # the same plan draws the same picture
    lines = [t for t in a["data"] if t["mode"] == "lines"]
    assert sum(len(t["x"]) // 3 for t in lines) == 10
    # the 10 strongest edges are the first products' (weights 5-6), all within an aisle
    assert all(not t["name"].startswith("edges between") for t in lines)


def test_a_label_cannot_end_the_script_block(tmp_path: Path) -> None:
    pytest.importorskip("networkx", reason="the layout extra is not installed")
    evil = "</script><script>alert(1)</script>"
    plan = LayoutPlan(aisles=(Aisle(1, 3, (Slot("x", evil, 1, 1), Slot("y", "Y", 1, 2))),))
    path = tmp_path / "graph.html"
    write_affinity_graph(plan, path)
    text = path.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text
    hover = graph_figure(path)["data"][0]["text"][0]
    assert "&lt;/script&gt;" in hover


def test_a_missing_package_is_one_line_naming_its_extra(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import basketry.monitoring.report_html as report_html

    plan = make_plan(2)
    with monkeypatch.context() as m:
        m.setattr(report_html, "plotly_js", lambda: None)  # as without the plotly package
        with pytest.raises(PictureError, match=r"plotly .* 'basketry\[monitor\]'"):
            write_affinity_graph(plan, tmp_path / "graph.html")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "networkx", None)  # import networkx fails
        with pytest.raises(PictureError, match=r"pip install 'basketry\[layout\]'"):
            write_affinity_graph(plan, tmp_path / "graph.html")
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "matplotlib", None)
        with pytest.raises(PictureError, match=r"matplotlib: pip install 'basketry\[train\]'"):
            draw_aisle_map(plan, tmp_path / "map.svg")
    assert list(tmp_path.iterdir()) == []  # nothing written
