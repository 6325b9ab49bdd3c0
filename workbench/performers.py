"""Top-performing reps versus the rest: what do they do differently?

Seed 000 lists "knowing why top sellers succeed" among the world-class sales
practices, and keeps a practice only where its influence is statistically
significant. So :func:`compare_performers` compares the top reps' deals with the
others' on variants, activity mix and stage timing, tests every difference
(:mod:`workbench.stats`) and corrects for multiple testing; only the significant
rows are findings (:func:`performer_findings`).

A deal belongs to its owner: the rep on its closing event, else its last known
rep (:func:`workbench.engine.case_table`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .progress import tqdm
from . import engine, kpis
from .conformance import prepared_events
from .calendar import DAY_S
from .errors import WorkbenchError
from .profile import SalesProcessProfile, get_profile
from .schema import ACTIVITY, AMOUNT, CASE, REP, require
from .stats import N_BOOT, group_vs_rest, mark_findings

METRICS = ("won_amount", "won_deals", "win_rate")
#: What is compared (aspect, item, measure), then :data:`workbench.stats.GROUP_VS_REST_COLUMNS` for the
#: top reps' deals (``value``) against the rest's (``rest_value``).
COMPARISON_COLUMNS = ["aspect", "item", "measure", "n", "rest_n", "value", "rest_value", "diff", "ci_low", "ci_high",
                      "p_value"]


def rank_reps(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    metric: str = "won_amount",
    min_n: int = 5,
) -> pd.DataFrame:
    """Reps ranked by ``metric`` over their closed deals.

    Parameters
    ----------
    metric : {'won_amount', 'won_deals', 'win_rate'}
        Bookings (needs ``amount``), number of deals won, or won / closed.
    min_n : int
        Reps with fewer closed deals are listed but not ranked (``rank`` NaN).

    Returns
    -------
    DataFrame[rep, closed, won, win_rate, won_amount?, rank], best first.
    """
    if metric not in METRICS:
        raise WorkbenchError(f"unknown performance metric {metric!r}.", hint=f"use one of {list(METRICS)}.")
    ev = prepared_events(log)
    require(ev, [REP], "top performers")
    get_profile(profile, log).require_outcomes("Ranking reps")
    if metric == "won_amount":
        require(ev, [AMOUNT], "top performers by won amount")
    cases = kpis.case_table(ev, profile=get_profile(profile, log))
    closed = cases[cases["outcome"].isin(["won", "lost"]) & cases[REP].notna()].copy()
    closed["won"] = closed["outcome"] == "won"
    aggs = {"closed": ("won", "size"), "won": ("won", "sum")}
    if AMOUNT in closed.columns:
        closed["won_amount"] = closed[AMOUNT].where(closed["won"], 0.0).fillna(0.0)
        aggs["won_amount"] = ("won_amount", "sum")
    reps = closed.groupby(REP, sort=True).agg(**aggs).reset_index()
    reps["won"] = reps["won"].astype("int64")
    reps["win_rate"] = reps["won"] / reps["closed"]
    score = reps["won"] if metric == "won_deals" else reps[metric]
    eligible = reps["closed"] >= min_n
    reps["rank"] = score.where(eligible).rank(ascending=False, method="first")
    reps = reps.sort_values(["rank", REP], na_position="last", kind="stable", ignore_index=True)
    cols = [REP, "closed", "won", "win_rate"] + (["won_amount"] if "won_amount" in reps.columns else []) + ["rank"]
    return reps[cols]


def top_performers(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    metric: str = "won_amount",
    share: float = 0.2,
    min_n: int = 5,
) -> list[str]:
    """The best ``share`` of the ranked reps (at least one), best first."""
    if not 0 < share < 1:
        raise WorkbenchError(f"share={share} is not in (0, 1).", hint="e.g. share=0.2 for the top fifth.")
    reps = rank_reps(log, profile=profile, metric=metric, min_n=min_n)
    ranked = reps[reps["rank"].notna()]
    if ranked.empty:
        raise WorkbenchError(f"no rep has {min_n} closed deals, so none can be ranked.",
                             hint="lower min_n or use a longer log.")
    return ranked[REP].head(max(1, math.ceil(share * len(ranked)))).tolist()


def _top_vs_rest(aspect: str, item: str, measure: str, values: pd.Series, is_top: pd.Series, *, kind: str,
                 alpha: float, n_boot: int = N_BOOT, seed: int = 0) -> dict | None:
    """The top reps' row of :func:`workbench.stats.group_vs_rest` (None when a side has no value)."""
    t = group_vs_rest(values, is_top.map({True: "top", False: "rest"}), kind=kind, min_n=1, alpha=alpha,
                      n_boot=n_boot, seed=seed)
    t = t[t["group"] == "top"]
    return {"aspect": aspect, "item": item, "measure": measure, **t.iloc[0].drop("group").to_dict()} if len(t) else None


def compare_performers(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    top: Sequence[str] | None = None,
    metric: str = "won_amount",
    share: float = 0.2,
    min_n: int = 5,
    n_variants: int = 10,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Compare the top reps' closed deals with the rest's.

    Aspects: ``variant`` (share of deals following each of the ``n_variants``
    most frequent variants), ``activity`` (share of deals with each activity;
    for loop activities also the median count per deal), ``stage_time`` (median
    days per finished stage visit). Shares are tested with
    :func:`~workbench.stats.rate_difference`, medians with
    :func:`~workbench.stats.median_difference`; p-values are corrected across
    the whole table (Benjamini-Hochberg).

    Parameters
    ----------
    top : list of str, optional
        The top reps; default :func:`top_performers` with ``metric``, ``share``, ``min_n``.

    Returns
    -------
    DataFrame[aspect, item, measure, n (the top reps' deals or visits), rest_n,
    value (the top reps'), rest_value, diff, ci_low, ci_high, p_value,
    p_adjusted, significant]
    """
    profile = get_profile(profile, log)
    ev = prepared_events(log)
    require(ev, [REP], "top performers vs the rest")
    profile.require_outcomes("Comparing top performers with the rest")
    top = list(top) if top is not None else top_performers(ev, profile=profile, metric=metric, share=share,
                                                           min_n=min_n)
    cases = kpis.case_table(ev, profile=profile)
    cases = cases[cases["outcome"].isin(["won", "lost"]) & cases[REP].notna()].set_index(CASE)
    if cases.empty:
        raise WorkbenchError("the log has no closed deals with a rep to compare.", hint="use a longer log.")
    is_top = cases[REP].isin(top)
    if not is_top.any() or is_top.all():
        raise WorkbenchError("the top reps own all or none of the closed deals; nothing to compare.",
                             hint="pass top= with some, not all, of the reps.")
    closed_ev = ev[ev[CASE].isin(cases.index)]
    seq = closed_ev.groupby(CASE, sort=True)[ACTIVITY].agg(tuple).reindex(cases.index)
    rows: list[dict | None] = []
    for variant in seq.value_counts().index[:n_variants]:
        rows.append(_top_vs_rest("variant", " → ".join(variant), "share of deals", seq == variant, is_top,
                                 kind="rate", alpha=alpha))
    counts = closed_ev.groupby([CASE, ACTIVITY]).size().unstack(fill_value=0).reindex(cases.index, fill_value=0)
    for act in counts.columns:
        rows.append(_top_vs_rest("activity", act, "share of deals", counts[act] > 0, is_top, kind="rate",
                                 alpha=alpha))
    for i, loop in enumerate(a for a in profile.loops if a in counts.columns):
        rows.append(_top_vs_rest("activity", loop, "per deal", counts[loop], is_top, kind="median", alpha=alpha,
                                 n_boot=n_boot, seed=seed + i))
    visits = engine.stage_visits(closed_ev, profile)
    visits = visits[visits["left"].notna()]
    visit_top = visits[CASE].map(is_top).astype(bool)
    for i, stage in enumerate(tqdm(profile.stages, desc="stage timing", disable=not progress)):
        days = visits.loc[visits["stage"] == stage, "duration_s"] / DAY_S  # the engine's visits: seconds
        rows.append(_top_vs_rest("stage_time", stage, "days per visit", days, visit_top[visits["stage"] == stage],
                                 kind="median", alpha=alpha, n_boot=n_boot, seed=seed + 100 + i))
    table = pd.DataFrame([r for r in rows if r is not None], columns=COMPARISON_COLUMNS)
    return mark_findings(table, alpha=alpha)


def performer_findings(comparison: pd.DataFrame) -> pd.DataFrame:
    """Only the significant rows of :func:`compare_performers`, largest effects first."""
    found = comparison[comparison["significant"]].copy()
    found["_size"] = found["diff"].abs()
    return found.sort_values(["aspect", "_size"], ascending=[True, False], ignore_index=True).drop(columns="_size")
