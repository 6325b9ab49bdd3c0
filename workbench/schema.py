"""Column names of the canonical event log and the pm4py names they map to.

The canonical event log is a pandas DataFrame with one row per event, sorted by
``case_id`` then ``timestamp`` (ties keep their input order):

========== ====================================== ==========================
column     meaning                                dtype
========== ====================================== ==========================
case_id    the deal / opportunity                 string
activity   what happened                          string
timestamp  when                                   datetime64, tz UTC
rep        who did it / the deal owner (optional) string
team       the rep's team (optional)              string
region     the rep's region (optional)            string
amount     deal value at that event (optional)    float64
========== ====================================== ==========================

Any other column is kept as an attribute (``customer_type`` new/existing,
``lead_source``, ``product``, ``channel``, ``close_date``...).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import WorkbenchError

CASE = "case_id"
ACTIVITY = "activity"
TIMESTAMP = "timestamp"
REP = "rep"
TEAM = "team"
REGION = "region"
AMOUNT = "amount"
#: The expected close date a CRM stage history records with each change (optional column).
CLOSE_DATE = "close_date"

REQUIRED = (CASE, ACTIVITY, TIMESTAMP)

#: Deviations from the sales process profile, as the generator plants them and conformance finds them.
DEVIATION_KINDS = (
    "skipped_stage",
    "premature_proposal",
    "stage_regression",
    "followup_gap",
    "after_close",
    "won_without_milestones",
)
ORG = (REP, TEAM, REGION)

#: pm4py's standard column names, accepted on input, produced for pm4py.
PM4PY_NAMES = {
    CASE: "case:concept:name",
    ACTIVITY: "concept:name",
    TIMESTAMP: "time:timestamp",
    REP: "org:resource",
}


class MissingColumnError(WorkbenchError):
    """An analysis was asked of a log without the column it needs."""


def to_pm4py(log: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of a canonical log with pm4py's column names.

    pm4py adds helper columns to the frames it is given, so it always gets a copy. Times are
    in nanoseconds: with rustxes installed, pm4py.write_xes reads microsecond times as
    nanoseconds and writes 1970 dates.
    """
    out = log.rename(columns={k: v for k, v in PM4PY_NAMES.items() if k in log.columns})
    out[PM4PY_NAMES[CASE]] = out[PM4PY_NAMES[CASE]].astype(str)
    out[PM4PY_NAMES[ACTIVITY]] = out[PM4PY_NAMES[ACTIVITY]].astype(str)
    if TIMESTAMP in log.columns and isinstance(log[TIMESTAMP].dtype, pd.DatetimeTZDtype):
        try:
            out[PM4PY_NAMES[TIMESTAMP]] = out[PM4PY_NAMES[TIMESTAMP]].dt.as_unit("ns")
        except pd.errors.OutOfBoundsDatetime:
            pass  # beyond 2262: nanoseconds cannot hold it (and pm4py's own writer takes microseconds)
    return out


def has_column(log: pd.DataFrame, column: str) -> bool:
    """True when ``column`` exists and holds at least one value."""
    return column in log.columns and bool(log[column].notna().any())


def require(log: pd.DataFrame, columns: tuple[str, ...] | list[str], analysis: str) -> None:
    """Raise a one-line :class:`~workbench.errors.WorkbenchError` when ``log`` lacks a column.

    Analyses that need ``rep`` or ``amount`` call this first, so that a log
    without them gets "<analysis> needs column 'rep', which this log does not
    have" and the caller can skip that analysis and run the rest.
    """
    for column in columns:
        if not has_column(log, column):
            raise MissingColumnError(
                f"{analysis} needs column {column!r}, which the data given does not have; skipped.",
                column=column,
                hint=f"map a column of your export to {column!r} to get this analysis.",
            )


def check_log(log: pd.DataFrame) -> pd.DataFrame:
    """Raise a clear error unless ``log`` is a canonical event log (DataFrame, required columns, UTC times)."""
    if not isinstance(log, pd.DataFrame):
        raise WorkbenchError(
            f"expected the event log as a pandas DataFrame, got {type(log).__name__}.",
            hint="load it with workbench.io.read_event_log first.",
        )
    missing = [c for c in REQUIRED if c not in log.columns]
    if missing:
        raise WorkbenchError(
            f"the event log has no column {missing[0]!r}.",
            column=missing[0],
            hint="load it with workbench.io.read_event_log, which maps your columns.",
        )
    ts = log[TIMESTAMP]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise WorkbenchError(
            "timestamps must be timezone-aware datetimes (UTC).",
            column=TIMESTAMP,
            hint="load the log with workbench.io.read_event_log, which converts them.",
        )
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise WorkbenchError(
            "a timestamp is missing.", column=TIMESTAMP, row=row + 1,
            hint="set such rows aside (read_event_log quarantines them).",
        )
    return log
