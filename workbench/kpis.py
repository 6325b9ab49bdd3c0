"""Sales KPIs: win rate, deal size, volume, growth, cycle length, funnel, velocity, coverage, attainment.

KPIs are computed from the per-case table of the engine
(:func:`workbench.engine.case_table`) and, where stages matter, its stage
visits (:func:`workbench.engine.stage_visits`), so the passes over every event
run in DuckDB. Open deals as of a date come from :func:`workbench.snapshot.snapshot`
(the same definition the forecast uses); lead response, follow-ups and
close-date or amount changes read the few events they need in pandas. Logs are
canonical DataFrames (:mod:`workbench.schema`). Definitions come from
``seeds/DIGEST.md`` (cited as seed and line); where the seeds give none, the
standard one is written in the function's docstring.

Bookings of a rep in a quarter are the amounts of the deals closed won in that
quarter, credited to the rep of the case table (the rep on the closing event);
a won deal with no amount counts 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import engine, schema
from .calendar import happened, quarter_bounds, quarter_of, to_utc
from .errors import WorkbenchError
from .profile import SalesProcessProfile, get_profile

DAY_S = 86400.0
#: Days in an average month, used for the seed's month buckets.
MONTH_DAYS = 365.25 / 12

#: The seed's B2B sales cycle length, share of deals per bucket for new and existing
#: customers (seed 003, l.66-72). Buckets are [low, high) in months of 365.25/12 days.
SEED_CYCLE_TABLE = pd.DataFrame({
    "bucket": ["< 1 month", "1-3 months", "4-6 months", "7-9 months", "10-12 months", "> 12 months"],
    "low_months": [0.0, 1.0, 3.0, 6.0, 9.0, 12.0],
    "high_months": [1.0, 3.0, 6.0, 9.0, 12.0, np.inf],
    "new": [0.051, 0.203, 0.282, 0.152, 0.131, 0.181],
    "existing": [0.220, 0.384, 0.239, 0.070, 0.029, 0.058],
})

#: The seed's headline: the average sales manager met 99% of quota while only 48% of
#: reps reached their own (seed 002, l.9-11).
SEED_TEAM_ATTAINMENT = 0.99
SEED_SHARE_REPS_AT_QUOTA = 0.48

BY = str | list[str] | tuple[str, ...] | None


def _as_list(by: BY) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def period_of(ts: pd.Series, freq: str = "Q") -> pd.Series:
    """Label of the period each timestamp falls in: '2026Q3' for quarters, '2026-07' for months."""
    if freq.upper().startswith("Q"):
        return quarter_of(ts)
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(freq).astype(str)


def case_table(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None) -> pd.DataFrame:
    """The engine's per-case table, with ``cycle_days`` (start to close, NaN while open)."""
    cases = engine.case_table(log, profile=get_profile(profile, log))
    cases["cycle_days"] = (cases["closed_at"] - cases["start"]).dt.total_seconds() / DAY_S
    return cases


def _group(frame: pd.DataFrame, keys: list[str]):
    # groupby drops NaN keys, which would lose deals silently: label them instead.
    frame = frame.assign(**{k: frame[k].astype(object).where(frame[k].notna(), "(none)") for k in keys})
    return frame.groupby(keys, sort=True) if keys else frame.groupby(lambda _: "all")


def _closed(cases: pd.DataFrame, freq: str | None) -> pd.DataFrame:
    out = cases[cases["outcome"].isin(["won", "lost"])].copy()
    if freq is not None:
        out["period"] = period_of(out["closed_at"], freq)
    return out


def win_rate(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
    freq: str | None = "Q",
) -> pd.DataFrame:
    """Win rate = won / (won + lost) among deals closed in the period (standard; the seeds give none).

    Parameters
    ----------
    log : DataFrame
        Canonical event log.
    by : str or list of str, optional
        Case attributes to split by (rep, team, region, lead_source...).
    freq : str or None
        Period of the close date ('Q' quarters, 'M' months); None pools all deals.

    Returns
    -------
    DataFrame
        [period], [by], won, lost, closed, win_rate.
    """
    keys = _as_list(by)
    get_profile(profile, log).require_outcomes("Win rate")
    cases = case_table(log, profile=profile)
    schema.require(cases, keys, "win rate")
    closed = _closed(cases, freq)
    keys = (["period"] if freq is not None else []) + keys
    closed["won"] = closed["outcome"].eq("won")
    out = _group(closed, keys).agg(won=("won", "sum"), closed=("won", "size"))
    out["lost"] = out["closed"] - out["won"]
    out["win_rate"] = out["won"] / out["closed"]
    return out[["won", "lost", "closed", "win_rate"]].reset_index(drop=not keys)


def sales_volume(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
    freq: str | None = "Q",
) -> pd.DataFrame:
    """Sales volume and deal size of the deals won in each period (seed 004, l.33-35).

    Volume is counted both as deals won ("units sold") and as the amount won;
    deal size is the mean and median amount of a won deal.

    Returns
    -------
    DataFrame
        [period], [by], deals_won, volume, mean_deal_size, median_deal_size.
    """
    keys = _as_list(by)
    get_profile(profile, log).require_outcomes("Sales volume")
    cases = case_table(log, profile=profile)
    schema.require(cases, [schema.AMOUNT, *keys], "sales volume")
    won = _closed(cases, freq)
    won = won[won["outcome"].eq("won")]
    won[schema.AMOUNT] = won[schema.AMOUNT].astype(float).fillna(0.0)
    keys = (["period"] if freq is not None else []) + keys
    out = _group(won, keys)[schema.AMOUNT].agg(
        deals_won="size", volume="sum", mean_deal_size="mean", median_deal_size="median")
    return out.reset_index(drop=not keys)


def revenue_growth(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
) -> pd.DataFrame:
    """Won amount per quarter with its growth quarter on quarter and year on year (seed 004, l.54-57).

    Growth is ``volume / volume of the earlier quarter - 1``; quarters without a
    win count 0 and growth from 0 is NaN.

    Returns
    -------
    DataFrame
        [by], quarter, volume, growth_qoq, growth_yoy.
    """
    keys = _as_list(by)
    vol = sales_volume(log, profile=profile, by=by, freq="Q")
    if vol.empty:
        return pd.DataFrame(columns=[*keys, "quarter", "volume", "growth_qoq", "growth_yoy"])
    quarters = pd.period_range(vol["period"].min(), vol["period"].max(), freq="Q").astype(str)
    frames = []
    for key, part in (_group(vol, keys) if keys else [((), vol)]):
        series = part.set_index("period")["volume"].reindex(quarters, fill_value=0.0)
        prev = series.shift(1).where(lambda s: s > 0)
        last_year = series.shift(4).where(lambda s: s > 0)
        frame = pd.DataFrame({"quarter": quarters, "volume": series.to_numpy(),
                              "growth_qoq": (series / prev - 1).to_numpy(),
                              "growth_yoy": (series / last_year - 1).to_numpy()})
        for k, v in zip(keys, key if isinstance(key, tuple) else (key,)):
            frame.insert(0, k, v)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def cycle_bucket(days: pd.Series) -> pd.Series:
    """The seed's cycle-length bucket of each duration in days (seed 003, l.66-72).

    Buckets are half-open [low, high) in months of 365.25/12 days, so 3.5
    months falls in '4-6 months'.
    """
    edges = [*SEED_CYCLE_TABLE["low_months"], np.inf]
    months = pd.Series(days, dtype=float) / MONTH_DAYS
    return pd.cut(months, edges, right=False, labels=list(SEED_CYCLE_TABLE["bucket"]))


def cycle_length(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    segment: str = "customer_type",
    outcomes: tuple[str, ...] = ("won", "lost", "ended"),
) -> pd.DataFrame:
    """Sales cycle length per segment, bucketed as the seed's table and side by side with it.

    The cycle of a deal runs from its first event to its close (the standard
    definition; the seed gives no other). Open deals are left out because
    their cycle is not over.

    Parameters
    ----------
    segment : str
        Case attribute holding 'new' / 'existing' (seed 003, l.66-72).
    outcomes : tuple of str
        Which closed deals count.

    Returns
    -------
    DataFrame
        segment value, bucket, deals, share, seed_share (NaN for segment values
        the seed does not know), difference = share - seed_share.
    """
    cases = case_table(log, profile=profile)
    schema.require(cases, [segment], "cycle length by customer type")
    closed = cases[cases["outcome"].isin(outcomes)].copy()
    closed["bucket"] = cycle_bucket(closed["cycle_days"])
    closed[segment] = closed[segment].astype(object).where(closed[segment].notna(), "(none)")
    counts = closed.groupby([segment, "bucket"], observed=False).size().rename("deals").reset_index()
    counts["share"] = counts["deals"] / counts.groupby(segment)["deals"].transform("sum")
    seed = SEED_CYCLE_TABLE.melt(id_vars="bucket", value_vars=["new", "existing"],
                                 var_name=segment, value_name="seed_share")
    seed["bucket"] = seed["bucket"].astype(counts["bucket"].dtype)
    out = counts.merge(seed, on=[segment, "bucket"], how="left")
    out["difference"] = out["share"] - out["seed_share"]
    return out.sort_values([segment, "bucket"], ignore_index=True)


def _furthest(log: pd.DataFrame, profile: SalesProcessProfile) -> pd.DataFrame:
    """Per case: start, outcome and the rank of the furthest stage reached (won, or finished in a
    process without outcomes, = past every stage)."""
    cases = case_table(log, profile=profile)
    visits = engine.stage_visits(log, profile=profile)
    rank = visits["stage"].map({s: i for i, s in enumerate(profile.stages)})
    furthest = rank.groupby(visits[schema.CASE]).max()
    cases["furthest"] = cases[schema.CASE].map(furthest).astype(float)
    cases.loc[cases["outcome"].eq(_final(profile)[1]), "furthest"] = len(profile.stages)
    cases["furthest"] = cases["furthest"].fillna(-1)
    return cases


def _final(profile: SalesProcessProfile) -> tuple[str, str]:
    """The funnel's last row and the outcome it counts: won deals, or finished cases of a process
    without outcomes."""
    return ("Won", "won") if profile.has_outcomes else ("Finished", "ended")


def _reached(furthest: pd.Series, profile: SalesProcessProfile, stages: list[str]) -> dict[str, int]:
    rank = {s: i for i, s in enumerate(profile.stages)}
    out = {s: int((furthest >= rank[s]).sum()) for s in stages}
    out[_final(profile)[0]] = int((furthest >= len(profile.stages)).sum())
    return out


def funnel(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    stages: list[str] | None = None,
) -> pd.DataFrame:
    """Stage-to-stage conversion: how many deals the team carries from a given number of leads.

    Seed 003, l.73-75 (a repeatable process shows how many deals come from a
    number of leads) and seed 002, l.135 (funnel facts make forecasts easier).
    A deal has reached a stage when it visited that stage or any later one
    (so a skipped optional stage does not break the funnel), and a won deal has
    reached every stage. Conversion is the share of the deals that reached the
    previous row that also reached this one.

    Parameters
    ----------
    stages : list of str, optional
        Stages to show, in profile order; default the mandatory stages.

    Returns
    -------
    DataFrame
        stage (the stages, then 'Won', or 'Finished' for a process without
        outcomes), reached, conversion, share_of_first.
    """
    profile = get_profile(profile, log)
    stages = list(stages or profile.mandatory)
    _check_stages(stages, profile)
    reached = _reached(_furthest(log, profile)["furthest"], profile, stages)
    out = pd.DataFrame({"stage": list(reached), "reached": list(reached.values())})
    out["conversion"] = out["reached"] / out["reached"].shift(1)
    out["share_of_first"] = out["reached"] / out["reached"].iloc[0] if out["reached"].iloc[0] else np.nan
    return out


def _check_stages(stages: list[str], profile: SalesProcessProfile) -> None:
    for s in stages:
        if s not in profile.stages:
            raise WorkbenchError(f"{s!r} is not a stage of profile {profile.name!r}.",
                                 hint=f"choose among {list(profile.stages)}.")


def cohort_conversion(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    freq: str = "M",
    stages: list[str] | None = None,
) -> pd.DataFrame:
    """Conversion by cohort: deals grouped by the month (``freq``) their first event falls in.

    Returns
    -------
    DataFrame
        cohort, deals, one column per stage with the share of the cohort that
        reached it (as in :func:`funnel`), won, lost, open (shares).
    """
    profile = get_profile(profile, log)
    stages = list(stages or profile.mandatory)
    _check_stages(stages, profile)
    cases = _furthest(log, profile)
    cases["cohort"] = period_of(cases["start"], freq)
    rows = []
    for cohort, part in cases.groupby("cohort", sort=True):
        reached = _reached(part["furthest"], profile, stages)
        row = {"cohort": cohort, "deals": len(part)}
        row.update({s: reached[s] / len(part) for s in stages})
        row.update({o: float(part["outcome"].eq(o).mean()) for o in ("won", "lost", "open")})
        rows.append(row)
    return pd.DataFrame(rows)


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
    from .snapshot import snapshot

    return snapshot(log, default_as_of(log) if as_of is None else to_utc(as_of), profile=get_profile(profile, log))


def pipeline_velocity(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    as_of: pd.Timestamp | str | None = None,
    lookback_days: float = 365.0,
    by: BY = None,
) -> pd.DataFrame:
    """Pipeline velocity = open qualified deals x win rate x mean deal size / mean cycle length.

    The standard definition (the seeds give none): open qualified deals are
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
    keys = _as_list(by)
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
    hist = _group(recent, keys).agg(win_rate=("won", "mean"), mean_deal_size=("won_amount", "mean"),
                                    mean_cycle_days=("won_cycle", "mean"))
    if keys:
        pipe = pipe.drop(columns=[k for k in keys if k in pipe.columns]).merge(
            cases[[schema.CASE, *keys]], on=schema.CASE, how="left")
    counts = _group(pipe, keys).size().rename("open_qualified")
    out = hist.join(counts, how="outer")
    out["open_qualified"] = out["open_qualified"].fillna(0).astype(int)
    out["velocity_per_day"] = (out["open_qualified"] * out["win_rate"] * out["mean_deal_size"]
                               / out["mean_cycle_days"])
    cols = ["open_qualified", "win_rate", "mean_deal_size", "mean_cycle_days", "velocity_per_day"]
    return out[cols].reset_index(drop=not keys)


def bookings(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None) -> pd.DataFrame:
    """Won deals with the quarter they closed in, credited to the case table's rep.

    Returns
    -------
    DataFrame
        case_id, rep, closed_at, quarter, amount (0 when the deal has none).
    """
    get_profile(profile, log).require_outcomes("Bookings")
    cases = case_table(log, profile=profile)
    schema.require(cases, [schema.REP, schema.AMOUNT], "bookings")
    won = cases[cases["outcome"].eq("won")]
    return pd.DataFrame({
        schema.CASE: won[schema.CASE], schema.REP: won[schema.REP], "closed_at": won["closed_at"],
        "quarter": quarter_of(won["closed_at"]), schema.AMOUNT: won[schema.AMOUNT].astype(float).fillna(0.0),
    }).reset_index(drop=True)


def _check_quotas(quotas: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(quotas, pd.DataFrame):
        raise WorkbenchError(f"expected the quota table as a DataFrame, got {type(quotas).__name__}.",
                             hint="load it with workbench.io (rep, team, quarter, quota).")
    for column in ("rep", "quarter", "quota"):
        if column not in quotas.columns:
            raise WorkbenchError(f"the quota table has no column {column!r}.", column=column,
                                 hint="give one row per rep and quarter: rep, team, quarter, quota.")
    return quotas


def attainment(
    log: pd.DataFrame,
    quotas: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    quarters: list[str] | None = None,
) -> pd.DataFrame:
    """Quota attainment per rep and quarter: bookings / quota (seed 002, l.9-11, l.43-57).

    Parameters
    ----------
    quotas : DataFrame
        rep, team, quarter, quota (one row per rep and quarter).
    quarters : list of str, optional
        Default: every quarter of the quota table.

    Returns
    -------
    DataFrame
        rep, team, quarter, quota, bookings, deals_won, attainment, at_quota.
        Reps with a quota and no win book 0; wins by reps without a quota row
        are left out (their attainment is undefined).
    """
    quotas = _check_quotas(quotas)
    quotas = quotas[quotas["rep"].notna()]
    if quarters is not None:
        quotas = quotas[quotas["quarter"].isin(quarters)]
    won = bookings(log, profile=profile)
    booked = won.groupby([schema.REP, "quarter"]).agg(bookings=(schema.AMOUNT, "sum"),
                                                       deals_won=(schema.CASE, "size")).reset_index()
    cols = ["rep", "team", "quarter", "quota"] if "team" in quotas.columns else ["rep", "quarter", "quota"]
    out = quotas[cols].merge(booked, on=["rep", "quarter"], how="left")
    out["bookings"] = out["bookings"].fillna(0.0)
    out["deals_won"] = out["deals_won"].fillna(0).astype(int)
    out["attainment"] = out["bookings"] / out["quota"].where(out["quota"] > 0)
    out["at_quota"] = out["attainment"] >= 1.0
    return out.sort_values(["quarter", *(["team"] if "team" in out else []), "rep"], ignore_index=True)


def gini(values: pd.Series | np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 equal shares, (n-1)/n one holder of everything.

    Standard mean-absolute-difference form ``sum |x_i - x_j| / (2 n^2 mean)``;
    NaN when empty or all zero.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n, total = x.size, x.sum() if x.size else 0.0
    if n == 0 or total <= 0:
        return float("nan")
    # sum_{i<j} (x_j - x_i) = sum_i (2i - n + 1) x_i for sorted x (0-based i).
    return float(np.sum((2 * np.arange(n) - n + 1) * x) / (n * total))


def _top_k_share(bookings: pd.Series, k: int) -> float:
    total = bookings.sum()
    return float(bookings.nlargest(k).sum() / total) if total > 0 else float("nan")


def pareto_share(bookings: pd.Series | np.ndarray, *, share: float = 0.8) -> float:
    """Smallest fraction of reps whose bookings make ``share`` of the total (seed 002, l.200: 80/20)."""
    x = np.sort(np.asarray(bookings, dtype=float))[::-1]
    if x.size == 0 or x.sum() <= 0:
        return float("nan")
    needed = int(np.searchsorted(np.cumsum(x) / x.sum(), share - 1e-12)) + 1
    return needed / x.size


def concentration(rep_attainment: pd.DataFrame, *, by: BY = "quarter", k: int = 3) -> pd.DataFrame:
    """How concentrated bookings are across reps (seed 002, l.10: teams make their number through a few reps).

    Returns
    -------
    DataFrame
        [by], reps, bookings, top_k_share (share of the ``k`` biggest
        bookers), gini (:func:`gini`), pareto_share (:func:`pareto_share`).
    """
    keys = _as_list(by)
    rows = []
    for key, part in _group(rep_attainment, keys):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(reps=len(part), bookings=part["bookings"].sum(), top_k_share=_top_k_share(part["bookings"], k),
                   gini=gini(part["bookings"]), pareto_share=pareto_share(part["bookings"]))
        rows.append(row)
    return pd.DataFrame(rows)


def team_attainment(rep_attainment: pd.DataFrame, *, k: int = 1) -> pd.DataFrame:
    """Team attainment next to the share of its reps at quota, concentration and leave-one-out.

    The seed's point (seed 002, l.9-12): a team can make 99% of its number
    while only 48% of its reps make theirs, because a few reps carry it; a good
    team survives losing its star. Concentration (seed 002, l.10 and the
    80/20 of l.200) is the share of the top ``k`` reps in the team's bookings
    and the Gini coefficient of bookings across its reps.
    ``makes_quota_without_top`` asks whether the
    team's bookings without its top rep still reach the whole team quota.

    Parameters
    ----------
    rep_attainment : DataFrame
        The output of :func:`attainment`.
    k : int
        How many top reps ``top_k_share`` counts.

    Returns
    -------
    DataFrame
        team, quarter, reps, quota, bookings, attainment, reps_at_quota,
        share_reps_at_quota, top_rep, top_rep_bookings, top_k_share, gini,
        attainment_without_top, makes_quota, makes_quota_without_top.
    """
    if "team" not in rep_attainment.columns:
        raise WorkbenchError("team attainment needs a 'team' column in the quota table.", column="team",
                             hint="add each rep's team to the quota table or join the reps table.")
    rows = []
    for (team, quarter), part in _group(rep_attainment, ["team", "quarter"]):
        quota, booked = part["quota"].sum(), part["bookings"].sum()
        top = part.sort_values(["bookings", "rep"], ascending=[False, True]).iloc[0]
        rows.append({
            "team": team, "quarter": quarter, "reps": len(part), "quota": quota, "bookings": booked,
            "attainment": booked / quota if quota > 0 else np.nan,
            "reps_at_quota": int(part["at_quota"].sum()),
            "share_reps_at_quota": float(part["at_quota"].mean()),
            "top_rep": top["rep"], "top_rep_bookings": top["bookings"],
            "top_k_share": _top_k_share(part["bookings"], k), "gini": gini(part["bookings"]),
            "attainment_without_top": (booked - top["bookings"]) / quota if quota > 0 else np.nan,
        })
    out = pd.DataFrame(rows)
    out["makes_quota"] = out["attainment"] >= 1.0
    out["makes_quota_without_top"] = out["attainment_without_top"] >= 1.0
    return out


def attainment_gap(rep_attainment: pd.DataFrame) -> pd.DataFrame:
    """Per quarter: mean team attainment next to the share of reps at quota, with the seed's 99% / 48%.

    Returns
    -------
    DataFrame
        quarter, teams, mean_team_attainment, share_teams_at_quota, reps,
        share_reps_at_quota, seed_team_attainment, seed_share_reps_at_quota.
    """
    teams = team_attainment(rep_attainment)
    out = teams.groupby("quarter").agg(teams=("team", "size"), mean_team_attainment=("attainment", "mean"),
                                       share_teams_at_quota=("makes_quota", "mean"))
    reps = rep_attainment.groupby("quarter").agg(reps=("rep", "size"), share_reps_at_quota=("at_quota", "mean"))
    out = out.join(reps).reset_index()
    out["seed_team_attainment"] = SEED_TEAM_ATTAINMENT
    out["seed_share_reps_at_quota"] = SEED_SHARE_REPS_AT_QUOTA
    return out


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

    The standard definition (the seeds give none). The open pipeline is the
    amount of the deals open at ``as_of``; when the log has a ``close_date``
    column, only deals expected to close before the quarter's end count
    (overdue ones included). Remaining quota is the quarter's quota minus the
    bookings from the quarter's start to ``as_of``, floored at 0. Late stage
    means at or past ``late_stage`` (default the profile's proposal stage, else
    its last stage).

    Returns
    -------
    DataFrame
        [by], quota, booked, remaining_quota, pipeline, late_pipeline,
        coverage, late_coverage; the last row (by = 'total') sums every group.
    """
    profile = get_profile(profile, log)
    quotas = _check_quotas(quotas)
    start, end = quarter_bounds(quarter)
    as_of = default_as_of(log) if as_of is None else to_utc(as_of)
    late_stage = late_stage or profile.roles.get("proposal", profile.stages[-1])
    _check_stages([late_stage], profile)
    keys = _as_list(by)
    q = quotas[quotas["quarter"].eq(quarter)]
    schema.require(q, keys, "pipeline coverage")
    won = bookings(log, profile=profile)
    won = won[(won["closed_at"] >= start) & (won["closed_at"] < end) & happened(won["closed_at"], as_of)]
    pipe = open_pipeline(log, as_of=as_of, profile=profile)
    if "close_date" in pipe.columns:
        due = pd.to_datetime(pipe["close_date"], utc=True, errors="coerce")
        pipe = pipe[due.isna() | (due < end)]
    pipe = pipe.assign(amount=pipe[schema.AMOUNT].astype(float).fillna(0.0),
                       late=pipe["stage_rank"] >= profile.stages.index(late_stage))
    if keys == ["team"]:
        # Credit deals and bookings to the team the quota table gives the rep, as attainment does.
        team_of = q.dropna(subset=["rep"]).drop_duplicates("rep").set_index("rep")["team"]
        team = pipe[schema.REP].map(team_of)
        pipe = pipe.assign(team=team.fillna(pipe["team"]) if "team" in pipe.columns else team)
        won = won.assign(team=won[schema.REP].map(team_of))
    frames = {
        "quota": _group(q, keys)["quota"].sum(),
        "booked": _group(won, keys)[schema.AMOUNT].sum(),
        "pipeline": _group(pipe, keys)["amount"].sum(),
        "late_pipeline": _group(pipe[pipe["late"]], keys)["amount"].sum(),
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


def _first_time(log: pd.DataFrame, activity: str) -> pd.Series:
    ev = log[log[schema.ACTIVITY].astype(str).eq(activity)]
    return ev.groupby(ev[schema.CASE].astype(str))[schema.TIMESTAMP].min().astype(log[schema.TIMESTAMP].dtype)


def lead_response_time(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
) -> pd.DataFrame:
    """Lead response time: from the lead's creation to the rep's first contact (seed 004, l.16-20, l.36-39).

    The 4P's Promptness. Per deal it is the time from its first ``lead``-role
    activity to its first ``first_contact``-role activity (profile roles);
    deals missing either are left out and counted in ``without_contact``.

    Returns
    -------
    DataFrame
        [by], deals, without_contact, median_hours, mean_hours, p90_hours.
    """
    profile = get_profile(profile, log)
    keys = _as_list(by)
    lead = profile.require_role("lead", "Lead response time")
    first_contact = profile.require_role("first_contact", "Lead response time")
    cases = case_table(log, profile=profile)
    schema.require(cases, keys, "lead response time")
    created = _first_time(log, lead)
    contact = _first_time(log, first_contact)
    cases = cases[cases[schema.CASE].isin(created.index)].copy()
    # reindex keeps the datetime type when no deal was contacted (map would give floats)
    gap = contact.reindex(cases[schema.CASE]) - created.reindex(cases[schema.CASE])
    hours = pd.Series(gap.dt.total_seconds().to_numpy() / 3600, index=cases.index)
    cases["hours"] = hours.where(hours >= 0)
    out = _group(cases, keys)["hours"].agg(
        deals="size", without_contact=lambda h: int(h.isna().sum()), median_hours="median",
        mean_hours="mean", p90_hours=lambda h: h.quantile(0.9))
    return out.reset_index(drop=not keys)


def followup_persistence(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
) -> pd.DataFrame:
    """Follow-ups after the first contact, won vs lost deals (the 4P's Persistence, seed 004, l.16-20).

    Seed 003, l.76-80: forgotten follow-ups lose deals.

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
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.Series:
    """Is persistence real? Median follow-ups of won minus lost deals, with interval and p-value.

    Returns
    -------
    Series
        As :func:`workbench.stats.median_difference` (a = won, b = lost).
    """
    from .stats import median_difference

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
    contact = _first_time(log, profile.roles.get("first_contact", profile.stages[0]))
    ev = log[log[schema.ACTIVITY].astype(str).isin(profile.loops)]
    if ev.empty:
        return pd.Series(dtype="int64")
    case = ev[schema.CASE].astype(str)
    since = case.map(contact).fillna(case.map(cases["start"]))
    until = case.map(cases["closed_at"])
    keep = (ev[schema.TIMESTAMP] > since) & (until.isna() | (ev[schema.TIMESTAMP] < until))
    return case[keep].value_counts()


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


__all__ = [
    "SEED_CYCLE_TABLE", "case_table", "default_as_of", "period_of", "win_rate",
    "sales_volume", "revenue_growth", "cycle_bucket", "cycle_length", "funnel", "cohort_conversion",
    "open_pipeline", "pipeline_velocity", "bookings", "attainment", "gini", "pareto_share",
    "concentration", "team_attainment", "attainment_gap", "pipeline_coverage", "lead_response_time",
    "followup_persistence", "followup_difference", "close_date_slips", "amount_changes",
]
