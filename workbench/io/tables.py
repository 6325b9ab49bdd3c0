"""The reference tables: reps (team, region, manager, start date) and quotas, checked against the log;
the costs of selling and the product master table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..calendar import parse_quarter
from ..schema import REGION, REP, TEAM
from ..errors import WorkbenchError
from ..validation import as_text, fail_if_nothing_kept, parse_amounts, parse_timestamps
from .columns import attribute_columns, parse_mapping, resolve_columns
from .files import RawTable, read_table
from .results import LoadResult, finish


def join_reps(log: pd.DataFrame, reps: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """Fill team / region / manager from the reps table where the log lacks them."""
    if REP not in log.columns:
        warnings.append("the log has no rep column, so the reps table was not joined.")
        return log
    table = reps.drop_duplicates(REP).set_index(REP)
    log = log.copy()
    for col in (TEAM, REGION, "manager"):
        if col in table.columns:
            mapped = log[REP].map(table[col])
            log[col] = mapped if col not in log.columns else log[col].fillna(mapped)
    unknown = sorted(set(log[REP].dropna()) - set(table.index))
    if unknown:
        examples = ", ".join(repr(r) for r in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        warnings.append(f"{len(unknown):,} reps of the log are not in the reps table ({examples}); "
                        f"their team, region and manager come from the log only.")
    return log


def reps_from_raw(raw: RawTable, *, mapping: Mapping[str, Any] | str | None = None) -> LoadResult:
    found = resolve_columns(raw, "reps", parse_mapping(mapping))
    frame, flags = raw.frame, raw.flags
    rep = as_text(frame[found[REP]])
    flags.flag(rep.isna().to_numpy(), "missing_rep", found[REP])
    columns: dict[str, pd.Series] = {REP: rep}
    for key in (TEAM, REGION, "manager"):
        if key in found:
            columns[key] = as_text(frame[found[key]])
    if "start_date" in found:
        start, _, bad = parse_timestamps(frame[found["start_date"]])
        flags.flag(bad, "unparseable_timestamp", found["start_date"])
        columns["start_date"] = start
    dup = rep.where(~flags.bad).duplicated(keep="first").to_numpy() & rep.notna().to_numpy()
    flags.flag(dup, "duplicate_rep", found[REP])
    columns.update(attribute_columns(raw, found))
    table = pd.DataFrame(columns)[~flags.bad]
    return finish(table, raw, flags, "reps", [], {"reps": f"{len(table):,}"}, ids=found[REP],
                  skip=[found[k] for k in ("start_date", "end_date") if k in found])


def read_reps(source: str | Path | pd.DataFrame, *, mapping: Mapping[str, Any] | str | None = None,
              encoding: str = "utf-8") -> LoadResult:
    """Load a reps table: rep, team, region, manager, start_date (UTC), other columns kept.

    Nameless reps, reps listed twice (the first row is kept) and unreadable start
    dates are quarantined.

    Examples
    --------
    >>> import pandas as pd
    >>> reps = read_reps(pd.DataFrame({"Sales Agent": ["ann", "bob", None], "Regional Office": ["East"] * 3}))
    >>> reps.log.to_dict("records"), reps.report.counts.to_dict()
    ([{'rep': 'ann', 'region': 'East'}, {'rep': 'bob', 'region': 'East'}], {'missing_rep': 1})
    """
    raw = read_table(source, encoding=encoding)
    result = reps_from_raw(raw, mapping=mapping)
    fail_if_nothing_kept(result.report, result.quarantine)
    return result


def _known(values: list[pd.DataFrame | None], column: str) -> set[str] | None:
    sources = [v[column].dropna().astype("str") for v in values if v is not None and column in v.columns]
    return set().union(*map(set, sources)) if sources else None


def _as_frame(table: Any, reader) -> pd.DataFrame | None:
    if table is None:
        return None
    if isinstance(table, LoadResult):
        return table.log
    return reader(table).log


def quotas_from_raw(raw: RawTable, *, mapping: Mapping[str, Any] | str | None = None, log: Any = None,
                     reps: Any = None) -> LoadResult:
    found = resolve_columns(raw, "quotas", parse_mapping(mapping))
    frame, flags = raw.frame, raw.flags
    none = pd.Series(np.nan, index=frame.index, dtype="str")
    rep = as_text(frame[found[REP]]) if REP in found else none
    team = as_text(frame[found[TEAM]]) if TEAM in found else none
    flags.flag((rep.isna() & team.isna()).to_numpy(), "missing_rep_or_team", found.get(REP, found.get(TEAM)))
    quarter_text = as_text(frame[found["quarter"]])
    quarter = quarter_text.map(parse_quarter, na_action="ignore").astype("str")
    flags.flag(quarter.isna().to_numpy(), "malformed_quarter", found["quarter"])
    quota, missing, bad = parse_amounts(frame[found["quota"]])
    flags.flag(missing, "missing_quota", found["quota"])
    flags.flag(bad, "non_numeric_quota", found["quota"])
    flags.flag((quota < 0).to_numpy(), "negative_quota", found["quota"])
    is_rep = rep.notna()
    key = pd.Series(np.where(is_rep, "rep\x00" + rep.fillna(""), "team\x00" + team.fillna("")),
                    index=frame.index) + "\x00" + quarter.fillna("")
    flags.flag(key.where(~flags.bad).duplicated(keep="first").to_numpy() & ~flags.bad, "duplicate_quota",
               found["quota"])
    log_frame = log.log if isinstance(log, LoadResult) else log
    reps_frame = _as_frame(reps, read_reps)
    known_reps = _known([log_frame, reps_frame], REP)
    known_teams = _known([log_frame, reps_frame], TEAM)
    if known_reps is not None and REP in found:
        flags.flag((is_rep & ~rep.isin(known_reps)).to_numpy(), "unknown_rep", found[REP])
    if known_teams is not None and TEAM in found:
        flags.flag((~is_rep & ~team.isin(known_teams)).to_numpy(), "unknown_team", found[TEAM])
    warnings = []
    if known_reps is None and known_teams is None:
        warnings.append("no event log or reps table given, so reps and teams were not checked.")
    columns: dict[str, pd.Series] = {}
    if REP in found:
        columns[REP] = rep
    if TEAM in found:
        columns[TEAM] = team
    columns.update({"quarter": quarter, "quota": quota})
    columns.update(attribute_columns(raw, found))
    table = pd.DataFrame(columns)[~flags.bad]
    return finish(table, raw, flags, "quotas", warnings, {"quotas": f"{len(table):,}"}, skip=[found["quota"]])


def read_quotas(source: str | Path | pd.DataFrame, *, mapping: Mapping[str, Any] | str | None = None,
                log: Any = None, reps: Any = None, encoding: str = "utf-8") -> LoadResult:
    """Load a quota table: rep and/or team, quarter ('2026Q3'), quota (float).

    A row is a rep's quota when it names a rep, else its team's. Quarantined:
    neither rep nor team, malformed quarter, missing / non-numeric / negative
    quota, a second quota for the same rep (or team) and quarter, and, when
    ``log`` or ``reps`` is given, reps and teams found in neither.

    Examples
    --------
    >>> import pandas as pd
    >>> quotas = read_quotas(pd.DataFrame({"rep": ["ann", "ann"], "quarter": ["2026 Q3", "2026Q3"], "quota": [100, 90]}))
    >>> quotas.log[["rep", "quarter", "quota"]].to_dict("records"), quotas.report.counts.to_dict()
    ([{'rep': 'ann', 'quarter': '2026Q3', 'quota': 100.0}], {'duplicate_quota': 1})
    """
    raw = read_table(source, encoding=encoding)
    result = quotas_from_raw(raw, mapping=mapping, log=log, reps=reps)
    fail_if_nothing_kept(result.report, result.quarantine)
    return result


def quota_table(quotas: pd.DataFrame | LoadResult) -> pd.DataFrame:
    """The quota table an analysis uses: a table :func:`read_quotas` returned, or a DataFrame given
    directly, checked by the same rules (the first of two quotas for a rep and quarter is kept).

    Raises
    ------
    WorkbenchError
        Not a table, a required column missing, or no usable row.

    Examples
    --------
    >>> quota_table(pd.DataFrame({"team": ["east"], "quarter": ["2026 Q3"], "quota": ["1,000"]})).to_dict("records")
    [{'team': 'east', 'quarter': '2026Q3', 'quota': 1000.0}]
    """
    if isinstance(quotas, LoadResult):
        return quotas.log
    if not isinstance(quotas, pd.DataFrame):
        raise WorkbenchError(f"expected the quota table as a DataFrame, got {type(quotas).__name__}.",
                             hint="load it with workbench.io.read_quotas (rep or team, quarter, quota).")
    return read_quotas(quotas).log


#: Columns a product master table may give the family and the tier in.
FAMILY_NAMES = ("family", "product_family", "series", "product_line", "line")
TIER_NAMES = ("tier", "product_tier", "level", "rank")


def read_products(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8") -> pd.DataFrame:
    """A product master table (file or DataFrame) as product, family, tier: the key column is
    ``product`` (else the first), the family and tier columns those :data:`FAMILY_NAMES` and
    :data:`TIER_NAMES` name (a product is its own family without one; tiers are numbers, higher is
    more).

    Examples
    --------
    >>> read_products(pd.DataFrame({"product": ["GTX Pro"], "series": ["GTX"]})).to_dict("records")
    [{'product': 'GTX Pro', 'family': 'GTX', 'tier': nan}]
    """
    products = read_table(source, encoding=encoding).frame
    names = {str(c).strip().lower(): c for c in products.columns}
    key = names.get("product", products.columns[0])
    out = pd.DataFrame({"product": as_text(products[key].astype(object))})
    family = next((names[n] for n in FAMILY_NAMES if n in names), None)
    tier = next((names[n] for n in TIER_NAMES if n in names), None)
    out["family"] = as_text(products[family].astype(object)) if family is not None else out["product"]
    out["tier"] = pd.to_numeric(products[tier], errors="coerce") if tier is not None else np.nan
    return out.dropna(subset=["product"]).drop_duplicates("product")


def read_costs(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8") -> pd.DataFrame:
    """A costs table (file or DataFrame), checked: one territory column (rep, team or region), quarter,
    cost; two rows for one territory and quarter are added up.

    Raises
    ------
    WorkbenchError
        A column is missing, or a row's quarter or cost cannot be read (the row is named).

    Examples
    --------
    >>> read_costs(pd.DataFrame({"Team": ["East"], "Quarter": ["2026 Q3"], "Cost": ["1,000"]})).to_dict("records")
    [{'team': 'East', 'quarter': '2026Q3', 'cost': 1000.0}]
    """
    raw = read_table(source, encoding=encoding)
    costs, source = raw.frame, raw.source
    names = {str(c).strip().lower(): c for c in costs.columns}
    level = next((n for n in ("rep", "team", "region") if n in names), None)
    missing = [n for n in ("quarter", "cost") if n not in names]
    if level is None or missing:
        raise WorkbenchError(f"the costs table needs a rep, team or region column, a quarter and a cost; "
                             f"it has {list(map(str, costs.columns))}.", file=source,
                             column=(missing or ["team"])[0],
                             hint="one row per territory and quarter, e.g. team,quarter,cost / East,2026Q3,50000.")
    quarter = costs[names["quarter"]].map(parse_quarter)
    cost, _, bad = parse_amounts(costs[names["cost"]])
    for column, wrong in (("quarter", quarter.isna().to_numpy()), ("cost", bad | cost.isna().to_numpy())):
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            row = int(raw.source_row[first])
            raise WorkbenchError(f"the {column} of row {row} cannot be read "
                                 f"({costs[names[column]].iloc[first]!r}).", file=source,
                                 column=str(names[column]), row=row,
                                 hint="write quarters as 2026Q3 and costs as numbers.")
    return pd.DataFrame({level: as_text(costs[names[level]].astype(object)), "quarter": quarter,
                         "cost": cost.astype(float)}).groupby([level, "quarter"], as_index=False)["cost"].sum()
