"""Which input column is which: aliases, the user's mapping, the kinds of input and their columns."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from ..errors import WorkbenchError
from ..schema import ACTIVITY, AMOUNT, CASE, REGION, REP, TEAM, TIMESTAMP
from ..validation import as_text, parse_timestamps, plain_reason
from .files import RawTable, read_bytes

KINDS = ("events", "stage_history", "opportunities")


TABLE_KINDS = KINDS + ("reps", "quotas")


OPPORTUNITY_OPTIONS = ("milestones", "final_stage", "close_date", "won_values", "lost_values", "open_values",
                       "amount_known")


CANONICAL_ORDER = (CASE, ACTIVITY, TIMESTAMP, REP, TEAM, REGION, AMOUNT)


def norm_name(name: object) -> str:
    """Column name reduced for alias matching: 'Opportunity ID' -> 'opportunityid'."""
    return re.sub(r"[^0-9a-zа-яё]+", "", str(name).lower())


_CASE_ALIASES = ("caseid", "caseconceptname", "case", "opportunityid", "opportunity", "oppid", "dealid",
                 "deal", "сделка", "idсделки", "номерсделки")


_REP_ALIASES = ("rep", "orgresource", "resource", "owner", "ownername", "opportunityowner", "dealowner", "ownerid",
                "salesrep", "salesperson", "salesagent", "agent", "user", "менеджер", "ответственный")


_TEAM_ALIASES = ("team", "orggroup", "salesteam", "команда", "отдел")


_REGION_ALIASES = ("region", "territory", "regionaloffice", "office", "регион")


_AMOUNT_ALIASES = ("amount", "value", "dealvalue", "dealamount", "opportunityamount", "revenue", "сумма", "бюджет")


_CLOSE_ALIASES = ("closedate", "expectedclosedate", "closedat", "closedon", "датазакрытия")


#: canonical name -> aliases (normalised with norm_name), most specific first, per kind.
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "events": {
        CASE: _CASE_ALIASES,
        ACTIVITY: ("activity", "conceptname", "activityname", "event", "eventname", "action", "stage",
                   "stagename", "dealstage", "этап", "стадия", "событие"),
        TIMESTAMP: ("timestamp", "timetimestamp", "time", "datetime", "date", "eventtime", "eventdate",
                    "createddate", "changedat", "changeddate", "дата", "время"),
        REP: _REP_ALIASES, TEAM: _TEAM_ALIASES, REGION: _REGION_ALIASES, AMOUNT: _AMOUNT_ALIASES,
        "lifecycle": ("lifecycletransition", "lifecycle"),
    },
    "stage_history": {
        CASE: _CASE_ALIASES,
        ACTIVITY: ("stagename", "stage", "tostage", "newstage", "activity", "этап", "стадия"),
        TIMESTAMP: ("createddate", "changedat", "changeddate", "changedon", "lastmodifieddate", "timestamp",
                    "date", "datetime", "дата"),
        REP: _REP_ALIASES, TEAM: _TEAM_ALIASES, REGION: _REGION_ALIASES, AMOUNT: _AMOUNT_ALIASES,
        "close_date": _CLOSE_ALIASES,
    },
    "opportunities": {
        CASE: _CASE_ALIASES + ("id",),
        REP: _REP_ALIASES, TEAM: _TEAM_ALIASES, REGION: _REGION_ALIASES, AMOUNT: _AMOUNT_ALIASES,
        "final_stage": ("finalstage", "stagename", "stage", "status", "outcome", "этап", "статус"),
        "close_date": _CLOSE_ALIASES,
    },
    "reps": {
        REP: ("rep", "name", "repname", "salesrep", "salesperson", "salesagent", "agent", "owner", "user",
              "username", "employee", "orgresource", "менеджер", "сотрудник"),
        TEAM: _TEAM_ALIASES, REGION: _REGION_ALIASES,
        "manager": ("manager", "managername", "reportsto", "руководитель"),
        "start_date": ("startdate", "start", "hiredate", "hired", "joined", "датаприема"),
    },
    "quotas": {
        REP: ("rep", "repname", "salesrep", "owner", "user", "orgresource", "менеджер"),
        TEAM: _TEAM_ALIASES,
        "quarter": ("quarter", "fiscalquarter", "period", "квартал"),
        "quota": ("quota", "target", "plan", "quotaamount", "квота", "план"),
    },
}


REQUIRED: dict[str, tuple[str, ...]] = {
    "events": (CASE, ACTIVITY, TIMESTAMP),
    "stage_history": (CASE, ACTIVITY, TIMESTAMP),
    "opportunities": (CASE,),
    "reps": (REP,),
    "quotas": ("quarter", "quota"),
}


def parse_mapping(text: str | Path | Mapping | None) -> dict:
    """Read a column mapping: 'case_id=Opportunity ID,activity=Stage' or a JSON/YAML file.

    Keys are canonical names (and, for opportunity tables, the options of the
    module docstring); values are the user's column names.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    text = str(text).strip()
    if not text:
        return {}
    if text.lower().endswith((".json", ".yaml", ".yml")) and "=" not in text:
        path = Path(text)
        raw = read_bytes(path) if path.exists() else None
        if raw is None:
            raise WorkbenchError("the mapping file does not exist.", file=text, hint="check the path.")
        try:
            data = json.loads(raw) if text.lower().endswith(".json") else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise WorkbenchError(f"the mapping file is not valid: {plain_reason(exc)}", file=text,
                                 hint="fix its syntax.") from None
        if not isinstance(data, dict):
            raise WorkbenchError("the mapping file must hold key: column pairs.", file=text,
                                 hint="write e.g. case_id: Opportunity ID, one per line.")
        return {str(k): v for k, v in data.items()}
    out = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise WorkbenchError(f"cannot read {part.strip()!r} in the mapping {text!r}.",
                                 hint="write name=column pairs separated by commas, e.g. "
                                      "case_id=Opportunity ID,activity=Stage,timestamp=Changed At.")
        out[key.strip()] = value.strip()
    return out


def detect_kind(columns: Sequence[object]) -> str:
    """Guess what a table is from its column names.

    Returns 'quotas', 'reps', 'stage_history' or 'events' (an opportunity table
    needs its milestone columns named, so it is never guessed).
    """
    names = {norm_name(c) for c in columns}

    def has(kind: str, key: str) -> bool:
        return bool(names & set(ALIASES[kind][key])) or key in names

    if has("quotas", "quota") and has("quotas", "quarter"):
        return "quotas"
    if {"stagename", "closedate"} & names and has("stage_history", ACTIVITY) and has("stage_history", CASE):
        return "stage_history"
    if has("reps", REP) and not has("events", ACTIVITY) and not has("events", TIMESTAMP) \
            and (has("reps", TEAM) or has("reps", REGION) or has("reps", "manager")):
        return "reps"
    return "events"


def resolve_columns(raw: RawTable, kind: str, mapping: Mapping[str, Any]) -> dict[str, str]:
    """canonical name -> input column, from the mapping first, then the aliases."""
    columns = list(raw.frame.columns)
    found: dict[str, str] = {}
    for key, column in mapping.items():
        if key in OPPORTUNITY_OPTIONS and key not in ("final_stage", "close_date"):
            continue
        if not isinstance(column, str):
            raise WorkbenchError(f"the mapping gives {column!r} for {key!r}, which is not a column name.",
                                 hint="map each name to one column, e.g. case_id=Opportunity ID.")
        match = column if column in columns else next((c for c in columns if norm_name(c) == norm_name(column)), None)
        if match is None:
            raise WorkbenchError(f"the mapping names column {column!r} for {key!r}, which the file does not have.",
                                 file=raw.source, column=column, hint=f"the columns are {columns}.")
        found[key] = match
    used = set(found.values())
    for key, aliases in ALIASES[kind].items():
        if key in found:
            continue
        free = [c for c in columns if c not in used]
        exact = next((c for c in free if c == key), None)
        normed = {norm_name(c): c for c in reversed(free)}  # first column wins on equal names
        match = exact or next((normed[a] for a in (norm_name(key),) + aliases if a in normed), None)
        if match is not None:
            found[key] = match
            used.add(match)
    missing = [k for k in REQUIRED[kind] if k not in found]
    if kind == "quotas" and REP not in found and TEAM not in found:
        missing.append("rep")
    if missing:
        example = ",".join(f"{k}=<your column>" for k in missing)
        guess = detect_kind(columns)
        also = f" This looks like a {guess.replace('_', ' ')} table: load it as kind='{guess}'." \
            if guess not in (kind, "events") else ""
        if kind in ("events", "stage_history") and (flat := flat_table_hint(raw)):
            also = f" {flat}"
        raise WorkbenchError(
            f"no column for {', '.join(repr(m) for m in missing)} in this {kind.replace('_', ' ')} table; "
            f"the columns are {columns}.{also}",
            file=raw.source, column=missing[0],
            hint=f"say which column is which: mapping={{{', '.join(repr(k) + ': ' + repr('<your column>') for k in missing)}}} "
                 f"in Python, or --mapping \"{example}\" on the command line.",
        )
    return found


def _date_columns(raw: RawTable, sample: int = 200) -> list[str]:
    """Columns whose filled cells (a sample of them) are nearly all dates."""
    out = []
    for c in raw.frame.columns:
        values = raw.frame[c].dropna()
        if values.empty or pd.api.types.is_numeric_dtype(values.dtype):
            continue
        values = values.iloc[:sample]
        ts, _, bad = parse_timestamps(values)
        if ts.notna().sum() >= 0.8 * len(values) and not bad.all():
            out.append(c)
    return out


def flat_table_hint(raw: RawTable) -> str | None:
    """A sentence saying that a table looks like a flat opportunity table, or None.

    One row per id, two date columns or more, and a stage or status column: a
    CRM's opportunity export, which needs its milestones named.
    """
    columns = list(raw.frame.columns)
    ids = next((c for c in columns if norm_name(c) in ALIASES["opportunities"][CASE]), None)
    stage = next((c for c in columns if norm_name(c) in ALIASES["opportunities"]["final_stage"] + ("dealstage",)), None)
    dates = _date_columns(raw)
    if ids is None or stage is None or len(dates) < 2 or raw.frame[ids].dropna().duplicated().any():
        return None
    return (f"This looks like a flat opportunity table (one row per {ids!r}, date columns "
            f"{', '.join(repr(d) for d in dates)} and a stage column {stage!r}): read it with --kind opportunities "
            f"and a mapping that names its milestones, e.g. milestones: {{<activity>: {dates[0]}}}, "
            f"final_stage: {stage}, close_date: <column> (see the README's flat-table walk-through).")


def attribute_columns(raw: RawTable, found: Mapping[str, str], exclude: Sequence[str] = ()) -> dict[str, pd.Series]:
    """The input columns not used as canonical ones, 'case:' prefixes of XES dropped when free."""
    used = set(found.values()) | set(exclude)
    taken = set(found)
    out: dict[str, pd.Series] = {}
    for c in raw.frame.columns:
        if c in used:
            continue
        name = c[5:] if c.startswith("case:") and c[5:] and c[5:] not in taken | set(raw.frame.columns) else c
        if name in taken:
            name = f"{name} (input)"
        taken.add(name)
        col = raw.frame[c]
        out[name] = as_text(col) if (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)) else col
    return out


def canonical_order(log: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in CANONICAL_ORDER if c in log.columns]
    return log[first + [c for c in log.columns if c not in first]]


def refuse_double_mapping(raw: RawTable, found: Mapping[str, str], more: Mapping[str, str] | None = None) -> None:
    """One input column read as two things (a milestone and the close date) is refused."""
    roles: dict[str, list[str]] = {}
    for key, column in [*found.items(), *(more or {}).items()]:
        roles.setdefault(column, []).append(key)
    for column, keys in roles.items():
        if len(keys) > 1:
            raise WorkbenchError(
                f"column {column!r} is mapped to {' and to '.join(repr(k) for k in keys)}; a column can be "
                "read as one thing only.", file=raw.source, column=column,
                hint=f"map each of {keys} to its own column in the mapping.")


def carried_columns(raw: RawTable, found: Mapping[str, str], done: Mapping[str, pd.Series],
                     skip: Sequence[str] = (), exclude: Sequence[str] = ()) -> dict[str, pd.Series]:
    """The org columns, the columns renamed by the mapping, then the other attributes, after ``done``."""
    columns = dict(done)
    for key in (REP, TEAM, REGION, "lifecycle"):
        if key in found and key not in columns:
            columns[key] = as_text(raw.frame[found[key]])
    for key in found:
        if key not in columns and key not in skip:  # attributes renamed through the mapping
            col = raw.frame[found[key]]
            columns[key] = as_text(col) if (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)) else col
    columns.update(attribute_columns(raw, found, exclude=exclude))
    return columns
