"""`basketry explore` and `basketry profile --html`: what the pages hold (the figures' data are
the model's and the data's, labels not codes, the cap on rules said on the page), the static
pictures, and bad input refused in one line with nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from basketry.cli import app
from basketry.data import sample_path
from basketry.training.explore_data import top_rule_rows
from basketry.training.explore_graph import GRAPH_RULES

pytest.importorskip("plotly", reason="the monitor extra (plotly) is not installed")
runner = CliRunner()


def mined_model(out: Path) -> Path:
    """A small real model: the bundled Online Retail sample mined at 2% support (303 rules)."""
    done = runner.invoke(app, ["mine", str(sample_path()), "--min-support", "0.02",
                               "--min-confidence", "0.2", "--out", str(out)])
    assert done.exit_code == 0, done.output
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mined_model(tmp_path_factory.mktemp("explore") / "model")


def figures_of(page: Path) -> dict[str, Any]:
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="figures">(.*?)</script>', text, re.S)
    assert found, "no figures in the page"
    return json.loads(found.group(1))


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_the_page_shows_the_top_rules_by_lift_in_labels(model: Path, tmp_path: Path) -> None:
    page = tmp_path / "rules.html"
    done = runner.invoke(app, ["explore", str(model), "--out", str(page), "--top", "50"])
    assert done.exit_code == 0, done.output
    assert "top 50 of 303 rules" in " ".join(done.output.split())
    text = page.read_text(encoding="utf-8")
    assert "This model has 303 rules: the page shows the 50 with the highest lift" in text
    assert "cdn" not in text.lower().split("<script>")[0]  # nothing loaded from elsewhere
    figures = figures_of(page)

    # the scatter: the 50 rules of highest lift, the same figures as the model's table
    rules = pq.read_table(model / "rules.parquet").to_pandas()
    rules = rules.sort_values(["lift", "count"], ascending=False, kind="stable").head(50)
    scatter = figures["scatter"]["data"][0]
    assert np.allclose(scatter["x"], rules["support"], rtol=1e-5)
    assert np.allclose(scatter["y"], rules["confidence"], rtol=1e-5)
    assert np.allclose(scatter["marker"]["color"], rules["lift"], rtol=1e-3)
    # hover texts in labels, with the codes beside them
    items = pq.read_table(model / "items.parquet").to_pandas()
    label = dict(zip(items["item"], items["label"], strict=True))
    code = items["item"].tolist()
    first = rules.iloc[0]
    antecedent = ", ".join(" ".join(label[code[i]].split()) for i in first["antecedent"])
    consequent = ", ".join(" ".join(label[code[i]].split()) for i in first["consequent"])
    expected = f"{{{antecedent}}} → {{{consequent}}}".replace("&", "&amp;")
    assert expected in scatter["text"][0]
    assert f"codes {code[first['antecedent'][0]]}" in scatter["text"][0]

    # the graph: an arrow per antecedent item → consequent item of its rules
    arrows = [t for t in figures["graph"]["data"] if t["name"].startswith("rule arrows")]
    drawn = rules.head(GRAPH_RULES)
    assert sum(len(t["x"]) for t in arrows) == sum(
        len(a) * len(c) for a, c in zip(drawn["antecedent"], drawn["consequent"], strict=True))
    steps = figures["graph"]["layout"]["sliders"][0]["steps"]
    assert len(steps) >= 2 and all(steps[0]["args"][0]["visible"])

    # the grouped matrix: each of its rules in one cell, cells naming consequents in labels
    matrix = figures["matrix"]["data"][0]
    consequents = figures["matrix"]["layout"]["yaxis"]["ticktext"]
    names = {", ".join(" ".join(label[code[i]].split()) for i in c) for c in rules["consequent"]}
    cut = {(n if len(n) <= 32 else n[:31].rstrip() + "…").replace("&", "&amp;") for n in names}
    assert consequents and set(consequents) <= cut
    assert len(matrix["x"]) == len(matrix["y"]) == len(set(zip(matrix["x"], matrix["y"],
                                                               strict=True)))

    # item frequencies: the items table's counts over the model's baskets, labelled
    manifest = json.loads((model / "manifest.json").read_text())
    n = manifest["counts"]["n_baskets"]
    bars = figures["items"]["data"][0]
    top = items.sort_values(["count", "item"], ascending=[False, True]).head(30)
    assert np.allclose(bars["x"], top["count"] / n, rtol=1e-5)
    assert [row[1] for row in bars["customdata"]] == top["item"].tolist()
    assert bars["customdata"][0][0] == " ".join(top["label"].iloc[0].split())
    # basket sizes: the model's training profile
    sizes = figures["sizes"]["data"][0]
    assert sizes["y"] == manifest["dataset"]["basket_size"]["histogram"]["counts"]


def test_every_rule_fits_under_the_cap_and_the_page_stays_small(model: Path,
                                                                 tmp_path: Path) -> None:
    page = tmp_path / "all.html"
    done = runner.invoke(app, ["explore", str(model), "--out", str(page)])
    assert done.exit_code == 0, done.output
    text = page.read_text(encoding="utf-8")
    assert "the page shows the" not in text  # 303 rules, under the default cap of 1,000
    assert len(figures_of(page)["scatter"]["data"][0]["x"]) == 303
    assert text.count("<script") == 3  # the figures, one plotly.js, the drawing script
    from basketry.monitoring.report_html import plotly_js

    assert len(text.encode()) < len(plotly_js()) + 1_500_000


def test_top_rules_are_chosen_by_lift_then_count_then_row() -> None:
    lift = np.array([2.0, 5.0, 5.0, 1.0, 5.0, 3.0])
    count = np.array([9, 1, 7, 3, 7, 2])
    assert top_rule_rows(lift, count, 3).tolist() == [2, 4, 1]
    assert top_rule_rows(lift, count, 4).tolist() == [2, 4, 1, 5]
    assert top_rule_rows(lift, count, 100).tolist() == [2, 4, 1, 5, 0, 3]
    assert top_rule_rows(lift[:0], count[:0], 5).tolist() == []


def test_pictures_for_reports(model: Path, tmp_path: Path) -> None:
    done = runner.invoke(app, ["explore", str(model), "--out", str(tmp_path / "r.html"),
                               "--png-dir", str(tmp_path / "pictures")])
    assert done.exit_code == 0, done.output
    written = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert written == ["basket-sizes.png", "graph.png", "items.png", "matrix.png",
                       "scatter.png"]
    for name in written:
        assert (tmp_path / "pictures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_that_fails_verification_writes_no_page(model: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    data = bytearray((broken / "rules.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / "rules.parquet").write_bytes(bytes(data))
    page = tmp_path / "rules.html"
    done = runner.invoke(app, ["explore", str(broken), "--out", str(page)])
    assert done.exit_code == 2
    assert "rules.parquet" in one_line(done.output)
    assert not page.exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/missing/rules.html"], "does not exist"),
    (["--out", "{tmp}"], "is a directory"),
    (["--png-dir", "{tmp}/a", "--svg-dir", "{tmp}/b"], "exclude each other"),
])
def test_bad_outputs_are_refused_before_any_work(tmp_path: Path, args: list[str],
                                                 message: str) -> None:
    # the model does not exist either: the output is checked first
    args = [a.format(tmp=tmp_path) for a in args]
    done = runner.invoke(app, ["explore", str(tmp_path / "no-model"), *args])
    assert done.exit_code == 2
    assert message in one_line(done.output)
    assert sorted(tmp_path.iterdir()) == []


def test_the_profile_page_holds_the_profile(tmp_path: Path) -> None:
    from basketry.data import profile, read_baskets

    page = tmp_path / "profile.html"
    done = runner.invoke(app, ["profile", str(sample_path()), "--html", str(page)])
    assert done.exit_code == 0, done.output
    assert "wrote the profile of 8,698 baskets" in " ".join(done.output.split())
    assert "fingerprint" not in done.output  # the page, not the JSON
    expected = profile(read_baskets(sample_path()))
    figures = figures_of(page)
    bars = figures["items"]["data"][0]
    assert [row[1] for row in bars["customdata"]] == [t["item"] for t in
                                                       expected["top_items"][:30]]
    assert bars["customdata"][0][0] == expected["top_items"][0]["label"].strip()
    assert figures["sizes"]["data"][0]["y"] == expected["basket_size"]["histogram"]["counts"]
    timeline = figures["time"]["data"][0]
    assert sum(timeline["y"]) == expected["n_baskets"]
    assert timeline["x"][0] == "2011-08-09" and timeline["x"][-1] == "2011-12-09"
    tail = figures["tail"]["data"][0]
    assert tail["x"][0] == 1 and tail["x"][-1] == expected["n_items_used"]
    assert tail["y"][0] == pytest.approx(expected["top_items"][0]["support"], rel=1e-5)
    assert all(a >= b for a, b in zip(tail["y"], tail["y"][1:], strict=False))
    assert figures["tail"]["layout"]["xaxis"]["type"] == "log"


def test_the_profile_page_into_a_missing_folder_is_refused(tmp_path: Path) -> None:
    done = runner.invoke(app, ["profile", str(sample_path()), "--html",
                               str(tmp_path / "nowhere" / "profile.html")])
    assert done.exit_code == 2
    assert "does not exist" in one_line(done.output)
    assert sorted(tmp_path.iterdir()) == []


def _selection(n_rules: int, labels: list[str], *, profile: bool = True) -> Any:
    """A hand-made selection over ``labels`` (items i0, i1, ...): rule r is i(r) → i(r+1)."""
    from basketry.training.explore_data import RuleSelection

    n = len(labels)
    lift = np.linspace(5.0, 1.5, n_rules)
    return RuleSelection(
        model_version="f" * 64, n_rules=n_rules, n_baskets=100,
        items=[f"i{k}" for k in range(n)], names=labels,
        item_counts=np.arange(n, 0, -1, dtype=np.int64) * 3,
        antecedents=[[r % n] for r in range(n_rules)],
        consequents=[[(r + 1) % n] for r in range(n_rules)],
        support=np.full(n_rules, 0.05), confidence=np.full(n_rules, 0.5), lift=lift,
        count=np.full(n_rules, 5, dtype=np.int64),
        size_edges=[1, 2, 3] if profile else None, size_counts=[60, 40] if profile else None)


def test_labels_cannot_break_out_of_the_page() -> None:
    from basketry.training.explore import render_explore_page

    evil = "</script><script>alert(1)</script> & <b>co</b>"
    page = render_explore_page(_selection(6, [evil, "plain", "other"]))
    assert "<script>alert(1)" not in page
    figures = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))
    # plotly reads its text as HTML: the label shown as written, never as tags
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;co&lt;/b&gt;" \
        in figures["scatter"]["data"][0]["text"][0]


def test_a_model_without_rules_or_profile_says_so() -> None:
    from basketry.training.explore import render_explore_page

    page = render_explore_page(_selection(0, ["a", "b"], profile=False))
    figures = json.loads(re.search(r'id="figures">(.*?)</script>', page, re.S).group(1))
    for name in ("scatter", "graph", "matrix", "sizes"):
        assert figures[name]["data"] == [], name
    assert figures["scatter"]["empty"] == "The model has no rule."
    assert "no training profile" in figures["sizes"]["empty"]
    assert len(figures["items"]["data"][0]["y"]) == 2  # the items are still there


def test_time_coverage_per_day_and_per_week() -> None:
    from basketry.training.profile_page import time_coverage

    days = np.array(["2024-01-01T10:00", "2024-01-01T12:00", "2024-01-03T09:00", "NaT"],
                    dtype="datetime64[ns]")
    assert time_coverage(days) == ("day", ["2024-01-01", "2024-01-02", "2024-01-03"], [2, 0, 1])
    # over 180 days: weeks from Monday (2024-01-01 was one), empty weeks counted
    long = np.array(["2024-01-03", "2024-01-07", "2024-01-08", "2024-09-01"],
                    dtype="datetime64[ns]")
    unit, periods, counts = time_coverage(long)
    assert unit == "week" and periods[:2] == ["2024-01-01", "2024-01-08"]
    assert counts[:2] == [2, 1] and sum(counts) == 4 and periods[-1] == "2024-08-26"
    assert time_coverage(None) == ("day", [], [])
