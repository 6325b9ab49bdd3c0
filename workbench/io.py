"""Event logs, reps tables and quota tables in: files or DataFrames to canonical tables.

Every reader returns a :class:`LoadResult`: the canonical table, the quarantine
table of the input rows that could not be used (with the reason) and a
:class:`~workbench.validation.ValidationReport`. Fatal problems (missing file,
unreadable format, wrong encoding, a required column missing, nothing left)
raise :class:`~workbench.errors.WorkbenchError`.

Inputs
------
- an event log: CSV, Parquet, Excel (.xlsx), XES (.xes, .xes.gz) or a DataFrame
  (``kind="events"``); pm4py's column names and common aliases are recognised;
- a CRM stage history, Salesforce ``OpportunityHistory``-like: one row per stage
  change (``kind="stage_history"``);
- a flat opportunity table, one date column per milestone (``kind="opportunities"``);
- a reps table (:func:`read_reps`) and a quota table (:func:`read_quotas`).

Column mapping
--------------
``mapping`` maps a canonical name to the user's column, e.g.
``{"case_id": "Opportunity ID", "activity": "Stage", "timestamp": "Changed At"}``;
any other key renames an attribute. For the opportunity table the mapping (or
keyword arguments, or a JSON/YAML mapping file for the CLI) also takes:

=============== ==============================================================
key             meaning
=============== ==============================================================
milestones      activity -> date column, in process order, e.g.
                ``{"Lead Created": "Created", "Proposal": "Proposal Sent"}``
                (a list of columns uses the column names as activities)
final_stage     column saying whether the deal was won, lost or is still open
close_date      column with the date the deal was won or lost
won_values      final-stage values meaning won (default: the profile's won
                activities, 'won', 'closed won', 'win')
lost_values     values meaning lost (default: profile's lost, 'lost', 'closed lost')
open_values     values meaning still open (default: empty, 'open', the profile's
                stages); any other value is quarantined as unknown_final_stage,
                and the report lists the values found
amount_known    when the value column was known: ``created`` (the deal's value
                from its first milestone on) or ``closed`` (revenue booked at the
                close: 0 for lost deals, blank for open ones, so only the close
                event carries it). Default: ``closed`` when the values look like
                that, else ``created``; the report says which and why.
=============== ==============================================================

The profile
-----------
The profile (what the activities mean) is resolved once the events are built
(:func:`workbench.profile_fit.resolve_profile`): the one given, else a shipped
profile that describes the log, else one derived from the data. It decides
which events come after a case's close, travels with the result
(``LoadResult.profile``, ``SalesData.profile``, ``log.attrs['profile']``) and
is described in one line (``profile_note``).

Lifecycle transitions
---------------------
An XES log (or any log with a ``lifecycle`` column) records work items as
schedule / start / complete events. By default only ``complete`` events are
analysed (pm4py's usual view, one event per activity instance); the others are
set aside as ``lifecycle_not_complete`` and counted as such.
``lifecycle='all'`` keeps every event (pm4py's view of the raw log).
"""

from __future__ import annotations

import codecs
import csv
import io as _io
import json
import re
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from .calendar import parse_quarter
from .errors import WorkbenchError
from .profile import SalesProcessProfile, get_profile
from .profile_fit import resolve_profile
from .schema import ACTIVITY, AMOUNT, CASE, REGION, REP, TEAM, TIMESTAMP
from .validation import (
    CombinedReport,
    RowFlags,
    ValidationReport,
    as_text,
    check_timezone,
    fail_if_nothing_kept,
    parse_amounts,
    parse_timestamps,
    plain_reason,
    quarantine_table,
)

__all__ = [
    "LoadResult",
    "SalesData",
    "RawTable",
    "read_event_log",
    "read_reps",
    "read_quotas",
    "load_sales_data",
    "parse_mapping",
    "read_table",
    "load_table",
    "detect_kind",
    "after_close_mask",
]

KINDS = ("events", "stage_history", "opportunities")
TABLE_KINDS = KINDS + ("reps", "quotas")
OPPORTUNITY_OPTIONS = ("milestones", "final_stage", "close_date", "won_values", "lost_values", "open_values",
                       "amount_known")
AFTER_CLOSE = ("auto", "set_aside", "keep")
LIFECYCLE = ("complete", "all")
#: Activities a flat opportunity table's closes get when no profile names them.
CLOSE_LABELS = ("Closed Won", "Closed Lost")
CANONICAL_ORDER = (CASE, ACTIVITY, TIMESTAMP, REP, TEAM, REGION, AMOUNT)
#: Cell separators tried on a CSV's header line, most common first.
SEPARATORS = (",", ";", "\t", "|")
#: Helper columns that carry the input order through sorting (names no export uses).
_ROW, _K = "__workbench_row__", "__workbench_k__"


def _norm(name: object) -> str:
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

#: canonical name -> aliases (normalised with _norm), most specific first, per kind.
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


# ---------------------------------------------------------------- results

@dataclass
class LoadResult:
    """A loaded table, the input rows set aside, and the validation report.

    Attributes
    ----------
    log : DataFrame
        The canonical table (the event log; for :func:`read_reps` and
        :func:`read_quotas` the reps or quota table).
    quarantine : DataFrame
        The unusable input rows: ``source_row`` (1-based data row: the header
        is row 0, so in a spreadsheet it is the sheet's row number minus one;
        blank rows count), ``column`` (the input column to blame, empty when the
        whole row is), ``reason``, then the row's original values as strings.
    report : ValidationReport
    profile : SalesProcessProfile, optional
        For event logs: the profile the log was read with (see the module docstring).
    profile_note : str
        One line saying which profile that is and how it was chosen.
    """

    log: pd.DataFrame
    quarantine: pd.DataFrame
    report: ValidationReport
    profile: SalesProcessProfile | None = None
    profile_note: str = ""

    @property
    def table(self) -> pd.DataFrame:
        """Alias of :attr:`log`, for reps and quota tables."""
        return self.log


@dataclass
class SalesData:
    """Everything a notebook needs, validated together (see :func:`load_sales_data`).

    Attributes
    ----------
    log : DataFrame
        Canonical event log, team/region/manager joined from the reps table.
    reps, quotas : DataFrame or None
    profile : SalesProcessProfile
        The profile the log was read with (also in ``log.attrs['profile']``).
    quarantine : DataFrame
        All quarantined rows, with a ``table`` column ('log', 'reps', 'quotas').
    report : CombinedReport
        Printable as one page; ``to_dict()`` for JSON.
    profile_note : str
        One line for every page that uses the profile: which it is and why.
    """

    log: pd.DataFrame
    reps: pd.DataFrame | None
    quotas: pd.DataFrame | None
    profile: SalesProcessProfile
    quarantine: pd.DataFrame
    report: CombinedReport
    profile_note: str = ""


@dataclass
class RawTable:
    """An input table as read, before any check.

    Attributes
    ----------
    frame : DataFrame
        The cells as read (strings for CSV, typed for Parquet/XES/DataFrames).
    source : str
        File path or '<DataFrame>', used in messages.
    source_row : ndarray of int
        1-based data row in the file of each row of ``frame``.
    flags : RowFlags
        Problems found while reading (lines with too many fields).
    warnings : list of str
    """

    frame: pd.DataFrame
    source: str
    source_row: np.ndarray
    flags: RowFlags
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading files

def _encoding_hint(data: bytes, encoding: str) -> str:
    """Name the encoding a failed file was probably written in."""
    for candidate, label in (("utf-8", "UTF-8"), ("cp1251", "Russian Windows / 1C exports"),
                             ("cp1252", "Western European Windows exports")):
        if codecs.lookup(candidate).name == codecs.lookup(encoding).name:
            continue
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        non_ascii = [c for c in text[:200_000] if ord(c) > 127]
        if candidate == "cp1251" and (not non_ascii or
                                      sum("\u0400" <= c <= "\u04ff" for c in non_ascii) < 0.6 * len(non_ascii)):
            continue
        return (f"the file looks like {candidate} ({label}): pass encoding='{candidate}' "
                f"(command line: --encoding {candidate}).")
    return "pass the encoding the file was saved with, e.g. encoding='cp1251' or 'latin-1' (--encoding on the command line)."


def _decode(data: bytes, encoding: str, source: str) -> str:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise WorkbenchError(f"unknown encoding {encoding!r}.", file=source,
                             hint="use a Python codec name such as 'utf-8', 'cp1251' or 'latin-1'.") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and codec == "utf-8":
        codec = "utf-16"  # Excel's 'Unicode text' export
    elif codec == "utf-8":
        codec = "utf-8-sig"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start)
        raise WorkbenchError(
            f"the file is not valid {encoding} text (byte {exc.start} cannot be decoded).",
            file=source, row=row if row > 0 else None, hint=_encoding_hint(data, encoding),
        ) from None


def _sniff_separator(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] else ","


def _dedupe_header(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name.strip() or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def _read_csv_lenient(text: str, sep: str, source: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a CSV whose lines do not all have the header's number of fields.

    The fast C parser refuses such files; here each line with too many fields is
    kept (its surplus joined into the last cell) and flagged, so it can be
    quarantined instead of lost.
    """
    try:
        rows = list(csv.reader(_io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise WorkbenchError(f"the file cannot be read as CSV ({plain_reason(exc)}).", file=source,
                             hint="check the quoting: a quote opened in a cell must be closed.") from None
    header = _dedupe_header(rows[0]) if rows else []
    width = len(header)
    data, wrong = [], np.zeros(max(len(rows) - 1, 0), dtype=bool)
    for i, r in enumerate(rows[1:]):
        if len(r) > width:
            wrong[i] = True
            r = r[: width - 1] + [sep.join(r[width - 1:])]
        data.append(r + [""] * (width - len(r)))
    frame = pd.DataFrame(data, columns=header, dtype="str")
    frame = frame.where(frame != "", np.nan)
    return frame, wrong


def _read_csv(path: Path, encoding: str) -> tuple[pd.DataFrame, np.ndarray]:
    source = str(path)
    data = _read_bytes(path)
    head = data[:8192]
    if head.startswith(b"PK\x03\x04"):
        raise WorkbenchError("the file is a zip archive (an Excel workbook?), not a CSV.", file=source,
                             hint="if it is an Excel file, name it .xlsx; otherwise unzip it first.")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise WorkbenchError("the file is binary, not a CSV text file.", file=source,
                             hint="export the table as CSV, Excel (.xlsx), Parquet or XES.")
    text = _decode(data, encoding, source)
    if not text.strip():
        raise WorkbenchError("the file is empty.", file=source, hint="export the table again with its header and rows.")
    sep = _sniff_separator(text)
    try:
        frame = pd.read_csv(_io.StringIO(text), sep=sep, dtype="str", keep_default_na=False, na_values=[""],
                            skip_blank_lines=False, engine="c")
        return frame, np.zeros(len(frame), dtype=bool)
    except pd.errors.ParserError:
        return _read_csv_lenient(text, sep, source)
    except (pd.errors.EmptyDataError, ValueError, IndexError, OverflowError) as exc:
        raise WorkbenchError(f"the file cannot be read as CSV ({plain_reason(exc)}).", file=source,
                             hint="check that it is a CSV export with a header line.") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"the file cannot be read ({exc.strerror or exc}).", file=str(path),
                             hint="check the path and the file's permissions.") from None


def _read_excel(path: Path, sheet: str | int | None) -> pd.DataFrame:
    source = str(path)
    try:
        return pd.read_excel(path, sheet_name=0 if sheet is None else sheet, dtype=object, engine="openpyxl")
    except (ValueError, KeyError, IndexError) as exc:
        if sheet is not None and ("not found" in str(exc) or isinstance(exc, (KeyError, IndexError))):
            raise WorkbenchError(f"the workbook has no sheet {sheet!r}.", file=source,
                                 hint=f"the sheets are {_sheet_names(path)}; pass one of them as sheet=.") from None
        problem = plain_reason(exc)
    except Exception as exc:  # openpyxl / zipfile raise many types on a damaged workbook
        problem = plain_reason(exc)
    raise WorkbenchError(f"the file cannot be read as an Excel workbook ({problem}).", file=source,
                         hint="open it in Excel and save it as .xlsx, or export the sheet as CSV.")


def _sheet_names(path: Path) -> list[str]:
    try:
        return list(pd.ExcelFile(path, engine="openpyxl").sheet_names)
    except Exception:
        return []


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise WorkbenchError(f"the file cannot be read as Parquet ({plain_reason(exc)}).", file=str(path),
                             hint="write it again with pandas.DataFrame.to_parquet, or export CSV.") from None


def _read_xes(path: Path, encoding: str) -> pd.DataFrame:
    try:
        import pm4py

        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            frame = pm4py.read_xes(str(path), encoding=encoding, show_progress_bar=False)
    except Exception as exc:  # lxml, gzip and pm4py's own errors
        raise WorkbenchError(f"the file cannot be read as XES ({plain_reason(exc)}).", file=str(path),
                             hint="check that it is a complete XES export (for .xes.gz: a gzip of one).") from None
    if not isinstance(frame, pd.DataFrame):
        raise WorkbenchError("the XES file did not give a table of events.", file=str(path),
                             hint="export the log again as XES.")
    return frame


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".xes", ".xes.gz")):
        return "xes"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "excel"
    if suffix == ".xls":
        raise WorkbenchError("old Excel .xls files are not supported.", file=str(path),
                             hint="open it in Excel and save it as .xlsx, or export CSV.")
    if suffix in (".csv", ".txt", ".tsv", ".tab", ""):
        return "csv"
    head = _read_bytes(path)[:512]
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    if b"<log" in head or head.lstrip().startswith(b"<?xml"):
        return "xes"
    raise WorkbenchError(f"{path.suffix!r} files are not a format the workbench reads.", file=str(path),
                         hint="give a CSV, Excel (.xlsx), Parquet or XES (.xes, .xes.gz) file.")


def read_table(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8",
               sheet: str | int | None = None) -> RawTable:
    """Read a file (CSV, Parquet, Excel, XES) or take a DataFrame, without checking any value.

    CSV cells are read as strings, separator (',', ';', tab, '|') sniffed from the
    header. Blank lines are skipped (and said so in a warning); data rows keep
    their 1-based row number in the file.

    Raises
    ------
    WorkbenchError
        Missing or unreadable file, unknown format, wrong encoding.
    """
    if isinstance(source, pd.DataFrame):
        frame, name, wrong = source.reset_index(drop=True), "<DataFrame>", np.zeros(len(source), dtype=bool)
    else:
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise WorkbenchError("the file does not exist.", file=name,
                                 hint=f"check the path (relative paths start at {Path.cwd()}).")
        if path.is_dir():
            raise WorkbenchError("this is a folder, not a file.", file=name, hint="give the path of the file.")
        fmt = _format_of(path)
        wrong = None
        if fmt == "csv":
            frame, wrong = _read_csv(path, encoding)
        elif fmt == "excel":
            frame = _read_excel(path, sheet)
        elif fmt == "parquet":
            frame = _read_parquet(path)
        else:
            frame = _read_xes(path, encoding)
        frame = frame.reset_index(drop=True)
        if wrong is None:
            wrong = np.zeros(len(frame), dtype=bool)
    frame.columns = _dedupe_header([str(c) for c in frame.columns])
    source_row = np.arange(1, len(frame) + 1)
    warnings: list[str] = []
    if not isinstance(source, pd.DataFrame) and fmt == "excel" and sheet is None \
            and len(sheets := _sheet_names(path)) > 1:
        warnings.append(f"the workbook has {len(sheets)} sheets ({', '.join(repr(s) for s in sheets[:6])}); the first, "
                        f"{sheets[0]!r}, was read. Pass sheet= (--sheet) to read another.")
    empty = frame.isna().all(axis=1).to_numpy() & ~wrong if len(frame.columns) else np.ones(len(frame), bool)
    if empty.any():
        warnings.append(f"{int(empty.sum()):,} empty rows were skipped (they hold no data).")
        frame, source_row, wrong = frame[~empty].reset_index(drop=True), source_row[~empty], wrong[~empty]
    flags = RowFlags(len(frame))
    flags.flag(wrong, "wrong_field_count", None)
    return RawTable(frame=frame, source=name, source_row=source_row, flags=flags, warnings=warnings)


# ---------------------------------------------------------------- columns

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
        raw = _read_bytes(path) if path.exists() else None
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
    names = {_norm(c) for c in columns}

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


def _resolve_columns(raw: RawTable, kind: str, mapping: Mapping[str, Any]) -> dict[str, str]:
    """canonical name -> input column, from the mapping first, then the aliases."""
    columns = list(raw.frame.columns)
    found: dict[str, str] = {}
    for key, column in mapping.items():
        if key in OPPORTUNITY_OPTIONS and key not in ("final_stage", "close_date"):
            continue
        if not isinstance(column, str):
            raise WorkbenchError(f"the mapping gives {column!r} for {key!r}, which is not a column name.",
                                 hint="map each name to one column, e.g. case_id=Opportunity ID.")
        match = column if column in columns else next((c for c in columns if _norm(c) == _norm(column)), None)
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
        normed = {_norm(c): c for c in reversed(free)}  # first column wins on equal names
        match = exact or next((normed[a] for a in (_norm(key),) + aliases if a in normed), None)
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
    ids = next((c for c in columns if _norm(c) in ALIASES["opportunities"][CASE]), None)
    stage = next((c for c in columns if _norm(c) in ALIASES["opportunities"]["final_stage"] + ("dealstage",)), None)
    dates = _date_columns(raw)
    if ids is None or stage is None or len(dates) < 2 or raw.frame[ids].dropna().duplicated().any():
        return None
    return (f"This looks like a flat opportunity table (one row per {ids!r}, date columns "
            f"{', '.join(repr(d) for d in dates)} and a stage column {stage!r}): read it with --kind opportunities "
            f"and a mapping that names its milestones, e.g. milestones: {{<activity>: {dates[0]}}}, "
            f"final_stage: {stage}, close_date: <column> (see the README's flat-table walk-through).")


def _attributes(raw: RawTable, found: Mapping[str, str], exclude: Sequence[str] = ()) -> dict[str, pd.Series]:
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


def _order(log: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in CANONICAL_ORDER if c in log.columns]
    return log[first + [c for c in log.columns if c not in first]]


def _sort_events(log: pd.DataFrame) -> pd.DataFrame:
    """Sort by case then time, ties in input order (row, then milestone order)."""
    keys = [CASE, TIMESTAMP] + [k for k in (_ROW, _K) if k in log.columns]
    return log.sort_values(keys, kind="stable")


def after_close_mask(log: pd.DataFrame, profile: SalesProcessProfile) -> np.ndarray:
    """Events of a sorted log that come after their case's first won/lost event.

    In a log with lifecycle transitions the close is the *completion* of the
    closing activity, so its own ``start`` event does not close the deal.
    """
    closing = log[ACTIVITY].isin(profile.closing)
    if "lifecycle" in log.columns:
        closing &= log["lifecycle"].astype("string").str.lower().ne("start").fillna(True)
    closing = closing.to_numpy().astype("int64")
    before = pd.Series(closing, index=log.index).groupby(log[CASE].to_numpy(), sort=False).cumsum().to_numpy()
    return (before - closing) >= 1


def _duplicated(frame: pd.DataFrame) -> np.ndarray:
    try:
        return frame.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable cells (lists in XES attributes)
        return frame.astype("str").duplicated(keep="first").to_numpy()


def _events_summary(log: pd.DataFrame) -> dict:
    if log.empty:
        return {"events": 0, "cases": 0}
    return {"events": f"{len(log):,}", "cases": f"{log[CASE].nunique():,}",
            "from": log[TIMESTAMP].min().strftime("%Y-%m-%d"), "to": log[TIMESTAMP].max().strftime("%Y-%m-%d")}


# ---------------------------------------------------------------- event logs

def _parse_dates(values: pd.Series, column: str, flags: RowFlags, warnings: list[str], *, dayfirst: bool,
                 timezone: str, missing_reason: str | None = None) -> pd.Series:
    """Parse a date column, flag its empty / unreadable cells, and hint at dayfirst when it would help."""
    ts, missing, bad = parse_timestamps(values, dayfirst=dayfirst, timezone=timezone)
    if missing_reason:
        flags.flag(missing, missing_reason, column)
    flags.flag(bad, "unparseable_timestamp", column)
    if bad.any() and not dayfirst:
        rescued = int((~parse_timestamps(values[bad], dayfirst=True, timezone=timezone)[2]).sum())
        if rescued:
            warnings.append(f"{rescued:,} dates of column {column!r} could not be read month-first but can be "
                            f"read day-first (like 25/03/2026): pass dayfirst=True (--dayfirst) if that is "
                            f"how the file writes dates.")
    return ts


def _check_option(name: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        raise WorkbenchError(f"{name}={value!r} is not an option.", hint=f"use one of {list(options)}.")


def _flag_amount(raw: RawTable, flags: RowFlags, found: Mapping[str, str]) -> pd.Series | None:
    if AMOUNT not in found:
        return None
    amount, _, bad = parse_amounts(raw.frame[found[AMOUNT]])
    flags.flag(bad, "non_numeric_amount", found[AMOUNT])
    flags.flag((amount < 0).to_numpy(), "negative_amount", found[AMOUNT])
    return amount


def _events_from_raw(raw: RawTable, *, kind: str, mapping: Mapping[str, Any], dayfirst: bool, timezone: str,
                     lifecycle: str, warnings: list[str]) -> tuple[pd.DataFrame, RowFlags]:
    """Events and stage-history rows: one input row, one event (``_ROW`` is its input row)."""
    found = _resolve_columns(raw, kind, mapping)
    _refuse_double_mapping(raw, found)
    frame, flags = raw.frame, raw.flags
    case = as_text(frame[found[CASE]])
    flags.flag(case.isna().to_numpy(), "missing_case_id", found[CASE])
    activity = as_text(frame[found[ACTIVITY]])
    flags.flag(activity.isna().to_numpy(), "missing_activity", found[ACTIVITY])
    ts = _parse_dates(frame[found[TIMESTAMP]], found[TIMESTAMP], flags, warnings, dayfirst=dayfirst,
                      timezone=timezone, missing_reason="missing_timestamp")
    columns: dict[str, pd.Series] = {CASE: case, ACTIVITY: activity, TIMESTAMP: ts}
    if "close_date" in found:
        columns["close_date"] = _parse_dates(frame[found["close_date"]], found["close_date"], flags, warnings,
                                             dayfirst=dayfirst, timezone=timezone)
    amount = _flag_amount(raw, flags, found)
    flags.flag(_duplicated(frame), "duplicate_event", None)
    if "lifecycle" in found and lifecycle == "complete":
        value = as_text(frame[found["lifecycle"]]).str.lower()
        flags.flag((value.notna() & value.ne("complete")).to_numpy(), "lifecycle_not_complete", found["lifecycle"])
    if amount is not None:
        columns[AMOUNT] = amount
    log = pd.DataFrame(_carried_columns(raw, found, columns))
    log[_ROW] = np.arange(len(log))
    log = _sort_events(log[~flags.bad])
    if len(log) and not log[CASE].duplicated().any() and (flat := flat_table_hint(raw)):
        warnings.append(f"every case has a single event. {flat}")
    return log, flags


def _refuse_double_mapping(raw: RawTable, found: Mapping[str, str], more: Mapping[str, str] | None = None) -> None:
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


def _set_aside_after_close(log: pd.DataFrame, flags: RowFlags, profile: SalesProcessProfile, after_close: str,
                           column: str | np.ndarray | None, whole_rows: bool,
                           warnings: list[str]) -> pd.DataFrame:
    """Set aside (or keep, counted) the events after each case's close, as the profile or ``after_close`` says.

    ``whole_rows``: an input row made several events (a flat table's deal), so the
    whole row goes with a late event.
    """
    late = after_close_mask(log, profile)
    if not late.any():
        return log
    if (profile.events_after_close if after_close == "auto" else after_close) == "keep":
        warnings.append(f"{int(late.sum()):,} events follow their case's close and were kept "
                        "(events after the close are real work in this process).")
        return log
    rows = np.zeros(len(flags), dtype=bool)
    rows[log[_ROW].to_numpy()[late]] = True
    if isinstance(column, np.ndarray):
        where = np.full(len(flags), None, dtype=object)
        where[log[_ROW].to_numpy()[late][::-1]] = column[late][::-1]  # the first late event names its column
        column = where
    flags.flag(rows, "event_after_close", column)
    return log[~log[_ROW].isin(np.flatnonzero(rows)).to_numpy()] if whole_rows else log[~late]


def _outcome_values(given: Sequence[str] | str | None, defaults: Sequence[str]) -> set[str]:
    values = defaults if given is None else ([given] if isinstance(given, str) else given)
    return {str(v).strip().lower() for v in values}


def _carried_columns(raw: RawTable, found: Mapping[str, str], done: Mapping[str, pd.Series],
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
    columns.update(_attributes(raw, found, exclude=exclude))
    return columns


def _opportunity_columns(raw: RawTable, mapping: Mapping[str, Any],
                         options: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Resolve the columns of an opportunity table: canonical ones, then activity -> milestone column."""
    milestones = options.get("milestones")
    if not milestones:
        raise WorkbenchError(
            "an opportunity table needs its milestone date columns named.", file=raw.source,
            hint="pass milestones={'Lead Created': '<created column>', 'Proposal': '<proposal date column>', ...} "
                 "(in a mapping file: a 'milestones' key), in process order.")
    if not isinstance(milestones, Mapping):
        milestones = {str(c): str(c) for c in ([milestones] if isinstance(milestones, str) else milestones)}
    named = {**mapping, **{k: options[k] for k in ("final_stage", "close_date") if options.get(k)}}
    found = _resolve_columns(raw, "opportunities", named)
    columns = list(raw.frame.columns)
    milestone_cols: dict[str, str] = {}
    for activity, column in milestones.items():
        match = column if column in columns else next((c for c in columns if _norm(c) == _norm(column)), None)
        if match is None:
            raise WorkbenchError(f"milestone {activity!r} names column {column!r}, which the file does not have.",
                                 file=raw.source, column=str(column), hint=f"the columns are {columns}.")
        milestone_cols[str(activity)] = match
    if "final_stage" in found and "close_date" not in found:
        raise WorkbenchError("the table says which deals were won or lost but has no close date column.",
                             file=raw.source, column=found["final_stage"],
                             hint="name the column with the date of the win or loss: close_date='<column>'.")
    return found, milestone_cols


def _opportunity_outcomes(raw: RawTable, found: Mapping[str, str], labels: tuple[str, str],
                          profile: SalesProcessProfile | None, options: Mapping[str, Any], flags: RowFlags,
                          warnings: list[str]) -> pd.Series:
    """'won', 'lost' or 'open' per row from the final-stage column; unknown values flagged."""
    outcome = pd.Series("open", index=raw.frame.index, dtype="str")
    if "final_stage" not in found:
        warnings.append("no final stage column was named or recognised, so every deal is taken as still open: "
                        "pass final_stage='<column>' and close_date='<column>' to load wins and losses.")
        return outcome
    text = as_text(raw.frame[found["final_stage"]])
    stage = text.str.lower()
    stages = list(profile.stages) + list(profile.loops) if profile is not None else []
    won = _outcome_values(options.get("won_values"), [labels[0], "won", "closed won", "closed-won", "win"])
    lost = _outcome_values(options.get("lost_values"), [labels[1], "lost", "closed lost", "closed-lost", "loss"])
    open_ = _outcome_values(options.get("open_values"), stages + ["open", "in progress", "active", "pipeline"])
    outcome[stage.isin(won).to_numpy()] = "won"
    outcome[stage.isin(lost).to_numpy()] = "lost"
    unknown = ~(stage.isna() | stage.isin(won | lost | open_)).to_numpy()
    flags.flag(unknown, "unknown_final_stage", found["final_stage"])
    if unknown.any():
        values = text[unknown].value_counts()
        shown = ", ".join(f"{v!r} ({n:,} rows)" for v, n in values.head(8).items())
        names = ", ".join(str(v) for v in values.index[:8])
        warnings.append(f"column {found['final_stage']!r} has final stages that are neither won, lost nor open: "
                        f"{shown}. Say which they are in the mapping, e.g. open_values: [{names}] "
                        "(or won_values / lost_values).")
    return outcome


def _amount_known(amount: pd.Series, outcome: pd.Series, keep: np.ndarray, column: str, given: str | None,
                  warnings: list[str]) -> str:
    """'created' or 'closed': when a flat table's value column was known (see the module docstring)."""
    if given is not None:
        _check_option("amount_known", given, ("created", "closed"))
        return given
    lost = (outcome == "lost").to_numpy() & keep
    open_ = (outcome == "open").to_numpy() & keep
    values = amount.to_numpy(dtype=float)
    booked = (lost.any() or open_.any()) and bool(np.all(np.nan_to_num(values[lost]) == 0)) \
        and bool(np.all(np.isnan(values[open_]))) and bool(np.nan_to_num(values[keep]).any())
    if booked:
        warnings.append(
            f"the values of column {column!r} look like revenue booked at the close (every lost deal is 0 or blank "
            "and every open deal blank), so each deal's value is used from its close only (amount_known: closed); "
            "open deals have no value. If the value was known when the deal was created, put amount_known: created "
            "in the mapping.")
        return "closed"
    return "created"


def _opportunities_from_raw(raw: RawTable, *, mapping: Mapping[str, Any], labels: tuple[str, str],
                            profile: SalesProcessProfile | None, dayfirst: bool, timezone: str,
                            options: Mapping[str, Any], warnings: list[str]) -> tuple[pd.DataFrame, RowFlags]:
    """A flat opportunity table: each dated milestone an event, a won/lost close an event.

    ``_ROW`` is each event's input row and ``_K`` its milestone's position (the close last).
    """
    found, milestone_cols = _opportunity_columns(raw, mapping, options)
    _refuse_double_mapping(raw, found, {f"milestone {a!r}": c for a, c in milestone_cols.items()})
    frame, flags = raw.frame, raw.flags
    case = as_text(frame[found[CASE]])
    flags.flag(case.isna().to_numpy(), "missing_case_id", found[CASE])
    dates = {activity: _parse_dates(frame[column], column, flags, warnings, dayfirst=dayfirst, timezone=timezone)
             for activity, column in milestone_cols.items()}
    close = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    if "close_date" in found:
        close = _parse_dates(frame[found["close_date"]], found["close_date"], flags, warnings, dayfirst=dayfirst,
                             timezone=timezone)
    outcome = _opportunity_outcomes(raw, found, labels, profile, options, flags, warnings)
    closed = (outcome != "open").to_numpy()
    first = pd.DataFrame(dates).min(axis=1)
    # a kept row must make at least one event: a milestone date, or the close of a won/lost deal
    flags.flag((first.isna() & ~(closed & close.notna())).to_numpy(), "no_usable_date", None)
    flags.flag(closed & close.isna().to_numpy(), "missing_close_date", found.get("close_date"))
    flags.flag((closed & (close < first)).to_numpy(), "close_before_creation", found.get("close_date"))
    amount = _flag_amount(raw, flags, found)
    flags.flag(_duplicated(frame), "duplicate_event", None)
    dup_case = case.where(~flags.bad).duplicated(keep="first").to_numpy() & case.notna().to_numpy()
    flags.flag(dup_case, "duplicate_case_id", found[CASE])

    keep = ~flags.bad
    known = None if amount is None else _amount_known(amount, outcome, keep, found[AMOUNT],
                                                      options.get("amount_known"), warnings)
    # The close date is the close event's time; carried as an attribute it would show every
    # earlier event (and every past snapshot) when the deal was going to close.
    done: dict[str, pd.Series] = {CASE: case}
    cases = pd.DataFrame(_carried_columns(raw, found, done, skip=("final_stage", "close_date"),
                                          exclude=list(milestone_cols.values())))[keep]
    cases[_ROW] = np.flatnonzero(keep)
    parts = []
    for k, (activity, ts) in enumerate(dates.items()):
        part = cases.assign(**{ACTIVITY: activity, TIMESTAMP: ts[keep], _K: k})
        if amount is not None:
            part[AMOUNT] = amount[keep] if known == "created" else np.nan
        parts.append(part[part[TIMESTAMP].notna()])
    close_label = np.where(outcome[keep] == "won", labels[0], labels[1])
    part = cases.assign(**{ACTIVITY: close_label, TIMESTAMP: close[keep], _K: len(dates)})
    if amount is not None:
        part[AMOUNT] = amount[keep]
    parts.append(part[closed[keep]])
    log = _sort_events(pd.concat(parts, ignore_index=True))
    log[ACTIVITY] = log[ACTIVITY].astype("str")
    return log, flags


def _finish(log: pd.DataFrame, raw: RawTable, flags: RowFlags, kind: str,
            warnings: list[str], summary: dict, **extra: Any) -> LoadResult:
    report = ValidationReport.from_flags(raw.source, kind, flags, warnings=raw.warnings + warnings, summary=summary,
                                         profile_note=extra.get("profile_note", ""))
    return LoadResult(log=_order(log).reset_index(drop=True),
                      quarantine=quarantine_table(raw.frame, flags, raw.source_row), report=report, **extra)


def _join_reps(log: pd.DataFrame, reps: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
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


def _event_log_from_raw(raw: RawTable, *, kind: str = "auto", mapping: Mapping[str, Any] | str | None = None,
                        profile: Any = None, dayfirst: bool = False, timezone: str = "UTC",
                        after_close: str = "auto", lifecycle: str = "complete", reps: Any = None,
                        **options: Any) -> LoadResult:
    mapping = parse_mapping(mapping)
    unknown = set(options) - set(OPPORTUNITY_OPTIONS)
    if unknown:
        raise WorkbenchError(f"unknown options {sorted(unknown)}.",
                             hint=f"opportunity tables take {list(OPPORTUNITY_OPTIONS)}.")
    options = {**{k: v for k, v in mapping.items() if k in OPPORTUNITY_OPTIONS}, **options}
    mapping = {k: v for k, v in mapping.items() if k not in OPPORTUNITY_OPTIONS}
    _check_option("after_close", after_close, AFTER_CLOSE)
    _check_option("lifecycle", lifecycle, LIFECYCLE)
    check_timezone(timezone)
    given = None if profile is None or str(profile).lower() == "auto" else get_profile(profile)
    if kind == "auto":
        kind = "opportunities" if options.get("milestones") else detect_kind(raw.frame.columns)
        kind = kind if kind in KINDS else "events"
    if kind not in KINDS:
        raise WorkbenchError(f"kind={kind!r} is not an event log kind.", hint=f"use one of {['auto', *KINDS]}.")
    warnings: list[str] = []
    hints: dict[str, Any] = {}
    if kind == "opportunities":
        if given is not None and not given.has_outcomes:
            raise WorkbenchError(f"profile {given.name!r} has no won and lost activities for the table's outcomes.",
                                 file=raw.source, hint="give a profile with won and lost, or none.")
        labels = (given.won[0], given.lost[0]) if given is not None else CLOSE_LABELS
        log, flags = _opportunities_from_raw(raw, mapping=mapping, labels=labels, profile=given, dayfirst=dayfirst,
                                             timezone=timezone, options=options, warnings=warnings)
        found, milestone_cols = _opportunity_columns(raw, mapping, options)
        hints = {"won": (labels[0],), "lost": (labels[1],), "stage_order": tuple(milestone_cols)}
        columns = [*milestone_cols.values(), found.get("close_date")]
        late_column: str | np.ndarray | None = np.array([columns[k] for k in log[_K]], dtype=object)
    else:
        log, flags = _events_from_raw(raw, kind=kind, mapping=mapping, dayfirst=dayfirst, timezone=timezone,
                                      lifecycle=lifecycle, warnings=warnings)
        late_column = _resolve_columns(raw, kind, mapping)[ACTIVITY]
    choice = None
    if len(log):
        choice = resolve_profile(log, given, **hints)
        log = _set_aside_after_close(log, flags, choice.profile, after_close, late_column,
                                     whole_rows=kind == "opportunities", warnings=warnings)
    log = log.drop(columns=[c for c in (_ROW, _K) if c in log.columns])
    if reps is not None:
        reps_table = reps.log if isinstance(reps, LoadResult) else read_reps(reps).log
        log = _join_reps(log, reps_table, warnings)
    result = _finish(log, raw, flags, kind, warnings, _events_summary(log),
                     profile=choice.profile if choice else given, profile_note=choice.note if choice else "")
    result.log.attrs.update(profile=result.profile, kind=kind)
    # Quarantined rows keep the export's own column names; a canonical case_id beside them lets
    # analyses (e.g. events after close as deviations) find their deal whatever the export called it.
    case_source = _resolve_columns(raw, kind, mapping).get(CASE)
    quarantine = result.quarantine
    if case_source in quarantine.columns and CASE not in quarantine.columns:
        quarantine.insert(3, CASE, quarantine[case_source])
    return result


def read_event_log(source: str | Path | pd.DataFrame, *, kind: str = "auto",
                   mapping: Mapping[str, Any] | str | None = None, profile: Any = None, dayfirst: bool = False,
                   timezone: str = "UTC", encoding: str = "utf-8", sheet: str | int | None = None,
                   after_close: str = "auto", lifecycle: str = "complete", reps: Any = None,
                   **opportunity_options: Any) -> LoadResult:
    """Load an event log, a stage history or an opportunity table as the canonical event log.

    Parameters
    ----------
    source : path or DataFrame
        CSV, Parquet, Excel (.xlsx), XES (.xes, .xes.gz) file, or a DataFrame.
    kind : {'auto', 'events', 'stage_history', 'opportunities'}
        'auto' takes 'opportunities' when milestones are given, 'stage_history'
        for Salesforce-like columns (StageName, CloseDate), else 'events'.
    mapping : dict or str, optional
        Canonical name -> your column (or 'case_id=Col,activity=Col', or a
        JSON/YAML file); pm4py's names and common aliases need none.
    profile : SalesProcessProfile or name or path, optional
        What the activities mean. Default: a shipped profile that describes
        the log, else one derived from it (``result.profile_note`` says which).
    dayfirst : bool
        Read '05/03/2026' as 5 March.
    timezone : str
        Time zone of timestamps written without one; the log is in UTC.
    encoding : str
        Text encoding of a CSV (e.g. 'cp1251' for Russian Windows exports).
    sheet : str or int, optional
        Excel sheet (default the first; a workbook of several sheets gets a warning).
    after_close : {'auto', 'set_aside', 'keep'}
        Events after a case's close: as the profile says (``events_after_close``),
        set aside with their reason, or kept (and counted).
    lifecycle : {'complete', 'all'}
        With lifecycle transitions: analyse complete events only (the others
        are set aside and counted), or every event.
    reps : DataFrame or LoadResult, optional
        Reps table whose team / region / manager are joined onto the log.
    **opportunity_options
        milestones, final_stage, close_date, won_values, lost_values,
        open_values, amount_known (see the module docstring).

    Returns
    -------
    LoadResult
        ``log``: case_id, activity, timestamp (UTC), rep, team, region, amount
        where present, then the other columns; sorted by case_id and timestamp,
        ties in input order.

    Raises
    ------
    WorkbenchError
        Unreadable file, required column missing, no row usable.
    """
    raw = read_table(source, encoding=encoding, sheet=sheet)
    result = _event_log_from_raw(raw, kind=kind, mapping=mapping, profile=profile, dayfirst=dayfirst,
                                 timezone=timezone, after_close=after_close, lifecycle=lifecycle, reps=reps,
                                 **opportunity_options)
    fail_if_nothing_kept(result.report, result.quarantine)
    return result


# ---------------------------------------------------------------- reps and quotas

def _reps_from_raw(raw: RawTable, *, mapping: Mapping[str, Any] | str | None = None) -> LoadResult:
    found = _resolve_columns(raw, "reps", parse_mapping(mapping))
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
    columns.update(_attributes(raw, found))
    table = pd.DataFrame(columns)[~flags.bad]
    return _finish(table, raw, flags, "reps", [], {"reps": f"{len(table):,}"})


def read_reps(source: str | Path | pd.DataFrame, *, mapping: Mapping[str, Any] | str | None = None,
              encoding: str = "utf-8") -> LoadResult:
    """Load a reps table: rep, team, region, manager, start_date (UTC), other columns kept.

    Nameless reps, reps listed twice (the first row is kept) and unreadable start
    dates are quarantined.
    """
    raw = read_table(source, encoding=encoding)
    result = _reps_from_raw(raw, mapping=mapping)
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


def _quotas_from_raw(raw: RawTable, *, mapping: Mapping[str, Any] | str | None = None, log: Any = None,
                     reps: Any = None) -> LoadResult:
    found = _resolve_columns(raw, "quotas", parse_mapping(mapping))
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
    log_frame = log.log if isinstance(log, LoadResult) else (
        read_event_log(log).log if isinstance(log, (str, Path)) else log)
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
    columns.update(_attributes(raw, found))
    table = pd.DataFrame(columns)[~flags.bad]
    return _finish(table, raw, flags, "quotas", warnings, {"quotas": f"{len(table):,}"})


def read_quotas(source: str | Path | pd.DataFrame, *, mapping: Mapping[str, Any] | str | None = None,
                log: Any = None, reps: Any = None, encoding: str = "utf-8") -> LoadResult:
    """Load a quota table: rep and/or team, quarter ('2026Q3'), quota (float).

    A row is a rep's quota when it names a rep, else its team's. Quarantined:
    neither rep nor team, malformed quarter, missing / non-numeric / negative
    quota, a second quota for the same rep (or team) and quarter, and, when
    ``log`` or ``reps`` is given, reps and teams found in neither.
    """
    raw = read_table(source, encoding=encoding)
    result = _quotas_from_raw(raw, mapping=mapping, log=log, reps=reps)
    fail_if_nothing_kept(result.report, result.quarantine)
    return result


# ---------------------------------------------------------------- any table

def load_table(raw: RawTable, kind: str = "auto", *, mapping: Mapping[str, Any] | str | None = None,
               profile: Any = None, dayfirst: bool = False, timezone: str = "UTC", after_close: str = "auto",
               lifecycle: str = "complete", log: Any = None, reps: Any = None,
               **opportunity_options: Any) -> LoadResult:
    """Validate a table read by :func:`read_table` as any kind of input.

    Unlike the ``read_*`` functions it does not raise when no row is usable, so
    the caller can still show the quarantine table (see
    :func:`workbench.validation.fail_if_nothing_kept`).

    Parameters
    ----------
    raw : RawTable
    kind : {'auto', 'events', 'stage_history', 'opportunities', 'reps', 'quotas'}
        'auto' guesses from the column names (:func:`detect_kind`), or takes
        'opportunities' when milestones are given.
    log, reps
        For quotas: the event log and reps table the quotas must name.
        For event logs, ``reps`` is joined as in :func:`read_event_log`.
    Other parameters as in :func:`read_event_log`.
    """
    mapping = parse_mapping(mapping)
    if kind == "auto":
        kind = "opportunities" if (opportunity_options.get("milestones") or mapping.get("milestones")) \
            else detect_kind(raw.frame.columns)
    if kind == "reps":
        return _reps_from_raw(raw, mapping=mapping)
    if kind == "quotas":
        return _quotas_from_raw(raw, mapping=mapping, log=log, reps=reps)
    if kind not in KINDS:
        raise WorkbenchError(f"kind={kind!r} is not a kind of input.", file=raw.source,
                             hint=f"use one of {['auto', *TABLE_KINDS]}.")
    return _event_log_from_raw(raw, kind=kind, mapping=mapping, profile=profile, dayfirst=dayfirst,
                               timezone=timezone, after_close=after_close, lifecycle=lifecycle, reps=reps,
                               **opportunity_options)


# ---------------------------------------------------------------- everything at once

def load_sales_data(log: str | Path | pd.DataFrame, *, reps: Any = None, quotas: Any = None, profile: Any = None,
                    mapping: Mapping[str, Any] | str | None = None, kind: str = "auto",
                    after_close: str = "auto", **kw: Any) -> SalesData:
    """Load and cross-check the event log, the reps table and the quota table.

    Parameters
    ----------
    log : path or DataFrame
        The event log (any kind :func:`read_event_log` reads).
    reps, quotas : path, DataFrame or LoadResult, optional
    profile, mapping, kind, after_close
        As in :func:`read_event_log` (the mapping applies to the log).
    **kw
        Passed to :func:`read_event_log` (dayfirst, timezone, encoding, sheet,
        lifecycle, opportunity options); ``encoding`` also applies to the reps
        and quota files.

    Returns
    -------
    SalesData

    Examples
    --------
    >>> data = load_sales_data("data/demo/events.parquet", reps="data/demo/reps.csv")  # doctest: +SKIP
    >>> print(data.profile_note)  # doctest: +SKIP
    Process profile: PPVVC B2B (it matches this log's activities).
    """
    encoding = kw.get("encoding", "utf-8")
    results: dict[str, LoadResult] = {}
    if reps is not None:
        results["reps"] = reps if isinstance(reps, LoadResult) else read_reps(reps, encoding=encoding)
    results["log"] = read_event_log(log, kind=kind, mapping=mapping, profile=profile, after_close=after_close,
                                    reps=results.get("reps"), **kw)
    if quotas is not None:
        results["quotas"] = quotas if isinstance(quotas, LoadResult) else read_quotas(
            quotas, log=results["log"], reps=results.get("reps"), encoding=encoding)
    quarantine = pd.concat([results[name].quarantine.assign(table=name) for name in ("log", "reps", "quotas")
                            if name in results], ignore_index=True)
    quarantine = quarantine[["table"] + [c for c in quarantine.columns if c != "table"]]
    order = [name for name in ("log", "reps", "quotas") if name in results]
    report = CombinedReport({name: results[name].report for name in order})
    return SalesData(log=results["log"].log, reps=results["reps"].log if "reps" in results else None,
                     quotas=results["quotas"].log if "quotas" in results else None,
                     profile=results["log"].profile, quarantine=quarantine, report=report,
                     profile_note=results["log"].profile_note)
