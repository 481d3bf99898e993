"""The monitoring page at scale (issue 15): how long ``/monitor`` takes to be ready on a store
of 1,000,000 recommendation events and 100,000 orders (a month, two model versions, the store
``bench/monitoring_performance.py`` builds and keeps under bench/results), with a month of
daily drift results and a few alerts added.

The kept store is copied to a temporary file first (this benchmark writes its windows there,
never into the kept one). Then, median of ``--repeats``:

  (1) the document and the page as the service makes them (a new store object and model
      catalog, ``dashboard_data``, ``render_report``): cold (no stored window: the month of
      traffic and performance computed, then stored), warm with ``now`` in the last day (29
      closed windows reused, the open day computed: the daily use) and fully warm;
  (2) the static report (``render_report`` with plotly.js inlined) on the warm document;
  (3) with ``--browser``: the real page in headless Chromium, served by a real server on the
      copy (``now`` is the real clock: the month is in the past, every window closed): the
      time from the navigation's start to every chart drawn, first load (plotly.js fetched,
      4.6 MB) and again (plotly.js from the browser's cache).

The goal: the page ready in under 1 s.

    .venv/bin/python bench/monitoring_dashboard.py [--small] [--repeats 3] [--browser]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _host import StealMeter  # bench/ is the script's directory
from monitoring_performance import (
    DAYS,
    RESULTS,
    ROOT,
    START,
    build_model,
    load_average,
    sqlite_store,
)

sys.path.insert(0, str(ROOT))  # the tests' seed of drift results and alerts


def median_time(repeats: int, prepare: Callable[[], None] | None,
                call: Callable[[], Any]) -> dict[str, Any]:
    runs, steal = [], StealMeter()
    for _ in range(repeats):
        if prepare is not None:
            prepare()
        t = time.perf_counter()
        call()
        runs.append(time.perf_counter() - t)
    return {"median_s": statistics.median(runs), "runs_s": runs, "steal": steal.share()}


def clear_windows(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute("DELETE FROM windows")


def browser_times(db: Path, models: list[Path], repeats: int, tmp: Path) -> dict[str, Any]:
    """The page in headless Chromium from a real server on ``db``, serving the last model
    (the earlier one where the registry keeps its artifacts, for the replay)."""
    import httpx
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    port = 18_765
    model = models[-1]
    for m in models[:-1]:
        shutil.copytree(m, tmp / "home" / "mlartifacts" / m.name)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BASKETRY_")},
           "BASKETRY_MONITOR_DB": f"sqlite:///{db}", "BASKETRY_HOME": str(tmp / "home")}
    code = f"from basketry.serving import serve; serve(model={str(model)!r}, port={port})"
    server = subprocess.Popen([sys.executable, "-c", code], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", f"--user-data-dir={tmp / 'profile'}"):
        options.add_argument(arg)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        page = (f"{url}/monitor?window=day&since={START.date().isoformat()}"
                f"&until=2026-12-01")
        httpx.get(page, timeout=120)  # windows computed and stored once, as any earlier visit
        browser = webdriver.Chrome(options=options,
                                   service=Service(shutil.which("chromedriver")))
        out: dict[str, Any] = {}
        try:
            for case in ("first load", "plotly.js cached"):
                runs, served = [], []
                for _ in range(repeats if case != "first load" else 1):
                    browser.get(page)
                    WebDriverWait(browser, 120).until(
                        lambda b: b.execute_script("return window.BASKETRY_READY_MS"))
                    runs.append(browser.execute_script("return window.BASKETRY_READY_MS") / 1e3)
                    # the server's part: from the navigation's start to the page's last byte
                    served.append(browser.execute_script(
                        "return performance.getEntriesByType('navigation')[0].responseEnd")
                        / 1e3)
                out[case] = {"median_s": statistics.median(runs), "runs_s": runs,
                             "page_received_s": served}
        finally:
            browser.quit()
        return out
    finally:
        server.terminate()
        server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="20,000 events and 2,000 orders")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser", action="store_true",
                        help="also time the page in headless Chromium from a real server")
    args = parser.parse_args()
    events, orders = (20_000, 2_000) if args.small else (1_000_000, 100_000)
    print(f"load average {load_average()}", flush=True)

    from tests.monitoring.dashboard_seed import seed

    from basketry.model import load_model
    from basketry.monitoring.catalog import ModelCatalog
    from basketry.monitoring.dashboard import dashboard_data
    from basketry.monitoring.report_html import render_report
    from basketry.monitoring.store import MonitorStore
    from basketry.monitoring.windows import Window

    models = [build_model(s, 0.1) for s in (0.0005, 0.0003)]
    scorers = [load_model(m) for m in models]
    key = f"e{events}-o{orders}-seed0-" + "-".join(s.model_version[:8] for s in scorers)
    kept = Path(sqlite_store(key, (events, orders, 0), scorers, False)[len("sqlite:///"):])
    results: dict[str, Any] = {"events": events, "orders": orders,
                               "load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        db = Path(tmp) / "monitoring.db"
        shutil.copy(kept, db)
        url = f"sqlite:///{db}"
        store = MonitorStore(url)
        seed(store, int(START.timestamp()), DAYS, scorers[1].model_version)
        store.close()
        start = START.timestamp()
        end = start + DAYS * 86_400

        def page(now: float, until: float | None, inline: bool = False) -> tuple[dict, str]:
            s = MonitorStore(url)
            try:
                data = dashboard_data(s, ModelCatalog(models), window=Window.parse("day"),
                                      since=start, until=until, now=now)
                return data, render_report(data, inline_assets=inline, live=not inline)
            finally:
                s.close()

        cases = {
            "cold (30 days computed)": (lambda: clear_windows(db), end + 86_400, end),
            "warm, now in the last day": (None, end - 43_200, None),
            "fully warm (30 reused)": (None, end + 86_400, end),
        }
        results["server"] = {}
        for name, (prepare, now, until) in cases.items():
            if prepare is None:  # primed: the state an earlier visit leaves
                clear_windows(db)
                page(now, until)
            last: list[tuple[dict, str]] = []
            r = median_time(args.repeats, prepare,
                            lambda n=now, u=until, keep=last: keep.append(page(n, u)))
            data, html = last[-1]
            r |= {"traffic_reused_computed": [data["traffic"]["windows_reused"],
                                              data["traffic"]["windows_computed"]],
                  "performance_reused_computed": [data["performance"]["windows_reused"],
                                                  data["performance"]["windows_computed"]],
                  "page_bytes": len(html), "json_bytes": len(json.dumps(data))}
            results["server"][name] = r
            print(f"  {name}: {r['median_s']:.3f} s (runs "
                  + ", ".join(f"{x:.3f}" for x in r["runs_s"])
                  + f"; traffic reused/computed {r['traffic_reused_computed']}, performance "
                  f"{r['performance_reused_computed']}; page {r['page_bytes']:,} bytes)",
                  flush=True)
        r = median_time(args.repeats, None, lambda: page(end + 86_400, end, inline=True))
        results["static report (fully warm, plotly.js inlined)"] = r
        print(f"  static report: {r['median_s']:.3f} s", flush=True)
        if args.browser:
            results["browser"] = browser_times(db, models, args.repeats, Path(tmp))
            for name, r in results["browser"].items():
                print(f"  browser, {name}: page ready in {r['median_s']:.3f} s (page received "
                      f"after {statistics.median(r['page_received_s']):.3f} s)", flush=True)
    results["load_after"] = load_average()
    out = RESULTS / f"monitoring_dashboard{'-small' if args.small else ''}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out.relative_to(ROOT)} (load average {load_average()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
