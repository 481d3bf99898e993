"""The evaluation report: a JSON file and a small self-contained HTML page with inline SVG plots
(metric by k for the model and the baselines; distributions of rule confidence and lift)."""

from __future__ import annotations

import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from basketry.training.evaluate import KS, RANKERS

_LABELS = {"model": "model", "max_confidence": "max-confidence", "item_knn": "item-kNN",
           "popularity": "popularity", "random": "random"}
_COLOURS = {"model": "#1f77b4", "max_confidence": "#ff7f0e", "item_knn": "#9467bd",
            "popularity": "#2ca02c", "random": "#7f7f7f"}


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _metric_plots(metrics: dict[str, dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "basketry"  # deterministic element ids
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (name, title) in zip(axes, (("hit_rate", "hit rate@k"), ("ndcg", "NDCG@k"),
                                        ("precision", "precision@k")), strict=True):
        for ranker in RANKERS:
            if ranker in metrics:
                # the model drawn on top and the baselines dashed, so that a baseline the
                # model equals does not hide it
                model = ranker == "model"
                ax.plot(KS, [metrics[ranker][f"{name}@{k}"] for k in KS],
                        marker="o" if model else "s", markersize=6 if model else 4,
                        linestyle="-" if model else "--", linewidth=2.2 if model else 1.2,
                        zorder=3 if model else 2, label=_LABELS[ranker],
                        color=_COLOURS[ranker])
        ax.set_title(title)
        ax.set_xticks(KS)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    out = _svg(fig)
    plt.close(fig)
    return out


def _rule_plots(rules: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "basketry"
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, name, log in ((axes[0], "confidence", False), (axes[1], "lift", True)):
        edges = np.asarray(rules[name]["edges"])
        counts = np.asarray(rules[name]["counts"])
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_title(f"rule {name} ({rules['n_rules']:,} rules)")
        ax.set_xlabel(name)
        ax.set_ylabel("rules")
        if log:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    out = _svg(fig)
    plt.close(fig)
    return out


def _table(metrics: dict[str, dict[str, Any]]) -> str:
    columns = [f"hit_rate@{k}" for k in KS] + [f"ndcg@{k}" for k in KS] + [
        "mrr", "precision@10", "recall@10", "item_coverage", "fallback_share"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["ranker", *columns])
    rows = []
    for ranker in RANKERS:
        if ranker not in metrics:
            continue
        cells = "".join(
            "<td>–</td>" if metrics[ranker].get(c) is None
            else f"<td>{metrics[ranker][c]:.4f}</td>" for c in columns)
        rows.append(f"<tr><th>{_LABELS[ranker]}</th>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _verdict(sentences: list[str] | None) -> str:
    """The baselines that beat the model, said plainly (nothing when none does)."""
    if sentences is None:
        return ""
    if not sentences:
        return "<p>The model is at least as good as every baseline on hit rate@10.</p>"
    return "".join(f"<p><strong>{html.escape(s)}</strong></p>" for s in sentences)


def _after_purchase(section: dict[str, Any] | None) -> str:
    """The next-order table (after the purchase), or why it was skipped; nothing without it."""
    if not section:
        return ""
    if "skipped" in section:
        return ("<h2>After the purchase (next order)</h2>"
                f"<p>Not evaluated: {html.escape(str(section['skipped']))}.</p>")
    from basketry.training.next_order import LABELS

    metrics = section["metrics"]
    columns = list(next(iter(metrics.values())))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["ranker", *columns])
    rows = "".join(f"<tr><th>{html.escape(LABELS.get(name, name))}</th>"
                   + "".join(f"<td>{values[c]:.4f}</td>" for c in columns) + "</tr>"
                   for name, values in metrics.items())
    facts = (f"{section['n_cases']:,} customers with an order before {section['cutoff']} and "
             f"one after it; horizon {section['sequential']['horizon_days']:g} days, "
             f"{section['sequential']['n_rules']:,} sequential rules, "
             f"{section['sequential']['n_repeat']:,} repeat items")
    return (f"<h2>After the purchase (next order)</h2><p>{html.escape(facts)}</p>"
            f"<table><tr>{head}</tr>{rows}</table>{_verdict(section.get('verdict'))}")


def report_html(report: dict[str, Any]) -> str:
    """A self-contained page (no external resources): summary, metrics table, plots."""
    metrics = report["metrics"]
    facts = {
        "data": f"{report['data']['source']} ({report['data']['n_baskets']:,} baskets)",
        "split": ", ".join(f"{k}={v}" for k, v in report["split"].items()),
        "queries": ", ".join(f"{k}={v:,}" for k, v in report["queries"].items()),
        "mining": ", ".join(f"{k}={v}" for k, v in report["mining"].items() if v is not None),
        "scoring": ", ".join(f"{k}={v}" for k, v in report["scoring"].items()),
        "model version": report.get("model_version", ""),
    }
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                      for k, v in facts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>basketry evaluation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 72em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f4f4f4; text-align: left; }}
</style></head><body>
<h1>basketry evaluation</h1>
<table>{summary}</table>
<h2>Metrics (hide one item, recommend from the rest)</h2>
{_table(metrics)}
{_verdict(report.get("verdict"))}
{_after_purchase(report.get("after_purchase"))}
<h2>Metric by k</h2>
{_metric_plots(metrics)}
<h2>Rules</h2>
{_rule_plots(report["rules"])}
</body></html>
"""


def write_report(report: dict[str, Any], prefix: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<prefix>.json`` and ``<prefix>.html``; returns both paths."""
    base = Path(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    json_path = base.with_name(base.name + ".json")
    html_path = base.with_name(base.name + ".html")
    json_path.write_text(report_json(report), encoding="utf-8")
    html_path.write_text(report_html(report), encoding="utf-8")
    return json_path, html_path
