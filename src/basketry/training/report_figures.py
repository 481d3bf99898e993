"""The training report's pictures, drawn with matplotlib (the ``train`` extra): the metrics by
k for the model and the baselines, and the distributions of rule confidence and lift. The same
figures go into the HTML page (inline SVG) and into the MLflow run (PNG, ``report/*.png``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from basketry.training.evaluate import KS, RANKERS
from basketry.training.report_text import LABELS, identical_baselines

COLOURS = {"model": "#1f77b4", "max_confidence": "#ff7f0e", "item_knn": "#9467bd",
           "popularity": "#2ca02c", "random": "#7f7f7f"}
_PANELS = (("hit_rate", "hit rate@k"), ("ndcg", "NDCG@k"), ("precision", "precision@k"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "basketry"  # deterministic element ids
    return plt


def metrics_figure(metrics: dict[str, dict[str, Any]]) -> Any:
    """Hit rate, NDCG and precision by k, one line per ranker. The model is a wide translucent
    line with round markers under the baselines' thin dashed ones, so that a baseline with the
    same figures is seen on it rather than hiding it (or hidden by it)."""
    plt = _pyplot()
    same = identical_baselines(metrics)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for ax, (name, title) in zip(axes, _PANELS, strict=True):
        for ranker in RANKERS:
            if ranker not in metrics:
                continue
            values = [metrics[ranker].get(f"{name}@{k}") for k in KS]
            if any(v is None for v in values):
                continue
            label = LABELS[ranker]
            if ranker == "model":
                if same:
                    label += f" (identical to {', '.join(LABELS[r] for r in same)})"
                ax.plot(KS, values, marker="o", markersize=9, linewidth=4.5, alpha=0.55,
                        zorder=2, label=label, color=COLOURS[ranker])
            else:
                ax.plot(KS, values, marker="s", markersize=4, linestyle="--", linewidth=1.4,
                        zorder=3, label=label, color=COLOURS[ranker])
        ax.set_title(title)
        ax.set_xticks(KS)
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def rules_figure(rules: dict[str, Any]) -> Any:
    """Histograms of the rules' confidence and lift (lift on a log axis)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, name, log in ((axes[0], "confidence", False), (axes[1], "lift", True)):
        edges = np.asarray(rules[name]["edges"], dtype=float)
        counts = np.asarray(rules[name]["counts"], dtype=float)
        if len(edges) == len(counts) + 1 and len(counts):
            ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set_title(f"rule {name} ({int(rules['n_rules']):,} rules)")
        ax.set_xlabel(name)
        ax.set_ylabel("rules")
        if log and len(edges) and edges.min() > 0:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The report's figures by file stem (the caller closes them: :func:`close`)."""
    return {"metrics-by-k": metrics_figure(report["metrics"]),
            "rule-distributions": rules_figure(report["rules"])}


def close(fig: Any) -> None:
    _pyplot().close(fig)


def svg(fig: Any) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no date)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def write_pngs(report: dict[str, Any], folder: Path) -> list[Path]:
    """Each figure as ``folder/<stem>.png`` (120 dpi); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in figures(report).items():
        path = folder / f"{stem}.png"
        try:
            fig.savefig(path, format="png", dpi=120, bbox_inches="tight",
                        metadata={"Software": None})
        finally:
            close(fig)
        paths.append(path)
    return paths
