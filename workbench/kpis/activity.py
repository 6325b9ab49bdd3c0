"""Activity KPIs: lead response time and follow-up persistence (promptness and persistence)."""

from __future__ import annotations

import pandas as pd

from .. import schema
from ..errors import WorkbenchError
from ..stats import N_BOOT
from ..groups import BY, as_list, group
from ..profile import SalesProcessProfile, get_profile
from ..stats import median_difference

from .outcomes import case_table

def first_time(log: pd.DataFrame, activity: str) -> pd.Series:
    ev = log[log[schema.ACTIVITY].astype(str).eq(activity)]
    return ev.groupby(ev[schema.CASE].astype(str))[schema.TIMESTAMP].min().astype(log[schema.TIMESTAMP].dtype)


def lead_response_time(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
) -> pd.DataFrame:
    """Lead response time: from the lead's creation to the rep's first contact (the 4P's Promptness; warmer leads need a faster response).

    The 4P's Promptness. Per deal it is the time from its first ``lead``-role
    activity to its first ``first_contact``-role activity (profile roles);
    deals missing either are left out and counted in ``without_contact``.

    Returns
    -------
    DataFrame
        [by], deals, without_contact, median_hours, mean_hours, p90_hours.
    """
    profile = get_profile(profile, log)
    keys = as_list(by)
    lead = profile.require_role("lead", "Lead response time")
    first_contact = profile.require_role("first_contact", "Lead response time")
    cases = case_table(log, profile=profile)
    schema.require(cases, keys, "lead response time")
    created = first_time(log, lead)
    contact = first_time(log, first_contact)
    cases = cases[cases[schema.CASE].isin(created.index)].copy()
    # reindex keeps the datetime type when no deal was contacted (map would give floats)
    gap = contact.reindex(cases[schema.CASE]) - created.reindex(cases[schema.CASE])
    hours = pd.Series(gap.dt.total_seconds().to_numpy() / 3600, index=cases.index)
    cases["hours"] = hours.where(hours >= 0)
    out = group(cases, keys)["hours"].agg(
        deals="size", without_contact=lambda h: int(h.isna().sum()), median_hours="median",
        mean_hours="mean", p90_hours=lambda h: h.quantile(0.9))
    return out.reset_index(drop=not keys)


def followup_persistence(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Follow-ups after the first contact, won vs lost deals (the 4P's Persistence).

    Forgotten follow-ups lose deals.

    Counts the profile's loop activities (follow-ups) after a closed deal's
    first ``first_contact``-role event and before its close; deals never
    contacted count the follow-ups after their first event.

    Returns
    -------
    DataFrame
        outcome ('won', 'lost'), deals, mean_followups, median_followups,
        share_without_followup.
    """
    profile = get_profile(profile, log)
    _require_followups(profile, "Follow-up persistence")
    cases = case_table(log, profile=profile)
    closed = cases[cases["outcome"].isin(["won", "lost"])].set_index(schema.CASE)
    counts = _followups_after_contact(log, closed, profile)
    closed = closed.assign(followups=counts.reindex(closed.index, fill_value=0))
    out = closed.groupby("outcome")["followups"].agg(
        deals="size", mean_followups="mean", median_followups="median",
        share_without_followup=lambda f: float(f.eq(0).mean()))
    return out.reindex([o for o in ("won", "lost") if o in out.index]).reset_index()


def followup_difference(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.Series:
    """Is persistence real? Median follow-ups of won minus lost deals, with interval and p-value.

    Returns
    -------
    Series
        As :func:`workbench.stats.median_difference` (a = won, b = lost).
    """

    profile = get_profile(profile, log)
    _require_followups(profile, "Follow-up persistence")
    cases = case_table(log, profile=profile)
    closed = cases[cases["outcome"].isin(["won", "lost"])].set_index(schema.CASE)
    counts = _followups_after_contact(log, closed, profile).reindex(closed.index, fill_value=0)
    won = closed["outcome"].eq("won")
    return median_difference(counts[won], counts[~won], n_boot=n_boot, seed=seed)


def _require_followups(profile: SalesProcessProfile, analysis: str) -> None:
    profile.require_outcomes(analysis)
    if not profile.loops:
        raise WorkbenchError(f"{analysis} counts follow-ups, and profile {profile.name!r} names no follow-up "
                             "activity; skipped.", hint="list the follow-up activities under 'loops' in the profile.")


def _followups_after_contact(log: pd.DataFrame, cases: pd.DataFrame, profile: SalesProcessProfile) -> pd.Series:
    """Follow-ups per case of ``cases`` (indexed by case_id, with start and closed_at) after first contact
    (after the first event when the process names no first-contact stage)."""
    contact = first_time(log, profile.roles.get("first_contact", profile.stages[0]))
    ev = log[log[schema.ACTIVITY].astype(str).isin(profile.loops)]
    if ev.empty:
        return pd.Series(dtype="int64")
    case = ev[schema.CASE].astype(str)
    since = case.map(contact).fillna(case.map(cases["start"]))
    until = case.map(cases["closed_at"])
    keep = (ev[schema.TIMESTAMP] > since) & (until.isna() | (ev[schema.TIMESTAMP] < until))
    return case[keep].value_counts()
