"""Where deals wait: time in stage, waiting between steps, rework, stalled deals, handovers, WIP.

Stage visits come from the engine (:func:`workbench.engine.stage_visits`):
time in a stage runs from entering it to entering the next stage or closing
(study the duration of each stage; knowing the triggers between stages lets
you remove bottlenecks). Only
finished visits enter duration statistics; a visit still running is censored.
Differences between teams or quarters are tested with :mod:`workbench.stats`
before a stage is called a bottleneck.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .progress import tqdm
from . import engine, schema, stats
from .calendar import happened, shift_quarter, to_utc
from .calendar import DAY_S
from .groups import BY, as_list, group, labelled
from .stats import N_BOOT
from .kpis import case_table, default_as_of, open_pipeline, period_of
from .schema import check_log
from .profile import SalesProcessProfile, get_profile

def stage_durations(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Every stage visit with its duration in days and its deal's attributes.

    Returns
    -------
    DataFrame
        The engine's stage visits (case_id, stage, visit, entered, left,
        rep, team, region of the entering event) with ``duration_days`` (NaN
        while the visit runs), ``finished`` and the case table's outcome,
        amount and other attributes (customer_type, lead_source, segment...).
    """
    profile = get_profile(profile, log)
    visits = engine.stage_visits(log, profile=profile)
    cases = case_table(log, profile=profile)
    extra = [c for c in cases.columns
             if c not in visits.columns and c not in ("start", "end", "duration_s", "n_events", "closed_at")]
    visits = visits.merge(cases[[schema.CASE, *extra]], on=schema.CASE, how="left")
    visits["duration_days"] = visits.pop("duration_s") / DAY_S
    visits["finished"] = visits["left"].notna()
    return visits


def _stage_order(frame: pd.DataFrame, profile: SalesProcessProfile, keys: list[str]) -> pd.DataFrame:
    rank = {s: i for i, s in enumerate(profile.stages)}
    return frame.sort_values([*keys, "stage"], key=lambda s: s.map(rank) if s.name == "stage" else s,
                             ignore_index=True)


def stage_times(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
    visits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Time in each stage: median, p90, mean and the stage's share of total cycle time.

    ``share_of_cycle`` is the stage's total finished time over the total
    finished time of all stages of the group; stage visits tile a deal's life
    from its first stage to its close, so this is the stage's share of cycle time.

    Parameters
    ----------
    by : str or list of str, optional
        Split by rep, team, region or any case attribute (segment, lead_source...).
    visits : DataFrame, optional
        Precomputed :func:`stage_durations` (saves a pass over the log).

    Returns
    -------
    DataFrame
        [by], stage, visits, median_days, p90_days, mean_days, total_days,
        share_of_cycle, rank_share (1 = largest share in its group), in stage order.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> times = stage_times(generate_demo_data(seed=7, size="tiny").events)
    >>> times[["stage", "visits"]].head(2).to_dict("records")
    [{'stage': 'Lead Created', 'visits': 77}, {'stage': 'Research', 'visits': 25}]
    """
    profile = get_profile(profile, log)
    keys = as_list(by)
    visits = stage_durations(log, profile=profile) if visits is None else visits
    schema.require(visits, keys, "stage times")
    done = visits[visits["finished"]]
    out = group(done, [*keys, "stage"])["duration_days"].agg(
        visits="size", median_days="median", p90_days=lambda d: d.quantile(0.9),
        mean_days="mean", total_days="sum").reset_index()
    grp = out.groupby(keys)["total_days"] if keys else out["total_days"]
    total = grp.transform("sum") if keys else pd.Series(out["total_days"].sum(), index=out.index)
    # a group whose finished visits all took no time has no shares to give
    out["share_of_cycle"] = out["total_days"] / total.where(total > 0)
    rank_grp = out.groupby(keys)["share_of_cycle"] if keys else out["share_of_cycle"]
    out["rank_share"] = rank_grp.rank(ascending=False, method="min").astype("Int64")
    return _stage_order(out, profile, keys)


def waiting_times(
    log: pd.DataFrame,
    *,
    by: str | None = None,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Waiting time between consecutive activities of a deal (the performance DFG), in days.

    The wait after a stage event until the deal's next event is the waiting
    in that stage (``source``). With ``by``, each deal goes to the group of its
    case-table value (rep or team on the closing event, else the first value
    of the attribute), so no pair of events is split between groups.

    Returns
    -------
    DataFrame
        [by], source, target, frequency, wait_median_days, wait_p90_days,
        wait_mean_days, most frequent first within each group.
    """
    events = check_log(log)[[schema.CASE, schema.ACTIVITY, schema.TIMESTAMP]]
    parts: list[tuple[object, pd.DataFrame]] = [(None, events)]
    if by is not None:
        cases = case_table(log, profile=profile)
        schema.require(cases, [by], "waiting times")
        group = events[schema.CASE].astype(str).map(labelled(cases.set_index(schema.CASE)[by]))
        parts = list(events.groupby(group, sort=True))
    frames = []
    for key, part in parts:
        dfg = engine.directly_follows(part)
        frame = dfg[["source", "target", "frequency"]].copy()
        for stat in ("median", "p90", "mean"):
            frame[f"wait_{stat}_days"] = dfg[f"wait_{stat}_s"] / DAY_S
        if by is not None:
            frame.insert(0, by, key)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def stage_excess(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: str = "team",
    visits: pd.DataFrame | None = None,
    min_n: int = 5,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Each group's time in each stage against the rest of the organisation.

    For every group (team, rep...) and stage, the median finished time of the
    group against that of everyone else (:func:`workbench.stats.group_vs_rest`:
    difference of medians, an interval, a Mann-Whitney p-value),
    Benjamini-Hochberg corrected over all the comparisons
    (:func:`workbench.stats.mark_findings`). ``excess_days`` = visits x
    difference of medians: the days the group loses in that stage compared with
    the rest. Comparisons with fewer than ``min_n`` visits on either side are
    not made.

    Parameters
    ----------
    by : str
        The grouping: team, rep, region or a deal attribute.
    n_boot, seed : int
        Bootstrap resamples of each interval and the seed of their generator
        (same seed, same numbers).
    progress : bool
        Show a progress bar.

    Returns
    -------
    DataFrame
        by, stage, then :data:`workbench.stats.GROUP_VS_REST_COLUMNS` (n visits,
        rest_n, value and rest_value in median days, diff, ci_low, ci_high,
        p_value), p_adjusted, significant, ratio, excess_days.
    """
    profile = get_profile(profile, log)
    visits = stage_durations(log, profile=profile) if visits is None else visits
    schema.require(visits, [by], "stage excess")
    done = visits[visits["finished"] & visits["duration_days"].notna()]
    rng = np.random.default_rng(seed)
    frames = []
    stages = [s for s in profile.stages if s in set(done["stage"])]
    for stage in tqdm(stages, desc="stages x " + by, disable=not progress):
        at = done[done["stage"] == stage]
        t = stats.group_vs_rest(at["duration_days"], labelled(at[by]), min_n=min_n, alpha=alpha, n_boot=n_boot,
                                seed=int(rng.integers(2**31)))
        frames.append(t.rename(columns={"group": by}).assign(stage=stage))
    cols = [by, "stage", *stats.GROUP_VS_REST_COLUMNS[1:]]
    out = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)
    out = stats.mark_findings(out, alpha=alpha)
    out["ratio"] = out["value"] / out["rest_value"].where(out["rest_value"] > 0)
    out["excess_days"] = out["n"] * out["diff"]
    return out


def stage_trend(
    log: pd.DataFrame,
    *,
    quarter: str,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
    visits: pd.DataFrame | None = None,
    min_n: int = 5,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Change of each stage's median time against the previous quarter.

    A visit belongs to the quarter in which it ended (its time is then
    known). The change is tested like :func:`stage_excess`.

    Returns
    -------
    DataFrame
        [by], stage, visits, median_days, previous_median_days, change (diff),
        ci_low, ci_high, p_value, p_adjusted, significant, rank_change
        (1 = largest increase in its group).
    """
    profile = get_profile(profile, log)
    keys = as_list(by)
    visits = stage_durations(log, profile=profile) if visits is None else visits
    schema.require(visits, keys, "stage trend")
    done = visits[visits["finished"]].copy()
    done["quarter"] = period_of(done["left"], "Q")
    previous = shift_quarter(quarter, -1)
    rng = np.random.default_rng(seed)
    rows = []
    for key, part in group(done, [*keys, "stage"]):
        now = part.loc[part["quarter"].eq(quarter), "duration_days"]
        before = part.loc[part["quarter"].eq(previous), "duration_days"]
        if len(now) < min_n or len(before) < min_n:
            continue
        res = stats.median_difference(now, before, seed=int(rng.integers(2**31)), n_boot=n_boot)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip([*keys, "stage"], key)), "visits": len(now), "median_days": res["median_a"],
                     "previous_median_days": res["median_b"], "diff": res["diff"], "ci_low": res["ci_low"],
                     "ci_high": res["ci_high"], "p_value": res["p_value"]})
    cols = [*keys, "stage", "visits", "median_days", "previous_median_days", "diff", "ci_low", "ci_high",
            "p_value"]
    out = stats.mark_findings(pd.DataFrame(rows, columns=cols), alpha=alpha).rename(columns={"diff": "change"})
    change = out.groupby(keys)["change"] if keys else out["change"]
    out["rank_change"] = change.rank(ascending=False, method="min")
    return _stage_order(out, profile, keys)


def rank_bottlenecks(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: str = "team",
    quarter: str | None = None,
    min_n: int = 5,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Stages ranked as bottlenecks within each group (team by default).

    ``rank`` orders a group's stages by ``excess_days`` (see
    :func:`stage_excess`): the stage where the group loses the most days
    compared with the rest of the organisation comes first, stages found
    significantly slower before the rest. ``rank_share`` ranks by contribution to cycle
    time (:func:`stage_times`) and, with ``quarter``, ``rank_change`` by the
    change against the previous quarter (:func:`stage_trend`).

    Returns
    -------
    DataFrame
        by, stage, rank, visits, median_days, p90_days, share_of_cycle,
        rank_share, rest_visits, rest_median_days, diff, ci_low, ci_high,
        p_value, p_adjusted, significant, ratio, excess_days [, change,
        rank_change], sorted by group and rank.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> ranking = rank_bottlenecks(generate_demo_data(seed=7, size="tiny").events, by="team", progress=False)
    >>> sorted(ranking["team"].unique())
    ['Commercial West', 'Enterprise East']
    """
    profile = get_profile(profile, log)
    visits = stage_durations(log, profile=profile)
    times = stage_times(log, profile=profile, by=by, visits=visits)
    excess = stage_excess(log, profile=profile, by=by, visits=visits, min_n=min_n,
                          alpha=alpha, n_boot=n_boot, seed=seed, progress=progress)
    excess = excess.drop(columns=["n", "value"]).rename(columns={"rest_value": "rest_median_days",
                                                                 "rest_n": "rest_visits"})
    out = times.merge(excess, on=[by, "stage"], how="left")
    if quarter is not None:
        trend = stage_trend(log, quarter=quarter, profile=profile, by=by, visits=visits,
                            min_n=min_n, alpha=alpha, n_boot=n_boot, seed=seed)
        out = out.merge(trend[[by, "stage", "change", "rank_change"]], on=[by, "stage"], how="left")
    out["_sig"] = out["significant"].fillna(False).astype(bool) & (out["diff"] > 0)
    out = out.sort_values([by, "_sig", "excess_days", "share_of_cycle"], ascending=[True, False, False, False],
                          na_position="last", ignore_index=True)
    out["rank"] = out.groupby(by).cumcount() + 1
    out = out.drop(columns="_sig")
    first = [by, "stage", "rank"]
    return out[first + [c for c in out.columns if c not in first]]


def top_bottleneck(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: str = "team",
    ranking: pd.DataFrame | None = None,
    seed: int = 0,
) -> pd.Series | None:
    """The bottleneck to name first: the group and stage where deals lose the most days.

    The one definition every page uses: among the stages found significantly
    slower in a group than in the rest of the organisation (:func:`rank_bottlenecks`),
    the one with the largest ``excess_days`` (visits x difference of medians).
    None when no stage is significantly slower anywhere.

    Parameters
    ----------
    ranking : DataFrame, optional
        A :func:`rank_bottlenecks` table already computed with the same ``by``.

    Returns
    -------
    Series or None
        The ranking's row: by, stage, median_days, rest_median_days, excess_days...

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> top = top_bottleneck(generate_demo_data(seed=7, size="small").events, by="team")
    >>> top[["team", "stage"]].tolist()
    ['Enterprise East', 'Proposal']
    """
    ranking = rank_bottlenecks(log, profile=profile, by=by, seed=seed) if ranking is None else ranking
    slower = ranking[ranking["significant"].fillna(False).astype(bool) & (ranking["diff"] > 0)]
    if slower.empty:
        return None
    return slower.sort_values(["excess_days", by, "stage"], ascending=[False, True, True]).iloc[0]


def rework(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
    visits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Repeated stages, split into repeat (same rep as the last visit of that stage) and redo (another rep).

    A visit after the first of the same stage in a deal is rework: the deal
    went back (a loop). Revisits where either rep is unknown count under
    ``unknown_rep``.

    Returns
    -------
    DataFrame
        [by], stage, visits, deals, revisits, repeats, redos, unknown_rep,
        rework_rate (revisits / visits), in stage order.
    """
    profile = get_profile(profile, log)
    keys = as_list(by)
    visits = stage_durations(log, profile=profile) if visits is None else visits
    schema.require(visits, keys, "rework")
    v = visits.sort_values([schema.CASE, "stage", "visit"])
    rep = v[schema.REP] if schema.REP in v.columns else pd.Series(np.nan, index=v.index)
    before = rep.groupby([v[schema.CASE], v["stage"]]).shift()
    revisit = v["visit"] > 1
    known = rep.notna() & before.notna()
    v = v.assign(revisit=revisit, repeat=revisit & known & rep.eq(before),
                 redo=revisit & known & rep.ne(before), unknown_rep=revisit & ~known)
    out = group(v, [*keys, "stage"]).agg(
        visits=("visit", "size"), deals=(schema.CASE, "nunique"), revisits=("revisit", "sum"),
        repeats=("repeat", "sum"), redos=("redo", "sum"), unknown_rep=("unknown_rep", "sum")).reset_index()
    out["rework_rate"] = out["revisits"] / out["visits"]
    return _stage_order(out, profile, keys)


def stage_thresholds(
    visits: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    quantile: float = 0.9,
    min_n: int = 5,
) -> pd.Series:
    """Per stage, the ``quantile`` of the days of visits finished before ``as_of`` (NaN under ``min_n``)."""
    done = visits[happened(visits["left"], as_of).fillna(False)]
    g = done.groupby("stage")["duration_days"]
    return g.quantile(quantile).where(g.size() >= min_n)


def stalled_deals(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    as_of: pd.Timestamp | str | None = None,
    quantile: float = 0.9,
    min_n: int = 5,
) -> pd.DataFrame:
    """Open deals that have sat in their current stage longer than that stage usually takes.

    A deal open at ``as_of`` (default the last event) is stalled
    when its time in its current stage exceeds the stage's historical
    ``quantile`` (p90), computed from the visits of that stage finished before
    ``as_of`` (a stalled deal should be traced to its root cause). Stages
    with fewer than ``min_n`` finished visits have no threshold and flag
    nothing.

    Returns
    -------
    DataFrame
        case_id, rep, team, stage, amount, days_in_stage, threshold_days,
        days_stalled (beyond the threshold), stage_entered, last_activity,
        days_since_last_activity: the list a manager acts on, largest amount
        first, then longest stalled.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> demo = generate_demo_data(seed=7, size="tiny")
    >>> stalled = stalled_deals(demo.events)
    >>> set(demo.truth.stalled) <= set(stalled["case_id"])
    True
    """
    profile = get_profile(profile, log)
    as_of = default_as_of(log) if as_of is None else to_utc(as_of)
    visits = stage_durations(log, profile=profile)
    threshold = stage_thresholds(visits, as_of=as_of, quantile=quantile, min_n=min_n)
    pipe = open_pipeline(log, as_of=as_of, profile=profile)
    pipe = pipe.assign(days_in_stage=pipe["time_in_stage_days"], threshold_days=pipe["stage"].map(threshold))
    pipe["days_stalled"] = pipe["days_in_stage"] - pipe["threshold_days"]
    out = pipe[pipe["days_stalled"] > 0]
    cols = [schema.CASE, schema.REP, schema.TEAM, "stage", schema.AMOUNT, "days_in_stage", "threshold_days",
            "days_stalled", "stage_entered", "last_activity", "days_since_last_activity"]
    out = out[[c for c in cols if c in out.columns]]
    return out.sort_values([schema.AMOUNT, "days_stalled"], ascending=False, na_position="last",
                           ignore_index=True)


def handovers(log: pd.DataFrame, *, by: str = "rep") -> pd.DataFrame:
    """Handovers of a deal between reps (or teams) and how long the next one took to act.

    A handover is two consecutive events of a deal done by different
    ``by`` values (the handover-of-work network); the delay is the time
    between them. Events without a ``by`` value are left out. Computed by
    the engine as the directly-follows graph of ``by`` instead of activity.

    Returns
    -------
    DataFrame
        source, target, handovers, delay_median_days, delay_p90_days,
        delay_mean_days, most frequent first.
    """
    schema.require(check_log(log), [by], "handovers")
    who = log[[schema.CASE, by, schema.TIMESTAMP]].dropna(subset=[by])
    who = who.rename(columns={by: schema.ACTIVITY}).astype({schema.ACTIVITY: str})
    dfg = engine.directly_follows(who)
    dfg = dfg[dfg["source"] != dfg["target"]]
    out = pd.DataFrame({"source": dfg["source"], "target": dfg["target"], "handovers": dfg["frequency"]})
    for stat in ("median", "p90", "mean"):
        out[f"delay_{stat}_days"] = dfg[f"wait_{stat}_s"] / DAY_S
    return out.reset_index(drop=True)


def wip(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    freq: str = "W",
    by: BY = None,
    visits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Work in progress: deals in each stage at the end of each period (week by default).

    A deal is in a stage at time t when it entered that visit at or before t
    and had not left it by t.

    Returns
    -------
    DataFrame
        period_end, [by], stage, wip.
    """
    profile = get_profile(profile, log)
    keys = as_list(by)
    visits = stage_durations(log, profile=profile) if visits is None else visits
    schema.require(visits, keys, "work in progress")
    def naive(ts: pd.Series) -> np.ndarray:
        # searchsorted needs plain datetime64, not tz-aware objects
        return np.sort(ts.dropna().dt.tz_convert("UTC").dt.tz_localize(None).to_numpy())

    last = to_utc(log[schema.TIMESTAMP].max()).tz_localize(None)
    first = to_utc(visits["entered"].min()).tz_localize(None)
    ends = pd.DatetimeIndex(pd.period_range(first, last, freq=freq).end_time)
    t = ends.to_numpy()
    frames = []
    for key, part in group(visits, [*keys, "stage"]):
        count = (np.searchsorted(naive(part["entered"]), t, side="right")
                 - np.searchsorted(naive(part["left"]), t, side="right"))
        frame = pd.DataFrame({"period_end": ends.tz_localize("UTC"), "wip": count})
        for k, val in zip([*keys, "stage"], key if isinstance(key, tuple) else (key,)):
            frame[k] = val
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    return _stage_order(out[["period_end", *keys, "stage", "wip"]], profile, ["period_end", *keys])


__all__ = [
    "stage_durations", "stage_times", "waiting_times", "stage_excess", "stage_trend", "rank_bottlenecks",
    "top_bottleneck",
    "rework", "stage_thresholds", "stalled_deals", "handovers", "wip",
]
