"""The evaluation report ``train`` writes: ``<prefix>.json`` (every figure) and ``<prefix>.html``,
a self-contained page (no external resources) in the style of basketry's other pages: what
was trained and tested said in sentences, the verdict against the baselines, the metrics table,
the metrics by k and the rule distributions (inline SVG, :mod:`basketry.training.report_figures`),
the strongest rules with their labels and, once the model is registered, the promotion gate's
verdict (:func:`write_report` again with the registration rewrites both files)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from basketry.training import report_figures as pictures
from basketry.training import report_text as text
from basketry.training.evaluate import RANKERS
from basketry.training.pages import CSS as SHELL_CSS
from basketry.training.pages import cards_html, escape, write_text_atomic

#: Rules listed on the page (the highest lift first).
TOP_RULES = 10
#: The metrics table's columns: (report key, header, what the header means).
COLUMNS = (("hit_rate@1", "HR@1", "hit rate at 1"), ("hit_rate@5", "HR@5", "hit rate at 5"),
           ("hit_rate@10", "HR@10", "hit rate at 10"), ("ndcg@5", "NDCG@5", ""),
           ("ndcg@10", "NDCG@10", ""), ("mrr", "MRR", "mean reciprocal rank"),
           ("precision@10", "P@10", "precision at 10"), ("recall@10", "R@10", "recall at 10"),
           ("item_coverage", "coverage", "share of the catalogue ever recommended"),
           ("fallback_share", "fallback", "share of answers filled by popular items"))


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


def _figure(value: Any) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    head = "".join(f'<th title="{escape(note or name)}">{escape(short)}</th>'
                   for name, short, note in COLUMNS)
    rows = "".join(
        f"<tr><th>{escape(text.LABELS[r])}</th>"
        + "".join(f'<td class="num">{_figure(metrics[r].get(c))}</td>' for c, _, _ in COLUMNS)
        + "</tr>" for r in RANKERS if r in metrics)
    return (f'<div class="scroll"><table><tr><th>ranker</th>{head}</tr>{rows}</table></div>'
            '<p class="caption">HR@k: share of queries whose hidden item is among the k '
            "recommended; NDCG and MRR also reward a higher rank; coverage: share of the "
            "catalogue ever recommended; fallback: share of answers filled by popular items."
            "</p>")


def top_rules(model_dir: str | os.PathLike[str], top: int = TOP_RULES) -> list[dict[str, Any]]:
    """The ``top`` rules of the saved model by lift, each side as (code, label) pairs."""
    from basketry.model import read_artifact
    from basketry.training.explore_data import select_rules

    chosen = select_rules(read_artifact(model_dir, verify=False), top=top)
    side = lambda ids: [(chosen.items[i], chosen.names[i]) for i in ids]  # noqa: E731
    return [{"antecedent": side(chosen.antecedents[i]), "consequent": side(chosen.consequents[i]),
             "support": float(chosen.support[i]), "confidence": float(chosen.confidence[i]),
             "lift": float(chosen.lift[i]), "count": int(chosen.count[i])}
            for i in range(len(chosen))]


def _side(pairs: list[tuple[str, str]]) -> str:
    return "<br>".join(
        escape(label) + (f' <span class="code">{escape(code)}</span>' if label != code else "")
        for code, label in pairs)


def rules_table(rules: list[dict[str, Any]], n_rules: int) -> str:
    if not rules:
        return "<p>The model has no rules.</p>"
    rows = "".join(
        f'<tr><td class="rule">{_side(r["antecedent"])}</td><td class="arrow">→</td>'
        f'<td class="rule">{_side(r["consequent"])}</td>'
        f'<td class="num">{r["support"]:.4f}</td><td class="num">{r["confidence"]:.3f}</td>'
        f'<td class="num">{r["lift"]:.2f}</td><td class="num">{r["count"]:,}</td></tr>'
        for r in rules)
    return (f'<p class="caption">The {len(rules)} of highest lift among the model\'s '
            f"{n_rules:,} (labels, item codes beside them; <code>basketry explore</code> draws "
            "them all).</p>"
            '<div class="scroll"><table class="rules"><tr><th>when the basket holds</th><th></th>'
            "<th>recommend</th><th>support</th><th>confidence</th><th>lift</th>"
            f"<th>baskets</th></tr>{rows}</table></div>")


def _verdict(report: dict[str, Any]) -> str:
    """The baselines that beat the model, said plainly, and those it equals."""
    sentences = report.get("verdict")
    parts = []
    if sentences:
        parts += [f"<p><strong>{escape(s)}</strong></p>" for s in sentences]
    elif sentences is not None:
        parts.append("<p>The model is at least as good as every baseline on hit rate@10.</p>")
    same = text.identical_sentence(report["metrics"])
    if same:
        parts.append(f'<p class="identical">{escape(same)}</p>')
    return "".join(parts)


def _gate(registration: Any | None) -> str:
    if registration is None:
        return ""
    head, *reasons = text.gate_sentences(registration)
    items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
    kind = "champion" if registration.decision.promote else "challenger"
    return (f'<section id="gate" class="{kind}"><h2>Promotion gate</h2>'
            f"<p><strong>{escape(head)}</strong></p><ul>{items}</ul></section>")


def _after_purchase(section: dict[str, Any] | None) -> str:
    """The next-order table (after the purchase), or why it was skipped; nothing without it."""
    if not section:
        return ""
    title = "<h2>After the purchase (next order)</h2>"
    if "skipped" in section:
        return f"<section>{title}<p>Not evaluated: {escape(section['skipped'])}.</p></section>"
    from basketry.training.next_order import LABELS

    metrics = section["metrics"]
    columns = sorted(next(iter(metrics.values())), key=_by_k)
    head = "".join(f"<th>{escape(c.replace('hit_rate@', 'HR@').replace('recall@', 'R@'))}</th>"
                   for c in columns)
    rows = "".join(f"<tr><th>{escape(LABELS.get(name, name))}</th>"
                   + "".join(f'<td class="num">{_figure(values[c])}</td>' for c in columns)
                   + "</tr>" for name, values in metrics.items())
    sequential = section["sequential"]
    facts = (f"{section['n_cases']:,} customers with an order before "
             f"{text.when(section['cutoff'])} and one after it; the sequential part looks "
             f"{sequential['horizon_days']:g} days ahead with {sequential['n_rules']:,} rules "
             f"and {sequential['n_repeat']:,} repeat items.")
    verdict = "".join(f"<p><strong>{escape(s)}</strong></p>"
                      for s in section.get("verdict") or ())
    return (f"<section>{title}<p>{escape(facts)}</p><div class=\"scroll\"><table>"
            f"<tr><th>ranker</th>{head}</tr>{rows}</table></div>{verdict}</section>")


def _by_k(name: str) -> tuple[str, int]:
    """``hit_rate@10`` after ``hit_rate@5``."""
    metric, _, k = name.partition("@")
    return metric, int(k) if k.isdigit() else 0


def _cards(report: dict[str, Any]) -> str:
    metrics = report["metrics"]
    model = metrics["model"].get("hit_rate@10")
    baselines = [(metrics[r].get("hit_rate@10"), r) for r in RANKERS[1:] if r in metrics
                 and metrics[r].get("hit_rate@10") is not None]
    best_value, best = max(baselines) if baselines else (None, "")
    return cards_html([
        ("model HR@10", _figure(model), "hidden item among the 10 recommended"),
        ("best baseline HR@10", _figure(best_value), text.LABELS.get(best, "")),
        ("rules", f"{int(report['rules']['n_rules']):,}", "in the model"),
        ("test queries", f"{int(report['queries']['n_queries']):,}",
         f"from {int(report['queries']['n_eligible_baskets']):,} baskets"),
    ])


def report_html(report: dict[str, Any], *, rules: list[dict[str, Any]] | None = None,
                registration: Any | None = None) -> str:
    """The page: summary sentences and cards, the verdict (and the gate's when registered),
    the metrics table and by k, the top ``rules`` (when given), the rule distributions."""
    figures = pictures.figures(report)
    try:
        drawn = {stem: pictures.svg(fig) for stem, fig in figures.items()}
    finally:
        for fig in figures.values():
            pictures.close(fig)
    summary = "".join(f"<p>{escape(s)}</p>" for s in (
        text.data_sentence(report), text.split_sentence(report), text.mining_sentence(report),
        text.scoring_sentence(report), text.queries_sentence(report)))
    version = report.get("model_version", "")
    subtitle = f"model version {version}" + (
        f", trained and evaluated in {float(report['seconds']):.1f} s"
        if report.get("seconds") is not None else "")
    rules_section = "" if rules is None else (
        f"<section><h2>Strongest rules</h2>"
        f"{rules_table(rules, int(report['rules']['n_rules']))}</section>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>basketry training report {escape(version)}</title>\n"
        f"<style>{SHELL_CSS}{_CSS}</style></head>\n"
        '<body data-ready="true">\n'
        f'<header><h1>Training report</h1><p class="caption">{escape(subtitle)}</p></header>\n'
        f'<main>\n<section id="summary"><h2>What was trained</h2>{summary}</section>\n'
        f"{_cards(report)}\n{_gate(registration)}\n"
        f'<section id="metrics"><h2>Against the baselines (hide one item, recommend from '
        f"the rest)</h2>{_verdict(report)}{metrics_table(report['metrics'])}</section>\n"
        f'<section id="by-k"><h2>Metrics by k</h2><div class="svg">{drawn["metrics-by-k"]}'
        f"</div></section>\n{_after_purchase(report.get('after_purchase'))}\n{rules_section}\n"
        f'<section id="rules"><h2>Rule confidence and lift</h2>'
        f'<div class="svg">{drawn["rule-distributions"]}</div></section>\n'
        "</main>\n</body></html>\n")


_CSS = """
#summary p { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-size: .85rem; }
th, td { border-bottom: 1px solid #e4e7eb; padding: 4px 10px; text-align: right; }
th { text-align: left; background: #f5f7fa; font-weight: 600; }
td.rule { text-align: left; max-width: 26em; }
td.arrow { text-align: center; color: #616e7c; }
.code { color: #616e7c; font-size: .75rem; }
.svg svg { max-width: 100%; height: auto; }
.identical { color: #1f4f99; }
#gate.champion { border-top: 4px solid #2ca02c; }
#gate.challenger { border-top: 4px solid #f0c36d; }
"""


def write_report(report: dict[str, Any], prefix: str | os.PathLike[str], *,
                 model_dir: str | os.PathLike[str] | None = None,
                 registration: Any | None = None) -> tuple[Path, Path]:
    """Write ``<prefix>.json`` and ``<prefix>.html`` (each through a temporary sibling: never
    half a file); returns both paths. ``model_dir``: the saved model, whose strongest rules the
    page lists; ``registration``: the promotion gate's verdict, once registered."""
    base = Path(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path = base.with_name(base.name + ".json")
    html_path = base.with_name(base.name + ".html")
    rules = None if model_dir is None else top_rules(model_dir)
    page = report_html(report, rules=rules, registration=registration)
    write_text_atomic(json_path, report_json(report))
    write_text_atomic(html_path, page)
    return json_path, html_path


def add_registration(reports: tuple[Path, ...], report: dict[str, Any],
                     model_dir: str | os.PathLike[str], registration: Any) -> tuple[Path, Path]:
    """Write the report again where ``reports`` (its JSON and HTML paths) are, the page now
    with the promotion gate's verdict on the registered model."""
    json_path = next(p for p in map(Path, reports) if p.suffix == ".json")
    return write_report(report, json_path.with_suffix(""), model_dir=model_dir,
                        registration=registration)
