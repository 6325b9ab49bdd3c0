"""What the engine reads: DataFrames, Parquet and CSV files (one, a folder, a glob), Ibis tables and
database tables named by a URL (:mod:`workbench.database`), prepared as one table.

The prepared table has the canonical columns plus two internal ones: the input
ordinal and the time in microseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..database import database_table, hide_password, is_database_url
from ..schema import (
    ACTIVITY,
    CASE,
    PM4PY_NAMES,
    REQUIRED,
    TIMESTAMP,
    check_log,
)
from .backends import UTC_TS, connect, epoch_us

#: Internal columns of the prepared table: input ordinal, time in microseconds.
ORD, T = "_ord", "_t"

INTERNAL = (ORD, T)


US = 1e6


def no_value(n: int, column: str, row: int, file: str | None = None) -> WorkbenchError:
    """The error for events that lack a case, an activity or a timestamp."""
    what = "1 event has" if n == 1 else f"{n} events have"
    return WorkbenchError(
        f"{what} no value in this column.", file=file, column=column, row=row,
        hint="load the log with workbench.io.read_event_log, which sets such rows aside and counts them "
             "(`workbench check FILE` lists them), or fill the cells.")


def file_kind(path: Path) -> str:
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


def sql_path(path: Path) -> str:
    """The file (a directory: every Parquet file under it) as a DuckDB string literal."""
    src = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
    return "'" + src.replace("'", "''") + "'"


def parquet_set(path: Path) -> bool:
    """Whether ``path`` names several Parquet files (a directory or a glob), not one file."""
    return file_kind(path) == "parquet" and (path.is_dir() or any(ch in str(path) for ch in "*?["))


#: DuckDB's columns of a Parquet row's file and of the rows before that file (``file_sql``).
FILE_COLUMN, BASE_COLUMN = "_wb_file", "_wb_base"


def file_bases(lit: str) -> str:
    """DuckDB query of each Parquet file's name and the number of rows in the files before
    it, in path order."""
    before = "sum(num_rows) OVER (ORDER BY file_name) - num_rows"
    return f"SELECT file_name AS {FILE_COLUMN}, CAST({before} AS BIGINT) AS {BASE_COLUMN} FROM parquet_file_metadata({lit})"


def file_sql(path: Path) -> str:
    """DuckDB source of a file, numbering its rows in file order as ``_ord``."""
    kind = file_kind(path)
    lit = sql_path(path)
    if parquet_set(path):
        # Row numbers restart in every file: the files' row counts before them make the
        # numbers run on, so that ties between files keep the input order.
        return (f"SELECT * EXCLUDE (file_row_number, {FILE_COLUMN}, {BASE_COLUMN}), {BASE_COLUMN} + file_row_number AS {ORD} "
                f"FROM read_parquet({lit}, file_row_number=true, filename='{FILE_COLUMN}') "
                f"JOIN ({file_bases(lit)}) USING ({FILE_COLUMN})")
    if kind == "parquet":
        return f"SELECT * EXCLUDE (file_row_number), file_row_number AS {ORD} FROM read_parquet({lit}, file_row_number=true)"
    # DuckDB keeps insertion order for a plain scan, so this numbers the file's lines.
    return f"SELECT *, row_number() OVER () - 1 AS {ORD} FROM read_csv({lit}, header=true)"


def _read_file(path: Path, con: ibis.BaseBackend) -> ir.Table:
    """A file as an Ibis table of any backend (Spark: no row order, see the module doc)."""
    kind = file_kind(path)
    try:
        if con.name == "duckdb":
            return con.sql(file_sql(path))
        return con.read_parquet(str(path)) if kind == "parquet" else con.read_csv(str(path), header=True)
    except Exception as exc:  # the backends raise their own types for unreadable files
        raise WorkbenchError(f"cannot read the file: {exc}", file=str(path), hint="check its format.") from None


def canonical_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The DataFrame checked, with canonical names, ``_ord`` and ``_t`` added (a new frame)."""
    log = check_log(log.rename(columns={v: k for k, v in PM4PY_NAMES.items()
                                        if v in log.columns and k not in log.columns}))
    for c in (CASE, ACTIVITY):  # check_log has seen to the timestamps
        bad = log[c].isna().to_numpy()
        if bad.any():
            raise no_value(int(bad.sum()), c, int(np.argmax(bad)) + 1)
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


def prepare(t: ir.Table, backend: str, *, file: str | None = None) -> ir.Table:
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
        casts[TIMESTAMP] = t[TIMESTAMP].cast(UTC_TS)
    if casts:
        t = t.mutate(**casts)
    if ORD not in t.columns:
        # no input order known (Spark over files, a foreign table): ties break by activity name
        t = t.mutate(**{ORD: ibis.row_number().over(order_by=[t[CASE], t[TIMESTAMP], t[ACTIVITY]])})
    if T not in t.columns:
        t = t.mutate(**{T: epoch_us(t[TIMESTAMP], backend)})
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
        if is_database_url(log):  # the aggregations run in that database
            t, con = database_table(str(log))
            file = hide_password(str(log))
            return prepare(t, con.name, file=file), con
        con = con or connect(backend)
        if isinstance(log, pd.DataFrame):
            t = _memtable(canonical_frame(log))
        elif isinstance(log, (str, Path)):
            file = str(log)
            t = _read_file(Path(log), con)
        else:
            raise WorkbenchError(
                f"the engine takes a DataFrame, a Parquet/CSV path or an Ibis table, not {type(log).__name__}."
            )
    return prepare(t, con.name, file=file), con


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return [f for f in path.rglob("*") if f.is_file()]
    return [Path(f) for f in sorted(map(str, path.parent.glob(path.name)))]


def n_events(log: Any) -> int | None:
    """The number of events, from the frame or the Parquet footers (CSV: estimated from
    its size); None for an Ibis table."""
    if isinstance(log, pd.DataFrame):
        return len(log)
    if not isinstance(log, (str, Path)):
        return None
    path = Path(log)
    if file_kind(path) == "csv":
        return int(sum(f.stat().st_size for f in _files(path)) / 50)  # ~50 bytes a line
    lit = sql_path(path)
    cur = connect("duckdb").con.cursor()
    try:
        return int(cur.sql(f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({lit})").fetchall()[0][0])
    except duckdb.Error:
        return None  # unreadable: the aggregation itself will say why
    finally:
        cur.close()


def memory_limit_bytes() -> float:
    """DuckDB's memory limit in bytes (its default is 80% of the machine's memory)."""
    cur = connect("duckdb").con.cursor()
    try:
        number, unit = cur.sql("SELECT current_setting('memory_limit')").fetchall()[0][0].split()
    finally:
        cur.close()
    powers = {"B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4, "KB": 1, "MB": 2, "GB": 3, "TB": 4}
    return float(number) * (1024 if "i" in unit else 1000) ** powers[unit]
