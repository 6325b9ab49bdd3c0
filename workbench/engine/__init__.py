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

Below :data:`.inmemory.SMALL_EVENTS` events, a DataFrame or a single Parquet file on
DuckDB takes the in-memory path (:mod:`.inmemory`): the DFG, the variants and the
activity counts are counted in NumPy from one sort of the events, with the same results,
because there the columnar path's fixed costs exceed the work.

Functions take the log as a canonical DataFrame, a Parquet/CSV path, an Ibis
table or a database table's URL (``postgresql://...?table=events``: the
aggregation then runs in that database, :mod:`workbench.database`), plus
``backend="duckdb" | "pyspark"`` or an Ibis connection ``con``.

The engine is the event-level layer and speaks pm4py's unit, seconds; the
analyses above it return days. Its modules: :mod:`.backends` (DuckDB settings,
Spark), :mod:`.sources` (what is read, prepared as one table), :mod:`.runner`
(a session per call), :mod:`.expressions` (the Ibis expressions), :mod:`.inmemory` (small
logs in NumPy) and :mod:`.api` (the functions below).
"""

from .api import (
    Discovery,
    activity_counts,
    case_durations,
    case_table,
    deal_states,
    dfg,
    directly_follows,
    discovery_bundle,
    kpis_by_period,
    stage_visits,
    start_end_activities,
    to_pm4py_dfg,
    variants,
)
from .backends import EngineConfig, configure, connect, disconnect, spark_session
from .sources import events

__all__ = [
    "activity_counts", "case_durations", "case_table", "configure", "connect", "deal_states", "dfg", "directly_follows",
    "disconnect", "discovery_bundle", "Discovery", "events", "kpis_by_period", "stage_visits", "start_end_activities",
    "to_pm4py_dfg", "variants",
    "EngineConfig", "spark_session",
]
