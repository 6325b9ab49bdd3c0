"""Conformance per rep, team or region, and whether following the process pays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..progress import tqdm
from ..groups import labelled
from ..profile import SalesProcessProfile
from ..schema import CASE, require
from ..schema import DEVIATION_KINDS as KINDS
from ..stats import N_BOOT, mark_findings, median_difference, rate_difference

from .deviations import case_conformance
from .reference import prepared_events
from .replay import token_replay_fitness

#: Kinds whose definition does not depend on how the deal ended (see :func:`conformance_summary`).
OUTCOME_NEUTRAL = ("premature_proposal", "stage_regression", "followup_gap")


def _pays(cases: pd.DataFrame, *, alpha: float, n_boot: int, seed: int) -> dict:
    """Win rate and median cycle days of closed (won or lost) deals that follow the process against
    those that do not (``follows``: none of the outcome-neutral deviations), with tests.

    The one definition of "following the process pays": :func:`process_pays` and
    every row of :func:`conformance_summary` use it.
    """
    closed = cases[cases["outcome"].isin(["won", "lost"])]
    ok, dev = closed[closed["follows"]], closed[~closed["follows"]]
    win = rate_difference(int((ok["outcome"] == "won").sum()), len(ok),
                          int((dev["outcome"] == "won").sum()), len(dev), alpha=alpha)
    cyc = median_difference(ok["cycle_days"], dev["cycle_days"], alpha=alpha, n_boot=n_boot, seed=seed)

    def rate(part: pd.DataFrame) -> float:  # shown even when the other side is empty
        return float((part["outcome"] == "won").mean()) if len(part) else np.nan

    def median(part: pd.DataFrame) -> float:
        return float(part["cycle_days"].median()) if part["cycle_days"].notna().any() else np.nan

    return {"closed": len(closed),
            "win_rate_conforming": rate(ok), "win_rate_deviating": rate(dev), "win_n_conforming": len(ok),
            "win_n_deviating": len(dev), "win_diff": win["diff"], "win_ci_low": win["ci_low"],
            "win_ci_high": win["ci_high"], "win_p": win["p_value"],
            "cycle_days_conforming": median(ok), "cycle_days_deviating": median(dev),
            "cycle_diff_days": cyc["diff"], "cycle_ci_low": cyc["ci_low"], "cycle_ci_high": cyc["ci_high"],
            "cycle_p": cyc["p_value"]}


def conformance_summary(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    by: str | Sequence[str] | None = "rep",
    deviations: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    kinds: Sequence[str] = KINDS,
    fitness: bool = False,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Conformance per rep, team or region (``by=None``: the whole log in one row).

    With ``fitness=True`` the mean token-replay fitness of the group's deals
    (:func:`token_replay_fitness`) is added as ``mean_fitness``.

    Per group: deals, share conforming (no deviation of ``kinds``), deals with
    each kind of deviation, and whether following the process pays: the win rate
    of closed deals that follow the process versus those that do not (difference,
    Newcombe interval, p-value) and their median cycle time in days (difference,
    bootstrap interval, Mann-Whitney p-value). P-values are corrected across
    groups (Benjamini-Hochberg) separately for win rate and cycle;
    ``win_significant`` / ``cycle_significant`` mark the findings.

    The win and cycle comparison always counts the :data:`OUTCOME_NEUTRAL`
    deviations only, as :func:`process_pays` does: ``won_without_milestones``
    exists only for won deals, ``after_close`` only for closed ones and
    ``skipped_stage`` grows with how far a deal got, so with them the comparison
    would be decided by the definitions.

    Returns
    -------
    DataFrame[<by>..., cases, conforming, share_conforming, mean_fitness?, <kind>..., closed,
    win_rate_conforming, win_rate_deviating, win_n_conforming, win_n_deviating,
    win_diff, win_ci_low, win_ci_high, win_p, win_p_adjusted, win_significant,
    cycle_days_conforming, cycle_days_deviating, cycle_diff_days, cycle_ci_low,
    cycle_ci_high, cycle_p, cycle_p_adjusted, cycle_significant]

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> by_team = conformance_summary(generate_demo_data(seed=7, size="tiny").events, by="team", progress=False)
    >>> by_team[["team", "cases"]].to_dict("records")
    [{'team': 'Commercial West', 'cases': 36}, {'team': 'Enterprise East', 'cases': 41}]
    """
    keys = [by] if isinstance(by, str) else list(by or [])
    ev = prepared_events(log)
    if keys:
        require(ev, keys, "conformance by " + " / ".join(keys))
    cases = case_conformance(ev, profile=profile, deviations=deviations, quarantine=quarantine, gap_days=gap_days,
                             kinds=kinds)
    cases["follows"] = ~cases[list(OUTCOME_NEUTRAL)].any(axis=1)
    if fitness:
        fit = token_replay_fitness(ev, profile=profile, progress=progress)
        cases = cases.merge(fit[[CASE, "fitness"]], on=CASE, how="left")
    cases = cases.assign(**{k: labelled(cases[k]) for k in keys})
    groups = cases.groupby(keys, sort=True) if keys else [((), cases)]
    rows = []
    for i, (key, g) in enumerate(tqdm(groups, desc="conformance", disable=not progress)):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row.update(cases=len(g), conforming=int(g["conforming"].sum()))
        row["share_conforming"] = row["conforming"] / len(g)
        if fitness:
            row["mean_fitness"] = float(g["fitness"].mean())
        row.update({k: int(g[k].sum()) for k in KINDS})
        row.update(_pays(g, alpha=alpha, n_boot=n_boot, seed=seed + i))
        rows.append(row)
    out = pd.DataFrame(rows)
    for prefix in ("win", "cycle"):
        marked = mark_findings(out.rename(columns={f"{prefix}_ci_low": "ci_low", f"{prefix}_ci_high": "ci_high",
                                                   f"{prefix}_p": "p_value"}), alpha=alpha)
        out[f"{prefix}_p_adjusted"] = marked["p_adjusted"].to_numpy()
        out[f"{prefix}_significant"] = marked["significant"].to_numpy()
    order = keys + ["cases", "conforming", "share_conforming", *(["mean_fitness"] if fitness else []), *KINDS,
                    "closed"]
    order += [c for c in out.columns if c.startswith("win_")] + [c for c in out.columns if c.startswith("cycle_")]
    return out[order]


def process_pays(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    deviations: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    kinds: Sequence[str] = OUTCOME_NEUTRAL,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Does following the process pay? Win rate and cycle time of conforming vs deviating deals.

    By default a deal deviates when it has one of the :data:`OUTCOME_NEUTRAL`
    kinds, so that the comparison is not decided by the definitions (see
    :func:`conformance_summary`).

    Returns
    -------
    DataFrame with one row per measure ('win_rate', 'cycle_days'): conforming,
    deviating, n_conforming, n_deviating, diff, ci_low, ci_high, p_value,
    p_adjusted, significant.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> process_pays(generate_demo_data(seed=7, size="tiny").events)["measure"].tolist()
    ['win_rate', 'cycle_days']
    """
    cases = case_conformance(log, profile=profile, deviations=deviations, quarantine=quarantine, gap_days=gap_days,
                             kinds=kinds)
    cases["follows"] = cases["conforming"]
    s = _pays(cases, alpha=alpha, n_boot=n_boot, seed=seed)
    cyc_n = cases[cases["outcome"].isin(["won", "lost"])].groupby("follows")["cycle_days"].count()
    table = pd.DataFrame([
        {"measure": "win_rate", "conforming": s["win_rate_conforming"], "deviating": s["win_rate_deviating"],
         "n_conforming": s["win_n_conforming"], "n_deviating": s["win_n_deviating"], "diff": s["win_diff"],
         "ci_low": s["win_ci_low"], "ci_high": s["win_ci_high"], "p_value": s["win_p"]},
        {"measure": "cycle_days", "conforming": s["cycle_days_conforming"],
         "deviating": s["cycle_days_deviating"], "n_conforming": int(cyc_n.get(True, 0)),
         "n_deviating": int(cyc_n.get(False, 0)), "diff": s["cycle_diff_days"], "ci_low": s["cycle_ci_low"],
         "ci_high": s["cycle_ci_high"], "p_value": s["cycle_p"]},
    ])
    return mark_findings(table, alpha=alpha)


def conforming_by_quarter(cases: pd.DataFrame, quarters: Sequence[str], *, min_n: int = 30) -> pd.Series:
    """Share of the deals closed in each of ``quarters`` that followed the process (a tile's trend).

    Closed deals only, so that two quarters compare whole deals; a quarter with
    fewer than ``min_n`` closed deals (and every quarter of a process whose
    cases are never won or lost) gets NaN rather than a share of a handful.

    Parameters
    ----------
    cases : the output of :func:`workbench.conformance.case_conformance`

    Examples
    --------
    >>> cases = pd.DataFrame({"closed_at": pd.to_datetime(["2026-02-01", "2026-05-01", "2026-05-02"], utc=True),
    ...                       "conforming": [True, False, True]})
    >>> conforming_by_quarter(cases, ["2026Q1", "2026Q2"], min_n=1).tolist()
    [1.0, 0.5]
    """
    from ..calendar import quarter_of

    require(cases, ["conforming"], "conforming_by_quarter")
    if "closed_at" not in cases:  # a process without won or lost cases closes none
        return pd.Series(np.nan, index=list(quarters), name="share_conforming")
    closed = cases[cases["closed_at"].notna()]
    by = closed.groupby(quarter_of(closed["closed_at"]).to_numpy())["conforming"].agg(["mean", "size"])
    by = by.reindex(list(quarters))
    return by["mean"].where(by["size"] >= min_n).rename("share_conforming")
