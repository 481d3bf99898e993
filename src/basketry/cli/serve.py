"""`basketry serve`: the HTTP service (basketry.serving), imported only when it runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from basketry.cli.console import err_console
from basketry.cli.errors import EXIT_BAD_INPUT

# the panels of `basketry serve --help`
_SERVER, _LOGGING, _LIMITS = "Server", "Logging", "Limits"


def serve(
    model: Annotated[str | None, typer.Option(
        "--model", help="Model reference: a model directory, or models:/NAME@ALIAS or "
        "models:/NAME/VERSION in the registry. Env: BASKETRY_MODEL.")] = None,
    host: Annotated[str | None, typer.Option(
        help="Env: BASKETRY_HOST (127.0.0.1).", rich_help_panel=_SERVER)] = None,
    port: Annotated[int | None, typer.Option(
        help="Env: BASKETRY_PORT (8000).", rich_help_panel=_SERVER)] = None,
    workers: Annotated[int | None, typer.Option(
        help="Env: BASKETRY_WORKERS (1).", rich_help_panel=_SERVER)] = None,
    cors_origins: Annotated[str | None, typer.Option(
        help="Origins a browser may call from, comma-separated (https://shop.example), or *; "
        "none by default. Env: BASKETRY_CORS_ORIGINS.")] = None,
    admin_token: Annotated[str | None, typer.Option(
        help="Token of /v1/admin/*; none: admin off. Env: BASKETRY_ADMIN_TOKEN.")] = None,
    catalogue: Annotated[str | None, typer.Option(
        help="File of unavailable items, one per line. Env: BASKETRY_CATALOGUE.")] = None,
    watch: Annotated[float | None, typer.Option(
        help="Seconds between checks for a new model; 0: off. Env: BASKETRY_WATCH.")] = None,
    keep_alive: Annotated[float | None, typer.Option(
        help="Seconds an idle connection stays open; above a load balancer's idle timeout. "
        "Env: BASKETRY_KEEP_ALIVE (5).",
        rich_help_panel=_SERVER)] = None,
    header_timeout: Annotated[float | None, typer.Option(
        help="Seconds a request's head may take to come in (then 408). "
        "Env: BASKETRY_HEADER_TIMEOUT (10).",
        rich_help_panel=_SERVER)] = None,
    body_timeout: Annotated[float | None, typer.Option(
        help="Seconds a request's body may take after its head (then 408). "
        "Env: BASKETRY_BODY_TIMEOUT (10).",
        rich_help_panel=_SERVER)] = None,
    max_connections: Annotated[int | None, typer.Option(
        help="Open connections per worker; more are closed at once. "
        "Env: BASKETRY_MAX_CONNECTIONS (1000).",
        rich_help_panel=_SERVER)] = None,
    log_format: Annotated[str | None, typer.Option(
        help="auto | json | text; auto: text on a terminal, JSON otherwise. "
        "Env: BASKETRY_LOG_FORMAT (auto).",
        rich_help_panel=_LOGGING)] = None,
    log_level: Annotated[str | None, typer.Option(
        help="Env: BASKETRY_LOG_LEVEL (info).",
        rich_help_panel=_LOGGING)] = None,
    access_log: Annotated[bool | None, typer.Option(
        "--access-log/--no-access-log",
        help="One log line per request. Env: BASKETRY_ACCESS_LOG (on).",
        rich_help_panel=_LOGGING)] = None,
    max_basket: Annotated[int | None, typer.Option(
        help="Items in a basket. Env: BASKETRY_MAX_BASKET (100).",
        rich_help_panel=_LIMITS)] = None,
    max_k: Annotated[int | None, typer.Option(
        help="Largest k. Env: BASKETRY_MAX_K (50).",
        rich_help_panel=_LIMITS)] = None,
    default_k: Annotated[int | None, typer.Option(
        help="k when a request gives none. Env: BASKETRY_DEFAULT_K (5).",
        rich_help_panel=_LIMITS)] = None,
    max_exclude: Annotated[int | None, typer.Option(
        help="Items in exclude. Env: BASKETRY_MAX_EXCLUDE (100).",
        rich_help_panel=_LIMITS)] = None,
    max_batch: Annotated[int | None, typer.Option(
        help="Requests in a batch. Env: BASKETRY_MAX_BATCH (100).",
        rich_help_panel=_LIMITS)] = None,
    max_item_length: Annotated[int | None, typer.Option(
        help="Characters in an item. Env: BASKETRY_MAX_ITEM_LENGTH (128).",
        rich_help_panel=_LIMITS)] = None,
    max_orders: Annotated[int | None, typer.Option(
        help="Orders in one POST /v1/orders. Env: BASKETRY_MAX_ORDERS (100).",
        rich_help_panel=_LIMITS)] = None,
    max_body_bytes: Annotated[int | None, typer.Option(
        help="Bytes in a request body. Env: BASKETRY_MAX_BODY_BYTES (262144).",
        rich_help_panel=_LIMITS)] = None,
    fast_path: Annotated[bool | None, typer.Option(
        "--fast-path/--no-fast-path", help="Answer the recommendation endpoints below the "
        "framework. Env: BASKETRY_FAST_PATH (on).",
        rich_help_panel=_SERVER)] = None,
    verify: Annotated[bool | None, typer.Option(
        "--verify/--no-verify",
        help="Verify model file checksums on load. Env: BASKETRY_VERIFY (on).")] = None,
) -> None:
    """Serve recommendations over HTTP (uvicorn).

    Every option also has a BASKETRY_* variable.

    Example:
      basketry serve --model model --port 8000
    """
    # the parameters are named as Settings' fields; None: not given (the variable or default)
    options = dict(locals())
    from basketry.serving import Settings, SettingsError
    from basketry.serving import serve as run

    try:
        # the options override the variables before validation, so that e.g. --max-k 100
        # can go with BASKETRY_DEFAULT_K=60
        run(Settings.from_env(**options))
    except SettingsError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
