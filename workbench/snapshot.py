"""The state of every deal as of a date, rebuilt from the event log.

A snapshot is what a CRM would have shown on the morning of ``as_of``: every
deal opened and not yet closed, with its stage, how long it has been there,
its age, amount, owner and the follow-up and conformance history so far.
Only events strictly before ``as_of`` are visible.

Speed without leakage
---------------------
A backtest takes a hundred snapshots of one log. :func:`deal_states` computes,
once, the running state of each deal after each of its events (running counts,
running maxima, forward-filled attributes). Each of those values depends only
on the deal's events up to that row, so the state of a deal as of ``as_of`` is
simply its last row before ``as_of``: cutting the log at ``as_of`` and then
computing the states gives exactly the same rows. :func:`snapshot` and
:func:`bookings` accept either a log or precomputed states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import schema
from .calendar import quarter_bounds, to_utc
from .profile import PPVVC, SalesProcessProfile, get_profile

DAY = pd.Timedelta(days=1)

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

    def before(self, as_of: pd.Timestamp) -> DealStates:
        """The states as they were known before ``as_of`` (events strictly before it)."""
        ev = self.events
        return DealStates(ev[ev[schema.TIMESTAMP] < as_of], self.profile, self.attributes)


def deal_states(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = PPVVC,
    attributes: tuple[str, ...] | None = None,
) -> DealStates:
    """Running state of every deal after each of its events.

    Parameters
    ----------
    log : DataFrame
        Canonical event log.
    profile : SalesProcessProfile or str
        What the activities mean.
    attributes : tuple of str, optional
        Extra columns to carry (last value seen so far); default: every
        non-canonical column.

    Returns
    -------
    DealStates
        ``events`` has, per event: case_id, timestamp, activity, created, stage,
        stage_rank, stage_entered, n_events, n_followups, max_rank, regressions,
        stages_skipped, closing ('won' / 'lost' / None: only on the first
        closing event), closed (a closing event at or before this row) and the
        carried attributes.
    """
    profile = get_profile(profile)
    log = schema.check_log(log)
    if attributes is None:
        known = set(schema.REQUIRED) | set(_CARRIED)
        attributes = tuple(c for c in log.columns if c not in known)
    carried = [c for c in (*_CARRIED, *attributes) if c in log.columns]
    ev = log[[schema.CASE, schema.TIMESTAMP, schema.ACTIVITY, *carried]].copy()
    ev[schema.CASE] = ev[schema.CASE].astype(str)
    # Sort and group by integer case codes (in case_id order): sorting by the strings, or
    # grouping by them (each groupby factorizes them again), is most of the time on large logs.
    codes = pd.factorize(ev[schema.CASE], sort=True)[0]
    order = np.lexsort((ev[schema.TIMESTAMP].astype("int64").to_numpy(), codes))  # stable: ties keep log order
    ev = ev.take(order).reset_index(drop=True)
    case = codes[order]
    g = ev.groupby(case, sort=False)
    act = ev[schema.ACTIVITY].astype(str)

    ev["created"] = g[schema.TIMESTAMP].transform("first")
    ev["n_events"] = g.cumcount() + 1
    ev["n_followups"] = act.isin(profile.loops).astype(int).groupby(case).cumsum()
    for c in carried:
        ev[c] = g[c].ffill()

    rank_of = {s: i for i, s in enumerate(profile.stages)}
    # ranks through the distinct activities: mapping ten million strings one by one is slow
    act_code, names = pd.factorize(act)
    rank = pd.Series(np.array([rank_of.get(n, np.nan) for n in names], dtype=float)[act_code], index=ev.index)
    is_stage = rank.notna()
    ev["stage"] = act.where(is_stage).groupby(case).ffill()
    ev["stage_rank"] = rank.groupby(case).ffill()
    # A new visit starts when the stage differs from the previous stage event of the deal.
    new_visit = is_stage & (rank != ev["stage_rank"].groupby(case).shift())
    ev["stage_entered"] = ev[schema.TIMESTAMP].where(new_visit).groupby(case).ffill()
    max_rank = rank.groupby(case).cummax().groupby(case).ffill()
    prev_max = max_rank.groupby(case).shift()
    ev["max_rank"] = max_rank
    ev["regressions"] = (is_stage & (rank < prev_max)).astype(int).groupby(case).cumsum()
    skipped = np.zeros(len(ev), dtype=int)
    for s in profile.mandatory:
        visited = act.eq(s).groupby(case).cummax().to_numpy()
        skipped += (~visited & (max_rank.to_numpy() > rank_of[s])).astype(int)
    ev["stages_skipped"] = skipped

    is_close = act.isin(profile.closing)
    closed_before = is_close.astype(int).groupby(case).cumsum()
    first_close = is_close & (closed_before == 1)
    ev["closing"] = np.where(first_close, np.where(act.isin(profile.won), "won", "lost"), None)
    ev["closed"] = closed_before > 0
    ev["_case_code"] = case
    return DealStates(ev, profile, tuple(a for a in attributes if a in ev.columns))


def _states(log: pd.DataFrame | DealStates, profile) -> DealStates:
    if isinstance(log, DealStates):
        return log
    return deal_states(log, profile=profile)


def _last_rows(ev: pd.DataFrame, as_of: pd.Timestamp, *, open_only: bool = False) -> pd.DataFrame:
    """Each deal's last event before ``as_of`` (events are sorted by deal, then time)."""
    seen = (ev[schema.TIMESTAMP] < as_of).to_numpy()
    code = ev["_case_code"].to_numpy()
    # Within a deal the seen rows are a prefix, so its last seen row is one whose successor is unseen or another deal.
    nxt_same_seen = np.r_[(code[1:] == code[:-1]) & seen[1:], False]
    keep = seen & ~nxt_same_seen
    if open_only:
        keep &= ~ev["closed"].to_numpy()
    return ev.iloc[np.flatnonzero(keep)]


def snapshot(
    log: pd.DataFrame | DealStates,
    as_of: pd.Timestamp | str,
    *,
    profile: SalesProcessProfile | str | None = PPVVC,
    quarter: str | None = None,
) -> pd.DataFrame:
    """Every deal open as of ``as_of``, built from the events strictly before it.

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
        Adds ``days_left``, the days from ``as_of`` to the end of that quarter.

    Returns
    -------
    DataFrame
        One row per open deal: case_id, stage, stage_rank, created, age_days,
        stage_entered, time_in_stage_days, amount, rep, team, region,
        last_activity, last_activity_at, days_since_last_activity, n_events,
        n_followups, regressions, stages_skipped, the carried attributes
        (customer_type...), and ``days_left`` when a quarter is given. A deal
        with no stage event yet is put at the first stage.
    """
    as_of = to_utc(as_of)
    states = _states(log, profile)
    last = _last_rows(states.events, as_of, open_only=True)
    first_stage = states.profile.stages[0]
    last = last.reset_index(drop=True)
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
    for c in (*_CARRIED, *states.attributes):
        out[c] = last[c] if c in last.columns else np.nan
    out[schema.AMOUNT] = pd.to_numeric(out[schema.AMOUNT], errors="coerce").astype(float)
    out["age_days"] = (as_of - out["created"]) / DAY
    out["time_in_stage_days"] = (as_of - out["stage_entered"]) / DAY
    out["days_since_last_activity"] = (as_of - out["last_activity_at"]) / DAY
    if quarter is not None:
        out["days_left"] = (quarter_bounds(quarter)[1] - as_of) / DAY
    return out


def bookings(
    log: pd.DataFrame | DealStates,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    profile: SalesProcessProfile | str | None = PPVVC,
) -> pd.DataFrame:
    """Deals closed as won in ``[start, end)``, one row each.

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
    cols = [schema.CASE, "created", schema.TIMESTAMP,
            *[c for c in (*_CARRIED, *states.attributes) if c in won.columns]]
    out = won[cols].rename(columns={schema.TIMESTAMP: "closed_at"}).reset_index(drop=True)
    if schema.AMOUNT not in out.columns:
        out[schema.AMOUNT] = 0.0
    out[schema.AMOUNT] = pd.to_numeric(out[schema.AMOUNT], errors="coerce").fillna(0.0).astype(float)
    return out


def closed_won_to_date(
    log: pd.DataFrame | DealStates,
    as_of: pd.Timestamp | str,
    quarter: str,
    *,
    profile: SalesProcessProfile | str | None = PPVVC,
) -> pd.DataFrame:
    """Closed-won amount per rep in ``quarter`` from its start up to ``as_of`` (exclusive).

    Returns
    -------
    DataFrame
        rep, closed_won_to_date, deals_won; deals without a rep are under '(no rep)'.
    """
    start, end = quarter_bounds(quarter)
    stop = min(to_utc(as_of), end)
    won = bookings(log, start=start, end=stop, profile=profile)
    rep = won[schema.REP].fillna(NO_REP) if schema.REP in won.columns else pd.Series(NO_REP, index=won.index)
    out = (won.assign(rep=rep).groupby(schema.REP, sort=True)
           .agg(closed_won_to_date=(schema.AMOUNT, "sum"), deals_won=(schema.CASE, "size"))
           .reset_index())
    return out


#: The owner used for deals that have no rep.
NO_REP = "(no rep)"
