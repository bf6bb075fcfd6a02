"""The PySpark backend (the ``spark`` extra): the same Ibis expressions, run by Spark.

The summary, holdout and cohort expressions of :mod:`haina.analytics.clv.summary` and
:mod:`haina.analytics.clv.cohorts` are plain Ibis (group-bys, window functions, date arithmetic), so
they run unchanged on an Ibis PySpark connection. :func:`connect` starts (or reuses) a Spark
session, by default ``local[*]``: every core of this machine, no cluster. Point ``master`` at a
cluster (``spark://…``, ``yarn``) when a log outgrows one machine; the session runs in UTC so
that calendar days are the same as DuckDB's.

Needs ``pyspark`` (3.5 to 4.0, as Ibis supports) and a Java runtime (17 for PySpark 4).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import threading
from pathlib import Path

_lock = threading.Lock()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken install
        return False


def unavailable_reason() -> str | None:
    """Why the Spark backend cannot run here, or None when it can."""
    if not _installed("pyspark"):
        return "pyspark is not installed (pip install 'haina[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and not shutil.which("java"):
        return "no Java runtime found (install Java 17 and put java on PATH or set JAVA_HOME)"
    return None


def connect(master: str = "local[*]", *, shuffle_partitions: int | None = None):
    """An Ibis connection to a Spark session on ``master`` (created once per process)."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(f"the spark engine is unavailable: {reason}")
    import ibis
    from pyspark.sql import SparkSession

    with _lock:
        builder = (
            SparkSession.builder.master(master)
            .appName("haina-analytics")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # small local jobs: Spark's default of 200 shuffle partitions is pure overhead
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions or os.cpu_count() or 2))
        )
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return ibis.pyspark.connect(session)


def read_parquet(connection, path: Path):
    """An exported transaction file (:mod:`haina.analytics.sources`) as a Spark-backed table."""
    return connection.read_parquet(str(path))


def stop() -> None:
    """Stop this process's Spark session (and its JVM's work), if one is running."""
    if not _installed("pyspark") or "pyspark.sql" not in sys.modules:
        return  # never started in this process
    from pyspark.sql import SparkSession

    with _lock:
        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()
