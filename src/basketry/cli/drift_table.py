"""How `basketry monitor drift` prints its report: the drifted results (or all), each with
what drives it, and the notes (a missing model or reference is said once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from basketry.cli.console import console

if TYPE_CHECKING:
    from basketry.monitoring.drift import DriftReport


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _names(items: Any, labels: Any = None) -> str:
    items = items if isinstance(items, list) else [items]
    labels = labels if isinstance(labels, list) else [None] * len(items)
    return " + ".join(str(lab or item) for item, lab in zip(items, labels, strict=False))


def _driver(feature: str, details: dict[str, Any]) -> str:
    """The first thing that drives a result, in a few words."""
    top = details.get("top_contributors") or []
    if top:
        t = top[0]
        name = t.get("label") or t.get("item")
        return (f"{name}: {100 * (t.get('reference_share') or 0):.2f}% -> "
                f"{100 * (t.get('window_share') or 0):.2f}%")
    broken = details.get("broken_rules") or []
    if broken:
        b = broken[0]
        rule = (f"{_names(b.get('antecedent'), b.get('antecedent_labels'))} -> "
                f"{_names(b.get('consequent'), b.get('consequent_labels'))}")
        if feature == "broken_rule_mass":
            return (f"{details.get('served_by_broken_rules', 0):,} of {details.get('served', 0):,}"
                    f" served; most: {rule} ({b.get('served', 0)})")
        return (f"{rule}: conf {_number(b.get('reference_confidence'))} -> "
                f"{_number(b.get('window_confidence'))} (q {_number(b.get('q_value'))})")
    entrants = details.get("entrants") or []
    if entrants:
        e = entrants[0]
        before = e.get("reference_rank")
        was = f"rank {before}" if before is not None else "unknown to the model"
        return (f"{len(entrants)} new in the top {details.get('k', '')}, first "
                f"{e.get('label') or e.get('item')} ({was} -> rank {e.get('window_rank')})")
    if details.get("window_hit_rate") is not None:
        before = details.get("reference_hit_rate")
        return (f"HR {100 * details['window_hit_rate']:.1f}%"
                + (f" against {100 * before:.1f}% before" if before is not None else ""))
    return str(details.get("reason", ""))


def print_drift(report: DriftReport, where: str, *, every: bool = False) -> None:
    doc = report.to_json()
    results = doc["results"] if every else [r for r in doc["results"] if r["drifted"]]
    console.print(f"drift, {doc['window']} windows from {doc['since']} to {doc['until']} "
                  f"({where}): {len(doc['results'])} results, "
                  f"{sum(r['drifted'] for r in doc['results'])} drifted; "
                  f"{doc['windows_reused']} windows reused, {doc['windows_computed']} computed",
                  highlight=False)
    if results:
        table = Table(title_justify="left",
                      title="drifted results" if not every else "every result")
        for name in ("window", "version", "detector", "statistic", "value", "threshold",
                     "drifted", "driven by"):
            table.add_column(name)
        for r in results:
            table.add_row(r["start"][:16].replace("T", " "), (r["model_version"] or "-")[:12],
                          r["feature"], r["statistic"], _number(r["value"]),
                          _number(r["threshold"]), "yes" if r["drifted"] else "no",
                          _driver(r["feature"], r["details"]))
        console.print(table)
    elif doc["results"]:
        console.print("no drift in this period", highlight=False)
    else:
        console.print("nothing to compare in this period (no orders or requests)",
                      highlight=False)
    for version, note in doc["notes"].items():
        console.print(f"{version[:12]}: {note}", highlight=False)
