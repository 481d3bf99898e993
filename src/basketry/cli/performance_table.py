"""How `basketry monitor performance` prints a report: one table of windows, one of versions
with their offline figures beside, and the notes (a missing model is said once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from basketry.cli.console import console

if TYPE_CHECKING:
    from basketry.monitoring.performance import Report


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _with_ci(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("value") is None:
        return "-"
    lo, hi = figure["ci95"]
    return f"{100 * figure['value']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def _short(version: str | None) -> str:
    return "(unknown)" if not version else version[:12]


def print_report(report: Report, k: int, where: str) -> None:
    doc = report.to_json()
    console.print(f"online performance, {doc['window']} windows from {doc['since']} to "
                  f"{doc['until']} ({where}): {doc['windows_reused']} windows reused, "
                  f"{doc['windows_computed']} computed", highlight=False)
    windows = Table(title=f"replay (hide-one, as offline) and attribution, k = {k}; "
                    "[95% interval]", title_justify="left")
    for name, justify in (("window", "left"), ("version", "left"), ("orders", "right"),
                          ("queries", "right"), (f"HR@{k}", "right"), (f"NDCG@{k}", "right"),
                          ("coverage", "right"), ("fallback", "right"), ("shown", "right"),
                          (f"precision@{k}", "right"), (f"hit share@{k}", "right")):
        windows.add_column(name, justify=justify)  # type: ignore[arg-type]
    notes: dict[str, str] = {}
    for w in doc["windows"]:
        r, a = w["replay"], w["attributed"]
        start = w["start"][:16].replace("T", " ") + ("" if w["closed"] else " (open)")
        if w["replay_note"]:
            notes.setdefault(w["model_version"] or "", w["replay_note"])
        windows.add_row(
            start, _short(w["model_version"]), f"{w['orders']:,}",
            f"{r['queries']:,}" if r else "-",
            _with_ci(r[f"hit_rate@{k}"]) if r else "-",
            _with_ci(r[f"ndcg@{k}"]) if r else "-",
            _pct(r["item_coverage"]) if r else "-",
            _with_ci(r["fallback_share"]) if r else "-",
            f"{a['shown']:,}" if a else "-",
            _with_ci(a[f"precision@{k}"]) if a else "-",
            _with_ci(a[f"hit_share@{k}"]) if a else "-")
    if doc["windows"]:
        console.print(windows)
    else:
        console.print("no orders in the store for this period", highlight=False)
    if doc["versions"]:
        versions = Table(title="versions: offline figures (test split) beside",
                         title_justify="left")
        for name in ("version", "first seen", "last seen", "recommendations",
                     f"offline HR@{k}", f"offline NDCG@{k}", "model found"):
            versions.add_column(name)
        for version, v in doc["versions"].items():
            off = v["offline"] or {}
            versions.add_row(_short(version), v["first_seen"][:16].replace("T", " "),
                             v["last_seen"][:16].replace("T", " "), f"{v['recommendations']:,}",
                             _pct(off.get(f"hit_rate@{k}")), _pct(off.get(f"ndcg@{k}")),
                             "yes" if v["model_available"] else "no")
        console.print(versions)
    for version, note in notes.items():
        console.print(f"{_short(version)}: {note}", highlight=False)
    for note in doc["notes"]:
        console.print(note, highlight=False)
