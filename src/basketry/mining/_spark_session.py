"""The Spark session the spark engine mines in: pyspark imported only here (an optional extra),
the master checked within a bounded time before a JVM is started, Spark's own log output
limited to warnings and errors."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from basketry.mining.errors import MiningError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
#: FPGrowth's trees are serialised recursively between stages: a long basket makes a deep tree
#: and a StackOverflowError in a task with the JVM's default stack (found on the bundled Online
#: Retail sample, baskets of up to 500 items); the tasks' threads get a larger one.
THREAD_STACK = "-Xss64m"
#: How long the master's address may take to answer before the engine gives up.
CONNECT_TIMEOUT = 5.0

# Spark's driver logs INFO lines by the hundred at start-up; only warnings and errors, as one
# line each, reach the terminal (the file is given to the driver JVM before it starts).
_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = spark %p %c{1}: %m%n
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
# the input is cached by the engine; large tasks are the baskets sent from this process
logger.fpgrowth.name = org.apache.spark.mllib.fpm.FPGrowth
logger.fpgrowth.level = error
logger.cache.name = org.apache.spark.sql.execution.CacheManager
logger.cache.level = error
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = error
"""


def import_pyspark() -> Any:
    """The pyspark module, or one line saying which extra to install."""
    try:
        import warnings

        with warnings.catch_warnings():
            # PySpark warns about the pandas it finds; basketry hands it Arrow, not pandas
            warnings.simplefilter("ignore", FutureWarning)
            import pyspark
            import pyspark.ml.fpm  # FPGrowth: the part the engine needs
            import pyspark.testing.utils  # where that warning is raised (once a process)
    except ImportError as exc:
        raise MiningError(
            f"the spark engine needs PySpark ({exc}); install it: pip install 'basketry[spark]'"
        ) from None
    return pyspark


def resolve_master(master: str | None) -> str | None:
    """The master given, else ``$SPARK_MASTER``, else the one ``spark-submit`` was given when
    it runs this process (None: left to it), else ``local[*]``."""
    if master or os.environ.get("SPARK_MASTER"):
        return master or os.environ["SPARK_MASTER"]
    return None if os.environ.get("PYSPARK_GATEWAY_PORT") else DEFAULT_MASTER


def check_master(master: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse a master whose address does not answer within ``timeout`` seconds (Spark itself
    retries registering with a dead standalone master for a minute or more)."""
    if master.startswith("local"):
        return
    address = master.removeprefix("k8s://")
    parts = urlsplit(address if "://" in address else f"spark://{address}")
    if master in ("yarn",) or parts.hostname is None:
        return  # found by Spark's own configuration (HADOOP_CONF_DIR)
    hosts = [h for h in parts.netloc.split(",")]  # spark://a:7077,b:7077 (standby masters)
    errors = []
    for host in hosts:
        name, _, port = host.rpartition(":")
        name = name.rsplit("@", 1)[-1] if name else host
        default = {"spark": 7077, "https": 443, "http": 80}.get(parts.scheme, 7077)
        try:
            with socket.create_connection((name.strip("[]"), int(port or default)),
                                          timeout=timeout):
                return
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            errors.append(f"{host}: {reason}")
    raise MiningError(f"cannot reach the Spark master {master} ({'; '.join(errors)}); "
                      "check --spark-master / SPARK_MASTER")


def start_session(master: str | None = None, app_name: str = "basketry") -> SparkSession:
    """A Spark session on ``master`` (see :func:`resolve_master`), its logs quiet."""
    import_pyspark()
    from pyspark.sql import SparkSession

    resolved = resolve_master(master)
    if resolved is not None:
        check_master(resolved)
    digest = hashlib.sha256(_LOG4J2.encode()).hexdigest()[:12]
    log_conf = os.path.join(tempfile.gettempdir(), f"basketry-spark-log4j2-{digest}.properties")
    if not os.path.exists(log_conf):
        fd, partial = tempfile.mkstemp(dir=tempfile.gettempdir(), suffix=".properties")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_LOG4J2)
        os.replace(partial, log_conf)  # whole, whoever else starts Spark meanwhile
    builder = SparkSession.builder if resolved is None else SparkSession.builder.master(resolved)
    builder = (builder.appName(app_name)
               .config("spark.ui.showConsoleProgress", "false")
               # the web UI on a local run is a port opened for nothing; a cluster keeps it
               .config("spark.ui.enabled", str(not (resolved or "").startswith("local")).lower())
               # timestamps read as the local reader reads them: naive, i.e. UTC
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.driver.extraJavaOptions",
                       f"-Dlog4j2.configurationFile=file:{log_conf} {THREAD_STACK}")
               .config("spark.executor.extraJavaOptions", THREAD_STACK))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM's failure, as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = resolved or "the spark-submit master"
        raise MiningError(f"cannot start Spark on {where}: {first}") from None
    session.sparkContext.setLogLevel("WARN")
    return session


def spark_failure(what: str, exc: BaseException) -> MiningError:
    """A failure of a Spark job (a Java exception through py4j) as one line."""
    text = ""
    java = getattr(exc, "java_exception", None)
    try:
        # the root cause names what failed (StackOverflowError, OutOfMemoryError, lost executor)
        while java is not None and java.getCause() is not None:
            java = java.getCause()
        text = str(java.toString()) if java is not None else str(exc)
    except Exception:  # the JVM itself is gone
        text = type(exc).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return MiningError(f"Spark failed {what}: {first}")
