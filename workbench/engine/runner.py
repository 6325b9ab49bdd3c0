"""Running the expressions: one session per call over a log, compiled SQL cached, the inputs checked once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
import uuid

import duckdb
import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends.sql.datatypes import DuckDBType

from ..errors import WorkbenchError
from ..database import is_database_url
from ..schema import (
    PM4PY_NAMES,
    REQUIRED,
)
from .backends import connect
from .sources import (
    BASE_COLUMN,
    FILE_COLUMN,
    ORD,
    canonical_frame,
    events,
    file_bases,
    file_kind,
    file_sql,
    no_value,
    parquet_set,
    prepare,
    sql_path,
)

Build = Callable[..., ir.Table]
#: Names the DuckDB fast path registers the input, and the prepared events over it, under
#: (per cursor, so calls don't clash).
_INPUT, _SRC = "_wb_input", "_wb_events"


@dataclass(frozen=True)
class Runner:
    """``run(build, args=(), arrow=False)`` runs ``build(prepared, *args)`` on a session's
    log and returns a DataFrame (an Arrow table with ``arrow``); ``backend`` names the
    engine that runs it."""

    execute: Callable[[Build, tuple, bool], "pd.DataFrame | pa.Table"]
    backend: str
    #: ``store(build, args, name)``: the build's result kept as a table of the session, for
    #: later builds to read (in their ``args``) instead of computing it again.
    store: Callable[[Build, tuple, str], ir.Table]

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
        expr = build(prepare(ibis.table(schema, name=_SRC), "duckdb"), *args)
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
    if file_kind(path) == "parquet":
        lit = sql_path(path)
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
            if parquet_set(path):  # name the file and its row
                file, base = cur.sql(f"SELECT {FILE_COLUMN}, {BASE_COLUMN} FROM ({file_bases(sql_path(path))}) "
                                     f"WHERE {BASE_COLUMN} <= {first} ORDER BY {BASE_COLUMN} DESC LIMIT 1").fetchall()[0]
                first -= int(base)
            raise no_value(n, in_file[c], first + 1, file=file)


@contextmanager
def session(log: Any, *, backend: str, con: ibis.BaseBackend | None) -> Iterator[Runner]:
    """A :class:`Runner` of builds on ``log``; one session can run several builds, each
    knowing the results of the ones before.

    DuckDB over a DataFrame or a file takes a fast path: the input is registered
    on a fresh cursor and the SQL Ibis compiled for its schema is reused, which
    keeps a call on a small log at a few milliseconds.
    """
    if (con is None and backend == "duckdb" and isinstance(log, (pd.DataFrame, str, Path))
            and not is_database_url(log)):
        cur = connect("duckdb").con.cursor()
        file = str(log) if isinstance(log, (str, Path)) else None
        try:
            # a cursor starts in the machine's zone: periods must be cut, and times returned, in UTC
            cur.execute("SET TimeZone = 'UTC'")
            # pandas keeps strings as Arrow large strings: handing it those saves a copy of
            # every string of a result (a million case ids: 0.03-0.25 s)
            cur.execute("SET arrow_large_buffer_size = true")
            if file is None:
                cur.register(_INPUT, canonical_frame(log))
            else:
                # A CSV file is parsed once, into a temporary table (DuckDB spills it to disk
                # beyond its memory limit): the check for empty cells and every query of the
                # session would otherwise parse it again. Parquet is scanned where it lies.
                kind = "TABLE" if file_kind(Path(log)) == "csv" else "VIEW"
                cur.execute(f"CREATE TEMP {kind} {_INPUT} AS {file_sql(Path(log))}")
            # The prepared events as a view of their own: builds that read them twice (the
            # activity codes and the events) then scan the input twice rather than have
            # DuckDB materialize every event as a shared CTE.
            raw = _schema(cur, _INPUT)
            prepared = prepare(ibis.table(raw, name=_INPUT), "duckdb", file=file)
            cur.execute(f"CREATE TEMP VIEW {_SRC} AS {ibis.to_sql(prepared, dialect='duckdb')}")
            if file is not None:
                _check_no_empty_cells(cur, Path(file), raw)
            schema = _schema(cur, _SRC)

            def compiled(build: Build, args: tuple) -> str:
                sql, tables = _compiled(build, schema, args)
                for name, data in tables:
                    cur.register(name, data)
                return sql

            def run(build: Build, args: tuple, arrow: bool) -> pd.DataFrame | pa.Table:
                tab = cur.sql(compiled(build, args)).to_arrow_table()
                return tab if arrow else tab.to_pandas()

            def store(build: Build, args: tuple, name: str) -> ir.Table:
                cur.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {compiled(build, args)}")
                return ibis.table(_schema(cur, name), name=name)

            yield Runner(run, "duckdb", store)
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
    temporary: list[str] = []

    def store_generic(build: Build, args: tuple, name: str) -> ir.Table:
        expr = build(t, *args)
        unique = f"{name}_{uuid.uuid4().hex}"  # the connection may be shared by other sessions
        try:
            stored = con.create_table(unique, expr, temp=True)
        except NotImplementedError:  # Spark through Ibis has no temporary tables: computed where read
            return expr
        temporary.append(unique)
        return stored

    try:
        yield Runner(lambda build, args, arrow: (con.to_pyarrow if arrow else con.execute)(build(t, *args)),
                     con.name, store_generic)
    finally:
        for name in temporary:  # Ibis's own drop_table writes a statement without the name here
            con.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
