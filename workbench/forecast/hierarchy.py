"""The organisation a forecast adds up through: rep, team, region, company, and each level's quota."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import WorkbenchError
from ..snapshot import NO_REP, DealStates

LEVELS = ("rep", "team", "region", "company")


NO_TEAM = "(no team)"


NO_REGION = "(no region)"


COMPANY = "company"


def org_table(states: DealStates, reps: pd.DataFrame | None) -> pd.DataFrame:
    """rep -> team, region: from the reps table where given, else the last seen in the log."""
    ev = states.events
    cols = [c for c in (schema.TEAM, schema.REGION) if c in ev.columns]
    if schema.REP in ev.columns:
        seen = ev.dropna(subset=[schema.REP]).drop_duplicates(schema.REP, keep="last")
        org = seen[[schema.REP, *cols]].copy()
    else:
        org = pd.DataFrame({schema.REP: []})
    if reps is not None:
        if schema.REP not in reps.columns:
            raise WorkbenchError("the reps table has no column 'rep'.", column=schema.REP,
                                 hint="give rep, team and region columns.")
        given = reps[[c for c in (schema.REP, schema.TEAM, schema.REGION) if c in reps.columns]]
        org = pd.concat([given, org[~org[schema.REP].isin(given[schema.REP])]], ignore_index=True)
    for c, default in ((schema.TEAM, NO_TEAM), (schema.REGION, NO_REGION)):
        org[c] = org[c].fillna(default).astype(str) if c in org.columns else default
    org[schema.REP] = org[schema.REP].astype(str)
    return org.drop_duplicates(schema.REP).reset_index(drop=True)


def owner(frame: pd.DataFrame) -> pd.Series:
    if schema.REP not in frame.columns:
        return pd.Series(NO_REP, index=frame.index)
    return frame[schema.REP].fillna(NO_REP).astype(str)


def lookup(keys: pd.Series, table: pd.Series, default: Any) -> np.ndarray:
    """``table[key]`` for each key; ``default`` where the key is missing, not in ``table``
    or has no value there.

    Looks up each distinct key once: ``Series.map`` on a million strings is ten times slower.
    """
    codes, uniques = pd.factorize(keys)
    values = table.reindex(uniques)
    # a missing key has code -1, which picks the default appended at the end
    return np.append(values.where(values.notna(), default).to_numpy(), default)[codes]


def positions(keys: pd.Series, levels: list[str]) -> np.ndarray:
    """Each key's position in ``levels`` (-1: missing or not there)."""
    return lookup(keys, pd.Series(range(len(levels)), index=levels), -1)


def team_of(reps: pd.Series | pd.Index, org: pd.DataFrame) -> np.ndarray:
    """Each rep's team in ``org`` (of :func:`org_table`); NO_TEAM where it has none."""
    return lookup(pd.Series(reps), org.set_index(schema.REP)[schema.TEAM], NO_TEAM)


def quotas_by_level(quotas: pd.DataFrame | None, quarter: str, reps: pd.DataFrame) -> dict[str, pd.Series]:
    """Quota per entity at each level for ``quarter``: rep quotas summed up the hierarchy of
    ``reps`` (rep, team, region), a team's own quota row taking precedence for that team."""
    out = {lv: pd.Series(dtype=float) for lv in LEVELS}
    if quotas is None:
        return out
    q = quotas[quotas["quarter"] == quarter]
    if schema.REP in q.columns:
        rq = q.dropna(subset=[schema.REP]).groupby(q[schema.REP].astype(str))["quota"].sum(min_count=1)
        out["rep"] = rq
        m = reps.assign(quota=reps[schema.REP].map(rq))
        for lv in ("team", "region"):
            out[lv] = m.groupby(lv)["quota"].sum(min_count=1)
        out["company"] = pd.Series({COMPANY: m["quota"].sum(min_count=1)})
    if schema.TEAM in q.columns:
        team_rows = q[q[schema.REP].isna()] if schema.REP in q.columns else q
        if len(team_rows):
            tq = team_rows.groupby(schema.TEAM)["quota"].sum(min_count=1)
            out["team"] = tq.combine_first(out["team"])
    return out
