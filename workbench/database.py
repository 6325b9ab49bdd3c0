"""Event logs where they live: a database table named by a URL, read through Ibis.

``postgresql://user:password@host:5432/crm?table=sales.events`` names the table
``sales.events``; everything but ``table`` is Ibis's connection URL
(:func:`ibis.connect`). The engine runs its aggregations in the database itself
(:func:`workbench.engine.events` takes such a URL) and brings back only their small
results; :func:`workbench.io.read_event_log` reads the rows to check them, as it
reads a file.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pandas as pd

from .errors import WorkbenchError
from .validation import plain_reason

#: URL schemes read as a database table through Ibis (its backend must be installed: PostgreSQL
#: comes with ``pip install 'ibis-framework[postgres]'``, the ``postgres`` extra).
DATABASE_SCHEMES = ("postgresql", "postgres", "duckdb", "mysql", "mssql", "snowflake", "bigquery", "trino")


def is_database_url(source: object) -> bool:
    """Whether ``source`` names a database table (``scheme://...?table=name``) rather than a file."""
    return isinstance(source, str) and source.split("://", 1)[0].lower() in DATABASE_SCHEMES and "://" in source


def hide_password(url: str) -> str:
    """The URL as it may be shown: without the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def table_name(url: str) -> str:
    """The table a database URL names (``?table=``), '' when it names none."""
    return parse_qs(urlsplit(url).query).get("table", [""])[0]


def database_table(url: str):
    """The Ibis table a database URL names (``?table=name`` or ``?table=schema.name``) and its connection."""
    import ibis

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    shown = hide_password(url)
    if "table" not in query:
        raise WorkbenchError("the database URL names no table.", file=shown,
                             hint="add ?table=<name> (or ?table=<schema>.<name>) to the URL.")
    table = query.pop("table")[0]
    rest = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    try:
        con = ibis.connect(rest)
    except Exception as exc:  # a missing driver, a refused connection, a wrong password
        raise WorkbenchError(f"cannot connect to the database ({plain_reason(exc)}).", file=shown,
                             hint="check the URL, that the server runs, and that Ibis's backend for it is "
                                  "installed (PostgreSQL: pip install 'ibis-framework[postgres]').") from None
    schema, _, name = table.rpartition(".")
    try:
        return con.table(name, database=schema or None), con
    except Exception as exc:
        raise WorkbenchError(f"the database has no table {table!r} ({plain_reason(exc)}).", file=shown,
                             hint="check the table's name and schema.") from None


def read_database(url: str) -> pd.DataFrame:
    """Every row of the table a database URL names, in a stable order (by every column: a
    table has no order of its own, and ties in time then break the same way each time)."""
    t, _ = database_table(url)
    try:
        return t.order_by(list(t.columns)).to_pandas()
    except Exception as exc:
        raise WorkbenchError(f"cannot read the table ({plain_reason(exc)}).", file=hide_password(url),
                             hint="check that the user may read it.") from None
