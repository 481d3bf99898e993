"""Experiment tracking: every ``basketry train`` is an MLflow run.

Logged: the parameters (mining, split, scoring, seed), every metric of the evaluation for every
ranker (``model.hit_rate_at_10``, ``popularity.ndcg_at_5``...; MLflow names cannot hold ``@``),
the dataset fingerprints and profile (tags and ``dataset/profile.json``), the JSON and HTML
reports (``report/``), the model as an MLflow model whose ``python_function`` flavour loads the
basketry artifact (``model/``; see :mod:`basketry.training.pyfunc`), and tags (basketry
version, git commit when known). A run that fails is ended ``FAILED`` with the reason in the
``basketry.failure`` tag. ``basketry tune`` is a parent run with a nested run per grid point
(``parent_run_id``: the ``mlflow.parentRunId`` tag; see :mod:`basketry.training.tune`).

Store: ``MLFLOW_TRACKING_URI`` when set, else a SQLite database under basketry's home
(``BASKETRY_HOME``, default ``~/.basketry``): ``sqlite:///$BASKETRY_HOME/mlflow.db`` with
artifacts under ``$BASKETRY_HOME/mlartifacts``. MLflow is optional (the ``mlflow`` extra).

Opening a store (:func:`prepare_store`, once per process and store) fails fast with one line
(:class:`TrackingError`) instead of hanging or a traceback: a tracking server or database host
that does not answer within ``BASKETRY_TRACKING_TIMEOUT`` seconds (default 5), a missing
database driver, a ``BASKETRY_HOME`` that is not a directory. A new SQLite store is created
under the store's lock (:mod:`basketry.training.locks`) in a temporary file renamed into place,
so concurrent first uses do not race on the schema and a killed creation leaves no half-made
database. A run records its process (``basketry.pid``, ``basketry.host``,
``basketry.pid_start``) so that ``basketry models doctor`` can tell a run whose process is gone;
SIGTERM and Ctrl-C end the run ``KILLED``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from basketry.model import reference
from basketry.training.faults import fault_point
from basketry.training.locks import LockTimeout, scheme, sqlite_path, store_lock
from basketry.training.signals import Terminated, deferred_signals, terminate_raises

DEFAULT_EXPERIMENT = "basketry"

# MLflow's own INFO lines ("Creating initial MLflow database tables...") went to the terminal
# between basketry's: warnings and errors still show; MLFLOW_LOGGING_LEVEL set by the user wins
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
#: The MLflow model inside a run's artifacts.
MODEL_ARTIFACT_PATH = "model"
PYFUNC_LOADER = "basketry.training.pyfunc"


class TrackingError(Exception):
    """MLflow is missing or the tracking store cannot be used."""


def basketry_home() -> Path:
    """Basketry's home, as the contract names it (:mod:`basketry.model.reference`)."""
    return reference.basketry_home()


def _home_dir() -> Path:
    """Basketry's home, created if missing (``TrackingError`` when it cannot be)."""
    home = basketry_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TrackingError(f"BASKETRY_HOME {home} is not a directory") from None
    except OSError as exc:
        raise TrackingError(f"BASKETRY_HOME {home} cannot be created: "
                            f"{exc.strerror or exc}") from None
    if not home.is_dir():
        raise TrackingError(f"BASKETRY_HOME {home} is not a directory")
    return home


def tracking_uri(uri: str | None = None) -> str:
    """The tracking (and registry) URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else the local
    SQLite store under basketry's home (created on first use)."""
    return uri or reference.store_uri(_home_dir)


def redact(uri: str) -> str:
    """``uri`` with its password, if any, replaced by ``***`` (for messages)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def probe_timeout() -> float:
    text = os.environ.get("BASKETRY_TRACKING_TIMEOUT", "")
    try:
        return max(float(text), 0.1) if text else 5.0
    except ValueError:
        return 5.0


#: Bounds on MLflow's own HTTP requests to a tracking server (its defaults are a 120 s timeout
#: and 7 retries with back-off, minutes before a dead server is reported); set only when the
#: environment does not set them.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
_prepared: set[str] = set()


def _probe_http(uri: str, timeout: float) -> None:
    """Any HTTP answer (even 401 or 404) means the server is there."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"the tracking server {redact(uri)} cannot be used: no answer "
                            f"within {timeout:g} s ({reason}; BASKETRY_TRACKING_TIMEOUT)"
                            ) from None
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _probe_database(uri: str, timeout: float) -> None:
    """The driver is importable and the server's port accepts a connection."""
    import sqlalchemy.engine

    try:
        url = sqlalchemy.engine.make_url(uri)
        dialect = url.get_dialect()
    except Exception as exc:
        raise TrackingError(f"the tracking store {redact(uri)} is not a usable database URI: "
                            f"{type(exc).__name__}: {exc}") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = getattr(exc, "name", None) or url.get_driver_name()
        hint = " (pip install psycopg2-binary)" if "psycopg" in str(driver) else ""
        raise TrackingError(f"the tracking store {redact(uri)} needs the Python driver "
                            f"{driver!r}, which is not installed{hint}") from None
    if url.host:
        port = url.port or _DEFAULT_PORTS.get(scheme(uri))
        try:
            socket.create_connection((url.host, port), timeout=timeout).close()
        except OSError as exc:
            raise TrackingError(f"the tracking store {redact(uri)} cannot be used: its "
                                f"server {url.host}:{port} cannot be reached within "
                                f"{timeout:g} s ({exc.strerror or exc})") from None


def _create_sqlite(db: Path) -> None:
    """Create the SQLite store's schema in a temporary file and rename it into place (called
    under the store's lock): a killed creation leaves no half-migrated database."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    for stale in db.parent.glob(f".{db.name}.creating-*"):
        stale.unlink(missing_ok=True)
    tmp = db.with_name(f".{db.name}.creating-{os.getpid()}")
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()
    fault_point("store_created")
    os.replace(tmp, db)


def prepare_store(uri: str, *, create: bool = True) -> None:
    """Check that the store at ``uri`` can be used, creating a local one if ``create`` (else
    ``TrackingError`` when it does not exist yet); once per process and store."""
    db = sqlite_path(uri)
    if uri in _prepared and (db is None or db.exists()):
        return
    require_mlflow()
    kind, timeout = scheme(uri), probe_timeout()
    if kind in ("http", "https"):
        _probe_http(uri, timeout)
    elif kind in ("postgresql", "mysql", "mssql"):
        _probe_database(uri, timeout)
    elif db is not None and not db.exists() and not create:
        raise TrackingError(f"there is no tracking store at {db} yet (nothing was tracked)")
    elif db is not None and not db.parent.is_dir():
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackingError(f"the tracking store's directory {db.parent} cannot be "
                                f"created: {exc.strerror or exc}") from None
    try:
        with store_lock(uri, "creating the tracking store"):
            if db is not None and (not db.exists() or db.stat().st_size == 0):
                _create_sqlite(db)
            # MLflow creates or checks the schema when it first opens a store: under the lock
            c = _mlflow_client(uri)
            c.search_experiments(max_results=1)
            c.search_registered_models(max_results=1)
    except TrackingError:
        raise
    except LockTimeout as exc:
        raise TrackingError(str(exc)) from None
    except Exception as exc:
        raise TrackingError(f"the tracking store {redact(uri)} cannot be used: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                            ) from None
    _prepared.add(uri)


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite database
    (``mlartifacts``), under basketry's home for another database store (PostgreSQL, MySQL:
    MLflow's default would be ``./mlruns`` of the current directory), else the tracking
    server's default (``None``)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    if uri.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "mssql"):
        return (basketry_home() / "mlartifacts").resolve().as_uri()
    return None


def mlflow_available() -> bool:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def require_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise TrackingError(
            "tracking needs MLflow: pip install 'basketry[mlflow]' (or pass --no-track)"
        ) from None
    return mlflow


@functools.cache
def git_commit() -> str | None:
    """The commit of the basketry source tree when it is a git checkout, else ``None``."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def basketry_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("basketry")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def metric_name(ranker: str, metric: str) -> str:
    return f"{ranker}.{metric.replace('@', '_at_')}"


def flat_metrics(metrics: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """Every ranker's metrics as MLflow metric names (``None`` values are left out)."""
    return {metric_name(ranker, name): float(value)
            for ranker, values in metrics.items() for name, value in values.items()
            if value is not None}


def _param(value: Any) -> str:
    if isinstance(value, set | frozenset | tuple | list):
        value = sorted(str(v) for v in value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]


def _mlflow_client(uri: str) -> Any:
    return require_mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri)


def client(uri: str | None = None, *, create: bool = True) -> Any:
    """An MLflow client of the store (checked and, if ``create``, created: see
    :func:`prepare_store`)."""
    uri = tracking_uri(uri)
    prepare_store(uri, create=create)
    return _mlflow_client(uri)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` (started at ``start`` when known) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # no /proc: the pid exists
    return state not in ("Z", "X") and (start is None or process_start(pid) == start)


def process_tags() -> dict[str, str]:
    """Run tags naming this process, for ``basketry models doctor``."""
    tags = {"basketry.pid": str(os.getpid()), "basketry.host": socket.gethostname()}
    start = process_start(os.getpid())
    if start is not None:
        tags["basketry.pid_start"] = start
    return tags


#: The tag MLflow reads to show a run nested under another (what ``nested=True`` sets).
PARENT_RUN_TAG = "mlflow.parentRunId"


class TrainingRun:
    """One MLflow run around a training, as a context manager.

    Entering starts the run (``TrackingError`` if the store cannot be reached); leaving it ends
    it ``FINISHED``, or ``FAILED`` with the reason when an exception escapes (re-raised), or
    ``KILLED`` after Ctrl-C or SIGTERM (which raises :class:`Terminated` while the run is
    open). ``parent_run_id`` makes it a nested run of that run (``basketry tune``'s grid
    points).
    """

    def __init__(self, uri: str | None = None, experiment: str | None = None,
                 run_name: str | None = None, *, parent_run_id: str | None = None,
                 source: str = "basketry train") -> None:
        self.mlflow = require_mlflow()
        self.uri = tracking_uri(uri)
        prepare_store(self.uri)
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") \
            or DEFAULT_EXPERIMENT
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self.source = source
        self.client = self.mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.run_id: str | None = None
        self.artifact_uri: str | None = None
        self.failure: str | None = None
        #: How the run ended: FINISHED, FAILED or KILLED (``None`` while it runs).
        self.status: str | None = None
        self._signals: contextlib.ExitStack | None = None

    # ---- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> TrainingRun:
        try:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=artifact_location(self.uri))
            else:
                experiment_id = found.experiment_id
            tags = {"basketry.version": basketry_version(), "mlflow.source.name": self.source,
                    **process_tags()}
            if self.parent_run_id:
                tags[PARENT_RUN_TAG] = self.parent_run_id
            commit = git_commit()
            if commit:
                tags["basketry.git_commit"] = commit
                tags["mlflow.source.git.commit"] = commit
            run = self.client.create_run(experiment_id, tags=tags, run_name=self.run_name)
        except Exception as exc:
            raise TrackingError(f"the tracking store {redact(self.uri)} cannot be used: "
                                f"{type(exc).__name__}: {exc}") from exc
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        self._signals = contextlib.ExitStack()
        self._signals.enter_context(terminate_raises())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.run_id is None:
            return
        try:
            if exc is None:
                if self.failure is None:  # else already ended by fail()
                    # a signal here comes after the run is ended FINISHED: its work is done
                    with deferred_signals():
                        fault_point("run_ending")
                        self.client.set_terminated(self.run_id, "FINISHED")
                        self.status = "FINISHED"
                return
            self.fail(exc)
        finally:
            if self._signals is not None:
                self._signals.close()
                self._signals = None

    def fail(self, exc: BaseException | str) -> None:
        """End the run ``FAILED`` with the reason, or ``KILLED`` after Ctrl-C or SIGTERM (best
        effort: the store may be the problem)."""
        status = "FAILED"
        if isinstance(exc, str):
            reason = exc
        elif isinstance(exc, Terminated):
            reason, status = "terminated (SIGTERM)", "KILLED"
        elif isinstance(exc, KeyboardInterrupt):
            reason, status = "interrupted (SIGINT)", "KILLED"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        self.failure, self.status = reason, status
        with deferred_signals():  # a second Ctrl-C does not leave the run RUNNING
            with contextlib.suppress(Exception):  # each on its own: one may work alone
                self.client.set_tag(self.run_id, "basketry.failure", reason[:5000])
            with contextlib.suppress(Exception):
                self.client.set_terminated(self.run_id, status)

    # ---- logging -----------------------------------------------------------------------------
    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, _param(v))
                                                   for k, v in params.items()])

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, 0) for k, v in metrics.items()]
        for start in range(0, len(items), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=items[start:start + 1000])

    def log_json(self, value: Any, artifact_file: str) -> None:
        self.client.log_dict(self.run_id, value, artifact_file)

    def log_data_input(self, name: str, digest: str, url: str, profile: dict[str, Any]) -> None:
        """Record a dataset the run trained on as an MLflow run input: its source is ``url``,
        its digest the first 32 hex digits of ``digest`` (MLflow keeps 36 characters; the whole
        digest is in ``profile``). Through the entities, so pandas is not needed."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        kind = url.split("://", 1)[0] if "://" in url else "local"
        dataset = Dataset(name=name, digest=digest.split(":", 1)[-1][:32],
                          source_type="local" if kind == "file" else kind,
                          source=json.dumps({"uri": url}), profile=json.dumps(profile))
        context = InputTag(key="mlflow.data.context", value="training")
        self.client.log_inputs(self.run_id, [DatasetInput(dataset=dataset, tags=[context])])

    def log_training(self, result: Any, miner_params: dict[str, Any], model_dir: Path,
                     reports: tuple[Path, ...] = (), data: str | os.PathLike[str] | None = None
                     ) -> None:
        """Log a :class:`~basketry.training.TrainResult` and what was written from it."""
        from basketry.model import read_manifest

        manifest = read_manifest(model_dir)
        self.log_result(result, miner_params, data=data, dataset=manifest.get("dataset") or {})
        self.set_tags({"basketry.model_version": manifest["model_version"]})
        self.log_reports(reports)
        self.log_report_images(result.report)
        self.log_model(model_dir)

    def log_reports(self, reports: tuple[Path, ...]) -> None:
        """The report files under ``report/`` (again after registration: the page then holds
        the gate's verdict)."""
        for path in reports:
            self.client.log_artifact(self.run_id, str(path), "report")

    def log_report_images(self, report: dict[str, Any]) -> None:
        """The report's figures as PNG under ``report/`` (``metrics-by-k.png``,
        ``rule-distributions.png``): MLflow's UI shows images, not the page's inline SVG."""
        from basketry.training.report_figures import write_pngs

        with tempfile.TemporaryDirectory(prefix="basketry-report-") as tmp:
            for path in write_pngs(report, Path(tmp)):
                self.client.log_artifact(self.run_id, str(path), "report")

    def log_result(self, result: Any, miner_params: dict[str, Any], *,
                   data: str | os.PathLike[str] | None = None,
                   dataset: dict[str, Any] | None = None) -> None:
        """Log a :class:`~basketry.training.TrainResult` without a model: parameters, every
        metric, the data tags, ``dataset/`` and ``tuning.json``. ``dataset`` is the training
        part's profile (default: profiled here)."""
        if dataset is None:
            from basketry.data import profile

            dataset = profile(result.train)
        report = result.report
        split = result.split.describe()
        params: dict[str, Any] = {f"mining.{k}": v for k, v in miner_params.items()}
        params.update({f"split.{k}": v for k, v in split.items()
                       if k in ("method", "test_days", "test_fraction", "seed", "cutoff")})
        params.update({f"scoring.{k}": v for k, v in result.scoring.items()})
        params.update({
            "seed": report.get("protocol", {}).get("seed"),
            "tuned": result.tuning is not None and "skipped" not in (result.tuning or {}),
            "protocol.max_queries": report.get("protocol", {}).get("max_queries"),
            "protocol.max_hidden_per_basket":
                report.get("protocol", {}).get("max_hidden_per_basket"),
        })
        if data is not None:
            params["data"] = str(data)
        self.log_params(params)
        metrics = flat_metrics(result.metrics)
        after = report.get("after_purchase") or {}
        if after.get("metrics"):  # the moment after the purchase: next_order.<ranker>.<metric>
            metrics.update({f"next_order.{name}": value for name, value
                            in flat_metrics(after["metrics"]).items()})
            metrics["next_order.n_cases"] = float(after.get("n_cases", 0))
        metrics.update({f"queries.{k}": float(v) for k, v in result.queries.describe().items()})
        metrics.update({f"split.{k}": float(v) for k, v in split.items()
                        if k.startswith("n_") and isinstance(v, int | float)})
        metrics["rules.n_rules"] = float(report.get("mining", {}).get("n_rules", 0))
        self.log_metrics(metrics)
        self.set_tags({
            "basketry.data.source": report["data"]["source"],
            "basketry.data.fingerprint": report["data"]["fingerprint"],
            "basketry.data.n_baskets": report["data"]["n_baskets"],
            "basketry.train.fingerprint": report["training"]["fingerprint"],
            "basketry.train.n_baskets": report["training"]["n_baskets"],
            "basketry.train.n_items": report["training"]["n_items"],
            "basketry.split": split.get("method"),
        })
        self.log_json(dataset, "dataset/profile.json")
        self.log_json({"data": report["data"], "training": report["training"],
                       "split": split}, "dataset/fingerprint.json")
        if result.tuning is not None:
            self.log_json(result.tuning, "tuning.json")

    def log_model(self, model_dir: Path) -> str:
        """Log the model directory as an MLflow model (``python_function`` flavour with the
        basketry loader module, the artifact as its data) under ``model/``; its URI."""
        import mlflow.pyfunc

        with tempfile.TemporaryDirectory(prefix="basketry-mlflow-") as tmp:
            local = Path(tmp) / MODEL_ARTIFACT_PATH
            mlflow.pyfunc.save_model(
                path=str(local), loader_module=PYFUNC_LOADER, data_path=str(model_dir),
                pip_requirements=[f"basketry=={basketry_version()}"],
            )
            self.client.log_artifacts(self.run_id, str(local), MODEL_ARTIFACT_PATH)
        return self.model_uri

    @property
    def model_uri(self) -> str:
        return f"{self.artifact_uri}/{MODEL_ARTIFACT_PATH}"
