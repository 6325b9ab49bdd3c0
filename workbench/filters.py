"""Filters analysts expect on a canonical event log: pandas in, pandas out.

Every filter returns a new canonical log (same columns, sorted, index 0..n-1)
and never changes its input. Case-level filters keep or drop whole cases; the
only event-level filters are :func:`filter_time_window` with ``mode='events'``,
:func:`filter_attribute` with ``level='event'`` and :func:`filter_lifecycle`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from . import engine
from .calendar import to_utc
from .errors import WorkbenchError
from .profile import SalesProcessProfile, get_profile
from .schema import ACTIVITY, CASE, ORG, TIMESTAMP, check_log, require

#: Columns that may hold XES lifecycle transitions.
LIFECYCLE_COLUMNS = ("lifecycle", "lifecycle:transition")
OUTCOMES = ("won", "lost", "open")
_TIME_MODES = ("contained", "intersecting", "started", "completed", "events")



def _keep_rows(log: pd.DataFrame, mask: np.ndarray | pd.Series) -> pd.DataFrame:
    return log[np.asarray(mask, dtype=bool)].reset_index(drop=True)


def _keep_cases(log: pd.DataFrame, cases: Iterable[str]) -> pd.DataFrame:
    return _keep_rows(log, log[CASE].isin(set(cases)).to_numpy())


def _as_values(values: object) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return [values]
    return list(values)


def _span(log: pd.DataFrame) -> pd.DataFrame:
    return log.groupby(CASE, sort=False)[TIMESTAMP].agg(["min", "max", "size"])


def filter_time_window(
    log: pd.DataFrame,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    mode: str = "intersecting",
) -> pd.DataFrame:
    """Keep what falls in ``[start, end)`` (UTC; either bound may be open).

    Parameters
    ----------
    mode : {'intersecting', 'contained', 'started', 'completed', 'events'}
        Cases with at least one event in the window, cases entirely inside it,
        cases whose first / last event is inside it, or only the events inside it
        (pm4py's ``filter_time_range`` modes).
    """
    check_log(log)
    if mode not in _TIME_MODES:
        raise WorkbenchError(f"unknown time-window mode {mode!r}.", hint=f"use one of {list(_TIME_MODES)}.")
    lo = to_utc(start) if start is not None else None
    hi = to_utc(end) if end is not None else None

    def inside(ts: pd.Series) -> pd.Series:
        ok = pd.Series(True, index=ts.index)
        if lo is not None:
            ok &= ts >= lo
        if hi is not None:
            ok &= ts < hi
        return ok

    if mode == "events":
        return _keep_rows(log, inside(log[TIMESTAMP]))
    if mode == "intersecting":
        return _keep_cases(log, log.loc[inside(log[TIMESTAMP]), CASE])
    span = _span(log)
    keep = {
        "contained": inside(span["min"]) & inside(span["max"]),
        "started": inside(span["min"]),
        "completed": inside(span["max"]),
    }[mode]
    return _keep_cases(log, span.index[keep.to_numpy()])


def filter_attribute(
    log: pd.DataFrame,
    *,
    column: str,
    values: object,
    level: str = "case",
    keep: bool = True,
) -> pd.DataFrame:
    """Keep (or drop, ``keep=False``) by the value of any attribute column.

    ``level='case'`` keeps whole cases having at least one event with one of
    ``values``; ``level='event'`` keeps only the matching events.
    """
    check_log(log)
    require(log, [column], f"filtering on {column!r}")
    if level not in ("case", "event"):
        raise WorkbenchError(f"unknown level {level!r}.", hint="use 'case' or 'event'.")
    hit = log[column].isin(_as_values(values)).to_numpy()
    if level == "event":
        return _keep_rows(log, hit if keep else ~hit)
    cases = set(log.loc[hit, CASE])
    in_cases = log[CASE].isin(cases).to_numpy()
    return _keep_rows(log, in_cases if keep else ~in_cases)


def filter_org(
    log: pd.DataFrame,
    *,
    rep: object = None,
    team: object = None,
    region: object = None,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Keep the deals owned by the given reps, teams and/or regions.

    A deal's owner is the rep on its closing event, else its last known rep
    (:func:`workbench.engine.case_table`), so a handed-over deal counts once.
    """
    check_log(log)
    wanted = {c: v for c, v in zip(ORG, (rep, team, region)) if v is not None}
    if not wanted:
        return log.reset_index(drop=True).copy()
    require(log, list(wanted), "filtering by " + " / ".join(wanted))
    cases = engine.case_table(log, get_profile(profile, log))
    ok = np.ones(len(cases), dtype=bool)
    for col, values in wanted.items():
        ok &= cases[col].isin(_as_values(values)).to_numpy()
    return _keep_cases(log, cases.loc[ok, CASE])


def filter_outcome(
    log: pd.DataFrame, *, outcome: str | Iterable[str], profile: SalesProcessProfile | str | None = None
) -> pd.DataFrame:
    """Keep the deals whose outcome is ``'won'``, ``'lost'`` or ``'open'`` (one or several)."""
    check_log(log)
    wanted = _as_values(outcome)
    if bad := [o for o in wanted if o not in OUTCOMES]:
        raise WorkbenchError(f"unknown outcome {bad[0]!r}.", hint=f"use one of {list(OUTCOMES)}.")
    cases = engine.case_table(log, get_profile(profile, log))
    return _keep_cases(log, cases.loc[cases["outcome"].isin(wanted), CASE])


def filter_top_variants(
    log: pd.DataFrame, *, coverage: float | None = 0.8, top: int | None = None
) -> pd.DataFrame:
    """Keep the cases of the most frequent variants.

    Either the ``top`` most frequent variants, or the fewest most frequent
    variants that together hold at least ``coverage`` of the cases.
    """
    check_log(log)
    if log.empty:
        return log.reset_index(drop=True).copy()
    var = engine.variants(log)
    if top is not None:
        if top < 1:
            raise WorkbenchError(f"top={top} keeps no variant.", hint="give top >= 1.")
        chosen = var["variant"].iloc[:top]
    else:
        if coverage is None or not 0 < coverage <= 1:
            raise WorkbenchError(f"coverage={coverage} is not in (0, 1].", hint="give e.g. coverage=0.8.")
        before = var["share"].cumsum().shift(fill_value=0.0)
        chosen = var.loc[before < coverage - 1e-12, "variant"]
    per_case = log.groupby(CASE, sort=False)[ACTIVITY].agg(tuple)
    return _keep_cases(log, per_case.index[per_case.isin(set(chosen))])


def filter_case_duration(
    log: pd.DataFrame, *, min_days: float | None = None, max_days: float | None = None
) -> pd.DataFrame:
    """Keep the cases whose first-to-last-event span is within ``[min_days, max_days]``."""
    check_log(log)
    span = _span(log)
    days = (span["max"] - span["min"]).dt.total_seconds() / 86_400
    ok = pd.Series(True, index=span.index)
    if min_days is not None:
        ok &= days >= min_days
    if max_days is not None:
        ok &= days <= max_days
    return _keep_cases(log, span.index[ok.to_numpy()])


def filter_case_size(
    log: pd.DataFrame, *, min_events: int | None = None, max_events: int | None = None
) -> pd.DataFrame:
    """Keep the cases with between ``min_events`` and ``max_events`` events (inclusive)."""
    check_log(log)
    size = log.groupby(CASE, sort=False).size()
    ok = pd.Series(True, index=size.index)
    if min_events is not None:
        ok &= size >= min_events
    if max_events is not None:
        ok &= size <= max_events
    return _keep_cases(log, size.index[ok.to_numpy()])


def filter_lifecycle(log: pd.DataFrame, *, keep: str = "complete") -> pd.DataFrame:
    """Keep the events of one lifecycle transition (XES schedule / start / complete logs).

    Events of the ``keep`` transition are kept, and so are events without a
    lifecycle value; nothing else is, so a work item started and never
    completed leaves no event (pm4py's complete-only view of the log). A log
    without a lifecycle column comes back unchanged (a copy).

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a"], "activity": ["Repair", "Repair"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01 09:00", "2026-01-01 10:00"], utc=True),
    ...                     "lifecycle": ["start", "complete"]})
    >>> filter_lifecycle(log)["lifecycle"].tolist()
    ['complete']
    """
    check_log(log)
    col = next((c for c in LIFECYCLE_COLUMNS if c in log.columns), None)
    if col is None:
        return log.reset_index(drop=True).copy()
    value = log[col].astype("string").str.strip().str.lower()
    return _keep_rows(log, (value.isna() | (value == keep.lower())).fillna(True).to_numpy(dtype=bool))
