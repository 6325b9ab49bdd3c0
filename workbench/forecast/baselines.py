"""The baselines a forecast is judged against, computed as a CRM would compute them.

*Weighted pipeline*: closed so far plus each open deal's amount times the
historical win rate of its stage (the usual CRM number), with a P(hit quota)
from a normal distribution around it whose spread is its own historical error
at that level and week of quarter. *Run rate*: bookings so far scaled to the
whole quarter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import schema
from ..calendar import DAY, WEEKS, quarter_bounds, quarter_of, week_of_quarter
from .hierarchy import COMPANY, LEVELS, NO_REGION, NO_TEAM, lookup


def stage_win_rates(train: pd.DataFrame) -> pd.Series:
    """Historical share of won deals among those closed, by the stage they were in (training rows)."""
    closed = train[train["closing"].notna()]
    return closed.assign(won_=(closed["closing"] == "won").astype(float)).groupby("stage")["won_"].mean()


def baseline_sigma(train: pd.DataFrame, won: pd.DataFrame, rates: pd.Series, imputed: float,
                   quarters: list[str], org: pd.DataFrame) -> pd.DataFrame:
    """RMS error of the weighted pipeline on the history, by level and week of quarter.

    At the start of week ``w`` the baseline's error for an entity is what it
    booked from then to the quarter's end minus its weighted open pipeline.

    Returns
    -------
    DataFrame[level, week, sigma]
    """
    rate = pd.Series(lookup(train["stage"], rates, 0.0), index=train.index)
    fc = (rate * train[schema.AMOUNT].fillna(imputed)).groupby(
        [train["quarter"], train["week"], train[schema.REP]]).sum()
    starts = {q: quarter_bounds(q) for q in quarters}
    quarter = quarter_of(won["closed_at"])
    wq = won[quarter.isin(list(starts))].assign(quarter=quarter)
    first = wq["quarter"].map({q: b[0] for q, b in starts.items()})
    # A deal closed during week k is still to come at the start of weeks 1..k (one closed
    # at the very start of week k has happened by then).
    last_week = np.ceil((wq["closed_at"] - first) / DAY / 7).astype(int)
    rest = wq.loc[wq.index.repeat(np.minimum(last_week, WEEKS))].copy()
    rest["week"] = rest.groupby(level=0).cumcount() + 1
    booked = rest.groupby(["quarter", "week", schema.REP])[schema.AMOUNT].sum()
    reps = sorted(set(won[schema.REP].unique()) | set(train[schema.REP].unique()))
    grid = pd.MultiIndex.from_product([quarters, range(1, WEEKS + 1), reps], names=["quarter", "week", schema.REP])
    err = (booked.reindex(grid, fill_value=0.0) - fc.reindex(grid, fill_value=0.0)).rename("err").reset_index()
    e = err.merge(org, on=schema.REP, how="left")
    e[schema.TEAM] = e[schema.TEAM].fillna(NO_TEAM)
    e[schema.REGION] = e[schema.REGION].fillna(NO_REGION)
    e[COMPANY] = COMPANY
    out = []
    for level in LEVELS:
        key = schema.REP if level == "rep" else level
        agg = e.groupby(["quarter", "week", key])["err"].sum()
        sig = np.sqrt((agg ** 2).groupby(level="week").mean())
        out.append(pd.DataFrame({"level": level, "week": sig.index, "sigma": sig.to_numpy()}))
    return pd.concat(out, ignore_index=True)


def baselines(deals: pd.DataFrame, closed: pd.Series, reps: pd.DataFrame, quotas: dict[str, pd.Series],
              rates: pd.Series, sigma: pd.DataFrame, quarter: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The weighted pipeline and the run rate of a forecast, per level and entity.

    Parameters
    ----------
    deals : DataFrame
        The open deals (stage, rep, amount_used).
    closed : Series
        Closed-won so far per rep.
    reps : DataFrame
        rep, team, region of the reps forecast.

    Returns
    -------
    DataFrame
        level, entity, weighted_pipeline, weighted_pipeline_p_hit, run_rate
        (bookings so far x quarter length / days elapsed; NaN on the first day).
    """
    start, end = quarter_bounds(quarter)
    elapsed = (as_of - start) / DAY
    scale = ((end - start) / DAY) / elapsed if elapsed > 0 else np.nan
    rate = lookup(deals["stage"], rates, 0.0).astype(float)
    wp = (rate * deals["amount_used"]).groupby(deals[schema.REP]).sum()
    table = reps.copy()
    table["wp"] = table[schema.REP].map(closed).fillna(0.0) + table[schema.REP].map(wp).fillna(0.0)
    table["rr"] = table[schema.REP].map(closed).fillna(0.0) * scale
    table[COMPANY] = COMPANY
    week = week_of_quarter(as_of, quarter)
    out = []
    for level in LEVELS:
        key = schema.REP if level == "rep" else level
        g = table.groupby(key, sort=True)[["wp", "rr"]].sum().reset_index()
        s = sigma[(sigma["level"] == level) & (sigma["week"] == week)]["sigma"]
        spread = float(s.iloc[0]) if len(s) else np.nan
        quota = g[key].map(quotas[level]).to_numpy(float) if len(quotas[level]) else np.full(len(g), np.nan)
        p_hit = np.where(np.isnan(quota), np.nan, sps.norm.sf(quota, loc=g["wp"].to_numpy(), scale=max(spread, 1e-9)))
        out.append(pd.DataFrame({"level": level, "entity": g[key].to_numpy(), "weighted_pipeline": g["wp"].to_numpy(),
                                 "weighted_pipeline_p_hit": p_hit, "run_rate": g["rr"].to_numpy()}))
    return pd.concat(out, ignore_index=True)
