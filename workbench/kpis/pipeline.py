"""The open pipeline as of a date: velocity, coverage of the quota, close-date slips and amount changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..calendar import DAY_S, happened, quarter_bounds, to_utc
from ..groups import BY, as_list, group
from ..profile import SalesProcessProfile, get_profile

from ..io.tables import quota_table
from ..snapshot import bookings, closing_times, deal_states, due_this_quarter, snapshot
from .funnel import check_stages
from .outcomes import case_table

def default_as_of(log: pd.DataFrame) -> pd.Timestamp:
    """The last event's time: as of then, every event of the log has happened."""
    return to_utc(schema.check_log(log)[schema.TIMESTAMP].max())


def open_pipeline(
    log: pd.DataFrame,
    *,
    as_of: pd.Timestamp | str | None = None,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Every deal open as of ``as_of`` (default the last event), with its stage and owner.

    This is :func:`workbench.snapshot.snapshot` (events at or before
    ``as_of``), so the KPIs, the stalled-deal list and the forecast agree on
    which deals are open.
    """
    return snapshot(log, as_of=default_as_of(log) if as_of is None else to_utc(as_of), profile=get_profile(profile, log))


def pipeline_velocity(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    as_of: pd.Timestamp | str | None = None,
    lookback_days: float = 365.0,
    by: BY = None,
) -> pd.DataFrame:
    """Pipeline velocity = open qualified deals x win rate x mean deal size / mean cycle length.

    The standard definition: open qualified deals are
    the deals open at ``as_of`` whose stage is at or past the profile's
    qualification stage (every open deal when the process names none); win rate, mean won amount and mean cycle length
    (days, first event to close, won deals) come from the deals closed in the
    ``lookback_days`` before ``as_of``. The result is expected won amount per day.

    Returns
    -------
    DataFrame
        [by], open_qualified, win_rate, mean_deal_size, mean_cycle_days, velocity_per_day.
    """
    profile = get_profile(profile, log)
    profile.require_outcomes("Pipeline velocity")
    keys = as_list(by)
    as_of = default_as_of(log) if as_of is None else to_utc(as_of)
    cases = case_table(log, profile=profile)
    schema.require(cases, [schema.AMOUNT, *keys], "pipeline velocity")
    qual = profile.stages.index(profile.roles.get("qualification", profile.stages[0]))
    pipe = open_pipeline(log, as_of=as_of, profile=profile)
    pipe = pipe[pipe["stage_rank"] >= qual]
    recent = cases[happened(cases["closed_at"], as_of).fillna(False)
                   & (cases["closed_at"] >= as_of - pd.Timedelta(days=lookback_days))]
    won = recent["outcome"].eq("won")
    recent = recent.assign(won=won, won_amount=recent[schema.AMOUNT].astype(float).fillna(0.0).where(won),
                           won_cycle=recent["cycle_days"].where(won))
    hist = group(recent, keys).agg(win_rate=("won", "mean"), mean_deal_size=("won_amount", "mean"),
                                    mean_cycle_days=("won_cycle", "mean"))
    if keys:
        pipe = pipe.drop(columns=[k for k in keys if k in pipe.columns]).merge(
            cases[[schema.CASE, *keys]], on=schema.CASE, how="left")
    counts = group(pipe, keys).size().rename("open_qualified")
    out = hist.join(counts, how="outer")
    out["open_qualified"] = out["open_qualified"].fillna(0).astype(int)
    out["velocity_per_day"] = (out["open_qualified"] * out["win_rate"] * out["mean_deal_size"]
                               / out["mean_cycle_days"])
    cols = ["open_qualified", "win_rate", "mean_deal_size", "mean_cycle_days", "velocity_per_day"]
    return out[cols].reset_index(drop=not keys)


def pipeline_coverage(
    log: pd.DataFrame,
    quotas: pd.DataFrame,
    *,
    quarter: str,
    as_of: pd.Timestamp | str | None = None,
    profile: SalesProcessProfile | str | None = None,
    by: str | None = "team",
    late_stage: str | None = None,
) -> pd.DataFrame:
    """Pipeline coverage = open pipeline due this quarter / remaining quota, total and late-stage.

    The standard definition. The open pipeline is the amount of the deals open
    at ``as_of`` and due this quarter (:func:`workbench.snapshot.due_this_quarter`:
    by the expected close date where the log records one, else by how long the
    deals won before ``as_of`` took from the same stage; stale deals never
    count). Remaining quota is the quarter's quota minus the
    bookings from the quarter's start to ``as_of``, floored at 0. Late stage
    means at or past ``late_stage`` (default the profile's proposal stage, else
    its last stage).

    Returns
    -------
    DataFrame
        [by], quota, booked, remaining_quota, pipeline, late_pipeline,
        coverage, late_coverage; the last row (by = 'total') sums every group.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> demo = generate_demo_data(seed=7, size="tiny")
    >>> coverage = pipeline_coverage(demo.events, demo.quotas, quarter="2026Q4", by=None)
    >>> list(coverage.columns)
    ['quota', 'booked', 'remaining_quota', 'pipeline', 'late_pipeline', 'coverage', 'late_coverage']
    """
    profile = get_profile(profile, log)
    quotas = quota_table(quotas)
    start, end = quarter_bounds(quarter)
    as_of = default_as_of(log) if as_of is None else to_utc(as_of)
    late_stage = late_stage or profile.roles.get("proposal", profile.stages[-1])
    check_stages([late_stage], profile)
    keys = as_list(by)
    q = quotas[quotas["quarter"].eq(quarter)]
    schema.require(q, keys, "pipeline coverage")
    won = bookings(log, start=start, end=end, as_of=as_of, profile=profile)
    states = deal_states(log, profile=profile).as_of(as_of)
    pipe = snapshot(states, as_of=as_of, quarter=quarter)
    pipe = pipe[due_this_quarter(pipe, closing_times(states))]
    pipe = pipe.assign(amount=pipe[schema.AMOUNT].astype(float).fillna(0.0),
                       late=pipe["stage_rank"] >= profile.stages.index(late_stage))
    if keys == ["team"]:
        # Credit deals and bookings to the team the quota table gives the rep, as attainment does.
        team_of = (q.dropna(subset=["rep"]).drop_duplicates("rep").set_index("rep")["team"]
                   if "rep" in q.columns else pd.Series(dtype=object))
        team = pipe[schema.REP].map(team_of)
        pipe = pipe.assign(team=team.fillna(pipe["team"]) if "team" in pipe.columns else team)
        won = won.assign(team=won[schema.REP].map(team_of))
    frames = {
        "quota": group(q, keys)["quota"].sum(),
        "booked": group(won, keys)[schema.AMOUNT].sum(),
        "pipeline": group(pipe, keys)["amount"].sum(),
        "late_pipeline": group(pipe[pipe["late"]], keys)["amount"].sum(),
    }
    out = pd.concat(frames, axis=1).fillna(0.0)
    if keys:
        out.loc["total"] = out.sum()
    out["remaining_quota"] = (out["quota"] - out["booked"]).clip(lower=0.0)
    remaining = out["remaining_quota"].where(out["remaining_quota"] > 0)
    out["coverage"] = out["pipeline"] / remaining
    out["late_coverage"] = out["late_pipeline"] / remaining
    out.index.name = keys[0] if keys else None
    cols = ["quota", "booked", "remaining_quota", "pipeline", "late_pipeline", "coverage", "late_coverage"]
    return out[cols].reset_index(drop=not keys)


#: The steps of :func:`pipeline_movement`, in waterfall order.
MOVEMENT_STEPS = ("pipeline at start", "new deals", "pulled in", "amount changes", "won", "lost", "pushed out",
                  "pipeline now")


def pipeline_movement(
    log: pd.DataFrame,
    *,
    quarter: str,
    start: pd.Timestamp | str,
    as_of: pd.Timestamp | str,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """How this quarter's pipeline moved between ``start`` and ``as_of`` (a week, usually), as a waterfall.

    The pipeline is the open deals due this quarter at their recorded amount (as
    :func:`pipeline_coverage` counts it; a deal without an amount counts 0). A deal
    in it at ``start`` left it by being won, lost or pushed out (still open, but no
    longer due this quarter: a later close date, or gone stale); a deal in it at
    ``as_of`` came in as a new deal (created after ``start``) or was pulled in (open
    before, not due then). Amount changes are those of deals in it at both dates.
    The steps add up: start + new + pulled in + amount changes - won - lost -
    pushed out = now.

    Returns
    -------
    DataFrame
        step (:data:`MOVEMENT_STEPS`), deals, amount (won, lost and pushed out
        negative).

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> demo = generate_demo_data(seed=7, size="tiny")
    >>> move = pipeline_movement(demo.events, quarter="2026Q4", start="2026-10-20", as_of="2026-10-27")
    >>> move["step"].tolist()[0], move["step"].tolist()[-1]
    ('pipeline at start', 'pipeline now')
    """
    profile = get_profile(profile, log)
    start, as_of = to_utc(start), to_utc(as_of)
    q_start, _ = quarter_bounds(quarter)
    states = deal_states(log, profile=profile).as_of(as_of)
    times = closing_times(states.as_of(start))  # "due" is judged with what was known at each date

    def due(at: pd.Timestamp) -> pd.DataFrame:
        snap = snapshot(states, as_of=at, quarter=quarter)
        keep = due_this_quarter(snap, times)
        return snap.assign(value=snap[schema.AMOUNT].fillna(0.0))[keep].set_index(schema.CASE)["value"]

    before, now = due(start), due(as_of)
    ev = states.events
    closes = ev[ev["closing"].notna() & (ev[schema.TIMESTAMP] > start)].set_index(schema.CASE)["closing"]
    created = ev.groupby(schema.CASE)["created"].first()
    gone = before.drop(now.index, errors="ignore")
    outcome = gone.index.map(closes).fillna("pushed out")
    came = now.drop(before.index, errors="ignore")
    is_new = came.index.map(created) > start
    both = now.index.intersection(before.index)
    steps = [
        (len(before), before.sum()),
        (int(is_new.sum()), came[is_new].sum()),
        (int((~is_new).sum()), came[~is_new].sum()),
        (int((now[both] != before[both]).sum()), (now[both] - before[both]).sum()),
        *[(int((outcome == k).sum()), -gone[outcome == k].sum()) for k in ("won", "lost", "pushed out")],
        (len(now), now.sum()),
    ]
    return pd.DataFrame({"step": MOVEMENT_STEPS, "deals": [n for n, _ in steps],
                         "amount": [float(v) for _, v in steps]})


def _value_changes(log: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per event where ``column`` changes from the deal's previous non-null value: case_id, old, new, at."""
    ev = log[[schema.CASE, schema.TIMESTAMP, column]].dropna(subset=[column])
    prev = ev.groupby(schema.CASE)[column].shift()
    changed = prev.notna() & ev[column].ne(prev)
    return pd.DataFrame({schema.CASE: ev[schema.CASE], "old": prev, "new": ev[column],
                         "at": ev[schema.TIMESTAMP]})[changed.to_numpy()]


def close_date_slips(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None) -> pd.DataFrame:
    """Close-date changes per deal, from a stage history that records the expected close date.

    A slip is a change of the expected close date to a later date; a pull-in
    to an earlier one (standard CRM usage). Only the events before the deal's
    close count: a CRM sets the close date to the day of the close when the
    deal is won or lost, which is not a change of plan.

    Returns
    -------
    DataFrame
        case_id, changes, slips, pull_ins, first_close_date, last_close_date,
        slipped_days (last minus first), for every deal with a close date.
    """
    schema.require(schema.check_log(log), ["close_date"], "close-date slips")
    profile = get_profile(profile, log)
    log = log[~_closing_or_after(log, profile)]
    dates = log.assign(close_date=pd.to_datetime(log["close_date"], utc=True, errors="coerce"))
    ch = _value_changes(dates, "close_date")
    ch["slip"] = ch["new"] > ch["old"]
    per = dates.dropna(subset=["close_date"]).groupby(schema.CASE)["close_date"].agg(
        first_close_date="first", last_close_date="last")
    per["changes"] = ch.groupby(schema.CASE).size().reindex(per.index, fill_value=0)
    per["slips"] = ch.groupby(schema.CASE)["slip"].sum().reindex(per.index, fill_value=0).astype(int)
    per["pull_ins"] = per["changes"] - per["slips"]
    per["slipped_days"] = (per["last_close_date"] - per["first_close_date"]).dt.total_seconds() / DAY_S
    cols = ["changes", "slips", "pull_ins", "first_close_date", "last_close_date", "slipped_days"]
    return per[cols].reset_index()


def _closing_or_after(log: pd.DataFrame, profile: SalesProcessProfile) -> np.ndarray:
    """Events of a log in case order that close their case or come after its close."""
    closing = log[schema.ACTIVITY].isin(profile.closing).to_numpy().astype("int64")
    return pd.Series(closing, index=log.index).groupby(log[schema.CASE].to_numpy(), sort=False).cumsum().to_numpy() > 0


def amount_changes(log: pd.DataFrame) -> pd.DataFrame:
    """Amount changes per deal over its history.

    Returns
    -------
    DataFrame
        case_id, changes, increases, decreases, first_amount, last_amount,
        change (last - first), change_pct (change / first), for every deal with an amount.
    """
    schema.require(schema.check_log(log), [schema.AMOUNT], "amount changes")
    amounts = log.assign(amount=pd.to_numeric(log[schema.AMOUNT], errors="coerce"))
    ch = _value_changes(amounts, schema.AMOUNT)
    per = amounts.dropna(subset=[schema.AMOUNT]).groupby(schema.CASE)[schema.AMOUNT].agg(
        first_amount="first", last_amount="last")
    g = ch.assign(up=ch["new"] > ch["old"]).groupby(schema.CASE)
    per["changes"] = g.size().reindex(per.index, fill_value=0)
    per["increases"] = g["up"].sum().reindex(per.index, fill_value=0).astype(int)
    per["decreases"] = per["changes"] - per["increases"]
    per["change"] = per["last_amount"] - per["first_amount"]
    per["change_pct"] = per["change"] / per["first_amount"].where(per["first_amount"] != 0)
    cols = ["changes", "increases", "decreases", "first_amount", "last_amount", "change", "change_pct"]
    return per[cols].reset_index()
