"""Findings about the data itself: what a consultant asks first of a client's export.

A finding costs no row (rows that cannot be used are set aside by the readers,
with a reason, see :mod:`workbench.validation`); it is something in the kept
data worth fixing at the source before its numbers are believed: empty cells,
one category spelled two ways, ids that only differ by formatting, a column
named twice, rows set aside that all share one value of another column.

This module holds the record every finding is written as (:class:`Finding`), the
words each kind is shown with, and the checks that need the table as it was read
(the readers run them, so they cost no second read of a large file). The checks
that need the loaded log, the reps table or master tables are in
:mod:`workbench.audit`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .validation import REASONS, as_id, missing_mask

#: kind -> (what it is, in words; what to do about it).
KINDS: dict[str, tuple[str, str]] = {
    "set_aside": ("rows set aside", "fix these rows at the source; the quarantine table lists each with its "
                                    "row number."),
    "quarantine_pattern": ("rows set aside share one value",
                           "look at how the source system fills that column for these rows: the problem is "
                           "probably one of process, not of typing."),
    "missing_values": ("empty cells", "fill them at the source, or accept that analyses by this column leave "
                                      "these rows out."),
    "near_duplicates": ("one value spelled several ways",
                        "make the spelling consistent at the source; until then these count as different "
                        "values."),
    "not_in_lookup": ("values missing from the master table",
                      "correct the spelling in the export or add the value to the master table."),
    "id_collision": ("ids written differently that are one id",
                     "they are read as one deal; check that the export did not turn ids into numbers."),
    "duplicate_column": ("a column name used twice", "rename the columns in the export, or map the one you "
                                                     "mean (--mapping)."),
    "outcome_like": ("a column that records the outcome, not the deal",
                     "do not use it as the deal's size or as an explanation: it is known only once the deal "
                     "is closed."),
    "outcome_leak": ("a column that follows the outcome",
                     "leave it out of root causes and forecasts (it is written when the deal closes)."),
    "partial_period": ("a quarter the data covers only in part",
                       "compare its totals with care: it holds fewer days than a full quarter."),
    "extreme_amount": ("amounts far outside the others",
                       "check them at the source (a typing error in one deal moves every total)."),
    "rep_without_deals": ("reps in the reps table with no deal", "check that their deals were exported, or that "
                                                                 "they have left."),
    "team_without_deals": ("teams with no deal", "check that their deals were exported."),
    "rep_not_in_reps": ("reps of the log missing from the reps table",
                        "add them to the reps table: their team, region and manager are unknown."),
}

#: Examples kept per finding.
MAX_EXAMPLES = 3
#: A text column is taken as a category column when it has at most this many distinct values...
MAX_CATEGORIES = 1000
#: ... and they are at most this share of its filled cells.
CATEGORY_SHARE = 0.5


@dataclass
class Finding:
    """One thing found in the data, as a record tools and tests read.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    table : str
        'log', 'reps', 'quotas' or a master table's name.
    column : str or None
        The input column it is about.
    count : int
        Rows (or deals, values, reps: ``message`` says which) it concerns.
    message : str
        One plain sentence with the numbers.
    examples : list of dict
        Up to three examples: ``row`` (1-based data row of the input, when
        known) and ``value``.
    """

    kind: str
    table: str
    column: str | None
    count: int
    message: str
    examples: list[dict] = field(default_factory=list)

    @property
    def examples_text(self) -> str:
        """The examples in one line: "row 12: 'GTXPro'; row 15"."""
        def one(e: dict) -> str:
            row = f"row {e['row']}" if e.get("row") is not None else ""
            value = repr(e["value"]) if e.get("value") else ""
            return f"{row}: {value}" if row and value else row or value
        return "; ".join(one(e) for e in self.examples)

    @property
    def more_examples(self) -> str:
        """:attr:`examples_text` when the message does not already give the examples, else ''."""
        text = self.examples_text
        return "" if text in self.message else text

    @property
    def todo(self) -> str:
        """What to do about it."""
        return KINDS[self.kind][1]

    def lines(self, indent: str = "  ") -> list[str]:
        """The finding as text: its message, examples and what to do."""
        out = [f"{indent}- {self.message}"]
        if self.more_examples:
            out.append(f"{indent}    e.g. {self.more_examples}")
        return [*out, f"{indent}    What to do: {self.todo}"]

    def to_dict(self) -> dict:
        """The finding as plain data, with ``what_to_do``."""
        return {**asdict(self), "what_to_do": self.todo}


class Findings(list):
    """The findings of an audit: a list of :class:`Finding`, printable and tabular."""

    def to_records(self) -> list[dict]:
        """Every finding as plain data (JSON-serialisable)."""
        return [f.to_dict() for f in self]

    def to_frame(self) -> pd.DataFrame:
        """One row per finding, for people: finding, details (the message, with the table, column and
        count, then the examples it does not already give) and what to do."""
        return pd.DataFrame({
            "finding": [KINDS[f.kind][0] for f in self],
            "details": [f.message + (f" E.g. {f.more_examples}." if f.more_examples else "") for f in self],
            "what_to_do": [f.todo for f in self],
        })

    def of_kind(self, kind: str) -> Findings:
        """The findings of one kind."""
        return Findings(f for f in self if f.kind == kind)

    def __str__(self) -> str:
        return "\n".join(["Findings:", *self.lines()]) if self else "Findings: none."

    def lines(self, indent: str = "  ") -> list[str]:
        """Each finding as text (:meth:`Finding.lines`)."""
        return [line for f in self for line in f.lines(indent)]


def examples(rows: np.ndarray | None, values: pd.Series | np.ndarray | list | None = None) -> list[dict]:
    """Up to :data:`MAX_EXAMPLES` ``{"row", "value"}`` records (``rows`` None: values without a row;
    ``values`` None: rows without a value)."""
    rows = [None] * MAX_EXAMPLES if rows is None else [int(r) for r in list(rows)[:MAX_EXAMPLES]]
    values = [""] * len(rows) if values is None else list(values)[:MAX_EXAMPLES]
    return [{"row": r, "value": "" if v is None or v is pd.NA else str(v)} for r, v in zip(rows, values)]


def normalised(values: pd.Series) -> pd.Series:
    """Category values with case, spaces and punctuation removed: 'GTX Pro', 'gtx-pro' -> 'gtxpro'."""
    return values.astype("str").str.casefold().str.replace(r"[\W_]+", "", regex=True)


def is_category(values: pd.Series) -> bool:
    """A text column of repeated values (not ids, amounts or free text)."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return False
    filled = values.dropna()
    n = filled.nunique()
    return 1 < n <= MAX_CATEGORIES and n <= CATEGORY_SHARE * len(filled)


# ---------------------------------------------------------------- the table as read

def _missing_values(frame: pd.DataFrame, source_row: np.ndarray, table: str) -> list[Finding]:
    out = []
    for column in frame.columns:
        empty = missing_mask(frame[column])
        n = int(empty.sum())
        if not n:
            continue
        where = "every row" if n == len(frame) else f"{n:,} of {len(frame):,} rows ({n / len(frame):.0%})"
        out.append(Finding("missing_values", table, str(column), n, f"column {column!r} is empty in {where}.",
                           examples(source_row[empty])))
    return out


def _near_duplicates(frame: pd.DataFrame, source_row: np.ndarray, table: str, skip: set[str]) -> list[Finding]:
    out = []
    for column in frame.columns:
        if column in skip or not is_category(frame[column]):
            continue
        # counted as written, then the few distinct values stripped (not every row)
        written = frame[column].value_counts(dropna=True)
        stripped = pd.Series(written.index.astype(object), dtype="str").str.strip()
        counts = written.groupby(stripped.to_numpy()).sum()
        counts = counts[counts.index != ""].sort_values(ascending=False, kind="stable")
        keys = normalised(pd.Series(counts.index, dtype="str"))
        shared = keys.duplicated(keep=False).to_numpy()  # only these can be spelled two ways: group those
        groups = pd.Series(counts.index[shared], dtype="str").groupby(keys.to_numpy()[shared]).agg(list)
        if groups.empty:
            continue
        # every row stripped once, only for a column that spells a value several ways
        text = frame[column].astype(object).where(frame[column].notna(), None).astype("str").str.strip()
        for spellings in groups:
            spellings = sorted(spellings, key=lambda s: -counts[s])
            rows = [int(source_row[np.flatnonzero((text == s).to_numpy())[0]]) for s in spellings]
            n = int(counts[spellings].sum())
            listed = ", ".join(f"{s!r} ({counts[s]:,})" for s in spellings)
            out.append(Finding("near_duplicates", table, str(column), n,
                               f"column {column!r} spells one value {len(spellings)} ways: {listed}.",
                               examples(np.array(rows), spellings)))
    return out


def _id_collisions(frame: pd.DataFrame, source_row: np.ndarray, table: str, ids: str | None) -> list[Finding]:
    if ids is None or ids not in frame.columns:
        return []
    values = frame[ids]
    written = values.astype(object).where(values.notna(), None).dropna().astype("str")
    uniques = pd.Series(written.unique(), dtype="str")
    if uniques.empty:
        return []
    keys = as_id(uniques).fillna("")
    shared = keys.duplicated(keep=False).to_numpy()  # only these can be written two ways: group those
    groups = uniques[shared].groupby(keys.to_numpy()[shared]).agg(list)  # each of two spellings or more
    groups = groups[groups.index != ""]
    if groups.empty:
        return []
    first = {s: int(source_row[written.index[written == s][0]]) for g in groups[:MAX_EXAMPLES] for s in g}
    shown = [s for g in groups[:MAX_EXAMPLES] for s in g][:MAX_EXAMPLES]
    pairs = "; ".join(" / ".join(repr(s) for s in g) for g in groups[:MAX_EXAMPLES])
    return [Finding("id_collision", table, str(ids), len(groups),
                    f"{len(groups):,} ids of column {ids!r} are written in more than one way and read as one "
                    f"({pairs}).", examples(np.array([first[s] for s in shown]), shown))]


def _duplicate_columns(header: list[str], frame: pd.DataFrame, table: str) -> list[Finding]:
    out = []
    for name in dict.fromkeys(n for n in header if n and header.count(n) > 1):
        where = [i for i, n in enumerate(header) if n == name]
        copies = [str(frame.columns[i]) for i in where]
        out.append(Finding("duplicate_column", table, name, len(where),
                           f"the header names column {name!r} {len(where)} times (columns "
                           f"{', '.join(str(i + 1) for i in where)}); they are read as "
                           f"{', '.join(repr(c) for c in copies)}.",
                           examples(None, copies)))
    return out


def _quarantine_patterns(frame: pd.DataFrame, source_row: np.ndarray, table: str, reasons: np.ndarray,
                         blamed: np.ndarray) -> list[Finding]:
    """Rows set aside for one reason that all share one value of another column."""
    out = []
    for reason in pd.unique(reasons[pd.notna(reasons)]):
        mask = reasons == reason
        n = int(mask.sum())
        if n < 2:
            continue
        skip = set(pd.unique(blamed[mask & pd.notna(blamed)]))
        for column in frame.columns:
            if column in skip:
                continue
            values = frame[column][mask]
            if values.isna().any() or values.astype("str").nunique() != 1:
                continue
            value = str(values.iloc[0]).strip()
            whole = frame[column].astype(object).where(frame[column].notna(), None).astype("str")
            if not value or whole.nunique(dropna=False) < 2:
                continue
            share = f"{int((whole == str(values.iloc[0])).sum()):,} rows of the table have it"
            out.append(Finding(
                "quarantine_pattern", table, str(column), n,
                f"{'both' if n == 2 else f'all {n:,}'} rows set aside for {reason} "
                f"({REASONS.get(reason, reason)}) have {column} = {value!r} ({share}).",
                examples(source_row[mask], values.astype("str").to_numpy())))
    return out


def table_findings(frame: pd.DataFrame, source_row: np.ndarray, *, table: str, header: list[str],
                   reasons: np.ndarray, blamed: np.ndarray, ids: str | None = None,
                   skip: set[str] | None = None) -> list[Finding]:
    """The findings a table shows as read, before its rows become a log.

    Parameters
    ----------
    frame : DataFrame
        The cells as read.
    source_row : ndarray
        1-based data row of each row of ``frame``.
    table : str
        'log', 'reps' or 'quotas'.
    header : list of str
        The column names as the file wrote them (before repeated ones were renamed).
    reasons, blamed : ndarray
        Each row's quarantine reason and column (None where kept).
    ids : str, optional
        The id column (case or rep), checked for ids written two ways.
    skip : set of str
        Columns not checked for near-duplicate spellings (dates, amounts, ids).

    Examples
    --------
    >>> frame = pd.DataFrame({"deal": ["1", "1.0", "2", "3"], "product": ["GTX Pro", "GTXPro", "GTX Pro", None]})
    >>> found = table_findings(frame, np.arange(1, 5), table="log", header=["deal", "product"],
    ...                        reasons=np.full(4, None), blamed=np.full(4, None), ids="deal", skip={"deal"})
    >>> [(f.kind, f.column, f.count) for f in found]
    [('missing_values', 'product', 1), ('id_collision', 'deal', 1)]
    """
    skip = set(skip or ()) | ({ids} if ids else set())
    return [*_duplicate_columns(header, frame, table), *_missing_values(frame, source_row, table),
            *_near_duplicates(frame, source_row, table, skip), *_id_collisions(frame, source_row, table, ids),
            *_quarantine_patterns(frame, source_row, table, reasons, blamed)]
