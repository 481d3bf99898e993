"""Running the service under uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from basketry.serving.logs import configure_logging, uvicorn_log_config
from basketry.serving.settings import ENV_PREFIX, Settings, SettingsError

#: Import string uvicorn uses to build the app in each worker process.
APP_FACTORY = "basketry.serving.server:app_from_env"
#: uvicorn's httptools protocol sending each response in one write and answering the
#: recommendation endpoints without an ASGI task per request (basketry.serving.protocol).
HTTP_PROTOCOL = "basketry.serving.protocol:DirectHttpToolsProtocol"
#: Files a worker keeps open besides its connections: the listening socket, the event loop's,
#: logs, model and metric files while they are read, with room to spare.
SPARE_FILES = 128


def http_protocol() -> str:
    """The HTTP protocol for uvicorn: ours over httptools, or uvicorn's choice without it."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "auto"
    return HTTP_PROTOCOL


def ensure_open_files(max_connections: int) -> int:
    """Raise this process's open-file limit (inherited by the workers) to what
    ``max_connections`` connections need, if it is lower; the limit in force.

    A worker past its limit cannot accept a connection or open a model file; the soft limit is
    often 1024 while the hard one allows far more. :class:`SettingsError` when even the hard
    limit is too low.
    """
    import resource

    need = max_connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return need if soft == resource.RLIM_INFINITY else soft
    if hard != resource.RLIM_INFINITY and hard < need:
        raise SettingsError(
            f"{ENV_PREFIX}MAX_CONNECTIONS={max_connections} needs {need} open files, but this "
            f"process may open at most {hard} (ulimit -Hn): lower it to "
            f"{max(hard - SPARE_FILES, 1)} or raise the limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return need


def app_from_env() -> Any:
    """The application from ``BASKETRY_*`` variables (uvicorn's factory in each worker)."""
    from basketry.serving.app import create_app

    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings, freeze_gc=True)


def serve(settings: Settings | None = None, **overrides: Any) -> None:
    """Serve with uvicorn: ``settings`` (default: from the environment) with ``overrides``
    (``model=``, ``host=``, ``port=``, ``workers=``, ``admin_token=``, ``catalogue=``,
    ``log_format=``, ``log_level=``, ``watch=``, ``max_basket=`` ...; ``None`` = not given).

    Blocks until the server stops. With several workers, each process loads the model; an admin
    reload in one worker is passed on to the others, and ``/metrics`` aggregates all of them.
    """
    import uvicorn

    base = settings or Settings.from_env()
    settings = base.replace(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format, settings.log_level)
    ensure_open_files(settings.max_connections)
    # the workers rebuild their settings from the environment: pass ours down that way
    for name, value in settings.public().items():
        if name == "admin_token":
            value = settings.admin_token
        var = f"BASKETRY_{name.upper()}"
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = str(value)
    run_dir = None
    if settings.workers > 1:
        run_dir = tempfile.mkdtemp(prefix="basketry-serve-")
        os.environ["BASKETRY_RUN_DIR"] = run_dir
        metrics_dir = os.path.join(run_dir, "metrics")
        os.makedirs(metrics_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            http=http_protocol(),
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=uvicorn_log_config(settings.log_format, settings.log_level),
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=10,
            timeout_keep_alive=settings.keep_alive,  # type: ignore[arg-type]  # a float works
            # header_timeout, body_timeout and max_connections are the protocol's (it reads
            # them from the application's settings): uvicorn has no such bounds
        )
    finally:
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
