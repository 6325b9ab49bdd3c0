"""The funnel: how far deals get, stage by stage, overall and by cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import engine, schema
from ..errors import WorkbenchError
from ..profile import SalesProcessProfile, get_profile

from .outcomes import case_table, period_of

def furthest_stage(log: pd.DataFrame, profile: SalesProcessProfile) -> pd.DataFrame:
    """Per case: start, outcome and the rank of the furthest stage reached (won, or finished in a
    process without outcomes, = past every stage)."""
    cases = case_table(log, profile=profile)
    visits = engine.stage_visits(log, profile=profile)
    rank = visits["stage"].map({s: i for i, s in enumerate(profile.stages)})
    furthest = rank.groupby(visits[schema.CASE]).max()
    cases["furthest"] = cases[schema.CASE].map(furthest).astype(float)
    cases.loc[cases["outcome"].eq(final_row(profile)[1]), "furthest"] = len(profile.stages)
    cases["furthest"] = cases["furthest"].fillna(-1)
    return cases


def final_row(profile: SalesProcessProfile) -> tuple[str, str]:
    """The funnel's last row and the outcome it counts: won deals, or finished cases of a process
    without outcomes."""
    return ("Won", "won") if profile.has_outcomes else ("Finished", "ended")


def stages_reached(furthest: pd.Series, profile: SalesProcessProfile, stages: list[str]) -> dict[str, int]:
    rank = {s: i for i, s in enumerate(profile.stages)}
    out = {s: int((furthest >= rank[s]).sum()) for s in stages}
    out[final_row(profile)[0]] = int((furthest >= len(profile.stages)).sum())
    return out


def funnel(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    stages: list[str] | None = None,
) -> pd.DataFrame:
    """Stage-to-stage conversion: how many deals the team carries from a given number of leads.

    A repeatable process shows how many deals come from a number of leads, and
    such funnel facts make forecasts and quotas more accurate. A deal has reached a stage when it visited that stage or any later one
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
    check_stages(stages, profile)
    reached = stages_reached(furthest_stage(log, profile)["furthest"], profile, stages)
    out = pd.DataFrame({"stage": list(reached), "reached": list(reached.values())})
    out["conversion"] = out["reached"] / out["reached"].shift(1)
    out["share_of_first"] = out["reached"] / out["reached"].iloc[0] if out["reached"].iloc[0] else np.nan
    return out


def check_stages(stages: list[str], profile: SalesProcessProfile) -> None:
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
    check_stages(stages, profile)
    cases = furthest_stage(log, profile)
    cases["cohort"] = period_of(cases["start"], freq)
    rows = []
    for cohort, part in cases.groupby("cohort", sort=True):
        reached = stages_reached(part["furthest"], profile, stages)
        row = {"cohort": cohort, "deals": len(part)}
        row.update({s: reached[s] / len(part) for s in stages})
        row.update({o: float(part["outcome"].eq(o).mean()) for o in ("won", "lost", "open")})
        rows.append(row)
    return pd.DataFrame(rows)
