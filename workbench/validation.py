"""Row checks, the quarantine table and the validation report.

Every reader of :mod:`workbench.io` runs the same machinery: parse the values
of a raw table, flag each unusable row with the first reason that applies
(:class:`RowFlags`), set the flagged rows aside with their original values
(:func:`quarantine_table`) and count what happened (:class:`ValidationReport`).
The accounting invariant ``rows_in == rows_kept + rows_quarantined`` holds by
construction: a row is either kept or quarantined, never both, never neither.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import WorkbenchError

#: Every quarantine reason and what it means, in the words of the report.
REASONS: dict[str, str] = {
    "wrong_field_count": "the line has more fields than the header (a stray separator or quote?)",
    "missing_case_id": "no case / opportunity id",
    "missing_activity": "no activity / stage",
    "missing_timestamp": "no date",
    "unparseable_timestamp": "a date that could not be read (or is before 1900 / after 2200)",
    "timestamp_outlier": "a date far outside the span of the other dates (a typo such as 2062 for 2026?)",
    "non_numeric_amount": "an amount that is not a number",
    "negative_amount": "a negative amount",
    "duplicate_event": "exact copy of an earlier row (the first is kept)",
    "event_after_close": "an event after the case was already closed (won, lost or finished)",
    "lifecycle_not_complete": "a schedule / start event of a work item: only complete events are analysed "
                              "(lifecycle='all', --lifecycle all, keeps every event)",
    "no_usable_date": "an opportunity without any milestone or close date",
    "unknown_final_stage": "a final stage that is neither won, lost nor open",
    "missing_close_date": "a won or lost opportunity without a close date",
    "close_before_creation": "an opportunity closed before its first milestone",
    "duplicate_case_id": "a second row for an opportunity id already seen (the first is kept)",
    "missing_rep": "no rep name",
    "duplicate_rep": "a rep listed twice (the first row is kept)",
    "missing_rep_or_team": "a quota with neither a rep nor a team",
    "malformed_quarter": "a quarter that is not like 2026Q3",
    "missing_quota": "no quota value",
    "non_numeric_quota": "a quota that is not a number",
    "negative_quota": "a negative quota",
    "duplicate_quota": "a second quota for the same rep (or team) and quarter (the first is kept)",
    "unknown_rep": "a rep that is in neither the event log nor the reps table",
    "unknown_team": "a team that is in neither the event log nor the reps table",
}

#: Quarantine columns added to the offending input rows.
QUARANTINE_COLUMNS = ("source_row", "column", "reason")

_MIN_YEAR, _MAX_YEAR = 1900, 2200
_AWARE = r"(?:[zZ]|[+-]\d{2}:?\d{2}|\s?UTC|\s?GMT)$"
_ISO_FORMATS = ("ISO8601",)
_DOT_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M", "%d.%m.%y")
_DASH_FORMATS = ("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y")
_YMD_SLASH_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")
_MDY_FORMATS = (
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p", "%m/%d/%y %H:%M", "%m/%d/%y",
)
_DMY_FORMATS = tuple(f.replace("%m/%d", "%d/%m") for f in _MDY_FORMATS)


class RowFlags:
    """The first quarantine reason of each input row (first flag wins).

    Parameters
    ----------
    n : int
        Number of input rows.
    """

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.column = np.full(n, None, dtype=object)

    def __len__(self) -> int:
        return len(self.reason)

    @property
    def bad(self) -> np.ndarray:
        """Boolean mask of the rows flagged so far."""
        return pd.notna(self.reason)

    def flag(self, mask: np.ndarray | pd.Series, reason: str, column: str | np.ndarray | None = None) -> None:
        """Flag the rows of ``mask`` not flagged yet with ``reason`` (and the offending ``column``)."""
        if reason not in REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")
        m = np.asarray(mask, dtype=bool) & ~self.bad
        self.reason[m] = reason
        self.column[m] = column[m] if isinstance(column, np.ndarray) else column

    def counts(self) -> pd.Series:
        """Quarantined rows per reason, most frequent first."""
        r = pd.Series(self.reason[self.bad], dtype=object)
        counts = r.value_counts(sort=False)
        # most frequent first, ties in the order of REASONS so the report is stable
        order = sorted(counts.index, key=lambda k: (-counts[k], list(REASONS).index(k)))
        return counts.reindex(order).astype("int64").rename("rows").rename_axis("reason")


# ---------------------------------------------------------------- parsing values

def missing_mask(values: pd.Series) -> np.ndarray:
    """True where a cell is empty: NaN/None or only whitespace."""
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        return as_text(values).isna().to_numpy()
    return values.isna().to_numpy()


def as_text(values: pd.Series) -> pd.Series:
    """Cells as stripped strings (pandas ``str`` dtype), empty cells as NaN.

    Integral floats print without '.0', so an id 1001 read as a float stays '1001'.
    """
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.isfinite(finite).all() and (finite % 1 == 0).all():
            values = values.astype("Int64")
    if isinstance(values.dtype, pd.StringDtype):
        out = values
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        out = values.astype("str")
    else:
        out = values.astype(object).where(values.notna(), None).astype("str")
    out = out.str.strip()
    return out.where(out != "", np.nan)


def as_id(values: pd.Series) -> pd.Series:
    """Ids as :func:`as_text` gives them, with a whole number written as a decimal read as that number:
    ``1.0`` and ``1`` are one deal (a spreadsheet turned some ids into numbers), ``A1.0`` stays.

    Examples
    --------
    >>> as_id(pd.Series(["1", "1.0", " 2.00 ", "A1.0", "3.5", None])).tolist()
    ['1', '1', '2', 'A1.0', '3.5', nan]
    """
    return as_text(values).str.replace(r"^(\d+)\.0+$", r"\1", regex=True)


def check_timezone(timezone: str) -> str:
    """Return ``timezone`` if pandas knows it, else raise WorkbenchError."""
    try:
        pd.Timestamp("2020-01-01").tz_localize(timezone)
    except Exception:
        raise WorkbenchError(
            f"unknown timezone {timezone!r}.",
            hint="give an IANA name such as 'UTC', 'Europe/Moscow' or 'America/New_York'.",
        ) from None
    return timezone


def _localise(naive: pd.Series, timezone: str) -> pd.Series:
    # Wall-clock times repeated by a DST change are read as standard time, times
    # skipped by it are moved forward: a CRM export cannot tell us better.
    ambiguous = np.zeros(len(naive), dtype=bool)
    return naive.dt.tz_localize(timezone, ambiguous=ambiguous, nonexistent="shift_forward").dt.tz_convert("UTC")


def _try_format(text: pd.Series, fmt: str, **kw) -> pd.Series:
    try:
        out = pd.to_datetime(text, format=fmt, errors="coerce", **kw)
    except (ValueError, TypeError, OverflowError):
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    if getattr(out.dtype, "tz", None) is not None and not kw.get("utc"):
        # a 'mixed' parse met a time zone name: not a naive value after all
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    return out.astype("datetime64[us, UTC]" if kw.get("utc") else "datetime64[us]")


def _parse_naive(text: pd.Series, dayfirst: bool) -> pd.Series:
    """Naive datetimes from strings, trying the common CRM formats in turn."""
    formats = _ISO_FORMATS + _DOT_FORMATS + _DASH_FORMATS + _YMD_SLASH_FORMATS
    formats += _DMY_FORMATS if dayfirst else _MDY_FORMATS
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    todo = np.ones(len(text), dtype=bool)
    for fmt in formats:
        parsed = _try_format(text[todo], fmt)
        out[todo] = parsed
        todo = out.isna().to_numpy()
        if not todo.any():
            return out
    # Month names ('5 March 2026', 'Mar 5, 2026 2:00 PM'): slow per-value parsing,
    # only for the few values that look like such dates.
    wordy = todo & text.str.contains(r"[A-Za-z]{3}", regex=True, na=False).to_numpy() \
        & text.str.contains(r"\d{4}", regex=True, na=False).to_numpy()
    if wordy.any():
        out[wordy] = _try_format(text[wordy], "mixed", dayfirst=dayfirst)
    return out


def _from_python(cells: pd.Series, timezone: str) -> pd.Series:
    """UTC timestamps from Python datetime cells (Excel via openpyxl, object columns)."""
    def convert(v: object) -> pd.Timestamp:
        try:
            t = pd.Timestamp(v)
            if t.tzinfo is None:
                t = t.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward")
            return t.tz_convert("UTC")
        except (ValueError, TypeError, OverflowError):
            return pd.NaT
    return pd.Series([convert(v) for v in cells], index=cells.index, dtype="datetime64[us, UTC]")


def _parse_split(text: pd.Series, dayfirst: bool, timezone: str) -> pd.Series:
    """Parse strings with an offset ('...+03:00', '...Z') and naive ones separately."""
    aware = text.str.contains(_AWARE, regex=True, na=False).to_numpy()
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if aware.any():
        cleaned = text[aware].str.replace(r"\s?(UTC|GMT)$", "Z", regex=True)
        parsed = _try_format(cleaned, "ISO8601", utc=True)
        still = parsed.isna().to_numpy()
        if still.any():
            parsed[still] = _try_format(cleaned[still], "mixed", utc=True, dayfirst=dayfirst)
        result[aware] = parsed
    if (~aware).any():
        result[~aware] = _localise(_parse_naive(text[~aware], dayfirst), timezone)
    return result


#: Unix times as CRM APIs write them: seconds (10 digits), milliseconds (13) or microseconds (16).
_EPOCH_UNITS = {10: "s", 13: "ms", 16: "us"}


def _parse_epoch(text: pd.Series) -> pd.Series | None:
    """UTC times from a column of Unix times (all one unit), else None."""
    lengths = text.str.len()
    if not text.str.fullmatch(r"\d+", na=False).all() or lengths.nunique() != 1:
        return None
    unit = _EPOCH_UNITS.get(int(lengths.iloc[0]))
    if unit is None:
        return None
    return pd.to_datetime(text.astype("int64"), unit=unit, utc=True).astype("datetime64[us, UTC]")


def _parse_text(text: pd.Series, dayfirst: bool, timezone: str) -> pd.Series:
    """Parse date strings; one vectorised ISO pass handles the usual all-ISO column."""
    epoch = _parse_epoch(text)
    if epoch is not None:
        return epoch
    try:
        iso = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError):  # naive and aware values mixed
        return _parse_split(text, dayfirst, timezone)
    iso = iso.dt.as_unit("us")
    out = _localise(iso, timezone) if iso.dt.tz is None else iso.dt.tz_convert("UTC")
    out = out.astype("datetime64[us, UTC]")
    rest = out.isna().to_numpy()
    if rest.any():
        out[rest] = _parse_split(text[rest], dayfirst, timezone)
    return out


def parse_timestamps(
    values: pd.Series, *, dayfirst: bool = False, timezone: str = "UTC"
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse a column of dates to UTC.

    Parameters
    ----------
    values : Series
        Strings in the common formats (ISO, '2026-03-05 14:00', '05.03.2026',
        '03/05/2026', ...), datetimes, a mix (Excel), or Unix times in
        seconds, milliseconds or microseconds (a column of 10, 13 or 16 digits).
    dayfirst : bool
        Read '05/03/2026' as 5 March. Dotted dates ('05.03.2026') are always day first.
    timezone : str
        Time zone of naive values; values with an offset keep theirs.

    Returns
    -------
    timestamps : Series of datetime64[us, UTC]
    missing : ndarray of bool
        Empty cells.
    bad : ndarray of bool
        Non-empty cells that are not a plausible date.
    """
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        ts = values.dt.as_unit("us")
        out[:] = _localise(ts, timezone) if ts.dt.tz is None else ts.dt.tz_convert("UTC")
        missing = values.isna().to_numpy()
    else:
        missing = missing_mask(values)
        todo = ~missing
        if values.dtype == object:
            is_dt = values.map(lambda v: isinstance(v, (_dt.datetime, _dt.date))).to_numpy(bool) & todo
            if is_dt.any():
                out[is_dt] = _from_python(values[is_dt], timezone)
                todo &= ~is_dt
        if todo.any():
            out[todo] = _parse_text(as_text(values[todo]).astype("str"), dayfirst, timezone)
    years = out.dt.year
    implausible = ((years < _MIN_YEAR) | (years > _MAX_YEAR)).fillna(False).to_numpy(bool)
    out[implausible] = pd.NaT
    bad = ~missing & out.isna().to_numpy()
    return out, missing, bad


_CURRENCY = r"[$€£¥₽]|руб\.?|р\.|\b[A-Z]{3}\b"
_PLAIN = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?"
_THOUSANDS_COMMA = r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$"
_THOUSANDS_DOT = r"^[-+]?\d{1,3}(?:\.\d{3}){2,}(?:,\d+)?$"


def parse_amounts(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse money amounts written the ways CRMs and spreadsheets write them.

    '1234.5', '1 234,50', '1,234.50', '1.234.567,8', '$1,234', '1234 руб.', '(120)'
    (accounting negative) all parse; anything else is not numeric.

    Returns
    -------
    amounts : Series of float64 (NaN where missing or bad)
    missing : ndarray of bool
    bad : ndarray of bool
        Non-empty cells that are not a finite number.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype(object)
    if pd.api.types.is_numeric_dtype(values.dtype):
        num = values.astype("float64")
        missing = num.isna().to_numpy()
        bad = ~missing & ~np.isfinite(num.to_numpy())
        return num.where(~bad, np.nan), missing, bad
    missing = missing_mask(values)
    num = pd.Series(np.nan, index=values.index, dtype="float64")
    text = as_text(values)
    fast = pd.to_numeric(text.where(text.str.fullmatch(_PLAIN, na=False)), errors="coerce").astype("float64")
    num[:] = fast.where(np.isfinite(fast), np.nan)
    slow = ~missing & num.isna().to_numpy()
    if slow.any():
        s = text[slow]
        s = s.str.replace(_CURRENCY, "", regex=True).str.replace(r"[\s\u00a0\u202f']", "", regex=True)
        paren = s.str.match(r"^\(.*\)$", na=False)
        s = s.str.replace(r"^\((.*)\)$", r"\1", regex=True)
        comma, dot = s.str.rfind(","), s.str.rfind(".")
        both = (comma >= 0) & (dot >= 0)
        comma_decimal = (both & (comma > dot)) | (~both & (comma >= 0) & ~s.str.match(_THOUSANDS_COMMA, na=False))
        dot_thousands = s.str.match(_THOUSANDS_DOT, na=False) | (both & (comma > dot))
        s = s.where(~dot_thousands, s.str.replace(".", "", regex=False))
        s = s.where(~comma_decimal, s.str.replace(",", ".", regex=False))
        s = s.where(comma_decimal, s.str.replace(",", "", regex=False))
        # only plain decimal numbers: to_numeric would also take 'inf', '1e400', '0x1f'
        plain = s.str.fullmatch(_PLAIN, na=False)
        parsed = pd.to_numeric(s.where(plain), errors="coerce").astype("float64")
        parsed = parsed.where(~paren, -parsed)
        num[slow] = parsed.where(np.isfinite(parsed), np.nan)
    bad = ~missing & num.isna().to_numpy()
    return num, missing, bad


# ---------------------------------------------------------------- quarantine

def _column_text(values: pd.Series) -> pd.Series:
    """A column's cells as the strings the user wrote (empty cells as '')."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.astype("str")
    else:
        text = values.astype(object).astype("str")
    return text.where(values.notna().to_numpy(), "").astype("str")


def quarantine_table(raw: pd.DataFrame, flags: RowFlags, source_row: np.ndarray) -> pd.DataFrame:
    """The flagged input rows with their original values as strings.

    Columns: ``source_row`` (1-based data row of the input), ``column`` (the
    offending column, when one is to blame), ``reason``, then the input's
    columns (renamed '<name> (input)' if they clash with those three).
    """
    bad = flags.bad
    idx = np.flatnonzero(bad)
    rows = raw.iloc[idx]
    originals = pd.DataFrame(
        {i: _column_text(rows.iloc[:, i]).to_numpy() for i in range(rows.shape[1])}, index=range(len(idx)),
    )
    originals.columns = list(rows.columns)
    originals.columns = [f"{c} (input)" if c in QUARANTINE_COLUMNS else str(c) for c in originals.columns]
    head = pd.DataFrame({
        "source_row": np.asarray(source_row)[idx].astype("int64"),
        "column": pd.Series(flags.column[idx], dtype=object).fillna("").astype("str"),
        "reason": pd.Series(flags.reason[idx], dtype=object).astype("str"),
    })
    return pd.concat([head, originals], axis=1)


# ---------------------------------------------------------------- the report

def _fmt_int(n: int) -> str:
    return f"{n:,}"


@dataclass
class ValidationReport:
    """What a reader did with one input: rows in, kept, set aside and why.

    Attributes
    ----------
    source : str
        The file (or '<DataFrame>').
    kind : str
        'events', 'stage_history', 'opportunities', 'reps' or 'quotas'.
    rows_in, rows_kept, rows_quarantined : int
        Input rows; always ``rows_in == rows_kept + rows_quarantined``, even when
        one input row makes several events.
    counts : Series
        Quarantined rows per reason, most frequent first.
    warnings : list of str
        Things worth knowing that did not cost a row.
    summary : dict
        What came out (events, cases, first and last date...).
    profile_note : str
        For event logs: which process profile reads the log, and how well it fits.
    findings : list of Finding
        What the table shows as read (:func:`workbench.findings.table_findings`).
    """

    source: str
    kind: str
    rows_in: int
    rows_kept: int
    rows_quarantined: int
    counts: pd.Series
    warnings: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    profile_note: str = ""
    findings: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_kept + self.rows_quarantined:
            raise AssertionError(
                f"row accounting broken: {self.rows_in} in != {self.rows_kept} kept + "
                f"{self.rows_quarantined} quarantined"
            )

    @classmethod
    def from_flags(cls, source: str, kind: str, flags: RowFlags, *, warnings: list[str] | None = None,
                   summary: dict | None = None, profile_note: str = "", findings: list | None = None,
                   ) -> ValidationReport:
        """Count the flags of a reader's rows into a report."""
        q = int(flags.bad.sum())
        return cls(source=source, kind=kind, rows_in=len(flags), rows_kept=len(flags) - q,
                   rows_quarantined=q, counts=flags.counts(), warnings=list(warnings or []),
                   summary=dict(summary or {}), profile_note=profile_note,
                   findings=list(findings or []))

    @property
    def ok(self) -> bool:
        """True when no row was set aside."""
        return self.rows_quarantined == 0

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self, *, warnings: bool = True, findings: bool = True) -> str:
        """The report as a page of text; ``warnings=False`` / ``findings=False`` leave those out.

        The input is named by its file name only: a page or a shared terminal log
        should not carry the folders of a client's files."""
        label = {"events": "event log", "stage_history": "stage history", "opportunities": "opportunity table",
                 "reps": "reps table", "quotas": "quota table"}.get(self.kind, self.kind)
        pct = (lambda n: f"{100 * n / self.rows_in:.1f}%") if self.rows_in else (lambda n: "-")
        lines = [
            f"Validation of {Path(self.source).name} ({label})",
            f"  rows read        {_fmt_int(self.rows_in):>10}",
            f"  rows kept        {_fmt_int(self.rows_kept):>10}  ({pct(self.rows_kept)})",
            f"  rows set aside   {_fmt_int(self.rows_quarantined):>10}  ({pct(self.rows_quarantined)})",
        ]
        if self.rows_quarantined:
            lines.append("  set aside because:")
            width = max(len(r) for r in self.counts.index)
            for reason, n in self.counts.items():
                lines.append(f"    {reason:<{width}} {_fmt_int(int(n)):>8}  {REASONS.get(reason, '')}")
            lines.append("  (the quarantine table lists each of these rows with its row number and values)")
        if self.summary:
            lines.append("  loaded: " + ", ".join(f"{k} {v}" for k, v in self.summary.items()))
        if self.profile_note:
            lines.append(f"  {self.profile_note}")
        if warnings and self.warnings:
            lines.append("  To check:")
            lines.extend(f"    - {w}" for w in self.warnings)
        if findings and self.findings:
            lines.append("  Findings:")
            lines.extend(line for finding in self.findings for line in finding.lines("    "))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The report as plain data (JSON-serialisable)."""
        return {
            "source": self.source, "kind": self.kind, "rows_in": self.rows_in,
            "rows_kept": self.rows_kept, "rows_quarantined": self.rows_quarantined,
            "counts": {str(k): int(v) for k, v in self.counts.items()},
            "warnings": list(self.warnings),
            "summary": {k: (str(v) if isinstance(v, pd.Timestamp) else v) for k, v in self.summary.items()},
            "profile_note": self.profile_note,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per quarantine reason: reason, rows, share of input rows, meaning."""
        return pd.DataFrame({
            "reason": [str(r) for r in self.counts.index],
            "rows": self.counts.to_numpy(dtype="int64"),
            "share": self.counts.to_numpy(dtype="float64") / self.rows_in if self.rows_in else np.nan,
            "meaning": [REASONS.get(r, "") for r in self.counts.index],
        })


@dataclass
class CombinedReport:
    """The validation reports of several tables (log, reps, quotas) as one page.

    ``warnings`` holds every table's warnings, prefixed with the table name, and
    is the only place the page prints them from (so a caller that rewrites them,
    e.g. to anonymise rep names, rewrites what is shown).
    """

    reports: dict[str, ValidationReport]
    warnings: list[str] | None = None

    def __post_init__(self) -> None:
        if self.warnings is None:
            self.warnings = [f"{name}: {w}" for name, r in self.reports.items() for w in r.warnings]

    @property
    def rows_quarantined(self) -> int:
        """Rows set aside over all tables."""
        return sum(r.rows_quarantined for r in self.reports.values())

    def __str__(self) -> str:
        parts = [r.to_text(warnings=False, findings=False) for r in self.reports.values()]
        if self.warnings:
            parts.append("To check:\n" + "\n".join(f"  - {w}" for w in self.warnings))
        return "\n\n".join(parts)

    def to_dict(self) -> dict:
        """All reports as plain data, keyed by table; warnings once, at the top."""
        tables = {k: {**r.to_dict(), "warnings": []} for k, r in self.reports.items()}
        return {"tables": tables, "warnings": list(self.warnings)}

    def to_frame(self) -> pd.DataFrame:
        """Reasons per table: table, reason, rows, share, meaning."""
        frames = [r.to_frame().assign(table=k) for k, r in self.reports.items()]
        cols = ["table", "reason", "rows", "share", "meaning"]
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


# ---------------------------------------------------------------- fatal checks

_REASON_HINTS = {
    "missing_case_id": "map the column holding the deal / opportunity id to 'case_id'.",
    "missing_activity": "map the column holding the activity or stage to 'activity'.",
    "missing_timestamp": "map the column holding the event date to 'timestamp'.",
    "unparseable_timestamp": (
        "check the date column and its format; for day-first dates such as 25/03/2026 pass "
        "dayfirst=True (CLI: --dayfirst), or map another column to 'timestamp'."
    ),
    "wrong_field_count": "check the separator and quoting of the file.",
    "lifecycle_not_complete": "this log has no complete events: read every event with lifecycle='all' "
                              "(--lifecycle all).",
}


def fail_if_nothing_kept(report: ValidationReport, quarantine: pd.DataFrame) -> None:
    """Raise WorkbenchError when the input had no rows or every row was set aside."""
    if report.rows_in == 0:
        raise WorkbenchError("the file has no data rows.", file=report.source,
                             hint="export the table again with its rows.")
    if report.rows_kept == 0:
        top = str(report.counts.index[0])
        first = quarantine[quarantine["reason"] == top].iloc[0]
        column = str(first["column"]) if first["column"] else None
        raise WorkbenchError(
            f"all {report.rows_in:,} rows were set aside; the most common reason is {top} "
            f"({REASONS.get(top, top)}, {int(report.counts.iloc[0]):,} rows), first at this row.",
            file=report.source, column=column, row=int(first["source_row"]),
            hint=_REASON_HINTS.get(top, "look at the quarantine table and fix the file."),
        )


def plain_reason(text: str) -> str:
    """A pandas/openpyxl/pm4py error message reduced to one line for the user."""
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__
    return re.sub(r"\s+", " ", first)[:300]
