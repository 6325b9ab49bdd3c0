"""What is wrong with the data? The consultant's first question about a client's export.

:func:`data_quality` gathers every finding about the inputs into one list of
records (:class:`workbench.findings.Finding`): those each table showed as it was
read (empty cells, spellings, ids written two ways, repeated column names, rows
set aside and what they share), and those that need the loaded log, the reps
table or the client's master tables:

* a column that records the outcome rather than the deal (the same value for
  every lost deal, blank for every open deal), or any attribute whose value at
  the close tells the outcome: it would leak into root causes and forecasts;
* quarters at the edges of the data that it covers only in part;
* amounts far outside the others (robustly, on the log scale);
* reps and teams of the reps table without a deal, and reps of the log missing
  from it;
* values of a column absent from a master table (``lookups``), with the
  closest master value.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import engine
from ..calendar import quarter_bounds, quarter_of
from ..errors import WorkbenchError
from ..findings import Finding, Findings, examples, normalised
from ..io import read_table
from ..schema import ACTIVITY, AMOUNT, CASE, ORG, TIMESTAMP
from ..validation import REASONS, as_text

#: A quarter at the edge of the data is partial when the data covers less than this share of its days.
FULL_QUARTER = 0.9
#: Amounts more than this many interquartile ranges (of log10 amounts) beyond the quartiles are extreme...
AMOUNT_FENCE = 3.0
#: ... with the range taken as at least half a decade, so a log of similar deals does not flag a large one...
MIN_LOG_IQR = 0.5
#: ... and only among this many deals with an amount; above this an amount is extreme anyway.
MIN_AMOUNTS, ABSURD_AMOUNT = 20, 1e12
#: A column whose value at the close tells the outcome needs this many won and lost deals to say so.
MIN_PER_OUTCOME = 2
#: Columns that describe the process, not the deal.
_STRUCTURE = {CASE, ACTIVITY, TIMESTAMP, "lifecycle", "close_date", "manager", *ORG}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _named(log: pd.DataFrame, column: str) -> str:
    """A column of the loaded log as the export named it: "'close_value' (read as the amount)"."""
    source = log.attrs.get("columns", {}).get(column, column)
    return repr(source) if source == column else f"{source!r} (read as the {column})"


def _reports(data: Any) -> dict[str, Any]:
    report = data.report
    return dict(report.reports) if hasattr(report, "reports") else {"log": report}


def _set_aside(data: Any) -> list[Finding]:
    out = []
    quarantine = data.quarantine
    for table, report in _reports(data).items():
        rows = quarantine[quarantine["table"] == table] if "table" in quarantine.columns else quarantine
        for reason, n in report.counts.items():
            these = rows[rows["reason"] == reason]
            blamed = these["column"].replace("", np.nan).dropna()
            column = str(blamed.mode().iloc[0]) if len(blamed) else None
            out.append(Finding("set_aside", table, column, int(n),
                               f"{_plural(int(n), 'row')} of the {table} set aside: {REASONS.get(reason, reason)} "
                               f"({reason}).", examples(these["source_row"].to_numpy())))
    return out


def _closing_values(log: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Each case's last recorded value of ``columns`` (its value at the close, for closed deals)."""
    return log.groupby(CASE, sort=True)[columns].last()


def _outcome_columns(log: pd.DataFrame, cases: pd.DataFrame) -> list[Finding]:
    columns = [c for c in log.columns if c not in _STRUCTURE and not c.startswith("_")
               and not pd.api.types.is_datetime64_any_dtype(log[c].dtype)]
    if not columns:
        return []
    values = _closing_values(log, columns)
    outcome = cases.set_index(CASE)["outcome"].reindex(values.index)
    counts = outcome.value_counts()
    out = []
    for column in columns:
        v = values[column]
        said = []
        numeric = pd.api.types.is_numeric_dtype(v.dtype)
        lost, won, open_ = v[outcome == "lost"], v[outcome == "won"], v[outcome == "open"]
        if numeric and len(lost) >= 3 and lost.notna().all() and lost.nunique() == 1 and won.nunique() > 1:
            said.append(f"is {lost.iloc[0]:,g} for every lost deal ({len(lost):,}) while won deals vary")
        closed = v[outcome.isin(["won", "lost"])]
        if counts.get("open", 0) >= 3 and open_.isna().all() and closed.notna().mean() >= 0.9:
            said.append(f"is blank for every open deal ({len(open_):,}) and filled for closed ones")
        if said:
            n = sum(len(lost) if "lost" in s else len(open_) for s in said)
            out.append(Finding("outcome_like", "log", log.attrs.get("columns", {}).get(column, column), int(n),
                               f"column {_named(log, column)} {' and '.join(said)}: it records what the deal brought "
                               f"or how it ended, not its size."))
            continue
        leak = _follows_outcome(closed, outcome[closed.index])
        if leak:
            out.append(Finding("outcome_leak", "log", log.attrs.get("columns", {}).get(column, column),
                               int(closed.notna().sum()),
                               f"column {_named(log, column)} tells the outcome of every closed deal: {leak}."))
    return out


def _follows_outcome(values: pd.Series, outcome: pd.Series) -> str:
    """How ``values`` (at the close) tell ``outcome``, or '' when they do not."""
    filled = values.notna()
    won, lost = outcome == "won", outcome == "lost"
    if min(won.sum(), lost.sum()) < MIN_PER_OUTCOME:
        return ""
    if filled[lost].all() and not filled[won].any():
        return "it is filled for every lost deal and empty for every won one"
    if filled[won].all() and not filled[lost].any():
        return "it is filled for every won deal and empty for every lost one"
    known = values[filled].astype("str")
    o = outcome[filled]
    if min((o == "won").sum(), (o == "lost").sum()) < MIN_PER_OUTCOME:
        return ""
    if known.nunique() > max(2, len(known) // 4):
        return ""  # nearly a value per deal: telling outcomes apart proves nothing
    pure = known.groupby(o.to_numpy()).agg(lambda s: set(s))
    if pure.get("won", set()) & pure.get("lost", set()):
        return ""
    return (f"{', '.join(repr(x) for x in sorted(pure['won']))} only when won, "
            f"{', '.join(repr(x) for x in sorted(pure['lost']))} only when lost")


def _partial_edges(log: pd.DataFrame) -> list[tuple[str, str, float, int, int]]:
    """The quarters at the edges of the data covered for less than :data:`FULL_QUARTER` of their days:
    quarter, span ('from 2026-03-01' / 'up to 2026-07-31'), share of days, days covered, days in all."""
    if log.empty:
        return []
    first, last = log[TIMESTAMP].min(), log[TIMESTAMP].max()
    out = []
    for edge, stamp in (("first", first), ("last", last)):
        quarter = quarter_of(stamp)
        start, end = quarter_bounds(quarter)
        lo, hi = max(start, first), min(end, last)
        share = max((hi - lo) / (end - start), 0.0)
        if share >= FULL_QUARTER or (edge == "last" and quarter == quarter_of(first)):
            continue  # a log within one quarter is said once
        span = f"from {lo:%Y-%m-%d}" if edge == "first" else f"up to {hi:%Y-%m-%d}"
        out.append((quarter, span, share, int(np.ceil((hi - lo).total_seconds() / 86400)),
                    int(round((end - start).days))))
    return out


def _partial_periods(log: pd.DataFrame) -> list[Finding]:
    return [Finding("partial_period", "log", None, days,
                    f"the data covers {quarter} only {span}: {days} of its {total} days ({share:.0%}); "
                    f"its numbers are not a full quarter's.", examples(None, [quarter]))
            for quarter, span, share, days, total in _partial_edges(log)]


def partial_quarters(log: pd.DataFrame) -> dict[str, float]:
    """The quarters at the edges of the data that it covers only in part, with the share of days covered.

    Examples
    --------
    >>> log = pd.DataFrame({"timestamp": pd.to_datetime(["2026-03-01", "2026-06-30"], utc=True)})
    >>> {q: round(s, 2) for q, s in partial_quarters(log).items()}
    {'2026Q1': 0.34}
    """
    return {quarter: share for quarter, _, share, _, _ in _partial_edges(log)}


def partial_lines(log: pd.DataFrame, periods: Any) -> list[str]:
    """One line for each quarter among ``periods`` that the data covers only in part, for under a table.

    Examples
    --------
    >>> log = pd.DataFrame({"timestamp": pd.to_datetime(["2026-03-01", "2026-06-30"], utc=True)})
    >>> partial_lines(log, ["2026Q1", "2026Q2"])
    ["2026Q1 is in the data from 2026-03-01 only (34% of its days): its numbers are not a full quarter's."]
    """
    wanted = set(map(str, periods))
    return [f"{quarter} is in the data {span} only ({share:.0%} of its days): its numbers are not a full quarter's."
            for quarter, span, share, _, _ in _partial_edges(log) if quarter in wanted]


def _extreme_amounts(log: pd.DataFrame, cases: pd.DataFrame) -> list[Finding]:
    if AMOUNT not in cases.columns:
        return []
    amount = cases.set_index(CASE)[AMOUNT]
    amount = amount[amount > 0]
    if amount.empty:
        return []
    extreme = amount >= ABSURD_AMOUNT
    if len(amount) >= MIN_AMOUNTS:
        x = np.log10(amount.to_numpy(float))
        q1, q3 = np.percentile(x, [25, 75])
        iqr = max(q3 - q1, MIN_LOG_IQR)
        extreme |= (x > q3 + AMOUNT_FENCE * iqr) | (x < q1 - AMOUNT_FENCE * iqr)
    if not extreme.any():
        return []
    far = amount[extreme].sort_values(ascending=False)
    median = float(amount.median())
    return [Finding("extreme_amount", "log", log.attrs.get("columns", {}).get(AMOUNT, AMOUNT), int(extreme.sum()),
                    f"column {_named(log, AMOUNT)} has {_plural(int(extreme.sum()), 'deal')} far from the "
                    f"others (median {median:,.0f}): "
                    + ", ".join(f"{case!r} {value:,.4g}" for case, value in far.head(3).items()) + ".",
                    examples(None, [f"{case}: {value:,.4g}" for case, value in far.items()]))]


def reps_findings(log: pd.DataFrame, reps: pd.DataFrame | None) -> list[Finding]:
    """The reps table against the log: reps and teams without a deal, reps of the log missing from it."""
    if reps is None or "rep" not in reps.columns or "rep" not in log.columns:
        return []
    out = []
    in_log = set(log["rep"].dropna())
    idle = sorted(set(reps["rep"].dropna()) - in_log)
    if idle:
        out.append(Finding("rep_without_deals", "reps", "rep", len(idle),
                           f"{_plural(len(idle), 'rep')} of the reps table have no deal in the log: "
                           f"{', '.join(map(repr, idle[:5]))}{', ...' if len(idle) > 5 else ''}.",
                           examples(None, idle)))
    if "team" in reps.columns and "team" in log.columns:
        teams = sorted(set(reps["team"].dropna()) - set(log["team"].dropna()))
        if teams:
            out.append(Finding("team_without_deals", "reps", "team", len(teams),
                               f"{_plural(len(teams), 'team')} of the reps table have no deal in the log: "
                               f"{', '.join(map(repr, teams[:5]))}.", examples(None, teams)))
    unknown = log[log["rep"].notna() & ~log["rep"].isin(set(reps["rep"].dropna()))]
    if len(unknown):
        names = sorted(unknown["rep"].unique())
        deals = unknown[CASE].nunique()
        out.append(Finding("rep_not_in_reps", "log", "rep", int(deals),
                           f"{_plural(deals, 'deal')} belong to {_plural(len(names), 'rep')} missing from the reps "
                           f"table: "
                           f"{', '.join(map(repr, names[:5]))}{', ...' if len(names) > 5 else ''}.",
                           examples(None, names)))
    return out


def parse_lookups(lookups: str | Mapping[str, Any] | list[str] | None) -> dict[str, Any]:
    """Master tables as {column: file or DataFrame}, from 'product=products.csv,account=accounts.csv',
    a list of such pairs (the command line's repeated ``--lookup``) or a dict.

    Examples
    --------
    >>> parse_lookups(None)
    {}
    >>> parse_lookups("product=workbench/profiles/ppvvc.yaml")
    {'product': 'workbench/profiles/ppvvc.yaml'}
    """
    if not lookups:
        return {}
    if isinstance(lookups, Mapping):
        return dict(lookups)
    pairs = lookups.split(",") if isinstance(lookups, str) else list(lookups)
    out: dict[str, Any] = {}
    for pair in pairs:
        column, sep, path = str(pair).partition("=")
        column, path = column.strip(), path.strip()
        if not sep or not column or not path:
            raise WorkbenchError(f"the lookup {pair!r} is not COLUMN=FILE.",
                                 hint="write e.g. --lookup product=products.csv (lookups='product=products.csv').")
        if not Path(path).is_file():
            raise WorkbenchError(f"the master table for {column!r} does not exist.", file=path, hint="check the path.")
        out[column] = path
    return out


def read_lookup(name: str, table: str | Path | pd.DataFrame) -> pd.Series:
    """The key values of a master table: its column ``name`` (any case), else its first column."""
    frame = table if isinstance(table, pd.DataFrame) else read_table(table).frame
    source = "<DataFrame>" if isinstance(table, pd.DataFrame) else str(table)
    if frame.shape[1] == 0:
        raise WorkbenchError("the master table has no columns.", file=source, hint="export it with its header.")
    key = next((c for c in frame.columns if str(c).strip().lower() == name.lower()), frame.columns[0])
    return as_text(frame[key]).dropna().drop_duplicates()


def _closest(value: str, keys: list[str]) -> str | None:
    by_norm = dict(zip(normalised(pd.Series(keys, dtype="str")), keys))
    key = normalised(pd.Series([value], dtype="str")).iloc[0]
    if key in by_norm:
        return by_norm[key]
    match = difflib.get_close_matches(value, keys, n=1, cutoff=0.6)
    return match[0] if match else None


def _lookups(log: pd.DataFrame, lookups: Mapping[str, Any]) -> list[Finding]:
    out = []
    for name, table in lookups.items():
        if name not in log.columns:
            raise WorkbenchError(f"--lookup {name}=...: the log has no column {name!r}.", column=name,
                                 hint=f"name one of the log's columns: {sorted(map(str, log.columns))[:12]}.")
        keys = read_lookup(name, table)
        values = as_text(log[name])
        absent = log[values.notna() & ~values.isin(set(keys))]
        if absent.empty:
            continue
        deals = absent.groupby(as_text(absent[name]))[CASE].nunique().sort_values(ascending=False)
        keys_list = keys.tolist()
        said, shown = [], []
        for value, n in deals.items():
            closest = _closest(str(value), keys_list)
            said.append(f"{value!r} ({_plural(n, 'deal')}" + (f"; closest: {closest!r})" if closest else ")"))
            shown.append({"row": None, "value": str(value), "closest": closest})
        out.append(Finding("not_in_lookup", "log", log.attrs.get("columns", {}).get(name, name), int(deals.sum()),
                           f"{_plural(int(deals.sum()), 'deal')} have a {name} that is not in the {name} master "
                           f"table: {', '.join(said[:5])}{', ...' if len(said) > 5 else ''}.", shown[:3]))
    return out


def data_quality(data: Any, *, lookups: Mapping[str, Any] | None = None) -> Findings:
    """Every finding about the inputs, as records (see the module docstring for the checks).

    Parameters
    ----------
    data : SalesData or LoadResult
        What :func:`workbench.io.load_sales_data` (or one reader) returned.
    lookups : mapping, optional
        Column of the log -> master table (path or DataFrame) whose key column
        (the column of the same name, else the first) lists its valid values.

    Returns
    -------
    Findings
        A list of :class:`workbench.findings.Finding`; ``to_frame()`` for a
        page, ``to_records()`` for JSON, ``str()`` for the terminal.

    Examples
    --------
    >>> from workbench.io import read_event_log
    >>> export = pd.DataFrame({"id": ["A", "B", "C"], "stage": ["Lead Created", "Closed Won", "Closed Lost"],
    ...                        "when": ["2026-07-01", "2026-07-05", "2026-07-09"], "product": ["X1", "x-1", None]})
    >>> found = data_quality(read_event_log(export, mapping="case_id=id,activity=stage,timestamp=when"),
    ...                      lookups={"product": pd.DataFrame({"product": ["X1", "Y2"]})})
    >>> sorted({f.kind for f in found})
    ['missing_values', 'not_in_lookup', 'partial_period']
    """
    log = data.log
    findings = _set_aside(data) + [f for report in _reports(data).values() for f in report.findings]
    if CASE not in log.columns or TIMESTAMP not in log.columns:  # a reps or quota table alone
        return Findings(findings)
    if len(log):
        cases = engine.case_table(log, profile=data.profile)
        findings += _outcome_columns(log, cases)
        findings += _partial_periods(log)
        findings += _extreme_amounts(log, cases)
    findings += reps_findings(log, getattr(data, "reps", None))
    findings += _lookups(log, lookups or {})
    return Findings(findings)
