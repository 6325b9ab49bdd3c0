"""The state of every deal as of a date, rebuilt from the event log.

A snapshot is what a CRM would have shown on the morning of ``as_of``: every
deal opened and not yet closed, with its stage, how long it has been there,
its age, amount, owner and the follow-up and conformance history so far.
Events at or before ``as_of`` are visible (:func:`workbench.calendar.happened`).

Speed without leakage
---------------------
A backtest takes a hundred snapshots of one log. :func:`deal_states` computes,
once, the running state of each deal after each of its events (running counts,
running maxima, forward-filled attributes). Each of those values depends only
on the deal's events up to that row, so the state of a deal as of ``as_of`` is
simply its last row at or before ``as_of``: cutting the log at ``as_of`` and then
computing the states gives exactly the same rows. :func:`snapshot` and
:func:`bookings` accept either a log or precomputed states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import schema
from .calendar import happened, quarter_bounds, to_utc
from .profile import SalesProcessProfile, get_profile
from .schema import CLOSE_DATE

DAY = pd.Timedelta(days=1)

#: Running counts of changes of plan, when the log records close dates / amounts (see deal_states).
CHANGES = ("close_date_pushes", "amount_changes")

#: Attribute columns carried from the log into snapshots and bookings (last value seen so far).
_CARRIED = (schema.REP, schema.TEAM, schema.REGION, schema.AMOUNT)


@dataclass(frozen=True)
class DealStates:
    """Running state of every deal after each of its events (see :func:`deal_states`).

    Attributes
    ----------
    events : DataFrame
        One row per event of the log, in log order, with the running state columns.
    profile : SalesProcessProfile
        The profile the states were computed with.
    attributes : tuple of str
        The extra attribute columns carried (customer_type, lead_source...).
    """

    events: pd.DataFrame
    profile: SalesProcessProfile
    attributes: tuple[str, ...]

    def as_of(self, as_of: pd.Timestamp) -> DealStates:
        """The states as they were known at ``as_of`` (the events that had happened then)."""
        ev = self.events
        return DealStates(ev[happened(ev[schema.TIMESTAMP], as_of)], self.profile, self.attributes)


def deal_states(
    log: Any,
    *,
    profile: SalesProcessProfile | str | None = None,
    attributes: tuple[str, ...] | None = None,
    backend: str | None = None,
    con: Any = None,
) -> DealStates:
    """Running state of every deal after each of its events.

    Parameters
    ----------
    log : DataFrame, or a path, Ibis table or database URL (computed by the engine, where it lives)
        Canonical event log.
    profile : SalesProcessProfile or str
        What the activities mean.
    attributes : tuple of str, optional
        Extra columns to carry (last value seen so far); default: every
        non-canonical column.
    backend, con : optional
        Compute the states in the engine (``backend="pyspark"``, an Ibis connection...), not in
        NumPy: the same rows, for logs beyond pandas (:func:`workbench.engine.deal_states`).

    Returns
    -------
    DealStates
        ``events`` has, per event: case_id, timestamp, activity, created, stage,
        stage_rank, stage_entered, n_events, n_followups, max_rank, regressions,
        stages_skipped, closing ('won' / 'lost' / None: only on the first
        closing event), closed (a closing event at or before this row), the
        carried attributes and, where the log records expected close dates or
        amounts, ``close_date_pushes`` (changes to a later close date so far) and
        ``amount_changes`` (changes of the amount so far), counted before the close.
    """
    profile = get_profile(profile, log)
    if backend is not None or con is not None or not isinstance(log, pd.DataFrame):
        return _engine_states(log, profile, attributes, backend or "duckdb", con)
    log = schema.check_log(log)
    if attributes is None:
        known = set(schema.REQUIRED) | set(_CARRIED)
        attributes = tuple(c for c in log.columns if c not in known)
    carried = [c for c in (*_CARRIED, *attributes) if c in log.columns]
    ev = log[[schema.CASE, schema.TIMESTAMP, schema.ACTIVITY, *carried]]
    ev = ev.assign(**{schema.CASE: ev[schema.CASE].astype(str)})
    # Sort by integer case codes (in case_id order): sorting by the strings is slow on large logs.
    codes = pd.factorize(ev[schema.CASE], sort=True)[0]
    order = np.lexsort((ev[schema.TIMESTAMP].astype("int64").to_numpy(), codes))  # stable: ties keep log order
    if (order[1:] > order[:-1]).all():  # already in deal and time order (as exports often are): no copy
        ev = ev.reset_index(drop=True)
    else:
        ev = ev.take(order).reset_index(drop=True)
    case = codes[order]
    runs = _Runs(case)
    # Activities are tested through their distinct values: comparing ten million strings
    # once per test is most of the time otherwise.
    act_code, names = pd.factorize(ev[schema.ACTIVITY].astype(str))

    def among(group) -> np.ndarray:
        return np.array([n in group for n in names], dtype=bool)[act_code]

    ev["created"] = _take(ev[schema.TIMESTAMP], runs.first)
    ev["n_events"] = runs.position() + 1
    ev["n_followups"] = runs.cumsum(among(set(profile.loops)))
    is_close = among(set(profile.closing))
    recorded = {c: ev[c].notna().to_numpy() for c in (schema.AMOUNT, CLOSE_DATE) if c in ev.columns}
    if CLOSE_DATE in ev.columns:
        ev[CLOSE_DATE] = pd.to_datetime(ev[CLOSE_DATE], utc=True, errors="coerce")
    for c in carried:
        if ev[c].hasnans:  # filling a complete column changes nothing and copies every value
            ev[c] = _take(ev[c], runs.last(ev[c].notna().to_numpy()))
    # Changes of plan: a later expected close date (a push) or another amount, on an event before
    # the close (a CRM sets the close date to the day of the close, which is no change of plan).
    for c, name, later in ((CLOSE_DATE, "close_date_pushes", True), (schema.AMOUNT, "amount_changes", False)):
        if c in recorded:
            # Filled forward, so the previous row holds the last value recorded before this one.
            value = (ev[c].dt.tz_convert(None).to_numpy("datetime64[s]").astype("int64") if c == CLOSE_DATE
                     else pd.to_numeric(ev[c], errors="coerce").to_numpy(float)).astype(float)
            if c == CLOSE_DATE:
                value[ev[c].isna().to_numpy()] = np.nan
            before = runs.previous(value)
            changed = (value > before) if later else (value != before) & ~np.isnan(before)
            ev[name] = runs.cumsum(recorded[c] & changed & ~is_close & (runs.cumsum(is_close) == 0))

    rank_of = {s: i for i, s in enumerate(profile.stages)}
    rank = np.array([rank_of.get(n, np.nan) for n in names], dtype=float)[act_code]
    is_stage = ~np.isnan(rank)
    stage_rank = _take(rank, runs.last(is_stage))
    ev["stage"] = _labels(profile.stages, stage_rank)
    ev["stage_rank"] = stage_rank
    # A new visit starts when the stage differs from the previous stage event of the deal.
    new_visit = is_stage & (rank != runs.previous(stage_rank))
    ev["stage_entered"] = _take(ev[schema.TIMESTAMP], runs.last(new_visit))
    max_rank = runs.cummax(rank)
    ev["max_rank"] = max_rank
    ev["regressions"] = runs.cumsum(is_stage & (rank < runs.previous(max_rank)))
    skipped = np.zeros(len(ev), dtype="int64")
    for s in profile.mandatory:
        visited = runs.cumsum(among({s})) > 0
        skipped += ~visited & (max_rank > rank_of[s])
    ev["stages_skipped"] = skipped

    closed_before = runs.cumsum(is_close)
    first_close = is_close & (closed_before == 1)
    ev["closing"] = _labels(("lost", "won"), np.where(first_close, among(set(profile.won)), np.nan))
    ev["closed"] = closed_before > 0
    ev["_case_code"] = case
    return DealStates(ev, profile, tuple(a for a in attributes if a in ev.columns))


def _engine_states(log: Any, profile: SalesProcessProfile, attributes: tuple[str, ...] | None,
                   backend: str, con: Any) -> DealStates:
    """:func:`deal_states` computed by the engine."""
    from . import engine

    carried = None if attributes is None else (*_CARRIED, *attributes)
    ev = engine.deal_states(log, profile, carried=carried, backend=backend, con=con)
    ev["_case_code"] = pd.factorize(ev[schema.CASE], sort=True)[0]
    cols = list(ev.columns)  # case, time, activity, the carried columns, then the states
    return DealStates(ev, profile, tuple(c for c in cols[3:cols.index("created")] if c not in _CARRIED))


class _Runs:
    """Running (per deal) counts, maxima and last-seen rows over events sorted by deal.

    Each deal's events are one contiguous run, so a running value within deals is a
    running value over the whole array, restarted at the run's first row: numpy's
    cumulative functions do it in one pass, where a pandas groupby would factorize
    the deals again for every column. Fresh memory is slow to come by on some machines,
    so the methods make as few full-length temporaries as they can.
    """

    def __init__(self, case: np.ndarray) -> None:
        self.starts = np.r_[True, case[1:] != case[:-1]] if len(case) else np.zeros(0, bool)
        self.start_idx = np.flatnonzero(self.starts)
        self.lengths = np.diff(np.r_[self.start_idx, len(case)])
        self.first = np.repeat(self.start_idx, self.lengths)  # each row's first row of its deal

    def position(self) -> np.ndarray:
        """Each row's place in its deal: 0, 1, ..."""
        return np.arange(len(self.first)) - self.first

    def cumsum(self, flags: np.ndarray) -> np.ndarray:
        """Running count of ``flags`` within the deal, this row included."""
        total = np.cumsum(flags, dtype="int64")
        before = total[self.start_idx] - flags[self.start_idx]
        total -= np.repeat(before, self.lengths)
        return total

    def last(self, flags: np.ndarray) -> np.ndarray:
        """Index of the deal's last row up to here where ``flags`` holds; -1 if none."""
        idx = np.where(flags, np.arange(len(flags)), -1)
        np.maximum.accumulate(idx, out=idx)
        idx[idx < self.first] = -1
        return idx

    def previous(self, values: np.ndarray) -> np.ndarray:
        """The value on the deal's previous row (NaN on its first)."""
        out = np.empty(len(values), dtype=float)
        out[1:] = values[:-1]
        out[self.starts] = np.nan
        return out

    def cummax(self, values: np.ndarray) -> np.ndarray:
        """Running maximum of non-negative ``values`` within the deal, NaN ignored (NaN before the first)."""
        # Offsetting each run above every earlier one lets one accumulate serve all runs.
        span = np.nanmax(values) + 2 if (~np.isnan(values)).any() else 2.0
        offset = np.repeat(np.arange(len(self.lengths)) * span, self.lengths)
        out = np.where(np.isnan(values), -1.0, values) + offset
        np.maximum.accumulate(out, out=out)
        out -= offset
        out[out < 0] = np.nan
        return out


def _labels(labels: Sequence[str], codes: np.ndarray) -> pd.Series:
    """``labels[code]`` per row, typed as ``astype(str)`` types the activities; missing where the code is NaN."""
    idx = np.where(np.isnan(codes), -1, codes).astype("int64")
    return pd.Series(pd.Series(list(labels)).astype(str).array.take(idx, allow_fill=True))


def _take(values: pd.Series | np.ndarray, idx: np.ndarray) -> pd.Series | np.ndarray:
    """``values`` at ``idx``, missing where ``idx`` is -1 (keeps a Series' dtype)."""
    if isinstance(values, pd.Series):
        return pd.Series(pd.api.extensions.take(values.array, idx, allow_fill=True), name=values.name)
    return pd.api.extensions.take(values, idx, allow_fill=True)


def _states(log: pd.DataFrame | DealStates, profile) -> DealStates:
    if isinstance(log, DealStates):
        return log
    return deal_states(log, profile=profile)


def _last_rows(ev: pd.DataFrame, as_of: pd.Timestamp, *, open_only: bool = False) -> pd.DataFrame:
    """Each deal's last event that had happened at ``as_of`` (events are sorted by deal, then time)."""
    seen = happened(ev[schema.TIMESTAMP], as_of).to_numpy()
    code = ev["_case_code"].to_numpy()
    # Within a deal the seen rows are a prefix, so its last seen row is one whose successor is unseen or another deal.
    nxt_same_seen = np.r_[(code[1:] == code[:-1]) & seen[1:], False]
    keep = seen & ~nxt_same_seen
    if open_only:
        keep &= ~ev["closed"].to_numpy()
    return ev.iloc[np.flatnonzero(keep)]


def snapshot(
    log: pd.DataFrame | DealStates,
    *,
    as_of: pd.Timestamp | str,
    profile: SalesProcessProfile | str | None = None,
    quarter: str | None = None,
) -> pd.DataFrame:
    """Every deal open as of ``as_of``, built from the events at or before it.

    Parameters
    ----------
    log : DataFrame or DealStates
        Canonical event log, or the states from :func:`deal_states` (faster when
        taking many snapshots of one log).
    as_of : Timestamp or str
        The snapshot date (naive dates are UTC).
    profile : SalesProcessProfile or str
        What the activities mean (ignored when ``log`` is a DealStates).
    quarter : str, optional
        Adds ``days_left`` and ``days_elapsed``, the days from ``as_of`` to the end of
        that quarter and from its start to ``as_of``.

    Returns
    -------
    DataFrame
        One row per open deal: case_id, stage, stage_rank, created, age_days,
        stage_entered, time_in_stage_days, amount, rep, team, region,
        last_activity, last_activity_at, days_since_last_activity, n_events,
        n_followups, regressions, stages_skipped, the carried attributes
        (customer_type...), ``days_left`` and ``days_elapsed`` when a quarter is given and, when the
        log records them, close_date, days_to_close_date, close_date_pushes and
        amount_changes. A deal with no stage event yet is put at the first stage.
    """
    as_of = to_utc(as_of)
    states = _states(log, profile)
    last = _last_rows(states.events, as_of, open_only=True).reset_index(drop=True)
    days = None
    if quarter is not None:
        start, end = quarter_bounds(quarter)
        days = ((end - as_of) / DAY, (as_of - start) / DAY)
    return _open_deals(last, as_of, states, days)


def snapshots(
    log: pd.DataFrame | DealStates,
    *,
    as_of: Sequence[pd.Timestamp],
    quarters: Sequence[str] | None = None,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """The :func:`snapshot` of every date of ``as_of``, computed in one pass over the events.

    A deal's event row is its state from that event's time until its next event,
    so each row is found for all the dates in that span at once (a backtest takes
    a hundred snapshots of one log).

    Parameters
    ----------
    log : DataFrame or DealStates
    as_of : sequence of Timestamp
        Increasing snapshot dates.
    quarters : sequence of str, optional
        The quarter of each date, for ``days_left`` and ``days_elapsed``.

    Returns
    -------
    DataFrame
        The rows of each :func:`snapshot` in the order of ``as_of``, with ``snapshot``,
        the position of its date in ``as_of``.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b"], "activity": ["Lead Created", "Closed Won", "Lead Created"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-20", "2026-01-10"], utc=True)})
    >>> snaps = snapshots(log, as_of=pd.to_datetime(["2026-01-05", "2026-01-15", "2026-01-25"], utc=True))
    >>> snaps[["snapshot", "case_id"]].values.tolist()
    [[0, 'a'], [1, 'a'], [1, 'b'], [2, 'b']]
    """
    states = _states(log, profile)
    ev = states.events
    times = pd.DatetimeIndex([to_utc(t) for t in as_of])
    if not times.is_monotonic_increasing:
        raise ValueError("snapshot dates must be increasing")
    stamps = ev[schema.TIMESTAMP]
    unit = stamps.dt.unit
    ts = stamps.array.as_unit(unit).asi8
    code = ev["_case_code"].to_numpy()
    # Each row holds until the deal's next event (an event at t has happened at t).
    nxt = np.r_[ts[1:], np.iinfo(np.int64).max]
    nxt[np.r_[code[1:] != code[:-1], True]] = np.iinfo(np.int64).max
    t = times.as_unit(unit).asi8
    lo, hi = np.searchsorted(t, ts, "left"), np.searchsorted(t, nxt, "left")
    keep = np.flatnonzero((hi > lo) & ~ev["closed"].to_numpy())
    counts = (hi - lo)[keep]
    rows = np.repeat(keep, counts)
    k = np.repeat(lo[keep], counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    order = np.lexsort((rows, k))
    rows, k = rows[order], k[order]
    # Only the columns a snapshot reads: taking every string column of the states for every
    # deal-week was most of the time.
    last = ev[[c for c in ev.columns if c in _snapshot_sources(states)]].iloc[rows].reset_index(drop=True)
    at = pd.Series(times[k], name="as_of")
    days = None
    if quarters is not None:
        starts, ends = (pd.DatetimeIndex([quarter_bounds(q)[i] for q in quarters]) for i in (0, 1))
        days = (((ends[k] - times[k]) / DAY).to_numpy(float), ((times[k] - starts[k]) / DAY).to_numpy(float))
    out = _open_deals(last, at, states, days)
    out["snapshot"] = k
    return out


def _snapshot_sources(states: DealStates) -> set[str]:
    """The state columns :func:`_open_deals` reads."""
    return {schema.CASE, schema.ACTIVITY, schema.TIMESTAMP, "stage", "stage_rank", "created", "stage_entered",
            "n_events", "n_followups", "regressions", "stages_skipped", *_CARRIED, *states.attributes, *CHANGES}


def _open_deals(last: pd.DataFrame, as_of, states: DealStates, days) -> pd.DataFrame:
    """The snapshot columns from each open deal's last event row (``as_of`` a date or one per row;
    ``days``: the days left in the quarter and elapsed since its start, or None)."""
    first_stage = states.profile.stages[0]
    out = pd.DataFrame({
        schema.CASE: last[schema.CASE],
        "stage": last["stage"].fillna(first_stage),
        "stage_rank": last["stage_rank"].fillna(0).astype(int),
        "created": last["created"],
        "stage_entered": last["stage_entered"].fillna(last["created"]),
        "last_activity": last[schema.ACTIVITY],
        "last_activity_at": last[schema.TIMESTAMP],
        "n_events": last["n_events"],
        "n_followups": last["n_followups"],
        "regressions": last["regressions"],
        "stages_skipped": last["stages_skipped"],
    })
    for c in (*_CARRIED, *states.attributes, *CHANGES):
        if c in last.columns or c in _CARRIED:
            out[c] = last[c] if c in last.columns else np.nan
    out[schema.AMOUNT] = pd.to_numeric(out[schema.AMOUNT], errors="coerce").astype(float)
    out["age_days"] = (as_of - out["created"]) / DAY
    out["time_in_stage_days"] = (as_of - out["stage_entered"]) / DAY
    out["days_since_last_activity"] = (as_of - out["last_activity_at"]) / DAY
    if CLOSE_DATE in out.columns:
        out["days_to_close_date"] = (out[CLOSE_DATE] - as_of) / DAY
    if days is not None:
        out["days_left"], out["days_elapsed"] = days
    return out


def bookings(
    log: pd.DataFrame | DealStates,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    as_of: pd.Timestamp | str | None = None,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Deals closed as won in ``[start, end)`` and, with ``as_of``, by then; one row each.

    Returns
    -------
    DataFrame
        case_id, created, closed_at, amount (last amount recorded up to the
        win), rep, team, region (as on the winning event, else last seen) and
        the carried attributes. Deals won with no amount recorded count 0.
    """
    states = _states(log, profile)
    ev = states.events
    won = ev[ev["closing"] == "won"]
    if start is not None:
        won = won[won[schema.TIMESTAMP] >= to_utc(start)]
    if end is not None:
        won = won[won[schema.TIMESTAMP] < to_utc(end)]
    if as_of is not None:
        won = won[happened(won[schema.TIMESTAMP], to_utc(as_of))]
    cols = [schema.CASE, "created", schema.TIMESTAMP,
            *[c for c in (*_CARRIED, *states.attributes) if c in won.columns]]
    out = won[cols].rename(columns={schema.TIMESTAMP: "closed_at"}).reset_index(drop=True)
    if schema.AMOUNT not in out.columns:
        out[schema.AMOUNT] = 0.0
    out[schema.AMOUNT] = pd.to_numeric(out[schema.AMOUNT], errors="coerce").fillna(0.0).astype(float)
    return out


def closed_won_to_date(
    log: pd.DataFrame | DealStates,
    *,
    as_of: pd.Timestamp | str,
    quarter: str,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Closed-won amount per rep in ``quarter`` from its start up to ``as_of`` (included).

    Returns
    -------
    DataFrame
        rep, closed_won_to_date, deals_won; deals without a rep are under '(no rep)'.
    """
    start, end = quarter_bounds(quarter)
    return won_by_rep(bookings(log, start=start, end=end, as_of=as_of, profile=profile))


def won_by_rep(won: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`bookings` summed per rep: rep, closed_won_to_date, deals_won.

    Examples
    --------
    >>> won_by_rep(pd.DataFrame({"case_id": ["a", "b"], "rep": ["ann", None], "amount": [5.0, 7.0]})).values.tolist()
    [['(no rep)', 7.0, 1], ['ann', 5.0, 1]]
    """
    rep = won[schema.REP].fillna(NO_REP) if schema.REP in won.columns else pd.Series(NO_REP, index=won.index)
    return (won.assign(rep=rep).groupby(schema.REP, sort=True)
            .agg(closed_won_to_date=(schema.AMOUNT, "sum"), deals_won=(schema.CASE, "size"))
            .reset_index())


#: The owner used for deals that have no rep.
NO_REP = "(no rep)"


#: Won deals a stage needs for a time-to-close distribution of its own (else all stages pooled).
MIN_WON = 10


@dataclass(frozen=True)
class ClosingTimes:
    """How long the history's won deals took to close (see :func:`closing_times`).

    Attributes
    ----------
    by_stage : dict of str to ndarray
        Per stage (with at least :data:`MIN_WON` won deals that passed through it),
        the sorted days from entering it to the win.
    pooled : ndarray
        The same, all stages together.
    stale_after : float
        Days: the 90th percentile of the won deals' cycle (creation to win); an
        open deal older than that is stale. Infinite without won deals.
    """

    by_stage: dict[str, np.ndarray]
    pooled: np.ndarray
    stale_after: float


def closing_times(log: pd.DataFrame | DealStates, *, profile: SalesProcessProfile | str | None = None) -> ClosingTimes:
    """How long won deals took from each stage to the win, from the deals won in ``log``.

    Pass the log (or states) cut at the as-of date: only past wins are used.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a"] * 3, "activity": ["Prospecting", "Negotiation/Review", "Closed Won"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-11", "2026-01-31"], utc=True)})
    >>> times = closing_times(log, profile="salesforce")
    >>> times.pooled.tolist(), times.stale_after
    ([20.0, 30.0], 30.0)
    """
    states = _states(log, profile)
    ev = states.events
    won = ev.loc[ev["closing"] == "won", ["_case_code", schema.TIMESTAMP, "created"]]
    if won.empty:
        return ClosingTimes({}, np.zeros(0), np.inf)
    # Deals by their integer codes: testing and grouping the case ids as strings is slow on large logs.
    closed_at = won.set_index("_case_code")[schema.TIMESTAMP]
    code = ev["_case_code"].to_numpy()
    is_won = np.zeros(code.max() + 1, dtype=bool)
    is_won[closed_at.index.to_numpy()] = True
    visits = ev[is_won[code] & ev["stage"].notna().to_numpy() & ~ev["closed"].to_numpy()]
    entered = visits.groupby(["_case_code", "stage"], observed=True)["stage_entered"].min().reset_index()
    days = ((entered["_case_code"].map(closed_at) - entered["stage_entered"]) / DAY).to_numpy(float)
    per_stage = pd.Series(days).groupby(entered["stage"].astype(str).to_numpy())
    by_stage = {str(st): np.sort(d.to_numpy()) for st, d in per_stage if len(d) >= MIN_WON}
    cycle = ((won[schema.TIMESTAMP] - won["created"]) / DAY).to_numpy(float)
    return ClosingTimes(by_stage, np.sort(days), float(np.percentile(cycle, 90)))


def due_this_quarter(deals: pd.DataFrame, times: ClosingTimes, *, days_left=None, elapsed=None) -> np.ndarray:
    """Which open deals are expected to close in the quarter: the one definition of "this quarter's pipeline".

    A deal whose log records an expected close date is due when that date falls
    in the quarter (as a CRM's "close date this quarter" view has it). Otherwise
    it is due unless it is stale (older than ``times.stale_after``) or the won
    deals of the history that had spent as long in its stage still took, in the
    median, longer than the days left; a deal that has sat in its stage longer
    than any won deal did is not due.

    Parameters
    ----------
    deals : DataFrame
        Snapshot rows (stage, age_days, time_in_stage_days; days_to_close_date when recorded;
        days_left and days_elapsed, as :func:`snapshot` gives them with its quarter).
    times : ClosingTimes
        From :func:`closing_times` on the log before the as-of date.
    days_left, elapsed : float or array, optional
        Days from the snapshot to the quarter's end, and from the quarter's start to the
        snapshot, where ``deals`` does not carry them.

    Examples
    --------
    >>> times = ClosingTimes({}, np.array([5.0, 10.0, 40.0]), 100.0)
    >>> deals = pd.DataFrame({"stage": "Proposal", "age_days": [20.0, 20.0, 200.0],
    ...                       "time_in_stage_days": [0.0, 20.0, 0.0]})
    >>> due_this_quarter(deals, times, days_left=25.0, elapsed=60.0).tolist()
    [True, True, False]
    """
    n = len(deals)
    days_left = np.broadcast_to(np.asarray(deals["days_left"] if days_left is None else days_left, float), n)
    elapsed = np.broadcast_to(np.asarray(deals["days_elapsed"] if elapsed is None else elapsed, float), n)
    age = deals["age_days"].to_numpy(float)
    in_stage = np.clip(deals["time_in_stage_days"].to_numpy(float), 0, None)
    rest = np.full(n, np.inf)
    stage, names = pd.factorize(deals["stage"].astype(str))
    for code, name in enumerate(names):
        rows = np.flatnonzero(stage == code)
        t = times.by_stage.get(name, times.pooled)
        if t.size == 0:  # no won deal to learn from: every fresh deal counts
            rest[rows] = 0.0
            continue
        # The median of T - d among the won deals with T > d (d: the deal's days in stage so far).
        first = np.searchsorted(t, in_stage[rows], side="right")
        left = t.size - first
        has = left > 0
        mid = np.minimum(first + (left - 1) // 2, t.size - 1)
        rest[rows] = np.where(has, t[mid] - in_stage[rows], np.inf)
    due = (rest <= days_left) & ~(age > times.stale_after)
    if "days_to_close_date" in deals.columns:
        to_close = deals["days_to_close_date"].to_numpy(float)
        known = ~np.isnan(to_close)
        due = np.where(known, (to_close >= -elapsed) & (to_close < days_left), due)
    return due
