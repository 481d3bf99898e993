"""`basketry monitor ...`: the monitoring store by hand: completed orders in from a file, and
the retention (docs/monitoring.md, "basketry monitor")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from basketry.cli.console import console, feedback, print_read_report
from basketry.cli.options import ReadOptions, option_groups

if TYPE_CHECKING:
    from basketry.monitoring import MonitorSettings
    from basketry.monitoring.catalog import ModelCatalog
    from basketry.monitoring.store import MonitorStore

monitor_app = typer.Typer(help="Monitoring: orders in, online performance, drift, retention."
                          "\n\nStore: BASKETRY_MONITOR_DB, else $BASKETRY_HOME/monitoring.db."
                          "\n\nExamples:\n  basketry monitor ingest orders.csv\n"
                          "  basketry monitor drift --since 30d", no_args_is_help=True)

#: Orders written per transaction by the ingest (progress is shown between them).
INGEST_CHUNK = 5_000

Db = Annotated[str | None, typer.Option(
    "--db", help="SQLAlchemy URL of the monitoring store (default: BASKETRY_MONITOR_DB, else "
    "sqlite under $BASKETRY_HOME).", show_default=False, rich_help_panel="Store")]


# The reports' options, declared once (performance, drift, report; watch takes Window, Models).
Since = Annotated[str | None, typer.Option(
    help="Start: a date or time (2026-11-01, 2026-11-01T08:00; UTC unless a zone is given) or "
    "an age (30d, 12h, 4w). Default: 2 days for hours, 30 days for days and orders, 12 weeks "
    "for weeks.", show_default=False)]
Until = Annotated[str | None, typer.Option(
    help="End (excluded), written as --since. Default: now.", show_default=False)]
WindowOption = Annotated[str, typer.Option(
    "--window", help="hour, day, week (UTC, weeks from Monday), or a number of orders (1000).")]
Models = Annotated[list[Path] | None, typer.Option(
    "--model", help="A model directory (repeatable); the registry's local versions are always "
    "looked at too.", show_default=False)]


def _period(since: str | None, until: str | None) -> tuple[float | None, float | None, float]:
    """``--since`` and ``--until`` in seconds since the epoch (``None``: the default), and
    the time they were read at."""
    now = datetime.now(UTC).timestamp()
    return (_when(since, now, "--since") if since is not None else None,
            _when(until, now, "--until") if until is not None else None, now)


def _catalog(model: list[Path] | None) -> ModelCatalog:
    """The models a report can use: ``--model`` and the registry's local versions."""
    from basketry.monitoring.catalog import ModelCatalog, model_directories, registry_roots

    return ModelCatalog([*(model or []), *model_directories(registry_roots())])


def _settings(db: str | None) -> MonitorSettings:
    from basketry.monitoring import MonitorSettings

    return MonitorSettings.from_env(db=db)


def _open(settings: MonitorSettings) -> MonitorStore:
    """The store, connected and at the newest schema (a failure is one line naming it)."""
    from basketry.monitoring.store import MonitorStore

    store = MonitorStore.from_settings(settings)
    store.migrate()
    return store


@monitor_app.command()
@option_groups
def ingest(
    data: Annotated[Path, typer.Argument(help="Transaction file of completed orders.")],
    read: ReadOptions = ReadOptions(),
    db: Db = None,
) -> None:
    """Load completed orders from DATA into the monitoring store.

    One order per transaction (id, time, items, customer), all checked before any is written;
    an order already stored is left as it was. Customers are stored as an HMAC under
    BASKETRY_MONITOR_CUSTOMER_KEY, without it not at all.

    Example:
      basketry monitor ingest orders.parquet --preset online-retail
    """
    from basketry.data import read_baskets
    from basketry.training.orders_in import orders_from_baskets

    settings = _settings(db)  # a bad setting fails before the file is read
    with feedback() as live:
        live.stage(f"reading {data}")
        baskets = read_baskets(data, **read.reader_kwargs())
        orders = orders_from_baskets(
            baskets, lambda done, total: live.steps(done, total, "checking orders", "orders"))
        live.stage(f"opening the store {_public_url(settings)}")
        store = _open(settings)
        try:
            new = existing = 0
            for start in range(0, len(orders), INGEST_CHUNK):
                live.steps(start, len(orders), "storing orders", "orders")
                added = store.add_orders(orders[start:start + INGEST_CHUNK])
                new, existing = new + added.new, existing + added.existing
            if new:
                live.stage("refreshing the store's statistics")
                store.analyze()  # SQLite keeps none by itself (docs/monitoring.md)
        finally:
            store.close()
    print_read_report(baskets)
    customers = ("keyed (HMAC)" if settings.customer_key else
                 "not stored (BASKETRY_MONITOR_CUSTOMER_KEY is unset)")
    console.print(f"{len(orders):,} orders into {_public_url(settings)}: {new:,} new, "
                  f"{existing:,} already known; customers {customers}", highlight=False)


@monitor_app.command()
def retention(
    days: Annotated[int | None, typer.Option(
        min=1, help="Delete events and orders older than this many days (default: "
        "BASKETRY_MONITOR_RETENTION_DAYS; 0 there keeps everything).", show_default=False)
    ] = None,
    db: Db = None,
) -> None:
    """Delete events and orders older than --days days.

    Run it daily from cron or a systemd timer; computed windows, drift results and alerts are
    kept.

    Example:
      basketry monitor retention --days 90
    """
    from basketry.monitoring.store import MonitorStore

    settings = _settings(db)
    keep = days if days is not None else settings.retention_days
    where = _public_url(settings)
    if keep == 0:
        console.print("retention is off (BASKETRY_MONITOR_RETENTION_DAYS is 0: everything is "
                      "kept); nothing deleted", highlight=False)
        return
    store = MonitorStore.from_settings(settings)
    try:
        if store.revision() is None:  # never created: nothing to delete, and nothing created
            console.print(f"no monitoring store at {where}; nothing deleted", highlight=False)
            return
        store.migrate()
        now = datetime.now(UTC)
        with console.status(f"deleting what is older than {keep} days"):
            deleted = store.delete_older_than(keep, now=now.timestamp())
    finally:
        store.close()
    cutoff = datetime.fromtimestamp(now.timestamp() - keep * 86_400, UTC)
    console.print(f"deleted {deleted.events:,} events and {deleted.orders:,} orders older than "
                  f"{keep} days (before {cutoff:%Y-%m-%d %H:%M} UTC) from {where}",
                  highlight=False)


def _public_url(settings: MonitorSettings) -> str:
    from basketry.monitoring.privacy import mask_url

    return mask_url(settings.url())


@monitor_app.command()
def performance(
    since: Since = None,
    until: Until = None,
    window: WindowOption = "day",
    model_version: Annotated[str | None, typer.Option(
        "--model-version", help="Only this model version (as the events record it).",
        show_default=False)] = None,
    model: Models = None,
    k: Annotated[int, typer.Option(help="The cut-off shown in the table (1, 5 or 10); the "
                                   "JSON has all.")] = 10,
    recompute: Annotated[bool, typer.Option(
        help="Compute every window again instead of reusing the stored closed ones.")] = False,
    output: Annotated[str, typer.Option(help="table or json.")] = "table",
    db: Db = None,
) -> None:
    """The model's online performance per version and window.

    The offline hide-one protocol replayed on the completed orders with the version that
    served them (HR@k, NDCG@k, 95% intervals, coverage, fallback share) beside its offline
    figures, and the share of recommended items bought (precision@k) where orders name them.

    Example:
      basketry monitor performance --since 30d --window week
    """
    from basketry.model.protocol import KS
    from basketry.monitoring.performance import performance as measure
    from basketry.monitoring.windows import Window

    if output not in ("table", "json"):
        raise typer.BadParameter(f"{output!r}: expected table or json", param_hint="--output")
    if k not in KS:
        raise typer.BadParameter(f"{k}: expected one of {', '.join(map(str, KS))}",
                                 param_hint="--k")
    spec = Window.parse(window)
    start, end, now = _period(since, until)
    catalog = _catalog(model)
    with _report_store(db, "measuring the online performance") as store:
        report = measure(store, catalog, window=spec, since=start, until=end,
                         model_version=model_version, now=now, reuse=not recompute)
    if output == "json":
        import json
        import sys

        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        return
    from basketry.cli.performance_table import print_report

    print_report(report, k, _public_url(_settings(db)))


def _when(text: str, now: float, option: str) -> float:
    """Seconds since the epoch of ``--since``/``--until``: an ISO date or time (UTC unless a
    zone is given) or an age before ``now`` (``30d``, ``12h``, ``4w``, ``90m``)."""
    import re

    value = text.strip()
    age = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhdw])", value.lower())
    if age:
        unit = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}[age.group(2)]
        return now - float(age.group(1)) * unit
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected a date or time (2026-11-01, "
                                 "2026-11-01T08:00Z) or an age (30d, 12h, 4w)",
                                 param_hint=option) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@monitor_app.command()
def drift(
    since: Since = None,
    until: Until = None,
    window: WindowOption = "day",
    model: Models = None,
    false_alarm_rate: Annotated[float, typer.Option(
        min=0.0001, max=0.5, help="Share of windows without change that may alarm (the data "
        "drift thresholds are calibrated for it).", rich_help_panel="Thresholds")] = 0.01,
    fdr: Annotated[float, typer.Option(
        min=0.0001, max=0.5, help="False discovery rate of the per-rule confidence tests "
        "(also the bound on windows without change alarming).",
        rich_help_panel="Thresholds")] = 0.01,
    recompute: Annotated[bool, typer.Option(
        help="Compute every window again instead of reusing the stored closed ones.")] = False,
    all_results: Annotated[bool, typer.Option(
        "--all", help="Print every result, not only the drifted ones.")] = False,
    output: Annotated[str, typer.Option(help="table or json.")] = "table",
    db: Db = None,
) -> None:
    """Data and concept drift per model version and window.

    Against each version's training reference: item and basket-size distributions, unknown
    items, new top items, rules whose confidence fell, broken rules among the served
    recommendations, and a change detector on the online hit rate. Results are stored; alerts
    are raised.

    Example:
      basketry monitor drift --since 30d --window day
    """
    from basketry.monitoring.drift import DriftSettings
    from basketry.monitoring.drift import drift as detect
    from basketry.monitoring.windows import Window

    if output not in ("table", "json"):
        raise typer.BadParameter(f"{output!r}: expected table or json", param_hint="--output")
    spec = Window.parse(window)
    start, end, now = _period(since, until)
    catalog = _catalog(model)
    with _report_store(db, "computing drift") as store:
        report = detect(store, catalog, window=spec, since=start, until=end, now=now,
                        settings=DriftSettings(false_alarm_rate=false_alarm_rate, fdr=fdr),
                        reuse=not recompute)
    if output == "json":
        import json
        import sys

        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        return
    from basketry.cli.drift_table import print_drift

    print_drift(report, _public_url(_settings(db)), every=all_results)


@contextlib.contextmanager
def _report_store(db: str | None, status: str) -> Iterator[MonitorStore]:
    """The existing store of a report command, open while ``status`` is shown."""
    settings = _settings(db)
    with console.status(status):
        store = _existing_store(settings)
        try:
            yield store
        finally:
            store.close()


def _existing_store(settings: MonitorSettings) -> MonitorStore:
    """The store, migrated, when it exists: a report creates none (one line otherwise)."""
    from basketry.monitoring.store import MonitorStore, MonitorStoreError

    store = MonitorStore.from_settings(settings)
    if store.revision() is None:
        store.close()
        raise MonitorStoreError(f"no monitoring store at {_public_url(settings)}: nothing "
                                "recorded yet (turn capture on, or monitor ingest orders)")
    store.migrate()
    return store


@monitor_app.command()
def watch(
    interval: Annotated[str, typer.Option(
        help="Time between the starts of two cycles: seconds, or 90s, 15m, 1h.")] = "15m",
    window: Annotated[str, typer.Option(
        help="hour, day or week: the windows computed (over their usual span).")] = "day",
    model: Models = None,
    once: Annotated[bool, typer.Option(help="Run one cycle and exit.")] = False,
    metrics_port: Annotated[int, typer.Option(
        min=0, max=65535, help="Serve Prometheus metrics (alerts open and raised per kind, "
        "webhook deliveries, cycles) on this port, path /metrics; 0: none.",
        rich_help_panel="Metrics")] = 0,
    metrics_host: Annotated[str, typer.Option(help="Address of the metrics endpoint.",
                                              rich_help_panel="Metrics")] = "127.0.0.1",
    retrain: Annotated[bool, typer.Option(
        "--retrain/--no-retrain", help="When a cycle opens alerts, run `basketry retrain "
        "RETRAIN_ARGS` (at most once per cooldown).",
        envvar="BASKETRY_RETRAIN", rich_help_panel="Retraining")] = False,
    retrain_args: Annotated[str, typer.Option(
        help="The arguments of that `basketry retrain`, e.g. \"sales.parquet --preset "
        "online-retail --days 180\".",
        envvar="BASKETRY_RETRAIN_ARGS", rich_help_panel="Retraining")] = "",
    retrain_cooldown: Annotated[str, typer.Option(
        help="Least time between two retrains started by alerts (90m, 24h, 7d).",
        rich_help_panel="Retraining")] = "24h",
    db: Db = None,
) -> None:
    """Every --interval: performance, drift and alerts, until stopped.

    Alerts are stored, logged and posted to BASKETRY_MONITOR_WEBHOOK_URL; SIGTERM or Ctrl-C
    end it cleanly. With --retrain, an alert sends the champion back through training. One
    watcher per machine.

    Example:
      basketry monitor watch --interval 1h --retrain
    """
    import shlex
    import threading

    from basketry.cli.errors import describe_failure
    from basketry.model.reference import basketry_home
    from basketry.monitoring.alerts import Alerts, webhook_figures
    from basketry.monitoring.exporter import CycleFigures, serve_metrics
    from basketry.monitoring.watch import run_cycle, run_forever, watch_lock
    from basketry.monitoring.windows import Window

    seconds = _seconds(interval)
    trigger = None
    if retrain:
        from basketry.training.retrain_trigger import RetrainTrigger

        try:
            args = shlex.split(retrain_args)
        except ValueError as exc:
            raise typer.BadParameter(f"{retrain_args!r}: {exc}",
                                     param_hint="--retrain-args") from None
        trigger = RetrainTrigger(args, _seconds(retrain_cooldown, "--retrain-cooldown"),
                                 basketry_home() / "retrain-last.json")
    spec = Window.parse(window)
    if not spec.timed:
        raise typer.BadParameter("watch computes time windows: hour, day or week",
                                 param_hint="--window")
    settings = _settings(db)
    lock = basketry_home() / "monitor-watch.lock"
    with watch_lock(lock) as mine:
        if not mine:
            console.print(f"another watcher runs on this machine (it holds {lock}); exiting",
                          highlight=False)
            return
        store = _existing_store(settings)
        alerts = Alerts.from_settings(store)
        cycles = CycleFigures()
        stored: list = []  # the store's alert figures, read after each cycle (not per scrape)
        server = (serve_metrics(metrics_port, lambda: [*cycles.figures(), *stored,
                                                       *webhook_figures(alerts.webhook)],
                                host=metrics_host) if metrics_port else None)
        try:
            alerts.resend()

            def cycle():  # the registry is looked at again each cycle: new versions appear
                catalog = _catalog(model)
                done = run_cycle(store, catalog, alerts, window=spec)
                cycles.done(done.seconds)
                stored[:] = alerts.store_figures()
                console.print(done.line(), highlight=False)
                if trigger is not None:
                    said = trigger.on_alerts(done.opened_alerts)
                    if said:
                        console.print(said, highlight=False, soft_wrap=True)
                return done

            def report(exc: BaseException) -> None:
                cycles.failed()
                console.print(f"error: {describe_failure(exc)[1]}", highlight=False)

            if once:
                cycle()
            else:
                console.print(f"watching {_public_url(settings)} every {seconds:g} s "
                              f"({spec.label} windows)", highlight=False)
                run_forever(cycle, seconds, threading.Event(), report)
        finally:
            if server is not None:
                server.shutdown()
            alerts.close()
            store.close()


def _seconds(text: str, option: str = "--interval") -> float:
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r}: expected a positive duration (90, 90s, 15m, 1h, "
                                 "7d)", param_hint=option)
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3_600,
                                    "d": 86_400}[match.group(2)]


@monitor_app.command()
def report(
    out: Annotated[Path | None, typer.Option(
        "--out", help="The HTML file to write (one offline file: charts and their library "
        "inside, nothing fetched).", show_default=False)] = None,
    since: Since = None,
    until: Until = None,
    window: WindowOption = "day",
    model: Models = None,
    output: Annotated[str, typer.Option(help="html (to --out) or json (to stdout).")
                      ] = "html",
    db: Db = None,
) -> None:
    """The monitoring page as a static report (HTML or JSON).

    Traffic and latency, online HR per version beside its offline figure, drift per window
    with its threshold, the top drifting items, broken rules, alerts.

    Example:
      basketry monitor report --since 30d --out report.html
    """
    from basketry.monitoring.dashboard import dashboard_data
    from basketry.monitoring.windows import Window

    if output not in ("html", "json"):
        raise typer.BadParameter(f"{output!r}: expected html or json", param_hint="--output")
    if output == "html" and out is None:
        raise typer.BadParameter("an HTML report needs --out FILE (or --output json)",
                                 param_hint="--out")
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise typer.BadParameter(f"{out}: " + ("is a directory" if out.is_dir() else
                                              f"no directory {out.parent}"), param_hint="--out")
    spec = Window.parse(window)
    start, end, now = _period(since, until)
    catalog = _catalog(model)
    with _report_store(db, "gathering the report") as store:
        data = dashboard_data(store, catalog, window=spec, since=start, until=end, now=now)
    import json

    if output == "json":
        import sys

        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    from basketry.monitoring.report_html import render_report

    assert out is not None
    _write_atomically(out, render_report(data, inline_assets=True))
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, offline)", highlight=False)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
