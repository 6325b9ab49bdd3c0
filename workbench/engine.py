"""The columnar engine: every aggregation that touches every event, written once.

Each aggregation is one Ibis expression over the *prepared* event table, executed
in-process on DuckDB by default (over a pandas DataFrame, or streaming over
Parquet / CSV files larger than memory, spilling to a temp directory) or on Spark
through Ibis's pyspark backend. Results are small pandas frames; durations are
seconds as float. pm4py then works on these results (see :func:`to_pm4py_dfg`).

Event order follows pm4py: events of a case are ordered by timestamp, ties by
input order, kept as an explicit ordinal: a DataFrame's row order, a Parquet
file's row number (a directory or glob of Parquet files: its files in path order,
then their rows), a CSV file's line order. (On Spark, files carry no row number:
ties there fall back to the activity name unless the table has an ``_ord`` column.)

Functions take the log as a canonical DataFrame, a Parquet/CSV path or an Ibis
table, plus ``backend="duckdb" | "pyspark"`` or an Ibis connection ``con``.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends.sql.datatypes import DuckDBType

from .errors import WorkbenchError
from .profile import SalesProcessProfile, get_profile
from .schema import ACTIVITY, AMOUNT, CASE, ORG, PM4PY_NAMES, REQUIRED, TIMESTAMP, check_log

__all__ = [
    "activity_counts",
    "case_durations",
    "case_table",
    "configure",
    "connect",
    "dfg",
    "directly_follows",
    "events",
    "kpis_by_period",
    "stage_visits",
    "start_end_activities",
    "to_pm4py_dfg",
    "variants",
]

#: Internal columns of the prepared table: input ordinal, time in microseconds.
ORD, T = "_ord", "_t"
_INTERNAL = (ORD, T)
_EPOCH = ibis.timestamp("1970-01-01 00:00:00", timezone="UTC")
_US = 1e6


# --------------------------------------------------------------------------- backends
@dataclass
class EngineConfig:
    """DuckDB settings: memory cap (e.g. '8GB'; None = DuckDB's 80% of RAM), the
    directory it spills to, the most it may spill there (None = half the disk's
    free space when connecting) and its thread count (None = all cores)."""

    memory_limit: str | None = None
    temp_directory: str = str(Path(tempfile.gettempdir()) / "workbench-duckdb")
    max_temp_size: str | None = None
    threads: int | None = None


_config = EngineConfig()
_connections: dict[str, Any] = {}


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
        _config.memory_limit = memory_limit
    if temp_directory is not None:
        _config.temp_directory = str(temp_directory)
    if max_temp_size is not None:
        _config.max_temp_size = max_temp_size
    if threads is not None:
        _config.threads = threads
    _connections.pop("duckdb", None)
    return _config


def connect(backend: str = "duckdb") -> ibis.BaseBackend:
    """The shared Ibis connection for ``backend`` ('duckdb' or 'pyspark'), created once."""
    if backend in _connections:
        return _connections[backend]
    if backend == "duckdb":
        Path(_config.temp_directory).mkdir(parents=True, exist_ok=True)
        # DuckDB would spill up to 90% of the free disk; a shared machine needs a smaller cap
        free_gb = shutil.disk_usage(_config.temp_directory).free / 2**30
        settings: dict[str, Any] = {
            "temp_directory": _config.temp_directory,
            "max_temp_directory_size": _config.max_temp_size or f"{max(free_gb / 2, 1):.0f}GB",
        }
        if _config.memory_limit:
            settings["memory_limit"] = _config.memory_limit
        if _config.threads:
            settings["threads"] = _config.threads
        con = ibis.duckdb.connect(**settings)
    elif backend == "pyspark":
        con = ibis.pyspark.connect(spark_session())
    else:
        raise WorkbenchError(f"unknown engine backend {backend!r}.", hint="use 'duckdb' or 'pyspark'.")
    _connections[backend] = con
    return con


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


# --------------------------------------------------------------------------- input
#: Names the DuckDB fast path registers the input, and the prepared events over it, under
#: (per cursor, so calls don't clash).
_INPUT, _SRC = "_wb_input", "_wb_events"


_UTC_TS = dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us_duckdb(ts: _UTC_TS) -> dt.int64:  # type: ignore[empty-body]
    """DuckDB's microseconds since the epoch."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _epoch_us_spark(ts: _UTC_TS) -> dt.int64:  # type: ignore[empty-body]
    """Spark's microseconds since the epoch."""


def _epoch_us(ts: ir.TimestampValue, backend: str) -> ir.IntegerValue:
    # The same quantity under each engine's own fast name; Ibis's generic DATE_DIFF
    # runs through time-zone arithmetic and costs more than the whole DFG.
    if backend == "duckdb":
        return _epoch_us_duckdb(ts)
    if backend == "pyspark":
        return _epoch_us_spark(ts)
    return ts.delta(_EPOCH, unit="microsecond")


def _file_kind(path: Path) -> str:
    if not path.exists() and not any(ch in str(path) for ch in "*?["):
        raise WorkbenchError("file not found.", file=str(path), hint="check the path.")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")) or path.is_dir():
        return "parquet"
    raise WorkbenchError(
        "the engine reads Parquet or CSV files only.",
        file=str(path),
        hint="load other formats with workbench.io.read_event_log and pass the DataFrame.",
    )


def _sql_path(path: Path) -> str:
    """The file (a directory: every Parquet file under it) as a DuckDB string literal."""
    src = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
    return "'" + src.replace("'", "''") + "'"


def _parquet_set(path: Path) -> bool:
    """Whether ``path`` names several Parquet files (a directory or a glob), not one file."""
    return _file_kind(path) == "parquet" and (path.is_dir() or any(ch in str(path) for ch in "*?["))


#: DuckDB's columns of a Parquet row's file and of the rows before that file (``_file_sql``).
_FILE, _BASE = "_wb_file", "_wb_base"


def _file_bases(lit: str) -> str:
    """DuckDB query of each Parquet file's name and the number of rows in the files before
    it, in path order."""
    before = "sum(num_rows) OVER (ORDER BY file_name) - num_rows"
    return f"SELECT file_name AS {_FILE}, CAST({before} AS BIGINT) AS {_BASE} FROM parquet_file_metadata({lit})"


def _file_sql(path: Path) -> str:
    """DuckDB source of a file, numbering its rows in file order as ``_ord``."""
    kind = _file_kind(path)
    lit = _sql_path(path)
    if _parquet_set(path):
        # Row numbers restart in every file: the files' row counts before them make the
        # numbers run on, so that ties between files keep the input order.
        return (f"SELECT * EXCLUDE (file_row_number, {_FILE}, {_BASE}), {_BASE} + file_row_number AS {ORD} "
                f"FROM read_parquet({lit}, file_row_number=true, filename='{_FILE}') "
                f"JOIN ({_file_bases(lit)}) USING ({_FILE})")
    if kind == "parquet":
        return f"SELECT * EXCLUDE (file_row_number), file_row_number AS {ORD} FROM read_parquet({lit}, file_row_number=true)"
    # DuckDB keeps insertion order for a plain scan, so this numbers the file's lines.
    return f"SELECT *, row_number() OVER () - 1 AS {ORD} FROM read_csv({lit}, header=true)"


def _read_file(path: Path, con: ibis.BaseBackend) -> ir.Table:
    """A file as an Ibis table of any backend (Spark: no row order, see the module doc)."""
    kind = _file_kind(path)
    try:
        if con.name == "duckdb":
            return con.sql(_file_sql(path))
        return con.read_parquet(str(path)) if kind == "parquet" else con.read_csv(str(path), header=True)
    except Exception as exc:  # the backends raise their own types for unreadable files
        raise WorkbenchError(f"cannot read the file: {exc}", file=str(path), hint="check its format.") from None


def _frame(log: pd.DataFrame) -> pd.DataFrame:
    """The DataFrame checked, with canonical names, ``_ord`` and ``_t`` added (a new frame)."""
    log = check_log(log.rename(columns={v: k for k, v in PM4PY_NAMES.items()
                                        if v in log.columns and k not in log.columns}))
    for c in (CASE, ACTIVITY):  # check_log has seen to the timestamps
        bad = log[c].isna().to_numpy()
        if bad.any():
            raise _no_value(int(bad.sum()), c, int(np.argmax(bad)) + 1)
    ts = log[TIMESTAMP].dt.tz_convert("UTC").dt.as_unit("us")
    frame = log.assign(**{TIMESTAMP: ts, ORD: np.arange(len(log), dtype="int64"), T: ts.astype("int64")})
    return frame.reset_index(drop=True)


def _memtable(frame: pd.DataFrame) -> ir.Table:
    try:
        return ibis.memtable(frame)
    except Exception as exc:  # pyarrow cannot type a column (mixed objects)
        raise WorkbenchError(
            f"a column cannot be handed to the engine: {exc}",
            hint="give each attribute column a single type (e.g. astype(str)).",
        ) from None


def _prepare(t: ir.Table, backend: str, *, file: str | None = None) -> ir.Table:
    """Canonical names and types, plus ``_ord`` and ``_t`` when the source lacks them."""
    renames = {k: v for k, v in PM4PY_NAMES.items() if v in t.columns and k not in t.columns}
    if renames:
        t = t.rename(renames)
    missing = [c for c in REQUIRED if c not in t.columns]
    if missing:
        raise WorkbenchError(
            f"the event log has no column {missing[0]!r}.",
            column=missing[0],
            file=file,
            hint="map your export's columns to case_id, activity, timestamp (workbench.io.read_event_log).",
        )
    casts = {c: t[c].cast("string") for c in (CASE, ACTIVITY) if not t[c].type().is_string()}
    ts_type = t[TIMESTAMP].type()
    if not (ts_type.is_timestamp() and ts_type.timezone == "UTC"):
        casts[TIMESTAMP] = t[TIMESTAMP].cast(_UTC_TS)
    if casts:
        t = t.mutate(**casts)
    if ORD not in t.columns:
        # no input order known (Spark over files, a foreign table): ties break by activity name
        t = t.mutate(**{ORD: ibis.row_number().over(order_by=[t[CASE], t[TIMESTAMP], t[ACTIVITY]])})
    if T not in t.columns:
        t = t.mutate(**{T: _epoch_us(t[TIMESTAMP], backend)})
    return t


def events(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> tuple[ir.Table, ibis.BaseBackend]:
    """The prepared event table and the connection that executes it.

    Columns: the canonical ones (pm4py names are renamed), ``timestamp`` as UTC,
    ``_ord`` (input order) and ``_t`` (microseconds since the epoch). Use it to
    write further aggregations in Ibis that run wherever these do.
    """
    file = None
    if isinstance(log, ir.Table):
        t = log
        if con is None:
            try:
                con = t._find_backend()
            except ibis.common.exceptions.IbisError:  # an in-memory table: run it on ``backend``
                con = connect(backend)
    else:
        con = con or connect(backend)
        if isinstance(log, pd.DataFrame):
            t = _memtable(_frame(log))
        elif isinstance(log, (str, Path)):
            file = str(log)
            t = _read_file(Path(log), con)
        else:
            raise WorkbenchError(
                f"the engine takes a DataFrame, a Parquet/CSV path or an Ibis table, not {type(log).__name__}."
            )
    return _prepare(t, con.name, file=file), con


def _order_key(t: ir.Table, key: _EventKey, low: ir.IntegerValue | None = None) -> ir.Value:
    """A value that sorts the events of a case in log order: their time, then ``low``
    (the input ordinal, or the ordinal and the activity code as ``key`` packs them).
    One int64 when ``key`` packs, else a struct ``{t, low}``."""
    # DuckDB orders by an int64 faster than by a struct in the case table's argmin/argmax
    # (10M events: 4.6 against 5.6 s, medians).
    low = t[ORD] if low is None else low
    if key.unit_us is None:
        return ibis.struct({"t": t[T], "low": low})
    return ((t[T] - key.t0) // key.unit_us) * (1 << (key.ord_bits + key.code_bits)) + low


def _case_window(t: ir.Table, **kw: Any):
    # DuckDB sorts a window as fast by (time, input order) as by one packed key (measured)
    return ibis.window(group_by=t[CASE], order_by=[t[T], t[ORD]], **kw)


# --------------------------------------------------------------------------- execution
Build = Callable[..., ir.Table]


@dataclass(frozen=True)
class _Runner:
    """``run(build, args=(), arrow=False)`` runs ``build(prepared, *args)`` on a session's
    log and returns a DataFrame (an Arrow table with ``arrow``); ``backend`` names the
    engine that runs it."""

    execute: Callable[[Build, tuple, bool], "pd.DataFrame | pa.Table"]
    backend: str

    def __call__(self, build: Build, args: tuple = (), arrow: bool = False) -> pd.DataFrame | pa.Table:
        return self.execute(build, args, arrow)


_sql_cache: dict[tuple, tuple[str, list[tuple[str, pa.Table]]]] = {}
_SQL_CACHE_SIZE = 256


def _compiled(build: Build, schema: ibis.Schema, args: tuple) -> tuple[str, list[tuple[str, pa.Table]]]:
    """DuckDB SQL of ``build(prepared table, *args)``, compiled once per input schema and
    arguments, with the in-memory tables it reads (name, data), to register before running it."""
    key = (build.__qualname__, tuple(schema.items()), repr(args))
    if key not in _sql_cache:
        if len(_sql_cache) >= _SQL_CACHE_SIZE:  # arguments may carry a log's numbers (an event key)
            _sql_cache.clear()
        expr = build(_prepare(ibis.table(schema, name=_SRC), "duckdb"), *args)
        tables = [(op.name, op.data.to_pyarrow(op.schema)) for op in expr.op().find(ops.InMemoryTable)]
        _sql_cache[key] = ibis.to_sql(expr, dialect="duckdb"), tables
    return _sql_cache[key]


def _schema(cur: duckdb.DuckDBPyConnection, name: str) -> ibis.Schema:
    rel = cur.sql(f"SELECT * FROM {name} LIMIT 0")
    return ibis.schema({c: DuckDBType.from_string(str(ty)) for c, ty in zip(rel.columns, rel.types)})


def _check_no_empty_cells(cur: duckdb.DuckDBPyConnection, path: Path, raw: ibis.Schema) -> None:
    """Raise if an event in the file has no case, activity or timestamp.

    The engine cannot place such an event (a missing activity would read as the end
    of its case), and quietly dropping it would lose it. Parquet footers carry the
    null counts; other files are scanned.
    """
    in_file = {c: c if c in raw else PM4PY_NAMES[c] for c in REQUIRED}
    counts: dict[str, int] | None = None
    if _file_kind(path) == "parquet":
        lit = _sql_path(path)
        stats = {name: (n, unknown) for name, n, unknown in cur.sql(
            "SELECT path_in_schema, sum(stats_null_count), bool_or(stats_null_count IS NULL) "
            f"FROM parquet_metadata({lit}) GROUP BY 1").fetchall()}
        if all(name in stats and not stats[name][1] for name in in_file.values()):
            counts = {c: int(stats[name][0] or 0) for c, name in in_file.items()}
    if counts is None:
        row = cur.sql("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in REQUIRED)
                      + f" FROM {_SRC}").fetchall()[0]
        counts = dict(zip(REQUIRED, row))
    for c, n in counts.items():
        if n:
            first = int(cur.sql(f"SELECT min({ORD}) FROM {_SRC} WHERE {c} IS NULL").fetchall()[0][0])
            file = str(path)
            if _parquet_set(path):  # name the file and its row
                file, base = cur.sql(f"SELECT {_FILE}, {_BASE} FROM ({_file_bases(_sql_path(path))}) "
                                     f"WHERE {_BASE} <= {first} ORDER BY {_BASE} DESC LIMIT 1").fetchall()[0]
                first -= int(base)
            raise _no_value(n, in_file[c], first + 1, file=file)


def _no_value(n: int, column: str, row: int, file: str | None = None) -> WorkbenchError:
    """The error for events that lack a case, an activity or a timestamp."""
    what = "1 event has" if n == 1 else f"{n} events have"
    return WorkbenchError(
        f"{what} no value in this column.", file=file, column=column, row=row,
        hint="load the log with workbench.io.read_event_log, which sets such rows aside and counts them "
             "(`workbench check FILE` lists them), or fill the cells.")


@contextmanager
def _session(log: Any, *, backend: str, con: ibis.BaseBackend | None) -> Iterator[_Runner]:
    """A :class:`_Runner` of builds on ``log``; one session can run several builds, each
    knowing the results of the ones before.

    DuckDB over a DataFrame or a file takes a fast path: the input is registered
    on a fresh cursor and the SQL Ibis compiled for its schema is reused, which
    keeps a call on a small log at a few milliseconds.
    """
    if con is None and backend == "duckdb" and isinstance(log, (pd.DataFrame, str, Path)):
        cur = connect("duckdb").con.cursor()
        file = str(log) if isinstance(log, (str, Path)) else None
        try:
            # a cursor starts in the machine's zone: periods must be cut, and times returned, in UTC
            cur.execute("SET TimeZone = 'UTC'")
            # pandas keeps strings as Arrow large strings: handing it those saves a copy of
            # every string of a result (a million case ids: 0.03-0.25 s)
            cur.execute("SET arrow_large_buffer_size = true")
            if file is None:
                cur.register(_INPUT, _frame(log))
            else:
                # A CSV file is parsed once, into a temporary table (DuckDB spills it to disk
                # beyond its memory limit): the check for empty cells and every query of the
                # session would otherwise parse it again. Parquet is scanned where it lies.
                kind = "TABLE" if _file_kind(Path(log)) == "csv" else "VIEW"
                cur.execute(f"CREATE TEMP {kind} {_INPUT} AS {_file_sql(Path(log))}")
            # The prepared events as a view of their own: builds that read them twice (the
            # activity codes and the events) then scan the input twice rather than have
            # DuckDB materialize every event as a shared CTE.
            raw = _schema(cur, _INPUT)
            prepared = _prepare(ibis.table(raw, name=_INPUT), "duckdb", file=file)
            cur.execute(f"CREATE TEMP VIEW {_SRC} AS {ibis.to_sql(prepared, dialect='duckdb')}")
            if file is not None:
                _check_no_empty_cells(cur, Path(file), raw)
            schema = _schema(cur, _SRC)

            def run(build: Build, args: tuple, arrow: bool) -> pd.DataFrame | pa.Table:
                sql, tables = _compiled(build, schema, args)
                for name, data in tables:
                    cur.register(name, data)
                tab = cur.sql(sql).to_arrow_table()
                return tab if arrow else tab.to_pandas()

            yield _Runner(run, "duckdb")
        except WorkbenchError:
            raise
        except duckdb.OutOfMemoryException as exc:
            raise WorkbenchError(
                f"DuckDB ran out of memory and spill space: {exc}", file=file,
                hint="raise engine.configure(memory_limit=..., max_temp_size=...), point temp_directory "
                     "at a bigger disk, or run on Spark (backend='pyspark').") from None
        except duckdb.Error as exc:
            raise WorkbenchError(f"the engine cannot process this log: {exc}", file=file,
                                 hint="check the column types (load with workbench.io.read_event_log).") from None
        finally:
            cur.close()
        return
    t, con = events(log, backend=backend, con=con)
    yield _Runner(lambda build, args, arrow: (con.to_pyarrow if arrow else con.execute)(build(t, *args)), con.name)


# --------------------------------------------------------------------------- expressions
#: The wait quantiles of the performance DFG: (column name part, quantile).
_WAIT_QUANTILES = (("median", 0.5), ("p90", 0.9))


def dfg_expr(
    t: ir.Table, key: _EventKey, performance: bool = True, quantiles_by_sort: bool = False,
    zipped_unnest: bool = False,
) -> ir.Table:
    """Pairs of consecutive events per case, with what start and end activities need.

    One row per (source, target), plus one row per (source, NULL) for the last
    events of cases; ``_starts`` counts the pair's sources that open a case. With
    ``performance``, the waits' mean, median, 90th percentile, min and max.
    One pass over each case's sorted events (keyed as ``key`` says) gives the DFG and
    the start/end activities together. The quantiles are exact either way;
    ``quantiles_by_sort`` computes them by sorting the waits (see :func:`_wait_quantiles`)
    instead of in memory. ``zipped_unnest`` (DuckDB only) pairs the events as below.
    """
    seqs = _case_sequences(t, key)
    per_case, seq = seqs.table, seqs.table._seq
    if zipped_unnest:
        # DuckDB unnests two arrays of one select side by side, padding the shorter with
        # NULL: each event beside the next, at half the cost of building pair structs.
        # Ibis leaves this to the backend (Spark refuses two generators in a select).
        pairs = per_case.select(a=seq.unnest(), b=seq[1:].unnest(), _head=seq[0])
        pairs = pairs.select("a", "b", opens=pairs.a == pairs._head)  # keys are unique in a case
    else:
        def pair(e: ir.Value, i: ir.IntegerValue) -> ir.StructValue:
            """The event, the next one (none after the last), whether it opens the case."""
            after = ibis.ifelse(i + 1 < seq.length(), seq[i + 1], ibis.null(seq.type().value_type))
            return ibis.struct({"a": e, "b": after, "opens": i == 0})

        u = per_case.select(_p=seq.map(pair).unnest())
        pairs = u.select(a=u._p.a, b=u._p.b, opens=u._p.opens)
    # a missing activity keeps its code (all ones), which has no name: NULL after the join
    cols: dict[str, Any] = {"_src": seqs.code(pairs.a), "_tgt": seqs.code(pairs.b), "_first": pairs.opens}
    if performance:
        cols["_wait"] = (seqs.time(pairs.b) - seqs.time(pairs.a)) / (_US / seqs.unit_us)
    e = pairs.select(**cols)
    aggs: dict[str, Any] = {"frequency": e.count(), "_starts": e._first.cast("int64").sum()}
    if performance:
        aggs.update(wait_mean_s=e._wait.mean(), wait_min_s=e._wait.min(), wait_max_s=e._wait.max())
        if not quantiles_by_sort:
            aggs["_q"] = e._wait.quantile([q for _, q in _WAIT_QUANTILES])  # one selection for all
    g = e.group_by("_src", "_tgt").agg(**aggs)
    if performance and quantiles_by_sort:
        qs = _wait_quantiles(e)
        g = g.left_join(qs, ["_src", "_tgt"]).select(g, *[qs[f"wait_{name}_s"] for name, _ in _WAIT_QUANTILES])
    elif performance:
        g = g.mutate(**{f"wait_{name}_s": g._q[i] for i, (name, _) in enumerate(_WAIT_QUANTILES)}).drop("_q")
    codes = seqs.codes
    src = codes.select(_src=codes._code, source=codes[ACTIVITY])
    tgt = codes.select(_tgt=codes._code, target=codes[ACTIVITY])
    g = g.left_join(src, "_src").left_join(tgt, "_tgt")
    return g.drop(*[col for col in g.columns if col.startswith(("_src", "_tgt"))])


def _wait_quantiles(e: ir.Table) -> ir.Table:
    """Median and 90th percentile of ``_wait`` per (``_src``, ``_tgt``), by sorting.

    The linear interpolation of ``quantile`` (and numpy), from the order statistics at
    ranks floor and ceil of (n - 1) q. DuckDB's in-memory quantile keeps every wait of a
    pair in its aggregate state, which on a log far larger than memory spills without
    bound; a sort spills in order and finishes.
    """
    p = e.filter(e._wait.notnull()).select("_src", "_tgt", "_wait")
    pair = [p._src, p._tgt]
    r = p.mutate(_r=ibis.row_number().over(ibis.window(group_by=pair, order_by=p._wait)),
                 _n=p._wait.count().over(ibis.window(group_by=pair)))
    aggs: dict[str, Any] = {"_n": r._n.max()}
    for name, q in _WAIT_QUANTILES:
        pos = (r._n - 1) * q
        aggs[f"_{name}_lo"] = r._wait.max(where=r._r == pos.floor())
        aggs[f"_{name}_hi"] = r._wait.max(where=r._r == pos.ceil())
    qs = r.group_by(["_src", "_tgt"]).agg(**aggs)
    out = {}
    for name, q in _WAIT_QUANTILES:
        pos = (qs._n - 1) * q
        lo, hi = qs[f"_{name}_lo"], qs[f"_{name}_hi"]
        out[f"wait_{name}_s"] = lo + (hi - lo) * (pos - pos.floor())
    return qs.select("_src", "_tgt", **out)


def _activity_codes(t: ir.Table) -> ir.Table:
    """The log's distinct activities numbered 0, 1, ... in name order: (activity, _code)."""
    acts = t.select(t[ACTIVITY]).distinct()
    return acts.mutate(_code=ibis.row_number().over(order_by=acts[ACTIVITY]))


def _coded(t: ir.Table, codes: ir.Table) -> ir.Table:
    """The events' case, time, ordinal and activity code (of :func:`_activity_codes`)."""
    return t.left_join(codes, ACTIVITY).select(t[CASE], t[T], t[ORD], codes._code)


def activity_counts_expr(t: ir.Table) -> ir.Table:
    """Ibis expression of :func:`activity_counts` over a prepared table."""
    return t.group_by(activity=t[ACTIVITY]).agg(events=t.count(), cases=t[CASE].nunique())


#: Time units (in microseconds) an event key can count in, coarsest first.
_KEY_UNITS_US = (1_000_000, 1_000, 1)
#: Most bits the time of an event key may take: its unit count then converts to and from
#: a double exactly (Ibis's integer floor division divides as doubles).
_KEY_TIME_BITS = 39


@dataclass(frozen=True)
class _EventKey:
    """How each event of a case becomes one value that sorts in log order.

    The activity code takes the low ``code_bits`` (all ones: a missing activity) and
    the input ordinal the bits above. With ``unit_us``, the time since ``t0`` in that
    unit takes the bits above those, and a case sorts plain int64 keys; without,
    (time, ordinal and code) structs, which build and sort about 40% slower.
    """

    code_bits: int
    ord_bits: int
    unit_us: int | None = None
    t0: int = 0
    #: The activities in code order, as :func:`_event_key_of` read them (see :func:`_key_codes`).
    activities: tuple[str | None, ...] | None = None


def _key_codes(key: _EventKey) -> ir.Table:
    """The activity codes of a key from :func:`_event_key_of` as a small in-memory table
    (activity, _code), which spares the query finding the distinct activities again (about
    0.05 s at 10M events)."""
    return ibis.memtable(pa.table({ACTIVITY: pa.array(key.activities, pa.string()),
                                   "_code": pa.array(range(len(key.activities)), pa.int64())}))


def _key_stats_expr(t: ir.Table) -> ir.Table:
    """One row: the largest ordinal, the earliest and latest time and, per unit of
    :data:`_KEY_UNITS_US` but the finest, whether every time is a whole number of it."""
    whole = {f"whole_{u}": (t[T] % u == 0).all() for u in _KEY_UNITS_US[:-1]}
    return t.aggregate(max_ord=t[ORD].max(), t_min=t[T].min(), t_max=t[T].max(), **whole)


def _event_key(n_codes: int, stats: dict[str, Any]) -> _EventKey:
    """The :class:`_EventKey` for a log of ``n_codes`` activities and :func:`_key_stats_expr`."""
    code_bits = n_codes.bit_length()  # room for codes 0 .. n_codes - 1 and the all-ones "missing"
    ord_bits = max(int(stats["max_ord"] or 0), 0).bit_length()
    if code_bits + ord_bits > 62:
        raise WorkbenchError(
            f"the log has {n_codes:,} distinct activities, too many to sort beside {ord_bits}-bit event "
            "numbers.", column=ACTIVITY, hint="map the activities to a smaller set (e.g. the stage names) first.")
    key = _EventKey(code_bits, ord_bits)
    if stats["t_min"] is None:  # no events
        return key
    unit = next(u for u in _KEY_UNITS_US if u == 1 or stats[f"whole_{u}"])
    time_bits = ((int(stats["t_max"]) - int(stats["t_min"])) // unit).bit_length()
    if time_bits > _KEY_TIME_BITS or time_bits + ord_bits + code_bits > 63:
        return key
    return _EventKey(code_bits, ord_bits, unit, int(stats["t_min"]))


@dataclass(frozen=True)
class _Sequences:
    """Each case's events as an array ``_seq`` of keys in log order (``table``), how to
    read a key's activity code (all ones: missing) and its time, in ``unit_us``
    microseconds since the key's origin, and the codes' names."""

    table: ir.Table
    code: Callable[[ir.Value], ir.IntegerValue]
    time: Callable[[ir.Value], ir.IntegerValue]
    unit_us: int
    #: the activity codes the keys carry (:func:`_key_codes`), to name them
    codes: ir.Table


def _case_sequences(t: ir.Table, key: _EventKey) -> _Sequences:
    """The events of each case keyed as ``key`` says, codes of :func:`_activity_codes`."""
    # Sorting keys inside an array keeps the log order on every backend (Spark cannot
    # order an aggregate directly); for the DFG's pairs it costs DuckDB about a third less
    # CPU than a window over the cases (2.4 against 3.4 s at 10M events). Ordinals are
    # unique, so codes beside them leave the order as it is; a missing activity (only
    # possible in an Ibis table) packs as all ones, so that it cannot move its event either.
    codes = _key_codes(key)
    c = _coded(t, codes)
    span = 1 << key.code_bits
    ordinal_code = c[ORD] * span + c._code.fill_null(span - 1)
    if key.unit_us is None:
        packed, time, unit = (lambda e: e.low), (lambda e: e.t), 1
    else:
        shift = key.ord_bits + key.code_bits
        packed, time, unit = (lambda e: e), (lambda e: e >> shift), key.unit_us
    # a column of its own: Ibis's null filter on the aggregate then tests it rather than
    # computing every key twice
    c = c.mutate(_k=_order_key(c, key, ordinal_code))
    # sorted as part of the aggregate, so that what reads the array reads a column (Ibis
    # would otherwise repeat the sort wherever the array is used, even inside lambdas)
    per_case = c.group_by(c[CASE]).agg(_seq=c._k.collect().sort())
    return _Sequences(per_case, lambda e: packed(e) & (span - 1), time, unit, codes)


def _event_key_of(run: _Runner) -> _EventKey:
    """The :class:`_EventKey` of the log of a :func:`_session`, with its activities."""
    names = run(_activity_codes, arrow=True).sort_by("_code")[ACTIVITY].to_pylist()
    (stats,) = run(_key_stats_expr, arrow=True).to_pylist()
    return replace(_event_key(len(names), stats), activities=tuple(names))


def _order_key_of(run: _Runner) -> _EventKey:
    """The :class:`_EventKey` without activity codes that :func:`_order_key` packs."""
    (stats,) = run(_key_stats_expr, arrow=True).to_pylist()
    return _event_key(0, stats)


def case_variants_expr(t: ir.Table, key: _EventKey) -> ir.Table:
    """One row per case: its activity sequence as codes of :func:`_activity_codes` (array;
    all ones: missing) and its duration in seconds (``_d``), the events keyed as ``key`` says."""
    seqs = _case_sequences(t, key)
    # the smallest integers that hold the codes: the variants group and sort on them
    small = next(f"int{n}" for n in (8, 16, 32, 64) if key.code_bits < n)
    per_case, seq = seqs.table, seqs.table._seq
    return per_case.select(
        per_case[CASE],
        _codes=seq.map(lambda e: seqs.code(e).cast(small)),
        _d=(seqs.time(seq[seq.length() - 1]) - seqs.time(seq[0])) / (_US / seqs.unit_us),
    )


def variants_expr(t: ir.Table, key: _EventKey) -> ir.Table:
    """The variants as arrays of activity codes (of :func:`_activity_codes`), most frequent first.

    Columns ``_codes``, ``count``, ``mean_duration_s``. Codes follow the names' order, so
    ordering by codes is ordering by names: ties in count come in variant order.
    """
    c = case_variants_expr(t, key)
    v = c.group_by(c._codes).agg(count=c.count(), mean_duration_s=c._d.mean())
    return v.order_by([v["count"].desc(), v._codes])


def _among(values: ir.StringValue, names: tuple[str, ...]) -> ir.BooleanValue:
    """``values.isin(names)``, kept a column when ``names`` is empty (Ibis folds that into a
    scalar False, which window sums refuse)."""
    return values.isin(list(names)) if names else values.isnull() & values.notnull()


def _closing(t: ir.Table, profile: SalesProcessProfile) -> ir.BooleanValue:
    return _among(t[ACTIVITY], profile.closing)


def case_table_expr(t: ir.Table, profile: SalesProcessProfile, order: _EventKey) -> ir.Table:
    """Ibis expression of :func:`case_table` over a prepared table, ordered by case; events
    in a case ordered as ``order`` (of :func:`_order_key_of`) says."""
    key = _order_key(t, order)
    close = _closing(t, profile)

    def first(col: str, where: ir.BooleanValue) -> ir.Value:
        return t[col].argmin(key, where=where)

    def last(col: str, where: ir.BooleanValue) -> ir.Value:
        return t[col].argmax(key, where=where)

    aggs: dict[str, Any] = {
        "start": t[TIMESTAMP].min(),
        "end": t[TIMESTAMP].max(),
        "duration_s": (t[T].max() - t[T].min()) / _US,
        "n_events": t.count(),
        "_close_activity": first(ACTIVITY, close),
        "closed_at": t[TIMESTAMP].min(where=close),
        "_close_t": t[T].min(where=close),
        "_start_t": t[T].min(),
    }
    if AMOUNT in t.columns:
        aggs[AMOUNT] = last(AMOUNT, t[AMOUNT].notnull())
    for col in ORG:
        if col in t.columns:
            # the owner on the (first) closing event that names one, else the latest known owner
            aggs[col] = ibis.coalesce(first(col, close & t[col].notnull()), last(col, t[col].notnull()))
    skip = set(REQUIRED) | set(ORG) | {AMOUNT} | set(_INTERNAL)
    for col in t.columns:
        if col not in skip and not col.startswith("_"):
            aggs[col] = first(col, t[col].notnull())
    c = t.group_by(t[CASE]).agg(**aggs)
    outcome = (
        ibis.cases(
            (_among(c._close_activity, profile.won), "won"),
            (_among(c._close_activity, profile.lost), "lost"),
            (c._close_activity.notnull(), "ended"),
            else_="open",
        )
    )
    c = c.mutate(outcome=outcome).drop("_close_activity")
    return c.order_by(c[CASE])


def stage_visits_expr(t: ir.Table, profile: SalesProcessProfile) -> ir.Table:
    """Ibis expression of :func:`stage_visits` over a prepared table, in the order it documents."""
    rel = t.filter(t[ACTIVITY].isin(list(profile.stages) + list(profile.closing)))
    close = _closing(rel, profile).cast("int64")
    w = _case_window(rel)
    rel = rel.mutate(
        _prev=rel[ACTIVITY].lag().over(w),
        _closed_before=close.sum().over(_case_window(rel, rows=(None, 0))) - close,
        _is_close=close == 1,
    )
    # nothing after the deal closed starts a visit; the closing event itself ends the last one
    rel = rel.filter(rel._closed_before == 0)
    bound = rel.filter(rel._is_close | rel._prev.isnull() | (rel._prev != rel[ACTIVITY]))
    wb = _case_window(bound)
    bound = bound.mutate(left=bound[TIMESTAMP].lead().over(wb), _next_t=bound[T].lead().over(wb))
    visits = bound.filter(~bound._is_close)
    wv = ibis.window(group_by=[visits[CASE], visits[ACTIVITY]], order_by=[visits[T], visits[ORD]])
    cols = {
        CASE: visits[CASE],
        "stage": visits[ACTIVITY],
        "visit": ibis.row_number().over(wv) + 1,
        "entered": visits[TIMESTAMP],
        "left": visits.left,
        "duration_s": (visits._next_t - visits[T]) / _US,
    }
    for col in ORG:
        if col in visits.columns:
            cols[col] = visits[col]
    out = visits.select(**cols)
    return out.order_by([out[CASE], out.entered, out.stage, out.visit])


def case_durations_expr(t: ir.Table, backend: str = "duckdb") -> ir.Table:
    """Ibis expression of :func:`case_durations` over a prepared table, ordered by case."""
    # The first and last timestamps, with the seconds between from those two alone, cost
    # a third less than aggregating the integer times and turning them into timestamps.
    c = t.group_by(t[CASE]).agg(start=t[TIMESTAMP].min(), end=t[TIMESTAMP].max())
    c = c.mutate(duration_s=(_epoch_us(c.end, backend) - _epoch_us(c.start, backend)) / _US)
    return c.order_by(c[CASE])


def created_by_period_expr(t: ir.Table, profile: SalesProcessProfile, unit: str, order: _EventKey) -> ir.Table:
    """Cases per period of their first event."""
    c = case_table_expr(t, profile, order)
    return c.group_by(period_start=c.start.truncate(unit)).agg(created=c.count())


def closed_by_period_expr(t: ir.Table, profile: SalesProcessProfile, unit: str, order: _EventKey) -> ir.Table:
    """Won, lost, won amount and mean cycle (days) of the cases closed in each period."""
    c = case_table_expr(t, profile, order)
    closed = c.filter(c.outcome != "open")
    won = closed.outcome == "won"
    agg = {
        "won": won.cast("int64").sum(),
        "lost": (closed.outcome == "lost").cast("int64").sum(),
        "mean_cycle_days": ((closed._close_t - closed._start_t) / (_US * 86400)).mean(),
    }
    if AMOUNT in t.columns:
        agg["won_amount"] = closed[AMOUNT].sum(where=won)
    return closed.group_by(period_start=closed.closed_at.truncate(unit)).agg(**agg)


# --------------------------------------------------------------------------- public API
def dfg(
    log: Any, *, performance: bool = False, backend: str = "duckdb", con: ibis.BaseBackend | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The DFG and the start/end activities in one pass over the log.

    Returns
    -------
    (edges, start_end): edges as :func:`directly_follows` (frequency only unless
    ``performance``), start_end as :func:`start_end_activities`. Hand both to
    :func:`to_pm4py_dfg` for pm4py.
    """
    with _session(log, backend=backend, con=con) as run:
        by_sort = performance and _quantiles_by_sort(log, run.backend)
        key = _event_key_of(run)
        g = run(dfg_expr, (key, performance, by_sort, run.backend == "duckdb"))
    return _edges(g, performance), _start_end(g)


#: Bytes of DuckDB memory per event above which the wait quantiles are computed by a
#: sort: measured, the in-memory quantile of 10 million events spills 4 GB under a 2 GB
#: limit and that of 100 million spills without bound under 8 GB.
_QUANTILE_BYTES_PER_EVENT = 200


def _quantiles_by_sort(log: Any, backend: str) -> bool:
    """Whether :func:`dfg_expr` should sort for the quantiles on ``backend``: on Spark (whose
    exact percentile also holds every value of a group) and on logs too large for DuckDB's memory."""
    if backend != "duckdb":
        return True
    n = _n_events(log)
    return n is not None and n * _QUANTILE_BYTES_PER_EVENT > _memory_limit_bytes()


def _n_events(log: Any) -> int | None:
    """The number of events, from the frame or the Parquet footers (CSV: estimated from
    its size); None for an Ibis table."""
    if isinstance(log, pd.DataFrame):
        return len(log)
    if not isinstance(log, (str, Path)):
        return None
    path = Path(log)
    if _file_kind(path) == "csv":
        return int(sum(f.stat().st_size for f in _files(path)) / 50)  # ~50 bytes a line
    lit = _sql_path(path)
    cur = connect("duckdb").con.cursor()
    try:
        return int(cur.sql(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({lit})").fetchall()[0][0])
    except duckdb.Error:
        return None  # unreadable: the aggregation itself will say why
    finally:
        cur.close()


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return [f for f in path.rglob("*") if f.is_file()]
    return [Path(f) for f in sorted(map(str, path.parent.glob(path.name)))]


def _memory_limit_bytes() -> float:
    """DuckDB's memory limit in bytes (its default is 80% of the machine's memory)."""
    cur = connect("duckdb").con.cursor()
    try:
        number, unit = cur.sql("SELECT current_setting('memory_limit')").fetchall()[0][0].split()
    finally:
        cur.close()
    powers = {"B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "KB": 1, "MB": 2, "GB": 3, "TB": 4}
    return float(number) * (1024 if "i" in unit else 1000) ** powers[unit]


def _edges(g: pd.DataFrame, performance: bool) -> pd.DataFrame:
    cols = ["source", "target", "frequency"]
    if performance:
        cols += ["wait_mean_s", "wait_median_s", "wait_p90_s", "wait_min_s", "wait_max_s"]
    out = g.loc[g["target"].notna(), cols].copy()
    out["frequency"] = out["frequency"].astype("int64")
    return _sorted(out, ["frequency", "source", "target"], [False, True, True])


def _start_end(g: pd.DataFrame) -> pd.DataFrame:
    start = g.groupby("source")["_starts"].sum()
    # a case's end and a missing activity (Ibis tables only) both have no target name
    end = g.loc[g["target"].isna()].groupby("source")["frequency"].sum()
    out = pd.DataFrame({"start": start, "end": end}).fillna(0).astype("int64")
    out = out[(out["start"] > 0) | (out["end"] > 0)].rename_axis("activity").reset_index()
    return _sorted(out, ["start", "end", "activity"], [False, False, True])


def directly_follows(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """Directly-follows pairs with their frequency and waiting-time statistics.

    A pair is two consecutive events of a case (pm4py's ``discover_dfg``); the
    wait is the time between them in seconds (``discover_performance_dfg``).

    Returns
    -------
    DataFrame[source, target, frequency, wait_mean_s, wait_median_s, wait_p90_s,
    wait_min_s, wait_max_s], most frequent first.
    """
    return dfg(log, performance=True, backend=backend, con=con)[0]


def start_end_activities(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """How many cases start and end with each activity.

    Returns
    -------
    DataFrame[activity, start, end] (pm4py's ``get_start_activities`` /
    ``get_end_activities`` as columns), only activities that start or end a case.
    """
    return dfg(log, backend=backend, con=con)[1]


def activity_counts(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """Events and distinct cases per activity: DataFrame[activity, events, cases]."""
    with _session(log, backend=backend, con=con) as run:
        out = run(activity_counts_expr)
    out[["events", "cases"]] = out[["events", "cases"]].astype("int64")
    return _sorted(out, ["events", "activity"], [False, True])


def variants(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """The variants (activity sequences of cases), most frequent first, ties by variant.

    Returns
    -------
    DataFrame[variant (tuple of str), count, share, mean_duration_s]; ``share``
    is the fraction of cases, the duration is first to last event of a case.
    """
    # The engine returns codes and the key carries the activities' names: they go on here, because
    # shipping every variant as a list of strings out of the engine costs more than the rest.
    with _session(log, backend=backend, con=con) as run:
        key = _event_key_of(run)
        out = run(variants_expr, (key,), arrow=True)
    names = np.full(1 << key.code_bits, None, dtype=object)  # all ones: a missing activity
    names[:len(key.activities)] = key.activities
    count = out["count"].to_numpy().astype("int64")
    total = count.sum()
    return pd.DataFrame({
        "variant": _tuples(out["_codes"].combine_chunks(), names),
        "count": count,
        "share": count / total if total else np.full(len(count), np.nan),
        "mean_duration_s": out["mean_duration_s"].to_numpy(zero_copy_only=False).astype("float64"),
    })


def _tuples(lists: pa.ListArray, names: np.ndarray) -> list[tuple]:
    """Each list of codes as a tuple of ``names``."""
    codes = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    ends = pc.list_value_length(lists).to_numpy(zero_copy_only=False).cumsum().tolist()
    # Millions of new objects would set off the cyclic garbage collector again and again
    # (a third of the time at 10M events); tuples of strings cannot form cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        flat = names[codes].tolist()
        return list(map(tuple, map(flat.__getitem__, map(slice, [0, *ends[:-1]], ends))))
    finally:
        if enabled:
            gc.enable()


def case_durations(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """Each case's first and last event and the seconds between, by case_id.

    Returns
    -------
    DataFrame[case_id, start, end, duration_s]
    """
    # The engine orders the cases: both engines compare strings by code point, as pandas does.
    with _session(log, backend=backend, con=con) as run:
        return run(case_durations_expr, (run.backend,))


def case_table(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """One row per case: its span, size, outcome and attributes.

    A case is closed by its first event whose activity is one of
    ``profile.closing``; ``outcome`` is 'won', 'lost', 'ended' (closed by one of
    ``profile.ends``, a finish without a won or lost outcome) or 'open'.
    ``amount`` is the last known amount; ``rep``, ``team`` and
    ``region`` are those on the closing event, else the last known ones; every
    other attribute column takes the case's first non-null value.

    Returns
    -------
    DataFrame[case_id, start, end, duration_s, n_events, outcome, closed_at,
    amount?, rep?, team?, region?, <attributes>...], sorted by case_id.
    """
    profile = get_profile(profile, log)
    with _session(log, backend=backend, con=con) as run:
        out = run(case_table_expr, (profile, _order_key_of(run)))
    out = out.drop(columns=["_close_t", "_start_t"])
    out["n_events"] = out["n_events"].astype("int64")
    first = [CASE, "start", "end", "duration_s", "n_events", "outcome", "closed_at"]
    first += [c for c in (AMOUNT, *ORG) if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]]


def stage_visits(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """Visits of the profile's stages, one row per visit.

    Consecutive events of the same stage are one visit; another stage or the
    close ends it (loops such as follow-ups and unknown activities do neither);
    coming back to a stage later is a new visit. Events after the close are
    ignored.

    Returns
    -------
    DataFrame[case_id, stage, visit (1, 2, ... per case and stage), entered, left
    (NaT while current), duration_s, rep?, team?, region?] (org columns of the
    entering event), sorted by case_id and entered.
    """
    profile = get_profile(profile, log)
    # sorted by the engine: pandas took 7 of 15 s to sort the 4.5M visits of 10M events
    with _session(log, backend=backend, con=con) as run:
        out = run(stage_visits_expr, (profile,))
    out["visit"] = out["visit"].astype("int64")
    return out


_FREQS = {"Q": "quarter", "M": "month", "W": "week", "Y": "year"}


def kpis_by_period(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    freq: str = "Q",
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """Deals created, won and lost per period, with won amount, win rate and cycle.

    A deal counts as created in the period of its first event and as won/lost in
    the period of its close. ``win_rate`` = won / (won + lost) of the deals closed
    in the period; ``mean_cycle_days`` is their mean time from first event to close.

    Returns
    -------
    DataFrame[period ('2026Q3', '2026-07', ...), period_start, created, won, lost,
    won_amount, win_rate, mean_cycle_days], in time order.
    """
    if freq.upper() not in _FREQS:
        raise WorkbenchError(f"unknown period {freq!r}.", hint=f"use one of {sorted(_FREQS)}.")
    unit = freq.upper()
    profile = get_profile(profile, log)
    with _session(log, backend=backend, con=con) as run:
        order = _order_key_of(run)
        a, b = (run(build, (profile, unit, order)) for build in (created_by_period_expr, closed_by_period_expr))
    out = a.merge(b, on="period_start", how="outer").sort_values("period_start", ignore_index=True)
    for col in ("created", "won", "lost"):
        out[col] = out[col].fillna(0).astype("int64")
    if "won_amount" in out.columns:  # a period without wins won nothing
        out["won_amount"] = out["won_amount"].astype("float64").fillna(0.0)
    else:
        out["won_amount"] = np.nan
    closed_n = out["won"] + out["lost"]
    out["win_rate"] = np.where(closed_n > 0, out["won"] / closed_n.where(closed_n > 0, 1), np.nan)
    start = pd.to_datetime(out["period_start"], utc=True)
    out["period_start"] = start
    out.insert(0, "period", start.dt.tz_localize(None).dt.to_period(unit).astype(str))
    return out[["period", "period_start", "created", "won", "lost", "won_amount", "win_rate", "mean_cycle_days"]]


# --------------------------------------------------------------------------- to pm4py
def to_pm4py_dfg(
    edges: pd.DataFrame, start_end: pd.DataFrame, *, measure: str = "frequency"
) -> tuple[dict, dict, dict]:
    """pm4py's ``(dfg, start_activities, end_activities)`` from the engine's results.

    ``measure='frequency'`` gives ``{(a, b): count}`` as ``pm4py.discover_dfg``;
    ``'performance'`` gives ``{(a, b): {'mean', 'median', 'min', 'max'}}`` in
    seconds as ``pm4py.discover_performance_dfg``.
    """
    if measure == "frequency":
        dfg = {(s, t): int(f) for s, t, f in zip(edges["source"], edges["target"], edges["frequency"])}
    elif measure == "performance":
        dfg = {
            (r.source, r.target): {
                "mean": float(r.wait_mean_s),
                "median": float(r.wait_median_s),
                "min": float(r.wait_min_s),
                "max": float(r.wait_max_s),
            }
            for r in edges.itertuples(index=False)
        }
    else:
        raise WorkbenchError(f"unknown measure {measure!r}.", hint="use 'frequency' or 'performance'.")
    starts = {a: int(n) for a, n in zip(start_end["activity"], start_end["start"]) if n > 0}
    ends = {a: int(n) for a, n in zip(start_end["activity"], start_end["end"]) if n > 0}
    return dfg, starts, ends


def _sorted(df: pd.DataFrame, by: Sequence[str], ascending: Sequence[bool]) -> pd.DataFrame:
    if list(by) and len(by) == 1 and ascending[0] and df[by[0]].is_monotonic_increasing:
        return df.reset_index(drop=True)  # already in order: the stable sort would change nothing
    return df.sort_values(list(by), ascending=list(ascending), kind="mergesort", ignore_index=True)
