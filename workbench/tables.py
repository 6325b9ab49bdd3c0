"""Tables for people: one glossary of column headers, and how each kind of number is written on a page.

A page's tables are the package's DataFrames, whose columns are named for programs
(``share_conforming``, ``p90_days``) and whose numbers pandas writes as ``3.36e-02``.
:func:`for_people` gives the same table with a header in words from :data:`HEADERS`,
money with thousands separators (and the currency, when one is given), shares as
percentages, durations in days, dates without a time zone, p-values as ``< 0.001``,
and the index as a column. :func:`install` makes every table a notebook displays go
through it, split into parts that fit the page's width and cut to its first rows
(the whole table written beside the page as CSV).
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

#: Column -> the header a sales manager reads. Columns not listed get their name in words.
HEADERS: dict[str, str] = {
    "case_id": "Deal", "cases": "Deals", "n": "Deals", "n_open_deals": "Open deals", "rest_n": "Deals elsewhere",
    "share": "Share", "share_conforming": "Share following the process", "conforming": "Following the process",
    "deviating": "Not following", "n_conforming": "Deals following", "n_deviating": "Deals not following",
    "win_rate": "Win rate", "win_rate_conforming": "Win rate following", "win_rate_deviating": "Win rate not following",
    "closed_won_to_date": "Won so far", "expected_bookings": "Expected bookings", "gap_to_quota": "Gap to quota",
    "open_pipeline": "Open pipeline", "p10": "Low (P10)", "p50": "Median (P50)", "p90": "High (P90)",
    "p_hit_quota": "Chance of making quota", "p_win": "Chance of winning this quarter",
    "p_value": "p-value", "p_adjusted": "Adjusted p-value", "ci_low": "Range from", "ci_high": "Range to",
    "diff": "Difference", "rest_value": "Everyone else", "rest_median_days": "Everyone else, median days",
    "median_days": "Median days", "mean_days": "Average days", "p90_days": "Slowest tenth, days",
    "total_days": "Total days", "days_in_stage": "Days in stage", "days_stalled": "Days stalled",
    "days_since_last_activity": "Days since last activity", "excess_days": "Days over the norm",
    "mean_cycle_days": "Average cycle, days", "cycle_days_conforming": "Cycle following, days",
    "cycle_days_deviating": "Cycle not following, days", "cycle_diff_days": "Cycle difference, days",
    "coverage_80": "80% range covered the actual", "n_covered": "Covered", "n_interval": "Cases with a range",
    "mean_error": "Average error", "median_error": "Median error", "brier": "Brier score",
    "rep": "Rep", "team": "Team", "region": "Region", "manager": "Manager", "stage": "Stage",
    "quarter": "Quarter", "quota": "Quota", "bookings": "Bookings", "attainment": "Attainment",
    "reps_at_quota": "Reps at quota", "share_reps_at_quota": "Share of reps at quota",
    "company_attainment": "Company attainment", "mean_team_attainment": "Average team attainment",
    "entity": "Name", "level": "Level", "source_row": "Row in the file", "amount": "Amount",
    "mean_deal_size": "Average deal", "median_deal_size": "Median deal", "deals_won": "Deals won",
    # conformance: the deviations, and following the process against not following it
    "skipped_stage": "Skipped a stage", "premature_proposal": "Early proposal", "stage_regression": "Went back a stage",
    "followup_gap": "Forgotten follow-up", "after_close": "Events after the close",
    "won_without_milestones": "Won without milestones", "win_n_conforming": "Closed deals following",
    "win_n_deviating": "Closed deals not following", "win_diff": "Win rate difference",
    "win_ci_low": "Win rate difference from", "win_ci_high": "Win rate difference to", "win_p": "p-value, win rate",
    "win_p_adjusted": "Adjusted p-value, win rate", "win_significant": "Win rates differ",
    "cycle_ci_low": "Cycle difference from, days", "cycle_ci_high": "Cycle difference to, days",
    "cycle_p": "p-value, cycle", "cycle_p_adjusted": "Adjusted p-value, cycle", "cycle_significant": "Cycles differ",
    "significant": "Differs", "fitness": "Fit to the process",
    # root causes: the metric of a row
    "win_rate (adjusted log odds)": "Win rate (adjusted log odds)",
}

#: Columns that hold money (written with thousands separators and the currency).
MONEY = frozenset({
    "amount", "bookings", "quota", "pipeline", "closed_won_to_date", "expected_bookings", "expected",
    "expected_amount", "gap_to_quota", "open_pipeline", "remaining_quota", "late_pipeline", "mean_deal_size",
    "median_deal_size", "top_rep_bookings", "past_mean_bookings", "pipeline_expected", "new_business_expected",
    "p10", "p50", "p90", "weighted pipeline", "weighted_pipeline", "run rate", "run_rate", "forecast", "booked",
    "cost", "open_qualified", "actual", "revenue", "revenue_before", "revenue_retained", "acquisition_cost",
    "first_year_revenue", "upsell_value", "cross_sell_value", "value", "revenue_without_largest",
})

#: Columns that hold shares, rates or probabilities (written as percentages).
PERCENT = frozenset({
    "share", "share_conforming", "win_rate", "win_rate_conforming", "win_rate_deviating", "attainment",
    "attainment_without_top", "company_attainment", "mean_team_attainment", "expected_attainment",
    "coverage_80", "logo_retention", "net_revenue_retention", "rework_rate", "p_hit_quota", "p_win",
    "past_hit_share", "conversion", "mean_error",
    "median_error", "bias", "top_k_share", "rank_share", "fitness", "share_reps_at_quota",
    "share_teams_at_quota", "share_of_cycle", "share_of_first", "share_without_followup", "benchmark_share",
    "benchmark_share_reps_at_quota", "benchmark_manager_attainment", "win_diff", "win_ci_low", "win_ci_high",
})

#: The widest a table may be drawn (px) before it is split into parts: a report page at 1400 px.
MAX_WIDTH = 1200

#: Rows a page shows of a table before the rest goes to its CSV.
MAX_ROWS = 40


def header(column: object) -> str:
    """The header of ``column`` for a page: :data:`HEADERS`, else its name in words.

    Examples
    --------
    >>> header("share_conforming"), header("stalled_deals"), header("p90")
    ('Share following the process', 'Stalled deals', 'High (P90)')
    """
    name = str(column)
    if name in HEADERS:
        return HEADERS[name]
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def kind(column: object, values: pd.Series) -> str:
    """How a column is written: 'money', 'percent', 'days', 'p', 'count', 'number', 'date' or 'text'.

    Examples
    --------
    >>> kind("p90_days", pd.Series([1.5])), kind("deals", pd.Series([3])), kind("team", pd.Series(["a"]))
    ('days', 'count', 'text')
    """
    name = str(column)
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "text"
    if name in MONEY:
        return "money"
    if name in PERCENT or name.startswith("share_") or name.endswith(("_share", "_rate")):
        return "percent"
    if name == "p_value" or name.endswith(("_p", "_p_adjusted")) or name == "p_adjusted":
        return "p"
    if name.endswith("_days") or name.startswith("days_"):
        return "days"
    if pd.api.types.is_integer_dtype(values):
        return "count"
    return "number"


def write(value: object, how: str, currency: str = "") -> str:
    """One value as a page shows it (``how`` from :func:`kind`); blank when missing.

    Examples
    --------
    >>> write(1234567.8, "money", "€"), write(0.0336, "percent"), write(3.2e-07, "p"), write(0.0336, "number")
    ('€1,234,568', '3.4%', '< 0.001', '0.034')
    >>> write(("Lead", "Won"), "text"), write([], "text"), write("win_rate", "text")
    ('Lead → Won', '', 'Win rate')
    """
    if isinstance(value, tuple):  # a variant: its steps in order
        return " → ".join(map(str, value))
    if isinstance(value, (list, np.ndarray)):  # a set of activities (an alignment's moves)
        return ", ".join(map(str, value))
    if pd.isna(value):  # None, NaN, NaT, pd.NA
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if how == "text":
        # a measure named in a row ('win_rate') reads as its header does
        return HEADERS.get(value, value) if isinstance(value, str) else str(value)
    if how == "date":
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M")
    v = float(value)
    if not math.isfinite(v):
        return str(value)
    if how == "money":
        return f"{'-' if v < 0 else ''}{currency}{abs(v):,.0f}"
    if how == "percent":
        return f"{v:.1%}"
    if how == "p":
        return "< 0.001" if v < 0.001 else f"{v:.3f}"
    if how == "days":
        return f"{v:,.1f}"
    if how == "count" or (v.is_integer() and abs(v) >= 1):
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.3f}".rstrip("0").rstrip(".") if v else "0"


def for_people(table: pd.DataFrame, *, currency: str = "") -> pd.DataFrame:
    """``table`` as text for a page: headers in words, every value written as its kind is.

    A named index, or one of labels, becomes the first columns; row numbers are dropped.
    Numbers in a column of mixed type (a transposed row) are written as numbers.

    Examples
    --------
    >>> t = pd.DataFrame({"team": ["East"], "share_conforming": [0.8123], "p90_days": [12.25], "quota": [1.05e5]})
    >>> for_people(t, currency="$").to_dict("records")
    [{'Team': 'East', 'Share following the process': '81.2%', 'Slowest tenth, days': '12.2', 'Quota': '$105,000'}]
    """
    if isinstance(table.columns, pd.MultiIndex):
        table = table.set_axis([" ".join(str(p) for p in c if str(p)) for c in table.columns], axis=1)
    if any(n is not None for n in table.index.names):
        table = table.reset_index()
    elif not pd.api.types.is_integer_dtype(table.index):  # row positions of a filtered table say nothing
        table = table.reset_index(names=" ")
    out = {}
    for i, column in enumerate(table.columns):
        values = table.iloc[:, i]
        if values.dtype == object and values.map(_is_number).all():  # numbers in a transposed row
            values = pd.to_numeric(values)
        how = kind(column, values)
        if how == "date" and getattr(values.dtype, "tz", None) is not None:
            values = values.dt.tz_localize(None)
        name = header(column)
        if name in out:  # two columns with one header ("n" and "cases"): the second keeps its own name
            name = str(column)
        out[name] = [write(v, how, currency) for v in values]
    return pd.DataFrame(out)


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_)))


def is_words(values: pd.Series) -> bool:
    """A column of written text (names, sentences), not of written numbers; pages align it left."""
    return any(not re.fullmatch(r"[-+$€£¥<>\d.,% ]*", str(v)) for v in values.head(MAX_ROWS))


def _align(part: pd.DataFrame, body: str) -> str:
    """Mark the cells of text columns (class "text") so that the page aligns them left, numbers right."""
    words = {i for i, column in enumerate(part.columns) if is_words(part[column])}
    if not words:
        return body

    def row(match: re.Match) -> str:
        cells = iter(range(part.shape[1]))
        return re.sub(r"<td>", lambda c: '<td class="text">' if next(cells) in words else "<td>", match.group(0))

    return re.sub(r"<tr>.*?</tr>", row, body, flags=re.S)


def parts(table: pd.DataFrame, max_width: int = MAX_WIDTH) -> list[pd.DataFrame]:
    """``table`` (text, as :func:`for_people` gives it) split into column groups that fit ``max_width``
    pixels, each repeating the leading text columns that name its rows.

    Examples
    --------
    >>> t = pd.DataFrame({"Team": ["East"], **{f"Measure {i}": ["12.5%"] for i in range(30)}})
    >>> [p.shape[1] for p in parts(t)][:2], all(p.columns[0] == "Team" for p in parts(t))
    ([14, 13], True)
    """
    def width(column: str) -> float:
        longest = max([len(column), *(len(str(v)) for v in table[column].head(MAX_ROWS))])
        return 7.5 * min(longest, 40) + 18  # a cell wraps past about 40 characters

    keys: list[str] = []
    for column in table.columns[:2]:
        if is_words(table[column]):
            keys.append(column)
        else:
            break
    rest = [c for c in table.columns if c not in keys]
    base = sum(width(c) for c in keys)
    if base + sum(width(c) for c in rest) <= max_width or not rest:
        return [table]
    groups, current, used = [], [], base
    for column in rest:
        if current and used + width(column) > max_width:
            groups.append(current)
            current, used = [], base
        current.append(column)
        used += width(column)
    groups.append(current)
    return [table[keys + g] for g in groups]


def to_html(table: pd.DataFrame, *, currency: str = "", csv: Path | None = None, link: str | None = None) -> str:
    """The HTML of ``table`` for a page: :func:`for_people`, split by :func:`parts`, cut to
    :data:`MAX_ROWS` rows; when cut and ``csv`` is given, the whole table is written there and
    linked as ``link``."""
    shown = for_people(table, currency=currency)
    note = ""
    if len(shown) > MAX_ROWS:
        note = f"The first {MAX_ROWS} of {len(shown):,} rows"
        if csv is not None:
            csv.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(csv, index=not isinstance(table.index, pd.RangeIndex))
            note += f'; <a href="{html.escape(link or csv.name)}">the whole table (CSV)</a>'
        note = f"<p><em>{note}.</em></p>"
        shown = shown.head(MAX_ROWS)
    body = "".join(_align(p, p.to_html(index=False, border=0, classes="workbench-table", escape=True))
                   for p in parts(shown))
    return body + note


def install(*, currency: str = "", folder: Path | None = None, prefix: str = "table") -> None:
    """Make every DataFrame a notebook displays a table for people (:func:`to_html`).

    ``folder`` receives the CSV of each table cut to its first rows, as
    ``<prefix>-<n>.csv``, linked from the page as ``tables/<prefix>-<n>.csv``.
    Outside IPython nothing changes.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the notebooks' dependencies
        return
    shell = get_ipython()
    if shell is None:
        return
    counter = iter(range(1, 10**6))

    def html_table(table: pd.DataFrame) -> str:
        n = next(counter)
        csv = None if folder is None else Path(folder) / f"{prefix}-{n}.csv"
        return to_html(table, currency=currency, csv=csv, link=f"tables/{prefix}-{n}.csv")

    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, html_table)
