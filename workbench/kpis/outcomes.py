"""Outcomes of closed deals: win rate, sales volume and deal size, revenue growth, cycle length."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import engine, schema
from ..calendar import DAY_S, quarter_of
from ..groups import BY, as_list, group, labelled
from ..profile import SalesProcessProfile, get_profile
from ..references import B2B_CYCLE_TABLE, MONTH_DAYS

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


def closed_cases(cases: pd.DataFrame, freq: str | None) -> pd.DataFrame:
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
    """Win rate = won / (won + lost) among deals closed in the period (the standard definition).

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

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> win_rate(generate_demo_data(seed=7, size="tiny").events).tail(1).to_dict("records")
    [{'period': '2026Q4', 'won': 1, 'lost': 8, 'closed': 9, 'win_rate': 0.1111111111111111}]
    """
    keys = as_list(by)
    get_profile(profile, log).require_outcomes("Win rate")
    cases = case_table(log, profile=profile)
    schema.require(cases, keys, "win rate")
    closed = closed_cases(cases, freq)
    keys = (["period"] if freq is not None else []) + keys
    closed["won"] = closed["outcome"].eq("won")
    out = group(closed, keys).agg(won=("won", "sum"), closed=("won", "size"))
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
    """Sales volume and deal size of the deals won in each period (units sold and amount, per period).

    Volume is counted both as deals won ("units sold") and as the amount won;
    deal size is the mean and median amount of a won deal.

    Returns
    -------
    DataFrame
        [period], [by], deals_won, volume, mean_deal_size, median_deal_size.
    """
    keys = as_list(by)
    get_profile(profile, log).require_outcomes("Sales volume")
    cases = case_table(log, profile=profile)
    schema.require(cases, [schema.AMOUNT, *keys], "sales volume")
    won = closed_cases(cases, freq)
    won = won[won["outcome"].eq("won")]
    won[schema.AMOUNT] = won[schema.AMOUNT].astype(float).fillna(0.0)
    keys = (["period"] if freq is not None else []) + keys
    out = group(won, keys)[schema.AMOUNT].agg(
        deals_won="size", volume="sum", mean_deal_size="mean", median_deal_size="median")
    return out.reset_index(drop=not keys)


def revenue_growth(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: BY = None,
) -> pd.DataFrame:
    """Won amount per quarter with its growth quarter on quarter and year on year (revenue growth).

    Growth is ``volume / volume of the earlier quarter - 1``; quarters without a
    win count 0 and growth from 0 is NaN.

    Returns
    -------
    DataFrame
        [by], quarter, volume, growth_qoq, growth_yoy.
    """
    keys = as_list(by)
    vol = sales_volume(log, profile=profile, by=by, freq="Q")
    if vol.empty:
        return pd.DataFrame(columns=[*keys, "quarter", "volume", "growth_qoq", "growth_yoy"])
    quarters = pd.period_range(vol["period"].min(), vol["period"].max(), freq="Q").astype(str)
    frames = []
    for key, part in (group(vol, keys) if keys else [((), vol)]):
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
    """The bucket of a B2B survey's cycle-length table each duration in days falls in.

    Buckets are half-open [low, high) in months of 365.25/12 days, so 3.5
    months falls in '4-6 months'.
    """
    edges = [*B2B_CYCLE_TABLE["low_months"], np.inf]
    months = pd.Series(days, dtype=float) / MONTH_DAYS
    return pd.cut(months, edges, right=False, labels=list(B2B_CYCLE_TABLE["bucket"]))


def cycle_length(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: str = "customer_type",
    outcomes: tuple[str, ...] = ("won", "lost", "ended"),
) -> pd.DataFrame:
    """Sales cycle length per segment, bucketed as a B2B survey's table and side by side with it.

    The cycle of a deal runs from its first event to its close (the standard
    definition). Open deals are left out because
    their cycle is not over.

    Parameters
    ----------
    by : str
        Case attribute holding 'new' / 'existing' customer.
    outcomes : tuple of str
        Which closed deals count.

    Returns
    -------
    DataFrame
        the ``by`` value, bucket, deals, share, benchmark_share (the survey's share;
        NaN for values it does not know), difference = share - benchmark_share.
    """
    cases = case_table(log, profile=profile)
    schema.require(cases, [by], "cycle length by customer type")
    closed = cases[cases["outcome"].isin(outcomes)].copy()
    closed["bucket"] = cycle_bucket(closed["cycle_days"])
    closed[by] = labelled(closed[by])
    counts = closed.groupby([by, "bucket"], observed=False).size().rename("deals").reset_index()
    counts["share"] = counts["deals"] / counts.groupby(by)["deals"].transform("sum")
    survey = B2B_CYCLE_TABLE.melt(id_vars="bucket", value_vars=["new", "existing"],
                                 var_name=by, value_name="benchmark_share")
    survey["bucket"] = survey["bucket"].astype(counts["bucket"].dtype)
    out = counts.merge(survey, on=[by, "bucket"], how="left")
    out["difference"] = out["share"] - out["benchmark_share"]
    return out.sort_values([by, "bucket"], ignore_index=True)
