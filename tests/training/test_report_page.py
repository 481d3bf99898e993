"""The training report page: sentences, not ``key=value`` dumps or numpy timestamps; the model's
line and the sentence when a baseline has its figures; the strongest rules with labels; the
promotion gate's verdict once registered; and the page in a real headless Chromium (no console
error, nothing wider than the screen, screenshots in the test's tmp dir and in
``$BASKETRY_SCREENSHOTS`` when set)."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from typing import Any

import pytest

from basketry.data import read_baskets, sample_path
from basketry.model import load_model
from basketry.training import save_trained, train_and_evaluate
from basketry.training.registry import GateDecision, Registration
from basketry.training.report import add_registration, report_html, top_rules, write_report
from basketry.training.report_figures import write_pngs
from basketry.training.report_text import scoring_words, split_sentence, when


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One small model of the bundled sample (time split, fixed scoring: no tuning)."""
    folder = tmp_path_factory.mktemp("report")
    result = train_and_evaluate(read_baskets(sample_path()),
                                {"min_support": 0.02, "min_confidence": 0.2},
                                test_days=30, seed=0, scoring={"method": "smoothed"})
    model_dir = save_trained(folder / "model", result)
    report = result.report
    report["model_version"] = load_model(model_dir, verify=False).model_version
    return report, model_dir


def visible_text(page: str) -> str:
    """What a reader sees: the page without its style, pictures and tags."""
    page = re.sub(r"<(style|svg)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))


def _registration(promote: bool, forced: bool = False) -> Registration:
    reasons = ["hit_rate@10 0.1500 beats popularity 0.0400",
               "worse than champion v1 (0.1900) beyond tolerance 0.005"]
    if forced:
        reasons.append("promoted anyway: --force")
    return Registration(name="basketry", version="2",
                        decision=GateDecision(promote=promote, reasons=reasons, forced=forced))


def test_dates_and_scoring_in_words():
    assert when("2011-11-09T12:50:00.000000000") == "9 Nov 2011 12:50"
    assert when("2011-11-09T12:50:07") == "9 Nov 2011 12:50:07"
    assert scoring_words({"method": "smoothed", "prior_weight": 0.0, "combine": 0.0}) == (
        "smoothed confidence, prior weight 0, no evidence combination")
    assert scoring_words({"method": "lift_product", "prior_weight": 10.0, "combine": 1.0}) == (
        "product of smoothed lifts, prior weight 10, evidence combination weight 1")
    assert scoring_words({"method": "lift"}) == "rule lift"


def test_the_page_speaks_in_sentences_with_labelled_rules(trained):
    report, model_dir = trained
    split = report["split"]
    page = report_html(report, rules=top_rules(model_dir))
    shown = visible_text(page)
    assert split_sentence(report) == (
        f"Trained on {split['n_train']:,} baskets before {when(split['cutoff'])}, tested on "
        f"{split['n_test']:,} baskets of the last 30 days.")
    assert split_sentence(report) in shown
    assert "Scoring: smoothed confidence, prior weight 10, evidence combination weight 0.01" \
        in shown
    assert f"Mined {report['rules']['n_rules']:,} rules: support at least 0.02 (" in shown
    # no dumps: key=value pairs, Python dicts, numpy timestamps
    assert not re.search(r"\w=\S", shown), re.search(r".{40}\w=\S.{40}", shown)
    assert "{'" not in shown and "000000000" not in shown and "numpy" not in shown
    # the strongest rules by label, code beside it
    rules = top_rules(model_dir)
    assert len(rules) == 10 and rules[0]["lift"] >= rules[-1]["lift"]
    code, label = rules[0]["antecedent"][0]
    assert label != code and re.search(r"[A-Z]{3,} [A-Z]{3,}", label)
    assert f"{label} {code}" in shown
    # no gate before registration; the verdict against the baselines is there
    assert "Promotion gate" not in shown
    assert "at least as good as every baseline" in shown or "beats the model" in shown


def test_a_baseline_with_the_models_figures_is_said_and_drawn_apart(trained):
    report, _ = trained
    same = copy.deepcopy(report)
    same["metrics"]["max_confidence"] = dict(same["metrics"]["model"])
    shown = visible_text(report_html(same))
    assert "The model's figures are identical to max-confidence" in shown
    assert "identical to max-confidence" in report_html(same)  # the chart's legend too
    different = copy.deepcopy(report)
    different["metrics"]["max_confidence"]["hit_rate@10"] = 0.0
    assert "identical to" not in report_html(different)


@pytest.mark.parametrize(("promote", "forced", "says"), [
    (True, False, "Registered as basketry version 2: the new champion."),
    (False, False, "Registered as basketry version 2: not the champion (it stays a challenger)."),
    (True, True, "champion, promoted by force although the gate refused it."),
])
def test_the_gate_verdict_after_registration(trained, tmp_path, promote, forced, says):
    report, model_dir = trained
    reports = write_report(report, tmp_path / "r", model_dir=model_dir)
    assert "Promotion gate" not in reports[1].read_text()
    again = add_registration(reports, report, model_dir, _registration(promote, forced))
    assert again == reports
    shown = visible_text(reports[1].read_text())
    assert says in shown
    assert "Worse than champion v1 (0.1900) beyond tolerance 0.005." in shown
    assert "Hit rate@10 0.1500 beats popularity 0.0400." in shown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]  # no temporaries


def test_the_pictures_as_png(trained, tmp_path):
    report, _ = trained
    paths = write_pngs(report, tmp_path)
    assert [p.name for p in paths] == ["metrics-by-k.png", "rule-distributions.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_the_page_in_chromium(trained, tmp_path):
    from tests.serving.test_dashboard_browser import _chrome, _errors, _open, _screenshot

    report, model_dir = trained
    same = copy.deepcopy(report)
    same["metrics"]["max_confidence"] = dict(same["metrics"]["model"])
    _, page = write_report(same, tmp_path / "report", model_dir=model_dir)
    add_registration((tmp_path / "report.json", page), same, model_dir, _registration(True))
    browser = _chrome(tmp_path)
    try:
        for width in (1280, 390):
            _open(browser, page.as_uri(), width)
            assert _errors(browser) == []
            shown = browser.execute_script("""
                return {overflow: document.documentElement.scrollWidth - window.innerWidth,
                        svgs: document.querySelectorAll(".svg svg").length,
                        resources: performance.getEntriesByType("resource").length,
                        // a sentence wider than its box (a long path) would be cut off
                        clipped: [...document.querySelectorAll("main p")].filter(
                          p => p.scrollWidth > p.clientWidth + 1).length,
                        tables: [...document.querySelectorAll("table")].map(
                          t => t.getBoundingClientRect().right)};""")
            assert shown["overflow"] <= 0 and shown["svgs"] == 2 and shown["resources"] == 0
            assert shown["clipped"] == 0
            if width == 1280:  # every table fits without scrolling
                assert max(shown["tables"]) <= 1280
            _screenshot(browser, tmp_path / f"report-{width}.png", width)
    finally:
        browser.quit()
