"""Where the engine runs: DuckDB in this process (its settings), or Spark through Ibis."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from ..errors import WorkbenchError


@dataclass
class EngineConfig:
    """DuckDB settings: memory cap (e.g. '8GB'; None = DuckDB's 80% of RAM), the
    directory it spills to, the most it may spill there (None = half the disk's
    free space when connecting) and its thread count (None = all cores)."""

    memory_limit: str | None = None
    temp_directory: str = str(Path(tempfile.gettempdir()) / "workbench-duckdb")
    max_temp_size: str | None = None
    threads: int | None = None


CONFIG = EngineConfig()


CONNECTIONS: dict[str, Any] = {}


def configure(
    *,
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
    max_temp_size: str | None = None,
    threads: int | None = None,
) -> EngineConfig:
    """Set DuckDB's memory limit, spill directory and size, and threads for the next connection.

    Returns the configuration in force. The cached DuckDB connection is dropped so
    the next call connects with the new settings.
    """
    if memory_limit is not None:
        CONFIG.memory_limit = memory_limit
    if temp_directory is not None:
        CONFIG.temp_directory = str(temp_directory)
    if max_temp_size is not None:
        CONFIG.max_temp_size = max_temp_size
    if threads is not None:
        CONFIG.threads = threads
    CONNECTIONS.pop("duckdb", None)
    return CONFIG


def connect(backend: str = "duckdb") -> ibis.BaseBackend:
    """The shared Ibis connection for ``backend`` ('duckdb' or 'pyspark'), created once."""
    if backend in CONNECTIONS:
        return CONNECTIONS[backend]
    if backend == "duckdb":
        Path(CONFIG.temp_directory).mkdir(parents=True, exist_ok=True)
        # DuckDB would spill up to 90% of the free disk; a shared machine needs a smaller cap
        free_gb = shutil.disk_usage(CONFIG.temp_directory).free / 2**30
        settings: dict[str, Any] = {
            "temp_directory": CONFIG.temp_directory,
            "max_temp_directory_size": CONFIG.max_temp_size or f"{max(free_gb / 2, 1):.0f}GB",
            # DuckDB's allocator keeps what its queries freed until its next query: in a notebook the
            # pandas work between queries then ran on top of it (156 MB after reading and auditing a
            # million events, 750 MB at ten million). Its background threads hand it back meanwhile.
            "allocator_background_threads": True,
        }
        if CONFIG.memory_limit:
            settings["memory_limit"] = CONFIG.memory_limit
        if CONFIG.threads:
            settings["threads"] = CONFIG.threads
        con = ibis.duckdb.connect(**settings)
    elif backend == "pyspark":
        con = ibis.pyspark.connect(spark_session())
    else:
        raise WorkbenchError(f"unknown engine backend {backend!r}.", hint="use 'duckdb' or 'pyspark'.")
    CONNECTIONS[backend] = con
    return con


def disconnect(backend: str = "duckdb") -> None:
    """Close the shared connection of ``backend`` if open; the next :func:`connect` opens a new one.

    For a process whose engine work is done: a closed DuckDB connection hands back the
    memory its allocator kept.
    """
    con = CONNECTIONS.pop(backend, None)
    if con is not None and backend == "duckdb":
        con.disconnect()


def spark_session(master: str = "local[2]"):
    """A local Spark session in UTC (the existing one if Spark is already running)."""
    if shutil.which("java") is None:
        raise WorkbenchError(
            "the Spark backend needs a Java runtime, and none is installed.",
            hint="install one (e.g. apt-get install default-jre-headless) or use backend='duckdb'.",
        )
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WorkbenchError("the Spark backend needs pyspark, which is not installed.",
                             hint="pip install pyspark, or use backend='duckdb'.") from None
    return (
        SparkSession.builder.master(master)
        .appName("workbench")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )




EPOCH = ibis.timestamp("1970-01-01 00:00:00", timezone="UTC")


UTC_TS = dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us_duckdb(ts: UTC_TS) -> dt.int64:  # type: ignore[empty-body]
    """DuckDB's microseconds since the epoch."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _epoch_us_spark(ts: UTC_TS) -> dt.int64:  # type: ignore[empty-body]
    """Spark's microseconds since the epoch."""


def epoch_us(ts: ir.TimestampValue, backend: str) -> ir.IntegerValue:
    # The same quantity under each engine's own fast name; Ibis's generic DATE_DIFF
    # runs through time-zone arithmetic and costs more than the whole DFG.
    if backend == "duckdb":
        return _epoch_us_duckdb(ts)
    if backend == "pyspark":
        return _epoch_us_spark(ts)
    return ts.delta(EPOCH, unit="microsecond")
