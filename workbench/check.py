"""``workbench check``: validate any input file and write its quarantine table next to it.

The first thing a consultant runs on a client's export: it says how many rows
are usable, why the others are not, and leaves ``<name>.quarantine.csv`` (each
unusable row with its row number, column and reason) beside the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .audit import data_quality, reps_findings
from .errors import WorkbenchError
from .io import LoadResult, load_table, read_event_log, read_table
from .database import is_database_url, table_name
from .validation import ValidationReport, fail_if_nothing_kept

_MULTI_SUFFIXES = (".xes.gz",)


def quarantine_path(path: str | Path) -> Path:
    """Where the quarantine table of ``path`` goes: 'deals.csv' -> 'deals.quarantine.csv' (a
    database table: '<table>.quarantine.csv' in the working folder)."""
    if is_database_url(path):
        return Path(f"{table_name(str(path))}.quarantine.csv")
    path = Path(path)
    name = path.name
    stem = next((name[: -len(s)] for s in _MULTI_SUFFIXES if name.lower().endswith(s)), path.stem)
    return path.with_name(f"{stem}.quarantine.csv")


def check_file(path: str | Path, *, kind: str = "auto", mapping: Mapping[str, Any] | str | None = None,
               dayfirst: bool = False, timezone: str = "UTC", encoding: str = "utf-8",
               sheet: str | int | None = None, lifecycle: str = "complete", after_close: str = "auto",
               profile: Any = None, log: Any = None,
               lookups: Mapping[str, Any] | None = None) -> tuple[ValidationReport, Path | None]:
    """Validate an input file, audit its data and write its quarantine table next to it.

    Parameters
    ----------
    path : path or database URL
        An event log (any kind), a reps table or a quota table, in any format
        :func:`workbench.io.read_table` reads, or a table named by a URL
        (:mod:`workbench.database`).
    kind : {'auto', 'events', 'stage_history', 'opportunities', 'reps', 'quotas'}
        'auto' guesses from the column names.
    mapping : dict or str, optional
        As for :func:`workbench.io.read_event_log` ('case_id=Col,...' or a JSON/YAML file).
    dayfirst, timezone, encoding, sheet, lifecycle, after_close, profile
        As for :func:`workbench.io.read_event_log`; the report says which
        process profile reads the log and what it does not know.
    log : path or DataFrame, optional
        For a quota table: the event log whose reps and teams the quotas must name;
        for a reps table: the log whose reps it should list (reps without deals,
        deals of reps it lacks).
    lookups : mapping, optional
        For an event log: column -> master table whose key column lists the
        valid values (:func:`workbench.audit.data_quality`).

    Returns
    -------
    report : ValidationReport
        With every finding of :func:`workbench.audit.data_quality` in ``findings``.
    quarantine : Path or None
        ``<name>.quarantine.csv`` beside the input, or None when no row was set
        aside (a stale one from an earlier check is then removed).

    Raises
    ------
    WorkbenchError
        The file cannot be read, a required column is missing, or no row is
        usable (the quarantine table is written first, and the message names it).

    Examples
    --------
    >>> report, quarantine = check_file("data/acme/opportunity_history.csv")  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    """
    path = path if is_database_url(path) else Path(path)
    raw = read_table(path, encoding=encoding, sheet=sheet)
    if log is not None and not isinstance(log, (LoadResult, pd.DataFrame)):
        log = read_event_log(log, dayfirst=dayfirst, timezone=timezone, encoding=encoding, profile=profile)
    result = load_table(raw, kind, mapping=mapping, profile=profile, dayfirst=dayfirst, timezone=timezone,
                        lifecycle=lifecycle, after_close=after_close, log=log)
    result.report.findings = data_quality(result, lookups=lookups)
    if result.report.kind == "reps" and log is not None:
        result.report.findings += reps_findings(log.log if isinstance(log, LoadResult) else log, result.log)
    out: Path | None = quarantine_path(path)
    try:
        if result.quarantine.empty:
            out.unlink(missing_ok=True)
            out = None
        else:
            result.quarantine.to_csv(out, index=False)
    except OSError as exc:
        raise WorkbenchError(f"cannot write the quarantine table ({exc.strerror or exc}).", file=str(out),
                             hint="check that the folder of the input file is writable.") from None
    try:
        fail_if_nothing_kept(result.report, result.quarantine)
    except WorkbenchError as exc:
        hint = (exc.hint or "") + (f" Each row and its reason is in {out}." if out else "")
        raise WorkbenchError(exc.problem, file=exc.file, column=exc.column, row=exc.row, hint=hint) from None
    return result.report, out
