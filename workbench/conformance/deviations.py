"""The deviations of each deal from the profile, named as a sales manager would, and per deal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import kpis
from ..calendar import DAY_S
from ..errors import WorkbenchError
from ..io import after_close_mask
from ..profile import SalesProcessProfile, get_profile
from ..schema import ACTIVITY, CASE, PM4PY_NAMES, TIMESTAMP
from ..schema import DEVIATION_KINDS as KINDS

from .reference import prepared_events

DEVIATION_COLUMNS = [CASE, "kind", "count", "first_at", "detail"]


def _case_first(ev: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Per case: how many rows of ``mask`` and the time of the first."""
    hit = ev.loc[mask, [CASE, TIMESTAMP]]
    return hit.groupby(CASE, sort=True)[TIMESTAMP].agg(count="size", first_at="min").reset_index()


def _rows(kind: str, frame: pd.DataFrame, detail: pd.Series | str) -> pd.DataFrame:
    out = frame.assign(kind=kind, detail=detail)
    return out[DEVIATION_COLUMNS]


def _without_close_completions(rows: pd.DataFrame, profile: SalesProcessProfile) -> pd.DataFrame:
    """Drop the quarantined 'complete' of a closing activity whose 'start' closed the case.

    A loader that sets events after the close aside without looking at lifecycle
    transitions quarantines the completion of the close itself; it is not a deviation.
    """
    col = next((c for c in ("lifecycle", "lifecycle:transition") if c in rows.columns), None)
    act = next((c for c in (ACTIVITY, PM4PY_NAMES[ACTIVITY]) if c in rows.columns), None)
    if col is None or act is None or rows.empty:
        return rows
    case = next((c for c in (CASE, PM4PY_NAMES[CASE]) if c in rows.columns), None)
    completes_close = ((rows[col].astype(str).str.strip().str.lower() == "complete")
                       & rows[act].isin(profile.closing))
    first = ~completes_close.groupby(rows[case] if case else pd.Series(0, index=rows.index)).cumsum().gt(1)
    return rows[~(completes_close & first)]


def _quarantined_after_close(quarantine: pd.DataFrame | None, case_column: str | None,
                             profile: SalesProcessProfile) -> pd.DataFrame:
    """Quarantine rows set aside as ``event_after_close``: DataFrame[case_id, timestamp]."""
    empty = pd.DataFrame({CASE: pd.Series(dtype="str"), TIMESTAMP: pd.Series(dtype="datetime64[ns, UTC]")})
    if quarantine is None or len(quarantine) == 0:
        return empty
    if "reason" not in quarantine.columns:
        raise WorkbenchError("the quarantine table has no 'reason' column.", column="reason",
                             hint="pass LoadResult.quarantine as returned by workbench.io.read_event_log.")
    rows = quarantine[quarantine["reason"] == "event_after_close"]
    rows = _without_close_completions(rows, profile)
    candidates = [case_column] if case_column else [CASE, PM4PY_NAMES[CASE]]
    col = next((c for c in candidates if c in quarantine.columns), None)
    if col is None:
        raise WorkbenchError(
            f"the quarantine table has no case column {candidates[0]!r}.", column=candidates[0],
            hint="pass case_column= with the name of your export's case id column.")
    ts_col = next((c for c in (TIMESTAMP, PM4PY_NAMES[TIMESTAMP]) if c in rows.columns), None)
    ts = (pd.to_datetime(rows[ts_col], utc=True, errors="coerce", format="mixed") if ts_col
          else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]"))
    return pd.DataFrame({CASE: rows[col].astype(str).to_numpy(), TIMESTAMP: ts.to_numpy()})


def detect_deviations(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    case_column: str | None = None,
) -> pd.DataFrame:
    """Find the deviations of every case from the profile (definitions in the module docstring).

    Parameters
    ----------
    log : DataFrame
        Canonical event log (events after the close may still be in it).
    quarantine : DataFrame, optional
        The loader's quarantine; its ``event_after_close`` rows count as
        ``after_close`` deviations of their case.
    gap_days : float, optional
        Follow-up gap threshold in days; default ``profile.followup_gap_days``.
    case_column : str, optional
        The quarantine's case id column when it is not ``case_id``.

    Returns
    -------
    DataFrame[case_id, kind, count, first_at, detail]: one row per case and kind
    found, sorted by case_id and kind (in :data:`KINDS` order).

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> deviations = detect_deviations(generate_demo_data(seed=7, size="tiny").events)
    >>> sorted(deviations["kind"].unique())[:3]
    ['after_close', 'premature_proposal', 'skipped_stage']
    """
    profile = get_profile(profile, log)
    gap_days = profile.followup_gap_days if gap_days is None else float(gap_days)
    if not gap_days > 0:
        raise WorkbenchError(f"gap_days={gap_days} is not a positive number of days.", hint="give e.g. 45.")
    milestones_only = log.attrs.get("kind") == "opportunities"
    ev = prepared_events(log)
    act = ev[ACTIVITY]
    case = ev[CASE].to_numpy()
    after = after_close_mask(ev, profile)
    closing = act.isin(profile.closing).to_numpy()
    close = closing & ~after
    pre = ~closing & ~after
    rank = act.map({s: i for i, s in enumerate(profile.stages)}).to_numpy(dtype=float)
    stage_pre = pre & ~np.isnan(rank)
    won = close & act.isin(profile.won).to_numpy()
    found: list[pd.DataFrame] = []

    # Stages present before the close, and how far each case got.
    stage_hits = pd.DataFrame({CASE: case[stage_pre], "stage": act.to_numpy()[stage_pre]})
    # groupby().size() counts in compiled code; pd.crosstab counts each cell in Python
    present = stage_hits.groupby([CASE, "stage"]).size().unstack(fill_value=0).gt(0)
    cases = pd.Index(pd.unique(case), name=CASE)
    present = present.reindex(index=cases, columns=list(profile.stages), fill_value=False)
    reach = pd.Series(rank[stage_pre], index=case[stage_pre]).groupby(level=0).max().reindex(cases)
    won_cases = pd.Index(pd.unique(case[won]))
    reach[reach.index.isin(won_cases)] = len(profile.stages)
    close_at = ev.loc[close].set_index(CASE)[TIMESTAMP].reindex(cases)

    missing = {s: (~present[s]) & (reach > profile.stages.index(s)) for s in profile.mandatory}
    skipped = pd.DataFrame(missing)
    if len(skipped) and skipped.to_numpy().any():
        hit = skipped[skipped.any(axis=1)]
        names = hit.apply(lambda r: ", ".join(s for s in profile.mandatory if r[s]), axis=1)
        first_skipped = hit.apply(lambda r: min(profile.stages.index(s) for s in profile.mandatory if r[s]),
                                  axis=1)
        later = pd.DataFrame({CASE: case, "rank": rank, TIMESTAMP: ev[TIMESTAMP]})[stage_pre]
        later = later.merge(first_skipped.rename("skip").reset_index(), on=CASE)
        shown = later[later["rank"] > later["skip"]].groupby(CASE)[TIMESTAMP].min()
        at = shown.reindex(hit.index).fillna(close_at.reindex(hit.index))
        frame = pd.DataFrame({CASE: hit.index, "count": hit.sum(axis=1).to_numpy(), "first_at": at.to_numpy()})
        found.append(_rows("skipped_stage", frame, ("skipped " + names).to_numpy()))

    qual, prop = profile.roles.get("qualification"), profile.roles.get("proposal")
    if qual and prop:
        is_qual = (act == qual).to_numpy().astype("int64")
        seen_qual = pd.Series(is_qual).groupby(case, sort=False).cumsum().to_numpy() - is_qual
        mask = pre & (act == prop).to_numpy() & (seen_qual == 0)
        found.append(_rows("premature_proposal", _case_first(ev, mask), f"{prop} before any {qual}"))

    st = ev.loc[stage_pre, [CASE, TIMESTAMP, ACTIVITY]].assign(rank=rank[stage_pre])
    prev_rank = st.groupby(CASE, sort=False)["rank"].shift()
    prev_act = st.groupby(CASE, sort=False)[ACTIVITY].shift()
    back = (st["rank"] < prev_rank).to_numpy()
    if back.any():
        regress = st[back].assign(step="back from " + prev_act[back] + " to " + st.loc[back, ACTIVITY])
        agg = regress.groupby(CASE, sort=True).agg(count=(TIMESTAMP, "size"), first_at=(TIMESTAMP, "min"),
                                                  detail=("step", "first")).reset_index()
        found.append(agg.assign(kind="stage_regression")[DEVIATION_COLUMNS])

    nxt = ev.groupby(CASE, sort=False)[TIMESTAMP].shift(-1)
    gap = (nxt - ev[TIMESTAMP]).dt.total_seconds().to_numpy() / DAY_S
    long_gap = pre & (np.nan_to_num(gap, nan=0.0) > gap_days) & (not milestones_only)
    if long_gap.any():
        g = pd.DataFrame({CASE: case[long_gap], TIMESTAMP: ev[TIMESTAMP].to_numpy()[long_gap],
                          "days": gap[long_gap]})
        agg = g.groupby(CASE, sort=True).agg(count=("days", "size"), first_at=(TIMESTAMP, "min"),
                                             longest=("days", "max")).reset_index()
        detail = agg["longest"].map(lambda d: f"silent for {d:.0f} days (> {gap_days:g})")
        found.append(_rows("followup_gap", agg, detail.to_numpy()))

    late = pd.concat([ev.loc[after, [CASE, TIMESTAMP]].reset_index(drop=True),
                      _quarantined_after_close(quarantine, case_column, profile)], ignore_index=True)
    if len(late):
        agg = late.groupby(CASE, sort=True)[TIMESTAMP].agg(count="size", first_at="min").reset_index()
        detail = agg["count"].map(lambda n: f"{n} event{'s' if n > 1 else ''} after the close")
        found.append(_rows("after_close", agg, detail.to_numpy()))

    milestone_stages = list(dict.fromkeys(profile.milestones.values()))
    if milestone_stages and len(won_cases):
        lacking = ~present.loc[won_cases, milestone_stages]
        hit = lacking[lacking.any(axis=1)]
        if len(hit):
            names = hit.apply(lambda r: ", ".join(
                f"{m} ({s})" for m, s in profile.milestones.items() if r[s]), axis=1)
            frame = pd.DataFrame({CASE: hit.index, "count": hit.sum(axis=1).to_numpy(),
                                  "first_at": close_at.reindex(hit.index).to_numpy()})
            found.append(_rows("won_without_milestones", frame, ("won without " + names).to_numpy()))

    if not found:
        return _empty_deviations()
    out = pd.concat(found, ignore_index=True)
    out[CASE] = out[CASE].astype(str)
    out["count"] = out["count"].astype("int64")
    out["first_at"] = pd.to_datetime(out["first_at"], utc=True)
    out["_k"] = out["kind"].map({k: i for i, k in enumerate(KINDS)})
    return out.sort_values([CASE, "_k"], kind="stable", ignore_index=True).drop(columns="_k")


def _empty_deviations() -> pd.DataFrame:
    return pd.DataFrame({CASE: pd.Series(dtype="str"), "kind": pd.Series(dtype="str"),
                         "count": pd.Series(dtype="int64"),
                         "first_at": pd.Series(dtype="datetime64[ns, UTC]"), "detail": pd.Series(dtype="str")})


def case_conformance(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    deviations: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    kinds: Sequence[str] = KINDS,
) -> pd.DataFrame:
    """One row per case: the case table (:func:`workbench.kpis.case_table`), one
    boolean column per deviation kind, ``n_deviations`` and ``conforming``
    (no deviation of the given ``kinds``)."""
    kinds = check_kinds(kinds)
    profile = get_profile(profile, log)
    ev = prepared_events(log)
    if deviations is None:
        deviations = detect_deviations(ev, profile=profile, quarantine=quarantine, gap_days=gap_days)
    cases = kpis.case_table(ev, profile=profile)
    flags = deviations.groupby([CASE, "kind"]).size().unstack(fill_value=0).gt(0)
    flags = flags.reindex(index=cases[CASE], columns=list(KINDS), fill_value=False)
    for kind in KINDS:
        cases[kind] = flags[kind].to_numpy()
    cases["n_deviations"] = flags.sum(axis=1).to_numpy()
    cases["conforming"] = ~flags[list(kinds)].any(axis=1).to_numpy()
    return cases


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if bad := [k for k in kinds if k not in KINDS]:
        raise WorkbenchError(f"unknown deviation kind {bad[0]!r}.", hint=f"use some of {list(KINDS)}.")
    if not kinds:
        raise WorkbenchError("no deviation kind given.", hint=f"use some of {list(KINDS)}.")
    return kinds
