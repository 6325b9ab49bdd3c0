"""The consultant's questions about forecast realism: are the quotas achievable, is the pipeline honest?

Quotas too high demoralise and mislead management, too low stall the team; they
should build on past results and seasonality, then stretch realistically. And a pipeline that systematically converts less than
the company's (optimism) or more (sandbagging: deals kept out of the CRM until
they are safe) makes every forecast built on it wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..calendar import check_quarter, shift_quarter
from ..stats import adjust_pvalues

#: A quota the rep booked in at most this share of past quarters is out of reach;
#: one booked in at least SOFT of them is soft.
OUT_OF_REACH = 0.0
SOFT = 0.75


def quota_realism(rep_attainment: pd.DataFrame, quarter: str, *, lookback: int = 4) -> pd.DataFrame:
    """Each rep's quota for ``quarter`` against what the rep booked in the quarters before.

    Parameters
    ----------
    rep_attainment : DataFrame
        :func:`workbench.kpis.attainment` output (rep, team, quarter, quota, bookings, ...).
    quarter : str
        The quarter whose quotas are judged.
    lookback : int
        Past quarters compared with (the ``lookback`` quarters just before ``quarter``).

    Returns
    -------
    DataFrame
        rep, team, quota, past_quarters, past_mean_bookings, stretch (quota over
        the past mean), past_hit_share (share of the past quarters in which the
        rep booked at least this quota), verdict ('out of reach' when never
        booked, 'soft' when booked in at least 75% of them, 'realistic'
        otherwise, 'no history' without past quarters).
    """
    quarter = check_quarter(quarter)
    past_quarters = {shift_quarter(quarter, -k) for k in range(1, lookback + 1)}
    now = rep_attainment[rep_attainment["quarter"] == quarter][["rep", "team", "quota"]]
    past = rep_attainment[rep_attainment["quarter"].isin(past_quarters)][["rep", "bookings"]]
    rows = []
    for rep, team, quota in now.itertuples(index=False):
        booked = past.loc[past["rep"] == rep, "bookings"].to_numpy(float)
        hit_share = float((booked >= quota).mean()) if booked.size else np.nan
        mean = float(booked.mean()) if booked.size else np.nan
        if not booked.size:
            verdict = "no history"
        elif hit_share <= OUT_OF_REACH:
            verdict = "out of reach"
        elif hit_share >= SOFT:
            verdict = "soft"
        else:
            verdict = "realistic"
        rows.append({"rep": rep, "team": team, "quota": quota, "past_quarters": booked.size,
                     "past_mean_bookings": mean, "stretch": quota / mean if mean else np.nan,
                     "past_hit_share": hit_share, "verdict": verdict})
    columns = ["rep", "team", "quota", "past_quarters", "past_mean_bookings", "stretch", "past_hit_share", "verdict"]
    return pd.DataFrame(rows, columns=columns).sort_values(["stretch", "rep"], ascending=[False, True],
                                                           ignore_index=True)


def pipeline_realism(results: pd.DataFrame, *, level: str = "team", week: int | None = None,
                     alpha: float = 0.05) -> pd.DataFrame:
    """Does a team's (or rep's) pipeline convert like the company's, or is it optimistic or sandbagged?

    For each backtested quarter, at week ``week`` (default: the earliest backtested
    week), the pipeline's promise is the weighted pipeline still to close
    (weighted pipeline minus closed so far) and its delivery what was booked in
    the rest of the quarter (actual minus closed so far). The log of an entity's
    delivery-to-promise ratio over the company's in the same quarter is tested
    against zero across quarters (one-sample t-test, Benjamini-Hochberg across
    entities). Significantly below zero is *optimism* (the pipeline promises
    more than it delivers, relative to the company), above zero *sandbagging*.

    Parameters
    ----------
    results : DataFrame
        :attr:`workbench.forecast.Backtest.results_`.

    Returns
    -------
    DataFrame
        entity, quarters, mean_log_ratio, delivery_vs_company (exp of the mean),
        ci_low, ci_high (of that ratio), p_value, p_adjusted, verdict.
    """
    week = int(results["week"].min()) if week is None else week
    r = results[results["week"] == week]
    promise = r["weighted_pipeline"] - r["closed_won_to_date"]
    delivery = r["actual"] - r["closed_won_to_date"]
    r = r.assign(ratio=delivery / promise)
    r = r[(promise > 0) & (delivery > 0)]
    company = r[r["level"] == "company"].set_index("quarter")["ratio"]
    entities = r[r["level"] == level].copy()
    # reindex, not map: with no company row map would give text, not numbers
    entities["log_ratio"] = np.log(entities["ratio"].to_numpy(float) / company.reindex(entities["quarter"]).to_numpy(float))
    rows = []
    for entity, g in entities.dropna(subset=["log_ratio"]).groupby("entity", sort=True):
        x = g["log_ratio"].to_numpy(float)
        mean = float(x.mean())
        if x.size >= 2 and x.std(ddof=1) > 0:
            test = sps.ttest_1samp(x, 0.0)
            half = sps.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
            p = float(test.pvalue)
        else:
            half, p = np.nan, np.nan
        rows.append({"entity": entity, "quarters": x.size, "mean_log_ratio": mean,
                     "delivery_vs_company": np.exp(mean), "ci_low": np.exp(mean - half),
                     "ci_high": np.exp(mean + half), "p_value": p})
    out = pd.DataFrame(rows, columns=["entity", "quarters", "mean_log_ratio", "delivery_vs_company",
                                      "ci_low", "ci_high", "p_value"])
    out["p_adjusted"] = adjust_pvalues(out["p_value"]).to_numpy()
    significant = out["p_adjusted"] < alpha
    out["verdict"] = np.where(significant & (out["mean_log_ratio"] < 0), "optimistic",
                              np.where(significant & (out["mean_log_ratio"] > 0), "sandbagging", "in line"))
    return out
