"""The three shapes of event log (events, a CRM's stage history, a flat opportunity table) to one
canonical log, with its process profile and the events after each close set aside or kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..profile import SalesProcessProfile, get_profile
from ..profile_fit import resolve_profile
from ..schema import ACTIVITY, AMOUNT, CASE, TIMESTAMP
from ..validation import (
    RowFlags,
    as_id,
    as_text,
    check_timezone,
    fail_if_nothing_kept,
    parse_amounts,
    parse_timestamps,
)
from .columns import (
    KINDS,
    OPPORTUNITY_OPTIONS,
    carried_columns,
    detect_kind,
    flat_table_hint,
    norm_name,
    parse_mapping,
    refuse_double_mapping,
    resolve_columns,
)
from .files import RawTable, read_table
from .results import LoadResult, check_option, finish
from .tables import join_reps, read_reps

#: Helper columns that carry the input order through sorting (names no export uses).
_ROW, _K = "__workbench_row__", "__workbench_k__"

AFTER_CLOSE = ("auto", "set_aside", "keep")


LIFECYCLE = ("complete", "all")


#: Activities a flat opportunity table's closes get when no profile names them.
CLOSE_LABELS = ("Closed Won", "Closed Lost")


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


#: Dates more than this many interquartile ranges before the first quartile or after the third are
#: outliers (Tukey's "far out").
OUTLIER_IQRS = 3.0

#: The interquartile range used is at least this long (days): a log of a few months keeps a date a
#: year off, and at least six years are always kept around the middle half.
MIN_OUTLIER_IQR_DAYS = 730.0


def far_outside(dates: pd.Series, usable: np.ndarray | None = None, *, min_n: int = 20) -> np.ndarray:
    """Which dates lie far outside the bulk of ``dates``: more than :data:`OUTLIER_IQRS` interquartile
    ranges (at least :data:`MIN_OUTLIER_IQR_DAYS`) before the first quartile or after the third.
    Robust to the outliers themselves, and no fixed year range: one event stamped 2062 in a
    2024-2026 log would otherwise move every page's period. Fewer than ``min_n`` usable dates:
    none is flagged.

    Examples
    --------
    >>> d = pd.Series(pd.date_range("2025-01-01", periods=60, freq="7D", tz="UTC").append(
    ...     pd.DatetimeIndex(["2062-03-01", "2016-01-01", "2021-06-01"], tz="UTC")))
    >>> np.flatnonzero(far_outside(d)).tolist()
    [60, 61]
    """
    usable = dates.notna().to_numpy() if usable is None else usable & dates.notna().to_numpy()
    out = np.zeros(len(dates), dtype=bool)
    if usable.sum() < min_n:
        return out
    t = dates.to_numpy("datetime64[s]").astype("int64").astype(float)
    q1, q3 = np.percentile(t[usable], [25, 75])
    margin = OUTLIER_IQRS * max(q3 - q1, MIN_OUTLIER_IQR_DAYS * 86_400)
    out[usable] = (t[usable] < q1 - margin) | (t[usable] > q3 + margin)
    return out


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
    found = resolve_columns(raw, kind, mapping)
    refuse_double_mapping(raw, found)
    frame, flags = raw.frame, raw.flags
    case = as_id(frame[found[CASE]])
    flags.flag(case.isna().to_numpy(), "missing_case_id", found[CASE])
    activity = as_text(frame[found[ACTIVITY]])
    flags.flag(activity.isna().to_numpy(), "missing_activity", found[ACTIVITY])
    ts = _parse_dates(frame[found[TIMESTAMP]], found[TIMESTAMP], flags, warnings, dayfirst=dayfirst,
                      timezone=timezone, missing_reason="missing_timestamp")
    flags.flag(far_outside(ts, ~flags.bad), "timestamp_outlier", found[TIMESTAMP])
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
    log = pd.DataFrame(carried_columns(raw, found, columns))
    log[_ROW] = np.arange(len(log))
    log = _sort_events(log[~flags.bad])
    if len(log) and not log[CASE].duplicated().any() and (flat := flat_table_hint(raw)):
        warnings.append(f"every case has a single event. {flat}")
    return log, flags


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
    found = resolve_columns(raw, "opportunities", named)
    columns = list(raw.frame.columns)
    milestone_cols: dict[str, str] = {}
    for activity, column in milestones.items():
        match = column if column in columns else next((c for c in columns if norm_name(c) == norm_name(column)), None)
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
        check_option("amount_known", given, ("created", "closed"))
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
    refuse_double_mapping(raw, found, {f"milestone {a!r}": c for a, c in milestone_cols.items()})
    frame, flags = raw.frame, raw.flags
    case = as_id(frame[found[CASE]])
    flags.flag(case.isna().to_numpy(), "missing_case_id", found[CASE])
    dates = {activity: _parse_dates(frame[column], column, flags, warnings, dayfirst=dayfirst, timezone=timezone)
             for activity, column in milestone_cols.items()}
    close = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    if "close_date" in found:
        close = _parse_dates(frame[found["close_date"]], found["close_date"], flags, warnings, dayfirst=dayfirst,
                             timezone=timezone)
    # A row whose milestone or close date lies far outside the dates of all the others.
    every = pd.concat([*dates.values(), close], ignore_index=True)
    far = far_outside(every, np.tile(~flags.bad, len(dates) + 1)).reshape(len(dates) + 1, -1)
    flags.flag(far.any(axis=0), "timestamp_outlier", None)
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
    cases = pd.DataFrame(carried_columns(raw, found, done, skip=("final_stage", "close_date"),
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


def event_log_from_raw(raw: RawTable, *, kind: str = "auto", mapping: Mapping[str, Any] | str | None = None,
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
    check_option("after_close", after_close, AFTER_CLOSE)
    check_option("lifecycle", lifecycle, LIFECYCLE)
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
        not_categories = columns
    else:
        log, flags = _events_from_raw(raw, kind=kind, mapping=mapping, dayfirst=dayfirst, timezone=timezone,
                                      lifecycle=lifecycle, warnings=warnings)
        found = resolve_columns(raw, kind, mapping)
        late_column = found[ACTIVITY]
        not_categories = [found[TIMESTAMP], found.get("close_date")]
    choice = None
    if len(log):
        choice = resolve_profile(log, profile=given, **hints)
        log = _set_aside_after_close(log, flags, choice.profile, after_close, late_column,
                                     whole_rows=kind == "opportunities", warnings=warnings)
    log = log.drop(columns=[c for c in (_ROW, _K) if c in log.columns])
    if reps is not None:
        reps_table = reps.log if isinstance(reps, LoadResult) else read_reps(reps).log
        log = join_reps(log, reps_table, warnings)
    result = finish(log, raw, flags, kind, warnings, _events_summary(log), ids=found.get(CASE),
                    skip=[c for c in (*not_categories, found.get(AMOUNT)) if c],
                    profile=choice.profile if choice else given, profile_note=choice.note if choice else "")
    # the export's name of each canonical column, for messages about the loaded log
    result.log.attrs.update(profile=result.profile, kind=kind, columns={k: str(v) for k, v in found.items()
                                                                         if isinstance(v, str)})
    # Quarantined rows keep the export's own column names; a canonical case_id beside them lets
    # analyses (e.g. events after close as deviations) find their deal whatever the export called it.
    case_source = found.get(CASE)
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

    Examples
    --------
    >>> import pandas as pd
    >>> export = pd.DataFrame({"Deal": ["A", "A"], "Stage": ["Lead Created", "Closed Won"],
    ...                        "When": ["2026-07-01", "05.07.2026"]})
    >>> result = read_event_log(export, mapping="case_id=Deal,activity=Stage,timestamp=When")
    >>> result.log["timestamp"].dt.strftime("%Y-%m-%d").tolist(), result.report.rows_kept
    (['2026-07-01', '2026-07-05'], 2)
    """
    raw = read_table(source, encoding=encoding, sheet=sheet)
    result = event_log_from_raw(raw, kind=kind, mapping=mapping, profile=profile, dayfirst=dayfirst,
                                 timezone=timezone, after_close=after_close, lifecycle=lifecycle, reps=reps,
                                 **opportunity_options)
    fail_if_nothing_kept(result.report, result.quarantine)
    return result
