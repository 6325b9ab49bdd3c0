"""Quota attainment per rep, team and company, and how concentrated bookings are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import schema
from ..calendar import quarter_of
from ..errors import WorkbenchError
from ..groups import BY, as_list, group
from ..profile import SalesProcessProfile, get_profile
from ..references import MANAGER_ATTAINMENT, SHARE_REPS_AT_QUOTA

from ..io.tables import quota_table
from ..snapshot import bookings

def attainment(
    log: pd.DataFrame,
    quotas: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: str | None = "rep",
    quarters: list[str] | None = None,
) -> pd.DataFrame:
    """Quota attainment per quarter: bookings / quota, per rep, per team or for the company.

    Bookings are :func:`workbench.snapshot.bookings` (the one definition: the
    amount of each deal won in the quarter, credited to the rep on the winning
    event). A team's quota is its own row of the quota table when it has one,
    else the sum of its reps' quotas; its bookings are its reps' (the rep's
    team as the quota table gives it). The company is the sum of everything.
    So a quarter's company attainment is total bookings over total quota, not
    the mean of the teams' ratios (:func:`attainment_gap` shows both).

    Parameters
    ----------
    quotas : DataFrame
        rep and/or team, quarter, quota (checked as :func:`workbench.io.read_quotas` does).
    by : {'rep', 'team', None}
        The level; None is the company.
    quarters : list of str, optional
        Default: every quarter of the quota table.

    Returns
    -------
    DataFrame
        [rep, team | team | nothing], quarter, quota, bookings, deals_won,
        attainment, at_quota. Reps with a quota and no win book 0; wins by
        reps without a quota row are left out (their attainment is undefined).

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a"], "activity": ["Proposal", "Closed Won"],
    ...                     "timestamp": pd.to_datetime(["2026-07-01", "2026-07-09"], utc=True),
    ...                     "rep": ["ann", "ann"], "amount": [80.0, 80.0]})
    >>> quotas = pd.DataFrame({"rep": ["ann"], "team": ["east"], "quarter": ["2026Q3"], "quota": [100.0]})
    >>> attainment(log, quotas, by="team")[["team", "quarter", "bookings", "attainment"]]
       team quarter  bookings  attainment
    0  east  2026Q3      80.0         0.8
    """
    if by not in ("rep", "team", None):
        raise WorkbenchError(f"attainment by {by!r} is not a level.", hint="use by='rep', 'team' or None.")
    quotas = quota_table(quotas)
    if quarters is not None:
        quotas = quotas[quotas["quarter"].isin(quarters)]
    get_profile(profile, log).require_outcomes("Attainment")
    won = bookings(log, profile=profile)
    won = won.assign(quarter=quarter_of(won["closed_at"]))
    rep_rows = quotas[quotas[schema.REP].notna()] if schema.REP in quotas.columns else quotas.iloc[:0]
    if len(rep_rows) and schema.REP in won.columns:
        booked = won.groupby([schema.REP, "quarter"]).agg(bookings=(schema.AMOUNT, "sum"),
                                                           deals_won=(schema.CASE, "size")).reset_index()
        cols = [c for c in (schema.REP, schema.TEAM, "quarter", "quota") if c in rep_rows.columns]
        reps = rep_rows[cols].merge(booked, on=[schema.REP, "quarter"], how="left")
    else:
        reps = pd.DataFrame(columns=[schema.REP, schema.TEAM, "quarter", "quota", "bookings", "deals_won"])
    reps["bookings"] = reps["bookings"].astype(float).fillna(0.0)
    reps["deals_won"] = reps["deals_won"].fillna(0).astype(int)
    if by == "rep":
        schema.require(quotas, [schema.REP], "attainment per rep")
        out = reps
    elif by == "team":
        schema.require(quotas, [schema.TEAM], "attainment per team")
        out = _team_totals(quotas, reps, won)
    else:
        out = _team_totals(quotas, reps, won) if schema.TEAM in quotas.columns else reps
        out = out.groupby("quarter", sort=True)[["quota", "bookings", "deals_won"]].sum().reset_index()
    out = out.copy()
    out["attainment"] = out["bookings"] / out["quota"].where(out["quota"] > 0)
    out["at_quota"] = out["attainment"] >= 1.0
    keys = {"rep": [c for c in ("team", "rep") if c in out.columns], "team": ["team"], None: []}[by]
    return out.sort_values(["quarter", *keys], ignore_index=True)


def _team_totals(quotas: pd.DataFrame, reps: pd.DataFrame, won: pd.DataFrame) -> pd.DataFrame:
    """Per team and quarter: its own quota row, else its reps' quotas summed; its reps' bookings, or
    for a team quota without rep rows the wins of deals whose team is that team."""
    from_reps = (reps.dropna(subset=[schema.TEAM]).groupby([schema.TEAM, "quarter"])[["quota", "bookings", "deals_won"]]
                 .sum() if schema.TEAM in reps.columns else pd.DataFrame())
    rep_col = quotas[schema.REP] if schema.REP in quotas.columns else pd.Series(np.nan, index=quotas.index)
    own = quotas[rep_col.isna()].groupby([schema.TEAM, "quarter"])["quota"].sum(min_count=1)
    out = from_reps.reindex(from_reps.index.union(own.index)) if len(from_reps) else pd.DataFrame(index=own.index)
    out["quota"] = own.combine_first(out["quota"]) if "quota" in out.columns else own
    if schema.TEAM in won.columns:  # teams with a quota of their own and no rep rows: their deals' wins
        by_deal = won.groupby([schema.TEAM, "quarter"]).agg(bookings=(schema.AMOUNT, "sum"),
                                                             deals_won=(schema.CASE, "size"))
        for col in ("bookings", "deals_won"):
            missing = out[col].isna() if col in out.columns else pd.Series(True, index=out.index)
            out[col] = out[col].where(~missing, by_deal[col].reindex(out.index)) if col in out.columns \
                else by_deal[col].reindex(out.index)
    out["bookings"] = out["bookings"].astype(float).fillna(0.0)
    out["deals_won"] = out["deals_won"].fillna(0).astype(int)
    return out.rename_axis([schema.TEAM, "quarter"]).reset_index()


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
    """Smallest fraction of reps whose bookings make ``share`` of the total (the 80/20 check)."""
    x = np.sort(np.asarray(bookings, dtype=float))[::-1]
    if x.size == 0 or x.sum() <= 0:
        return float("nan")
    needed = int(np.searchsorted(np.cumsum(x) / x.sum(), share - 1e-12)) + 1
    return needed / x.size


def concentration(rep_attainment: pd.DataFrame, *, by: BY = "quarter", k: int = 3) -> pd.DataFrame:
    """How concentrated bookings are across reps (teams often make their number through a few reps).

    Returns
    -------
    DataFrame
        [by], reps, bookings, top_k_share (share of the ``k`` biggest
        bookers), gini (:func:`gini`), pareto_share (:func:`pareto_share`).
    """
    keys = as_list(by)
    rows = []
    for key, part in group(rep_attainment, keys):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(reps=len(part), bookings=part["bookings"].sum(), top_k_share=_top_k_share(part["bookings"], k),
                   gini=gini(part["bookings"]), pareto_share=pareto_share(part["bookings"]))
        rows.append(row)
    return pd.DataFrame(rows)


def team_attainment(rep_attainment: pd.DataFrame, *, k: int = 1) -> pd.DataFrame:
    """Team attainment next to the share of its reps at quota, concentration and leave-one-out.

    A team can make 99% of its number while only 48% of its reps make theirs,
    because a few reps carry it; a good team survives losing its star.
    Concentration is the share of the top ``k`` reps in the team's bookings and
    the Gini coefficient of bookings across its reps.
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
    for (team, quarter), part in group(rep_attainment, ["team", "quarter"]):
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
    """Per quarter: the company's and the average team's attainment next to the share of reps at quota.

    Beside them, a sales-management study's benchmark: the average manager met
    99% of quota while 48% of reps met theirs. ``company_attainment`` is all
    bookings over all quota; ``mean_team_attainment`` the mean of the teams'
    own ratios (the average manager's attainment).

    Returns
    -------
    DataFrame
        quarter, company_attainment, teams, mean_team_attainment,
        share_teams_at_quota, reps, share_reps_at_quota,
        benchmark_manager_attainment, benchmark_share_reps_at_quota.
    """
    teams = team_attainment(rep_attainment)
    out = teams.groupby("quarter").agg(teams=("team", "size"), mean_team_attainment=("attainment", "mean"),
                                       share_teams_at_quota=("makes_quota", "mean"))
    reps = rep_attainment.groupby("quarter").agg(reps=("rep", "size"), share_reps_at_quota=("at_quota", "mean"),
                                                 quota=("quota", "sum"), bookings=("bookings", "sum"))
    out = out.join(reps).reset_index()
    out.insert(1, "company_attainment", out.pop("bookings") / out.pop("quota").where(lambda q: q > 0))
    out["benchmark_manager_attainment"] = MANAGER_ATTAINMENT
    out["benchmark_share_reps_at_quota"] = SHARE_REPS_AT_QUOTA
    return out
