"""The baselines a forecast is judged against, computed as a CRM would compute them.

*Weighted pipeline*: closed so far plus, for every open deal due this quarter
(:func:`workbench.snapshot.due_this_quarter`), its recorded amount times the
rate at which the history's due deals of its stage, in the same week of
quarter, were won before the quarter's end (the usual CRM number, made fair: a
deal that will not close this quarter is not counted, and a stage's rate is
its rate of winning in the time left). Its P(hit quota) comes from a normal
distribution around it whose spread is its own historical error at that level
and week of quarter. *Run rate*: bookings so far scaled to the whole quarter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import schema
from ..calendar import DAY, WEEKS, quarter_bounds, quarter_of, week_of_quarter
from ..snapshot import ClosingTimes, due_this_quarter
from .hierarchy import COMPANY, LEVELS, NO_REGION, NO_TEAM, positions


def run_rate(closed: float | np.ndarray, elapsed_days: float | np.ndarray,
             quarter_days: float | np.ndarray) -> float | np.ndarray:
    """The run rate: bookings so far scaled to the whole quarter (NaN before any day has passed).

    Examples
    --------
    >>> run_rate(300.0, 30.0, 90.0)
    900.0
    """
    elapsed = np.asarray(elapsed_days, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(elapsed > 0, np.asarray(closed, float) * quarter_days / elapsed, np.nan)
    return float(out) if out.ndim == 0 else out


#: Due deals a stage and week needs for a win rate of its own (else the stage's over all weeks).
MIN_RATE_DEALS = 20


def due_rows(train: pd.DataFrame, times: ClosingTimes) -> pd.DataFrame:
    """The training snapshot rows of deals that were due in their quarter."""
    elapsed = (train["week"].to_numpy(float) - 1) * 7
    return train[due_this_quarter(train, times, days_left=train["days_left"].to_numpy(float), elapsed=elapsed)]


def stage_win_rates(train: pd.DataFrame, times: ClosingTimes) -> pd.DataFrame:
    """Per stage (rows) and week of quarter (columns 1..13): the share of the history's due deals
    won before their quarter's end.

    A stage and week with fewer than :data:`MIN_RATE_DEALS` due rows takes the
    stage's rate over all weeks; a stage never seen due, 0.
    """
    due = due_rows(train, times)
    weeks = range(1, WEEKS + 1)
    g = due.groupby(["stage", "week"])["won"].agg(["mean", "size"])
    rate = g["mean"].where(g["size"] >= MIN_RATE_DEALS).unstack("week").reindex(columns=weeks)
    overall = due.groupby("stage")["won"].mean()
    return rate.apply(lambda col: col.fillna(overall.reindex(rate.index))).fillna(0.0).rename_axis(columns="week")


def weighted_pipeline(deals: pd.DataFrame, rates: pd.DataFrame, times: ClosingTimes, *, week,
                      elapsed) -> np.ndarray:
    """Each open deal's contribution to the weighted pipeline: recorded amount x its stage's rate
    in ``week`` if due this quarter, else 0 (``week``, ``elapsed`` scalars or per row)."""
    n = len(deals)
    due = due_this_quarter(deals, times, days_left=deals["days_left"].to_numpy(float), elapsed=elapsed)
    stage = positions(deals["stage"].astype(str), [str(s) for s in rates.index]).astype(int)
    week = np.broadcast_to(np.asarray(week, int), n)
    table = np.vstack([rates.to_numpy(float), np.zeros((1, rates.shape[1]))])  # unknown stage -> row of 0
    rate = table[np.where(stage >= 0, stage, len(rates)), np.clip(week, 1, WEEKS) - 1]
    return np.where(due, rate * deals[schema.AMOUNT].fillna(0.0).to_numpy(float), 0.0)


def baseline_sigma(train: pd.DataFrame, won: pd.DataFrame, rates: pd.DataFrame, times: ClosingTimes,
                   quarters: list[str], org: pd.DataFrame) -> pd.DataFrame:
    """RMS error of the weighted pipeline on the history, by level and week of quarter.

    At the start of week ``w`` the baseline's error for an entity is what it
    booked from then to the quarter's end minus its weighted open pipeline.

    Returns
    -------
    DataFrame[level, week, sigma]
    """
    value = weighted_pipeline(train, rates, times, week=train["week"].to_numpy(int),
                              elapsed=(train["week"].to_numpy(float) - 1) * 7)
    fc = pd.Series(value, index=train.index).groupby([train["quarter"], train["week"], train[schema.REP]]).sum()
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
              rates: pd.DataFrame, times: ClosingTimes, sigma: pd.DataFrame, quarter: str,
              as_of: pd.Timestamp) -> pd.DataFrame:
    """The weighted pipeline and the run rate of a forecast, per level and entity.

    Parameters
    ----------
    deals : DataFrame
        The open deals (the snapshot with days_left, and rep).
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
    week = week_of_quarter(as_of, quarter)
    value = weighted_pipeline(deals, rates, times, week=week, elapsed=(as_of - start) / DAY)
    wp = pd.Series(value, index=deals.index).groupby(deals[schema.REP]).sum()
    table = reps.copy()
    table["wp"] = table[schema.REP].map(closed).fillna(0.0) + table[schema.REP].map(wp).fillna(0.0)
    table["rr"] = run_rate(table[schema.REP].map(closed).fillna(0.0).to_numpy(float), (as_of - start) / DAY,
                           (end - start) / DAY)
    table[COMPANY] = COMPANY
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
