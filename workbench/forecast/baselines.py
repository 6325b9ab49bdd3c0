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
from .hierarchy import COMPANY, LEVELS, NO_REGION, NO_TEAM, positions, quotas_by_level


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


def stage_win_rates(train: pd.DataFrame) -> pd.DataFrame:
    """Per stage (rows) and week of quarter (columns 1..13): the share of the history's due deals
    won before their quarter's end.

    ``train`` has the ``due`` flag of :func:`workbench.snapshot.due_this_quarter`.
    A stage and week with fewer than :data:`MIN_RATE_DEALS` due rows takes the
    stage's rate over all weeks; a stage never seen due, 0.
    """
    due = train[train["due"].astype(bool)]
    weeks = range(1, WEEKS + 1)
    g = due.groupby(["stage", "week"])["won"].agg(["mean", "size"])
    rate = g["mean"].where(g["size"] >= MIN_RATE_DEALS).unstack("week").reindex(columns=weeks)
    overall = due.groupby("stage")["won"].mean()
    return rate.apply(lambda col: col.fillna(overall.reindex(rate.index))).fillna(0.0).rename_axis(columns="week")


def weighted_pipeline(deals: pd.DataFrame, rates: pd.DataFrame, *, week) -> np.ndarray:
    """Each open deal's contribution to the weighted pipeline: recorded amount x its stage's rate
    in ``week`` (scalar or per row) if ``due`` this quarter, else 0."""
    n = len(deals)
    due = deals["due"].to_numpy(bool)
    stage = positions(deals["stage"].astype(str), [str(s) for s in rates.index]).astype(int)
    week = np.broadcast_to(np.asarray(week, int), n)
    table = np.vstack([rates.to_numpy(float), np.zeros((1, rates.shape[1]))])  # unknown stage -> row of 0
    rate = table[np.where(stage >= 0, stage, len(rates)), np.clip(week, 1, WEEKS) - 1]
    return np.where(due, rate * deals[schema.AMOUNT].fillna(0.0).to_numpy(float), 0.0)


def baseline_sigma(train: pd.DataFrame, won: pd.DataFrame, rates: pd.DataFrame, quarters: list[str],
                   org: pd.DataFrame) -> pd.DataFrame:
    """RMS error of the weighted pipeline on the history, by level and week of quarter.

    At the start of week ``w`` the baseline's error for an entity is what it
    booked from then to the quarter's end minus its weighted open pipeline.

    Returns
    -------
    DataFrame[level, week, sigma]
    """
    value = weighted_pipeline(train, rates, week=train["week"].to_numpy(int))
    # On a sample of the deals each row stands for v of them (see training_snapshots): the pipeline is
    # weighted back to all deals, and the sample's own variance is not counted as the baseline's error.
    v = train["weight"].to_numpy() * WEEKS
    keys = [train["quarter"], train["week"], train[schema.REP]]
    fc = pd.Series(v * value, index=train.index).groupby(keys).sum()
    noise = pd.Series(v * (v - 1) * value**2, index=train.index).groupby(keys).sum()
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
    err["noise"] = noise.reindex(grid, fill_value=0.0).to_numpy()
    e = err.merge(org, on=schema.REP, how="left")
    e[schema.TEAM] = e[schema.TEAM].fillna(NO_TEAM)
    e[schema.REGION] = e[schema.REGION].fillna(NO_REGION)
    e[COMPANY] = COMPANY
    out = []
    for level in LEVELS:
        key = schema.REP if level == "rep" else level
        agg = e.groupby(["quarter", "week", key])[["err", "noise"]].sum()
        by_week = (agg["err"] ** 2 - agg["noise"]).groupby(level="week").mean()
        sig = np.sqrt(by_week.clip(lower=0.0))  # clipped after the mean: clipping each cell would bias it up
        out.append(pd.DataFrame({"level": level, "week": sig.index, "sigma": sig.to_numpy()}))
    return pd.concat(out, ignore_index=True)


def hit_rates(won: pd.DataFrame, quotas: pd.DataFrame | None, quarters: list[str], org: pd.DataFrame) -> pd.Series:
    """Per level, the share of the history's entity-quarters with a quota that booked at least it.

    ``won`` has rep, amount and closed_at (:func:`workbench.snapshot.bookings`);
    a level without any quota in the history gets NaN.
    """
    out = {}
    reps = org.assign(company=COMPANY)
    quarter = quarter_of(won["closed_at"])
    hits = {level: [] for level in LEVELS}
    for q in quarters:
        quota = quotas_by_level(quotas, q, org)
        per_rep = won[quarter == q].groupby(schema.REP)[schema.AMOUNT].sum()
        booked = reps.assign(amount=reps[schema.REP].map(per_rep).fillna(0.0))
        for level in LEVELS:
            key = schema.REP if level == "rep" else level
            got = booked.groupby(key)["amount"].sum()
            target = quota[level].dropna()
            target = target[target > 0]
            hits[level].extend((got.reindex(target.index).fillna(0.0) >= target).tolist())
    for level in LEVELS:
        out[level] = float(np.mean(hits[level])) if hits[level] else np.nan
    return pd.Series(out, name="hit_rate")


def baselines(deals: pd.DataFrame, closed: pd.Series, reps: pd.DataFrame, quotas: dict[str, pd.Series],
              rates: pd.DataFrame, sigma: pd.DataFrame, quarter: str, as_of: pd.Timestamp,
              hit_rate: pd.Series | None = None) -> pd.DataFrame:
    """The weighted pipeline and the run rate of a forecast, per level and entity.

    Parameters
    ----------
    deals : DataFrame
        The open deals (the snapshot with rep and ``due``).
    closed : Series
        Closed-won so far per rep.
    reps : DataFrame
        rep, team, region of the reps forecast.

    Returns
    -------
    DataFrame
        level, entity, weighted_pipeline, weighted_pipeline_p_hit, run_rate
        (bookings so far x quarter length / days elapsed; NaN on the first day),
        base_rate_p_hit (``hit_rate`` of the level, where the entity has a quota).
    """
    start, end = quarter_bounds(quarter)
    week = week_of_quarter(as_of, quarter)
    value = weighted_pipeline(deals, rates, week=week)
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
        base = float(hit_rate.get(level, np.nan)) if hit_rate is not None else np.nan
        out.append(pd.DataFrame({"level": level, "entity": g[key].to_numpy(), "weighted_pipeline": g["wp"].to_numpy(),
                                 "weighted_pipeline_p_hit": p_hit, "run_rate": g["rr"].to_numpy(),
                                 "base_rate_p_hit": np.where(np.isnan(quota), np.nan, base)}))
    return pd.concat(out, ignore_index=True)
